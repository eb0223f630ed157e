"""Checks for the exercises of the chapter on experiments and scaling laws.

The references are labkit's own ``fit_power_law`` (a line in log space with
the floor known) and ``isoflop_optimum`` (the vertex of a parabola in log N).

Built in: notebooks/14_experiments_with_papermill.ipynb.
"""

from __future__ import annotations

import math

import numpy as np

from labkit.exercises import Case, CheckResult, Raises, run_check
from labkit.scaling import fit_power_law, isoflop_optimum, scaling_law


def _floats_close(expected, returned, rtol: float = 1e-6) -> str | None:
    """Numbers, or tuples of numbers, equal to ``rtol``."""
    want = expected if isinstance(expected, tuple) else (expected,)
    got = returned if isinstance(returned, tuple) else (returned,)
    if isinstance(expected, tuple) and not isinstance(returned, tuple):
        return f"expected a tuple of {len(expected)} numbers"
    if len(got) != len(want):
        return f"expected {len(want)} numbers, got {len(got)}"
    for i, (w, g) in enumerate(zip(want, got, strict=True)):
        try:
            g = float(g)
        except (TypeError, ValueError):
            return f"item {i} is {type(g).__name__}, not a number"
        if not math.isclose(g, w, rel_tol=rtol, abs_tol=1e-12):
            name = f"item {i}" if len(want) > 1 else "the value"
            return f"{name} is {g:.6g}, expected {w:.6g}"
    return None


def _power_cases() -> list[Case]:
    def case(n, y, floor, hint):
        n, y = list(map(float, n)), [round(float(v), 12) for v in y]
        return Case((n, y, floor), fit_power_law(n, y, floor), hint)

    sizes = [1e3, 1e4, 1e5]
    cases = [
        case(
            [1e2, 1e4],
            [1.1, 1.01],
            1.0,
            "by hand: subtract the floor, L - E = 0.1 then 0.01: it "
            "falls 10x over 100x in N, so alpha = 0.5 and A = 1",
        ),
        case(
            sizes,
            scaling_law(sizes, 0.0, 8.0, 0.3),
            0.0,
            "floor 0: a straight line in log L against log N",
        ),
        case(
            sizes,
            scaling_law(sizes, 1.5, 8.0, 0.3),
            1.5,
            "subtract the floor before the log: log(L - E), not log L",
        ),
        case(
            sizes,
            scaling_law(sizes, 0.5, 20.0, 0.25),
            0.5,
            "alpha is minus the slope (the loss falls as N grows), and A is "
            "e^intercept with natural logs",
        ),
        case(
            [3e3, 1e3, 3e4, 1e4],
            scaling_law([3e3, 1e3, 3e4, 1e4], 1.0, 5.0, 0.2),
            1.0,
            "the sizes need not be sorted",
        ),
        Case(
            ([1e3, 1e4], [2.0, 0.9], 1.0),
            Raises(ValueError),
            "a loss below the floor has no log(L - E): raise ValueError",
        ),
        Case(
            ([1e3, 1e4], [2.0, 1.0], 1.0),
            Raises(ValueError),
            "a loss exactly at the floor: log(0) does not exist either",
        ),
    ]
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = np.sort(rng.choice(np.geomspace(1e3, 1e7, 40), 6, replace=False))
        E = float(rng.uniform(0, 2))
        y = scaling_law(n, E, rng.uniform(2, 50), rng.uniform(0.05, 0.6))
        y = E + (y - E) * np.exp(0.05 * rng.standard_normal(6))
        cases.append(
            case(
                n,
                y,
                E,
                "random noisy points: least squares in "
                "log space, one line through all of them",
            )
        )
    return cases


def check_fit_power_law(fn) -> CheckResult:
    """Check ``fn(n_params, losses, floor) -> (A, alpha)``: the least-squares
    line log(L - floor) = log A - alpha log N, natural logs; ValueError when a
    loss is at or below the floor.
    """
    return run_check(
        "check_fit_power_law",
        fn,
        _power_cases(),
        _floats_close,
        summary="hand-derived lines, a floor to subtract, 20 noisy random laws",
        references=(fit_power_law,),
    )


def _optimum_cases() -> list[Case]:
    def case(n, y, hint):
        n, y = list(map(float, n)), [round(float(v), 12) for v in y]
        return Case((n, y), isoflop_optimum(n, y), hint)

    bowl = [500.0, 2000.0, 8000.0, 32000.0]
    cases = [
        case([1e3, 1e4, 1e5], [2.0, 1.8, 2.0], "symmetric in log N: the middle size"),
        case(
            bowl,
            [(math.log(s / 3000.0)) ** 2 + 1 for s in bowl],
            "by hand: L = (log N - log 3000)^2 + 1, so N* = 3000, a size "
            "between the samples, not the best sampled one",
        ),
        case(
            [1e3, 1e4, 1e5],
            [2.0, 1.7, 1.9],
            "the vertex of the parabola "
            "in log N: exp(-b / 2a), not the argmin of the losses",
        ),
        case([1e5, 1e3, 1e4], [1.9, 2.0, 1.7], "the sizes need not be sorted"),
        Case(
            ([1e3, 1e4, 1e5], [2.0, 2.2, 2.0]),
            Raises(ValueError),
            "a curve that bends down has no minimum: raise ValueError",
        ),
        Case(
            ([1e3, 1e4, 1e5], [2.0, 1.9, 1.8]),
            Raises(ValueError),
            "points on a line hold no minimum either: a = 0 up to rounding, "
            "and a solver may return a = 3e-16 > 0 (then exp(-b/2a) "
            "overflows); compare a with a tolerance such as 1e-9, not with 0",
        ),
    ]
    rng = np.random.default_rng(1)
    for _ in range(20):
        n = np.geomspace(rng.uniform(1e3, 1e4), rng.uniform(1e5, 1e6), 5)
        best = math.exp(rng.uniform(math.log(n[1]), math.log(n[-2])))
        y = rng.uniform(0.05, 0.3) * np.log(n / best) ** 2 + rng.uniform(1, 3)
        y = y + 0.01 * rng.standard_normal(5)
        cases.append(
            case(
                n, y, "random noisy bowls: least squares over all the points, in log N"
            )
        )
    return cases


def check_isoflop_optimum(fn) -> CheckResult:
    """Check ``fn(n_params, losses) -> float``: the size at the vertex of the
    least-squares parabola of loss against log N; ValueError when the
    parabola does not open upwards.
    """
    return run_check(
        "check_isoflop_optimum",
        fn,
        _optimum_cases(),
        _floats_close,
        summary="hand-derived bowls, curves with no minimum, 20 noisy ones",
        references=(isoflop_optimum,),
    )
