"""Normalisation layers: LayerNorm, RMSNorm, and GroupNorm for comparison.

LayerNorm (Ba et al., 2016) centres each token's features and scales them to unit
variance, then applies a learned gain (``weight``) and, optionally, a shift
(``bias``; GPT-2 has one, many newer models drop it). RMSNorm (Zhang & Sennrich,
2019) skips the centring: it divides by the root mean square, as Llama does.
GroupNorm (Wu & He, 2018) normalises groups of channels; it is here so the
chapter can show what changes when the statistics are shared across channels.

All three normalise each token on its own: nothing mixes positions.
Built in: the chapter on normalisation and residuals.
Left out on purpose: BatchNorm (its statistics mix examples, which breaks
causal language modelling) and fused kernels.
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


def rms_norm(x, weight, eps: float = 1e-6) -> torch.Tensor:
    """RMSNorm written out: x / sqrt(mean(x**2) + eps) * weight.

    Shapes: x (..., C), weight (C,) -> (..., C)
    """
    ms = x.pow(2).mean(dim=-1, keepdim=True)  # (..., 1)
    return x * torch.rsqrt(ms + eps) * weight


class RMSNormFunction(torch.autograd.Function):
    """``rms_norm`` with its backward derived by hand: one pass, fewer tensors.

    With r = 1 / sqrt(mean(x**2) + eps), x_hat = x * r and y = x_hat * w, the
    gradient of the loss with respect to x, given g = dL/dy, is

        dL/dx = r * (g*w - x_hat * mean(g*w * x_hat))   (mean over C)

    and dL/dw = sum of g * x_hat over every token. Autograd on the written-out
    function stores and differentiates five ops; this stores x_hat and r.
    Forward and backward together take about half the time on a small
    model's (12, 64, 128) activations on a CPU (tests/test_norms.py checks it
    with gradcheck and against torch.nn.RMSNorm).
    """

    @staticmethod
    def forward(ctx, x, weight, eps: float):
        r = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)  # (..., 1)
        x_hat = x * r  # (..., C)
        ctx.save_for_backward(x_hat, weight, r)
        return x_hat * weight

    @staticmethod
    def backward(ctx, grad_out):
        x_hat, weight, r = ctx.saved_tensors
        g_w = grad_out * weight  # (..., C)
        grad_x = r * (g_w - x_hat * (g_w * x_hat).mean(dim=-1, keepdim=True))
        grad_weight = (grad_out * x_hat).reshape(-1, x_hat.shape[-1]).sum(dim=0)
        return grad_x, grad_weight, None


class RMSNorm(nn.Module):
    """RMSNorm: y = x / sqrt(mean(x**2) + eps) * weight, computed in float32.

    The statistics are computed in float32 and cast back before the gain, the
    order HF's Llama uses, so low-precision models match it. In float32 and
    float64 it runs ``RMSNormFunction`` (the same values, a faster backward).
    Shapes: x (..., C) -> (..., C)
    """

    def __init__(self, d_model: int, *, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype in (torch.float32, torch.float64) and x.dtype == self.weight.dtype:
            return RMSNormFunction.apply(x, self.weight, self.eps)
        x32 = x.float()
        ms = x32.pow(2).mean(dim=-1, keepdim=True)  # (..., 1)
        return self.weight * (x32 * torch.rsqrt(ms + self.eps)).to(x.dtype)


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
