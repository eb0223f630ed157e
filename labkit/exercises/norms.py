"""Checks for the exercises of the chapter on normalisation and residuals.

The references are labkit.norms' ``layer_norm`` and ``rms_norm`` (evaluated in
float64, so the expected values are exact to float32 precision). The residual
step's check lives in labkit.exercises.residual and is importable from here too.

Built in: notebooks/08_norms_and_residuals.ipynb.
"""

from __future__ import annotations

from functools import partial

import torch

from labkit.exercises import Case, CheckResult, run_check, tensors_close
from labkit.exercises.residual import check_residual_step
from labkit.norms import layer_norm, rms_norm

__all__ = ["check_layer_norm", "check_residual_step", "check_rms_norm"]

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
