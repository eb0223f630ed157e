"""Checks for the exercises of the chapter on positions.

The references are labkit.positions' ``sinusoidal``, ``RotaryEmbedding`` (the
rotate-half layout) and ``ALiBi`` (its slopes and bias).
Angles of large positions differ in float32 by about 1e-4 between equally
correct formulas (a power or an exp of a log), so values are compared with
that tolerance; every wrong formula the hints name is off by far more.

Built in: notebooks/07_positions.ipynb.
"""

from __future__ import annotations

from functools import partial

import torch

from labkit.exercises import Case, CheckResult, Raises, run_check, tensors_close
from labkit.positions import ALiBi, RotaryEmbedding, sinusoidal

_close = partial(tensors_close, rtol=1e-4, atol=2e-4)


def _sinusoidal_cases() -> list[Case]:
    def case(positions: torch.Tensor, C: int, hint: str) -> Case:
        label = f"positions {positions.tolist()}, C={C}"
        if len(positions) > 8:
            label = f"{len(positions)} positions from {positions.min()} to "
            label += f"{positions.max()}, C={C}"
        return Case((positions, C), sinusoidal(positions, C), hint, label=label)

    cases = [
        case(torch.arange(3), 2, "one pair at frequency 1: sin(p) and cos(p)"),
        case(
            torch.tensor([0]),
            8,
            "at position 0 every sine is 0 and every cosine 1, interleaved: "
            "(0, 1, 0, 1, ...)",
        ),
        case(
            torch.arange(4),
            4,
            "pair i turns at 10000**(-2i/C), so pair 1 of C=4 at 1/100 "
            "(the exponent is 2i/C, not i/C)",
        ),
        case(
            torch.arange(3),
            6,
            "sines on the even features, cosines on the odd ones, "
            "interleaved (not all sines, then all cosines)",
        ),
        case(
            torch.arange(5, 9),
            6,
            "use the positions you are given, not 0 .. T-1",
        ),
        case(torch.tensor([7, 2, 7]), 4, "positions need not be sorted or distinct"),
    ]
    gen = torch.Generator().manual_seed(0)
    for C in (8, 16, 32, 64, 16):
        T = int(torch.randint(1, 20, (1,), generator=gen))
        positions = torch.randint(0, 512, (T,), generator=gen)
        cases.append(case(positions, C, "random positions below 512"))
    return cases


def check_sinusoidal(fn) -> CheckResult:
    """Check ``fn(positions, C) -> (T, C)`` float32: sin(p w_i) on feature 2i,
    cos(p w_i) on feature 2i+1, w_i = 10000**(-2i/C), for even C.
    """
    return run_check(
        "check_sinusoidal",
        fn,
        _sinusoidal_cases(),
        _close,
        summary="one pair, position 0, the 2i/C exponent, interleaved sin and "
        "cos, offset positions, 5 random",
        forbidden=("labkit", "my_sinusoidal", "sinusoidal("),
        references=(sinusoidal,),
    )


def _rope(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    return RotaryEmbedding(x.shape[-1], theta)(x, x, positions)[0]


def _rope_cases() -> list[Case]:
    def case(x, positions, theta, hint, label=None):
        if label is None:
            label = f"x of shape {tuple(x.shape)}, positions "
            label += f"{positions.tolist()}, theta={theta:g}"
        return Case((x, positions, theta), _rope(x, positions, theta), hint, label)

    gen = torch.Generator().manual_seed(0)
    unit = torch.tensor([[1.0, 0.0, 0.0, 0.0]])  # (T=1, D=4): feature 0 only
    cases = [
        case(
            torch.randn(3, 8, generator=gen),
            torch.zeros(3, dtype=torch.long),
            10000.0,
            "every position is 0 here, so every angle is 0 and x comes back "
            "unchanged (rotate by the positions you are given)",
        ),
        case(
            torch.tensor([[1.0, 0.0]]),
            torch.tensor([1]),
            10000.0,
            "one pair (x1, x2) turns counter-clockwise by the angle a: "
            "(x1 cos a - x2 sin a, x1 sin a + x2 cos a)",
            label="x = [[1, 0]] (D=2), position 1",
        ),
        case(
            unit,
            torch.tensor([1]),
            100.0,
            "feature i pairs with feature i + D/2 (rotate half); pairing i with "
            "i + 1 is the adjacent layout of the paper and Meta's code",
            label="x = [[1, 0, 0, 0]] (D=4), position 1, theta=100",
        ),
        case(
            torch.tensor([[0.0, 1.0, 0.0, 0.0]]),
            torch.tensor([3]),
            100.0,
            "pair i turns at theta**(-2i/D): here pair 1 at 100**(-1/2) = 0.1 "
            "per position; use the theta you are given",
            label="x = [[0, 1, 0, 0]] (D=4), position 3, theta=100",
        ),
        case(
            torch.randn(2, 3, 5, 8, generator=gen),
            torch.arange(7, 12),
            10000.0,
            "x has leading dimensions (B, H, T, D) and the positions of a KV "
            "cache start past 0: broadcast the (T, D) angles",
        ),
    ]
    for D, theta in ((16, 10000.0), (8, 500000.0), (32, 10000.0), (4, 50.0)):
        T = int(torch.randint(1, 9, (1,), generator=gen))
        x = torch.randn(2, T, D, generator=gen)
        positions = torch.randint(0, 256, (T,), generator=gen)
        cases.append(case(x, positions, theta, "random inputs"))
    cases.append(
        Case(
            (torch.ones(2, 5), torch.arange(2), 10000.0),
            Raises(ValueError),
            "D=5 cannot be split into pairs: raise ValueError",
            label="x of shape (2, 5), positions [0, 1]",
        )
    )
    return cases


def check_rope(fn) -> CheckResult:
    """Check ``fn(x, positions, theta) -> x rotated``, the rotate-half layout:
    features i and i + D/2 turned by positions * theta**(-2i/D).

    Shapes: x (..., T, D), positions (T,) -> (..., T, D); ValueError for odd D.
    """
    return run_check(
        "check_rope",
        fn,
        _rope_cases(),
        _close,
        summary="position 0, one pair, the rotate-half pairing, theta, leading "
        "dimensions and offset positions, 4 random, odd D refused",
        forbidden=("labkit", "my_rope", "RotaryEmbedding"),
    )


def _alibi(n_heads: int, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
    return ALiBi(n_heads)(q_pos, k_pos)


def _alibi_cases() -> list[Case]:
    def case(H, q_pos, k_pos, hint):
        label = f"n_heads={H}, q_pos {q_pos.tolist()}, k_pos {k_pos.tolist()}"
        return Case((H, q_pos, k_pos), _alibi(H, q_pos, k_pos), hint, label)

    cases = [
        case(1, torch.tensor([0]), torch.tensor([0]), "a key at distance 0: no bias"),
        case(
            1,
            torch.arange(4),
            torch.arange(4),
            "one head: slope 2**(-8 h / H) with h = 1 is 2**-8, so the bias "
            "is -(t - s) / 256 (h starts at 1, not 0)",
        ),
        case(
            2,
            torch.arange(3),
            torch.arange(3),
            "H heads: slope_h = 2**(-8 h / H) for h = 1 .. H, so 1/16 and "
            "1/256 for H = 2",
        ),
        case(
            8,
            torch.arange(4),
            torch.arange(4),
            "the bias is minus slope times distance: nearer keys are penalised "
            "less; the diagonal (s = t) is 0",
        ),
        case(
            4,
            torch.arange(5, 7),
            torch.arange(7),
            "with a KV cache the queries sit at positions 5 and 6: the distance "
            "is q_pos - k_pos, not a row index minus a column index",
        ),
        case(16, torch.arange(6), torch.arange(6), "16 heads: slopes 2**-0.5 .. 2**-8"),
    ]
    for H, T, S in ((2, 4, 9), (8, 3, 3), (4, 1, 12)):
        cases.append(case(H, torch.arange(S - T, S), torch.arange(S), "random sizes"))
    cases.append(
        Case(
            (6, torch.arange(2), torch.arange(2)),
            Raises(ValueError),
            "6 heads is not a power of two: the exercise asks you to raise "
            "ValueError for it (labkit's alibi_slopes does not refuse: it "
            "uses the paper's rule for such H, which is not part of this "
            "exercise)",
            label="n_heads=6",
        )
    )
    return cases


def check_alibi(fn) -> CheckResult:
    """Check ``fn(n_heads, q_pos, k_pos) -> (H, T, S)``: -slope_h * |t - s|
    with slope_h = 2**(-8 h / H), h = 1 .. H; ValueError unless H is a power
    of two.
    """
    return run_check(
        "check_alibi",
        fn,
        _alibi_cases(),
        _close,
        summary="distance 0, one head, the slopes for 2, 8 and 16 heads, "
        "KV-cache positions, 3 random, 6 heads refused",
        forbidden=("labkit", "my_alibi", "ALiBi("),
    )
