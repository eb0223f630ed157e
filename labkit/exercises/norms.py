"""Checks for the exercises of the chapter on normalisation and residuals.

The references are labkit.norms' ``layer_norm`` and ``rms_norm`` (evaluated in
float64, so the expected values are exact to float32 precision), and the two
residual placements of labkit.model's ``Block`` (tests/exercises/test_norms.py
shows that two steps of ``_residual_step`` are a Block, pre-norm and post-norm).

Built in: notebooks/08_norms_and_residuals.ipynb.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from labkit.exercises import Case, CheckResult, run_check, tensors_close
from labkit.norms import LayerNorm, RMSNorm, layer_norm, rms_norm

# a float32 answer may differ from the float64 one in its last bits; with a
# mean of 300, x - mean itself is off by up to 3e-5 in float32
_close = partial(tensors_close, rtol=1e-4, atol=1e-5)
_close_ln = partial(tensors_close, rtol=1e-4, atol=5e-4)


def _exact(fn, *args):
    """fn on float64 copies of the tensors, cast back to float32."""
    wide = [a.double() if isinstance(a, torch.Tensor) else a for a in args]
    return fn(*wide).float()


def _layer_norm_case(x, weight, bias, eps, hint, label):
    expected = _exact(layer_norm, x, weight, bias, eps)
    return Case((x, weight, bias, eps), expected, hint, label=label)


def _layer_norm_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(0)

    def randn(*shape):
        return torch.randn(*shape, generator=gen)

    ones, zeros = torch.ones(4), torch.zeros(4)
    cases = [
        _layer_norm_case(
            torch.tensor([[1.0, 3.0]]),
            torch.tensor([2.0, 2.0]),
            torch.tensor([0.5, 0.5]),
            0.0,
            "mean 2, variance 1 (divide by C, not C - 1: torch.var's default "
            "is the unbiased C - 1): (x - 2) / 1 * 2 + 0.5",
            "x = [[1, 3]], weight = [2, 2], bias = [0.5, 0.5], eps = 0",
        ),
        _layer_norm_case(
            torch.tensor([[1.0, 3.0]]),
            torch.ones(2),
            torch.zeros(2),
            1.0,
            "use the eps you are given: with eps = 1 the variance 1 becomes "
            "1 + 1 = 2 under the square root",
            "x = [[1, 3]], unit weight, zero bias, eps = 1",
        ),
        _layer_norm_case(
            torch.tensor([[1.0, 2.0, 3.0, 6.0]]),
            ones,
            zeros,
            1e-5,
            "subtract the mean (3), divide by the standard deviation of the C features",
            "x = [[1, 2, 3, 6]], unit weight, zero bias, eps = 1e-5",
        ),
        _layer_norm_case(
            torch.full((2, 4), 3.0),
            randn(4),
            torch.tensor([0.1, 0.2, 0.3, 0.4]),
            1e-5,
            "all features equal: x - mean is 0 and so is the variance; eps "
            "inside the square root keeps it finite, and the output is the bias",
            "x = every feature 3.0 (shape (2, 4)), random weight, "
            "bias = [0.1, 0.2, 0.3, 0.4], eps = 1e-5",
        ),
        _layer_norm_case(
            randn(3, 1),
            randn(1),
            randn(1),
            1e-5,
            "one feature is its own mean: the output is the bias",
            "x of shape (3, 1) (C = 1), random weight and bias, eps = 1e-5",
        ),
        _layer_norm_case(
            1e-3 * randn(2, 8),
            torch.ones(8),
            torch.zeros(8),
            1e-5,
            "eps goes inside the square root, (x - mean) / sqrt(var + eps); "
            "for small inputs it matters",
            "x of size 1e-3 (shape (2, 8)), unit weight, zero bias, eps = 1e-5",
        ),
        _layer_norm_case(
            randn(2, 3, 8) * 2 + 1,
            randn(8),
            randn(8),
            1e-5,
            "each token alone: statistics over the last dimension only, with "
            "keepdim=True so they broadcast",
            "x of shape (B, T, C) = (2, 3, 8), random weight and bias",
        ),
        _layer_norm_case(
            randn(4, 16),
            randn(16) + 1,
            randn(16),
            1e-5,
            "weight multiplies the normalised x; bias is added after",
            "x of shape (4, 16), random weight and bias",
        ),
        _layer_norm_case(
            randn(4, 16) + 300.0,
            randn(16),
            randn(16),
            1e-5,
            "compute the variance as the mean of (x - mean)**2: E[x**2] - "
            "E[x]**2 loses most of its digits in float32 when the mean is large",
            "x = 300 + noise of size 1 (shape (4, 16)), random weight and bias",
        ),
    ]
    for _ in range(5):
        B, T = (int(n) for n in torch.randint(1, 5, (2,), generator=gen))
        C = int(torch.randint(2, 33, (1,), generator=gen))
        eps = (1e-5, 1e-6, 1e-3)[int(torch.randint(0, 3, (1,), generator=gen))]
        x = randn(B, T, C) * float(torch.rand(1, generator=gen) * 4) + randn(1)
        label = f"random x of shape {(B, T, C)}, random weight and bias, eps={eps:g}"
        cases.append(
            _layer_norm_case(x, randn(C), randn(C), eps, "random inputs", label)
        )
    return cases


def check_layer_norm(fn) -> CheckResult:
    """Check ``fn(x, weight, bias, eps)``: LayerNorm over the last dimension.

    Shapes: x (..., C), weight and bias (C,) -> (..., C)
    """
    return run_check(
        "check_layer_norm",
        fn,
        _layer_norm_cases(),
        _close_ln,
        summary="hand-derived, eps = 1, constant vector, C = 1, small inputs, "
        "(B, T, C), large mean, 5 random",
        forbidden=(".layer_norm(", "LayerNorm(", "labkit"),
        references=(layer_norm,),
    )


def _rms_norm_case(x, weight, eps, hint, label):
    return Case((x, weight, eps), _exact(rms_norm, x, weight, eps), hint, label=label)


def _rms_norm_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(1)

    def randn(*shape):
        return torch.randn(*shape, generator=gen)

    cases = [
        _rms_norm_case(
            torch.tensor([[3.0, 4.0]]),
            torch.ones(2),
            0.0,
            "the mean square is (9 + 16) / 2 = 12.5: divide x (not x - mean) by "
            "its square root, the root *mean* square (the vector's length is "
            "sqrt(C) times larger)",
            "x = [[3, 4]], unit weight, eps = 0",
        ),
        _rms_norm_case(
            torch.tensor([[3.0, 4.0]]),
            torch.ones(2),
            1.0,
            "use the eps you are given: with eps = 1 the mean square 12.5 "
            "becomes 13.5 under the square root",
            "x = [[3, 4]], unit weight, eps = 1",
        ),
        _rms_norm_case(
            torch.tensor([[1.0, 2.0, 3.0, 6.0]]),
            torch.ones(4),
            1e-6,
            "RMSNorm does not subtract the mean: this vector's mean (3) stays "
            "positive in the output",
            "x = [[1, 2, 3, 6]], unit weight, eps = 1e-6",
        ),
        _rms_norm_case(
            torch.full((1, 3), -2.0),
            torch.tensor([0.5, 1.0, 2.0]),
            1e-6,
            "all features equal: each becomes -1 (the sign is kept), times the weight",
            "x = [[-2, -2, -2]], weight = [0.5, 1, 2], eps = 1e-6",
        ),
        _rms_norm_case(
            torch.zeros(2, 4),
            randn(4),
            1e-6,
            "the zero vector: eps keeps 0 / 0 away, and the output is zeros",
            "x = zeros (shape (2, 4)), random weight, eps = 1e-6",
        ),
        _rms_norm_case(
            1e-3 * randn(2, 8),
            torch.ones(8),
            1e-5,
            "eps goes inside the square root: x / sqrt(mean(x**2) + eps)",
            "x of size 1e-3 (shape (2, 8)), unit weight, eps = 1e-5",
        ),
        _rms_norm_case(
            randn(2, 3, 8) * 2,
            randn(8),
            1e-6,
            "each token alone: the mean square over the last dimension only, "
            "with keepdim=True",
            "x of shape (B, T, C) = (2, 3, 8), random weight",
        ),
    ]
    for _ in range(5):
        B, T = (int(n) for n in torch.randint(1, 5, (2,), generator=gen))
        C = int(torch.randint(2, 33, (1,), generator=gen))
        x = randn(B, T, C) * float(torch.rand(1, generator=gen) * 4) + randn(1)
        label = f"random x of shape {(B, T, C)}, random weight, eps=1e-6"
        cases.append(_rms_norm_case(x, randn(C), 1e-6, "random inputs", label))
    return cases


def check_rms_norm(fn) -> CheckResult:
    """Check ``fn(x, weight, eps)``: RMSNorm over the last dimension.

    Shapes: x (..., C), weight (C,) -> (..., C)
    """
    return run_check(
        "check_rms_norm",
        fn,
        _rms_norm_cases(),
        _close,
        summary="hand-derived, eps = 1, not centred, constant and zero vectors, small "
        "inputs, (B, T, C), 5 random",
        forbidden=(".rms_norm(", "RMSNorm(", "labkit"),
        references=(rms_norm,),
    )


class _Sublayer(nn.Module):
    """A small MLP with random weights, standing in for attention or the MLP."""

    def __init__(self, C: int, gen: torch.Generator, silent: bool = False):
        super().__init__()
        self.up, self.down = nn.Linear(C, 2 * C), nn.Linear(2 * C, C)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
            if silent:  # writes nothing: the output is all zeros
                self.down.weight.zero_()
                self.down.bias.zero_()

    def forward(self, x):
        return self.down(F.gelu(self.up(x)))


def _random_norm(kind: str, C: int, gen: torch.Generator) -> nn.Module:
    norm = LayerNorm(C) if kind == "LayerNorm" else RMSNorm(C)
    with torch.no_grad():  # unit gain and no shift would hide a missing norm
        norm.weight.copy_(1 + 0.5 * torch.randn(C, generator=gen))
        if getattr(norm, "bias", None) is not None:
            norm.bias.copy_(0.5 * torch.randn(C, generator=gen))
    return norm


def _residual_step(x, sublayer, norm, prenorm: bool) -> torch.Tensor:
    if prenorm:
        return x + sublayer(norm(x))
    return norm(x + sublayer(x))


def _residual_case(shape, prenorm, hint, *, kind="LayerNorm", silent=False, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=gen) * 3 + 1  # a stream far from unit size
    sublayer = _Sublayer(shape[-1], gen, silent)
    norm = _random_norm(kind, shape[-1], gen)
    with torch.no_grad():
        expected = _residual_step(x, sublayer, norm, prenorm)
    writes = "a sublayer that writes zeros" if silent else "a random MLP sublayer"
    label = (
        f"x of shape {tuple(shape)}, {writes}, {kind} with random gain, "
        f"prenorm={prenorm}"
    )
    return Case((x, sublayer, norm, prenorm), expected, hint, label=label)


def _residual_cases() -> list[Case]:
    cases = [
        _residual_case(
            (1, 2, 4),
            True,
            "pre-norm: x + sublayer(norm(x)); the norm sits inside the branch "
            "and the stream x passes through untouched",
        ),
        _residual_case(
            (1, 2, 4),
            False,
            "post-norm: norm(x + sublayer(x)); add first, then normalise the sum",
        ),
        _residual_case(
            (2, 3, 8),
            True,
            "a sublayer that writes nothing leaves the pre-norm stream as it "
            "was: x itself, not norm(x)",
            silent=True,
            seed=1,
        ),
        _residual_case(
            (2, 3, 8),
            False,
            "post-norm normalises the stream even when the sublayer writes "
            "nothing: norm(x)",
            silent=True,
            seed=2,
        ),
        _residual_case(
            (2, 3, 8),
            True,
            "the sublayer reads norm(x), not x, and its output is added "
            "as it is (not normalised)",
            kind="RMSNorm",
            seed=3,
        ),
        _residual_case(
            (2, 3, 8),
            False,
            "post-norm with RMSNorm: norm(x + sublayer(x))",
            kind="RMSNorm",
            seed=4,
        ),
    ]
    for seed in range(5, 11):
        cases.append(
            _residual_case(
                (2, 5, 16),
                seed % 2 == 0,
                "random inputs",
                kind=("LayerNorm", "RMSNorm")[seed % 3 == 0],
                seed=seed,
            )
        )
    return cases


def _residual_close(expected, returned):
    if isinstance(returned, torch.Tensor) and returned.requires_grad:
        returned = returned.detach()
    return _close(expected, returned)


def check_residual_step(fn) -> CheckResult:
    """Check ``fn(x, sublayer, norm, prenorm) -> (B, T, C)``: one residual step.

    prenorm=True: x + sublayer(norm(x)); prenorm=False: norm(x + sublayer(x)).
    """
    return run_check(
        "check_residual_step",
        fn,
        _residual_cases(),
        _residual_close,
        summary="pre-norm and post-norm, silent sublayers, LayerNorm and "
        "RMSNorm, 6 random",
    )
