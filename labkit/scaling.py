"""Scaling laws: fit L(N) = E + A * N^(-alpha) to (parameters, loss) points.

Loss falls as a power of the model size N towards a floor E that no model
of this family, trained this way, goes below (Kaplan et al., 2020; Hoffmann
et al., 2022). For a fixed exponent alpha the law is linear in E and A, so
``fit_scaling_law`` searches alpha on a grid, solves E and A in closed form
by least squares at every alpha (with E >= 0 and A >= 0), then narrows the
best alpha down with a golden-section search. No scipy needed, and no
starting guess that could send the fit astray.

Built in: notebooks/14_experiments_with_papermill.ipynb.
Leaves out on purpose: the joint law in parameters and data L(N, D), Huber
losses, fits in log space, confidence intervals.
"""

from __future__ import annotations

import math

import numpy as np

ALPHA_RANGE = (0.01, 3.0)  # the exponents searched


def scaling_law(n_params, E: float, A: float, alpha: float) -> np.ndarray:
    """L(N) = E + A * N^(-alpha), elementwise. Shapes: (P,) -> (P,)."""
    n = np.asarray(n_params, dtype=np.float64)
    return E + A * n ** (-alpha)


def _check(n_params, losses) -> tuple[np.ndarray, np.ndarray]:
    n = np.asarray(n_params, dtype=np.float64).ravel()
    y = np.asarray(losses, dtype=np.float64).ravel()
    if n.size != y.size:
        raise ValueError(
            f"n_params has {n.size} values but losses has {y.size}: "
            "they must pair up one to one"
        )
    if n.size < 3:
        raise ValueError(
            f"a scaling law has 3 constants (E, A, alpha): it needs at least 3 "
            f"points, got {n.size}"
        )
    if not np.all(np.isfinite(n)) or np.any(n <= 0):
        bad = n[~(np.isfinite(n) & (n > 0))][0]
        raise ValueError(f"n_params must be positive and finite, got {bad:g}")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"losses must be finite, got {y[~np.isfinite(y)][0]:g}")
    if np.unique(n).size < 2:
        raise ValueError("n_params must hold at least 2 different sizes")
    return n, y


def solve_e_a(n: np.ndarray, y: np.ndarray, alpha: float) -> tuple[float, float]:
    """Least-squares E >= 0 and A >= 0 of y ~ E + A * n^(-alpha), alpha fixed.

    The unconstrained solution when it is feasible, else the best of the
    boundaries E = 0 and A = 0 (for two unknowns that is the exact answer).
    """
    x = n ** (-alpha)
    xc, yc = x - x.mean(), y - y.mean()
    candidates = [(max(y.mean(), 0.0), 0.0)]  # A = 0: a flat line
    if (xc @ xc) > 0:
        A = (xc @ yc) / (xc @ xc)
        candidates.append((y.mean() - A * x.mean(), A))
    candidates.append((0.0, max((x @ y) / (x @ x), 0.0)))  # E = 0
    feasible = [(E, A) for E, A in candidates if E >= 0 and A >= 0]
    return min(feasible, key=lambda c: _sse(n, y, c[0], c[1], alpha))


def _sse(n, y, E, A, alpha) -> float:
    return float(np.sum((E + A * n ** (-alpha) - y) ** 2))


def _profile(n, y, alpha) -> float:
    """The squared error at ``alpha`` with the best E and A for it."""
    E, A = solve_e_a(n, y, alpha)
    return _sse(n, y, E, A, alpha)


def fit_scaling_law(
    n_params, losses, alpha_range: tuple[float, float] = ALPHA_RANGE
) -> tuple[float, float, float]:
    """Fit L(N) = E + A * N^(-alpha); return (E, A, alpha).

    Least squares on the losses, E >= 0, A >= 0, alpha in ``alpha_range``:
    400 grid points in alpha, each with the closed-form E and A, then a
    golden-section search between the best grid point's neighbours.
    Shapes: n_params (P,), losses (P,) with P >= 3.
    Raises ValueError naming the problem: too few points, lengths that differ,
    a non-positive or non-finite size, a non-finite loss.
    Example: fit_scaling_law([1e3, 1e4, 1e5], [3.0, 2.0, 1.5]) -> (E, A, alpha)
    """
    n, y = _check(n_params, losses)
    lo, hi = alpha_range
    if not 0 < lo < hi:
        raise ValueError(f"alpha_range={alpha_range} must satisfy 0 < low < high")
    grid = np.geomspace(lo, hi, 400)
    errors = [_profile(n, y, a) for a in grid]
    best = int(np.argmin(errors))
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(80):  # golden section: the bracket shrinks to ~1e-17
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if _profile(n, y, c) <= _profile(n, y, d):
            b = d
        else:
            a = c
    alpha = (a + b) / 2
    if _profile(n, y, grid[best]) < _profile(n, y, alpha):
        alpha = grid[best]  # the bracket's edge was the best point
    E, A = solve_e_a(n, y, alpha)
    return float(E), float(A), float(alpha)
