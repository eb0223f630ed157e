"""Normalisation layers: LayerNorm, RMSNorm; GroupNorm and BatchNorm to compare.

LayerNorm (Ba et al., 2016) centres each token's features and scales them to unit
variance, then applies a learned gain (``weight``) and, optionally, a shift
(``bias``; GPT-2 has one, many newer models drop it). RMSNorm (Zhang & Sennrich,
2019) skips the centring: it divides by the root mean square, as Llama does.
GroupNorm (Wu & He, 2018) normalises groups of channels; it is here so the
chapter can show what changes when the statistics are shared across channels.

These three normalise each token on its own: nothing mixes positions.
``batch_norm`` (Ioffe & Szegedy, 2015) is the exception, written out only so the
chapter can show why a language model does not use it: it normalises each
feature over every token of the batch, so a token's output depends on the other
tokens, later ones included.
Built in: notebooks/08_norms_and_residuals.ipynb.
Left out on purpose: a BatchNorm module (running statistics, train and eval
modes) and fused kernels.
"""

import torch
import torch.nn.functional as F
from torch import nn

NORMS = ("layernorm", "rmsnorm")


def layer_norm(x, weight, bias=None, eps: float = 1e-5) -> torch.Tensor:
    """LayerNorm written out: (x - mean) / sqrt(var + eps) * weight (+ bias).

    The variance is without Bessel's correction, as in torch.nn.LayerNorm.
    Shapes: x (..., C), weight and bias (C,) -> (..., C)
    """
    mean = x.mean(dim=-1, keepdim=True)  # (..., 1)
    var = (x - mean).pow(2).mean(dim=-1, keepdim=True)  # (..., 1)
    y = (x - mean) * torch.rsqrt(var + eps) * weight
    return y + bias if bias is not None else y


def rms_norm(x, weight, eps: float = 1e-6) -> torch.Tensor:
    """RMSNorm written out: x / sqrt(mean(x**2) + eps) * weight.

    The statistics are computed in float32 and cast back to x's dtype before
    the gain, the order HF's Llama uses, so low-precision models match it.
    Shapes: x (..., C), weight (C,) -> (..., C)
    """
    x32 = x.float()
    ms = x32.pow(2).mean(dim=-1, keepdim=True)  # (..., 1)
    return weight * (x32 * torch.rsqrt(ms + eps)).to(x.dtype)


def batch_norm(x, weight, bias, eps: float = 1e-5) -> torch.Tensor:
    """BatchNorm's training-mode step: each feature normalised over all tokens.

    The mean and (biased) variance of feature c are taken over every position
    of every sequence in the batch, as torch's BatchNorm1d does in training
    mode; no running statistics are kept.
    Shapes: x (..., C), weight and bias (C,) -> (..., C)
    """
    dims = tuple(range(x.dim() - 1))  # every dimension but the features
    mean = x.mean(dim=dims, keepdim=True)  # (1, ..., 1, C)
    var = (x - mean).pow(2).mean(dim=dims, keepdim=True)  # (1, ..., 1, C)
    return (x - mean) * torch.rsqrt(var + eps) * weight + bias


class LayerNorm(nn.Module):
    """LayerNorm over the last dimension, with or without a bias.

    Computes ``layer_norm`` (above) with torch's fused F.layer_norm, which is
    faster and equal to it (tests/test_norms.py).
    Shapes: x (..., C) -> (..., C)
    """

    def __init__(self, d_model: int, *, bias: bool = True, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)


class RMSNorm(nn.Module):
    """RMSNorm: y = x / sqrt(mean(x**2) + eps) * weight (``rms_norm``, above).

    Shapes: x (..., C) -> (..., C)
    """

    def __init__(self, d_model: int, *, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.weight, self.eps)


class GroupNorm(nn.Module):
    """GroupNorm over channel groups of each token (for comparison only).

    The C channels are split into ``n_groups`` groups of C // n_groups; each
    group is normalised like LayerNorm. n_groups=1 is LayerNorm; n_groups=C
    normalises every channel alone (and so erases it up to the gain and shift).
    Shapes: x (..., C) -> (..., C)
    """

    def __init__(self, n_groups: int, d_model: int, *, eps: float = 1e-5):
        super().__init__()
        if n_groups < 1 or d_model % n_groups:
            raise ValueError(
                f"d_model={d_model} is not divisible by n_groups={n_groups}"
            )
        self.n_groups, self.eps = n_groups, eps
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        g = x.reshape(*shape[:-1], self.n_groups, -1)  # (..., G, C // G)
        mean = g.mean(dim=-1, keepdim=True)
        var = (g - mean).pow(2).mean(dim=-1, keepdim=True)
        g = (g - mean) * torch.rsqrt(var + self.eps)
        return g.reshape(shape) * self.weight + self.bias  # (..., C)


def make_norm(kind: str, d_model: int, *, bias: bool = True, eps: float = 1e-5):
    """The norm named by ``kind`` ("layernorm" or "rmsnorm"), as GPTConfig.norm."""
    if kind == "layernorm":
        return LayerNorm(d_model, bias=bias, eps=eps)
    if kind == "rmsnorm":
        return RMSNorm(d_model, eps=eps)
    raise ValueError(f"unknown norm={kind!r}; choose one of {NORMS}")
