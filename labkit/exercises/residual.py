"""Check for the residual-step exercise of the chapter on norms and residuals.

The learner writes one residual connection with the norm in either place:
pre-norm ``x + sublayer(norm(x))`` (GPT-2) or post-norm ``norm(x + sublayer(x))``
(the 2017 transformer). The reference is ``_residual_step``; two of its steps are
labkit.model's ``Block`` for both settings of ``prenorm``
(tests/exercises/test_residual.py shows it).

Built in: notebooks/08_norms_and_residuals.ipynb.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from labkit.exercises import Case, CheckResult, run_check, tensors_close
from labkit.norms import LayerNorm, RMSNorm

_close = partial(tensors_close, rtol=1e-4, atol=1e-5)


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


def _residual_case(
    shape, prenorm, hint, *, kind="LayerNorm", silent=False, seed=0, grad=False
):
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
    if grad:  # as in a model being trained: torch refuses to change x in place
        x.requires_grad_(True)
        label += ", x requires grad"
    return Case((x, sublayer, norm, prenorm), expected, hint, label=label)


_IN_PLACE = (
    "return a new tensor, x + ..., and leave x as it was: an in-place x += "
    "(or x.add_) changes the caller's tensor, and autograd refuses it on a "
    "tensor that requires grad (in a model it breaks the backward pass)"
)


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
        _residual_case((2, 3, 8), True, _IN_PLACE, seed=11, grad=True),
        _residual_case((2, 3, 8), False, _IN_PLACE, seed=12, grad=True),
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
    x is not changed in place.
    Shapes: x (B, T, C); sublayer and norm map (B, T, C) -> (B, T, C)
    """
    return run_check(
        "check_residual_step",
        fn,
        _residual_cases(),
        _residual_close,
        summary="pre-norm and post-norm, silent sublayers, LayerNorm and "
        "RMSNorm, x that requires grad, 6 random",
        references=(_residual_step,),
    )
