"""Scaling laws: fit L(N) = E + A * N^(-alpha) to (parameters, loss) points.

Loss falls as a power of the model size N towards a floor E that no model
of this family, trained this way, goes below (Kaplan et al., 2020; Hoffmann
et al., 2022). For a fixed exponent alpha the law is linear in E and A, so
``fit_scaling_law`` searches alpha on a grid, solves E and A in closed form
by least squares at every alpha (with E >= 0 and A >= 0), then narrows the
best alpha down with a golden-section search. No scipy needed, and no
starting guess that could send the fit astray.

With few points over a narrow range of sizes the floor E is often not
identified: the unconstrained least-squares E may be negative or far from
the corpus's entropy rate. ``min_floor`` bounds E below (by 0, by a known
entropy rate, or not at all with ``-math.inf``), and ``fit_power_law`` fixes E
at a known value and fits the straight line log(L - E) = log A - alpha log N,
with the standard error of alpha. ``budget_steps`` gives each model the
steps that spend one compute budget C, from its FLOPs per token
(``isoflop_steps``: the same with C ~ 6 N D, Kaplan et al., 2020), and
``isoflop_optimum`` the size at the bottom of such a curve (Hoffmann et al.,
2022).

Built in: notebooks/14_experiments_with_papermill.ipynb.
Leaves out on purpose: fitting the joint law L(N, D) = E + A/N^alpha + B/D^beta,
Huber losses, bootstrap intervals.
"""

from __future__ import annotations

import math

import numpy as np

ALPHA_RANGE = (0.01, 3.0)  # the exponents searched


def scaling_law(n_params, E: float, A: float, alpha: float) -> np.ndarray:
    """L(N) = E + A * N^(-alpha), elementwise. Shapes: (P,) -> (P,)."""
    n = np.asarray(n_params, dtype=np.float64)
    return E + A * n ** (-alpha)


_LAW = "a scaling law has 3 constants (E, A, alpha)"


def _check(n_params, losses, need: int = 3, what: str = _LAW):
    """The sizes and losses as float arrays, or a ValueError naming the problem."""
    n = np.asarray(n_params, dtype=np.float64).ravel()
    y = np.asarray(losses, dtype=np.float64).ravel()
    if n.size != y.size:
        raise ValueError(
            f"n_params has {n.size} values but losses has {y.size}: "
            "they must pair up one to one"
        )
    if n.size < need:
        raise ValueError(f"{what}: it needs at least {need} points, got {n.size}")
    if not np.all(np.isfinite(n)) or np.any(n <= 0):
        bad = n[~(np.isfinite(n) & (n > 0))][0]
        raise ValueError(f"n_params must be positive and finite, got {bad:g}")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"losses must be finite, got {y[~np.isfinite(y)][0]:g}")
    if np.unique(n).size < 2:
        raise ValueError("n_params must hold at least 2 different sizes")
    return n, y


def solve_e_a(
    n: np.ndarray, y: np.ndarray, alpha: float, min_floor: float = 0.0
) -> tuple[float, float]:
    """Least-squares E >= min_floor and A >= 0 of y ~ E + A * n^(-alpha).

    alpha is fixed. The unconstrained solution when it is feasible, else the
    best of the boundaries E = min_floor and A = 0 (for two unknowns that is
    the exact answer).
    """
    x = n ** (-alpha)
    xc, yc = x - x.mean(), y - y.mean()
    candidates = [(max(y.mean(), min_floor), 0.0)]  # A = 0: a flat line
    if (xc @ xc) > 0:
        A = (xc @ yc) / (xc @ xc)
        candidates.append((y.mean() - A * x.mean(), A))
    if math.isfinite(min_floor):  # E on its bound
        candidates.append((min_floor, max((x @ (y - min_floor)) / (x @ x), 0.0)))
    feasible = [(E, A) for E, A in candidates if E >= min_floor and A >= 0]
    return min(feasible, key=lambda c: _sse(n, y, c[0], c[1], alpha))


def _sse(n, y, E, A, alpha) -> float:
    return float(np.sum((E + A * n ** (-alpha) - y) ** 2))


def _profile(n, y, alpha, min_floor=0.0) -> float:
    """The squared error at ``alpha`` with the best E and A for it."""
    E, A = solve_e_a(n, y, alpha, min_floor)
    return _sse(n, y, E, A, alpha)


def fit_scaling_law(
    n_params,
    losses,
    alpha_range: tuple[float, float] = ALPHA_RANGE,
    min_floor: float = 0.0,
) -> tuple[float, float, float]:
    """Fit L(N) = E + A * N^(-alpha); return (E, A, alpha).

    Least squares on the losses, E >= min_floor (``-math.inf``: no bound),
    A >= 0, alpha in ``alpha_range``:
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
    if math.isnan(min_floor) or min_floor == math.inf:
        raise ValueError(f"min_floor={min_floor} must be a number or -math.inf")
    grid = np.geomspace(lo, hi, 400)
    errors = [_profile(n, y, a, min_floor) for a in grid]
    best = int(np.argmin(errors))
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(80):  # golden section: the bracket shrinks to ~1e-17
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if _profile(n, y, c, min_floor) <= _profile(n, y, d, min_floor):
            b = d
        else:
            a = c
    alpha = (a + b) / 2
    if _profile(n, y, grid[best], min_floor) < _profile(n, y, alpha, min_floor):
        alpha = grid[best]  # the bracket's edge was the best point
    E, A = solve_e_a(n, y, alpha, min_floor)
    return float(E), float(A), float(alpha)


def fit_power_law(n_params, losses, floor: float = 0.0) -> tuple[float, float]:
    """Fit L(N) = floor + A * N^(-alpha) with the floor known; return (A, alpha).

    A straight line by least squares in log space:
    log(L - floor) = log A - alpha * log N (natural logs).
    Shapes: n_params (P,), losses (P,) with P >= 2 and 2+ different sizes.
    Raises ValueError when a loss is at or below the floor (its log does not
    exist), and for the bad input ``fit_scaling_law`` refuses.
    Example: fit_power_law([1e2, 1e4], [1.1, 1.01], floor=1.0) -> (1.0, 0.5)
    """
    slope, intercept, _ = _log_line(n_params, losses, floor)
    return float(math.exp(intercept)), float(-slope)


def power_law_stderr(n_params, losses, floor: float = 0.0) -> float:
    """The standard error of alpha in ``fit_power_law`` (ordinary least
    squares, residuals in log space; needs 3+ points). Shapes: (P,), (P,)."""
    why = "a standard error needs a residual: one point more than the line's 2"
    _, _, stderr = _log_line(n_params, losses, floor, need=3, what=why)
    return float(stderr)


def _log_line(n_params, losses, floor: float, need=2, what="a line has 2 constants"):
    """(slope, intercept, slope's standard error) of log(L - floor) on log N."""
    n, y = _check(n_params, losses, need, what)
    if np.any(y <= floor):
        raise ValueError(
            f"every loss must lie above the floor {floor:g}; got "
            f"{y[y <= floor].min():g} (log(L - floor) does not exist)"
        )
    u, v = np.log(n), np.log(y - floor)
    uc = u - u.mean()
    slope = (uc @ (v - v.mean())) / (uc @ uc)
    intercept = v.mean() - slope * u.mean()
    dof = n.size - 2
    resid = v - (intercept + slope * u)
    stderr = math.sqrt((resid @ resid) / dof / (uc @ uc)) if dof > 0 else math.nan
    return float(slope), float(intercept), stderr


def budget_steps(compute: float, flops_per_token, tokens_per_step: int) -> list[int]:
    """Optimizer steps that spend ``compute`` training FLOPs on each model.

    ``flops_per_token`` holds each model's training FLOPs per token (forward
    and backward; ``labkit.counting.flops_per_token(cfg, training=True)``
    counts every matrix multiply, attention and the output layer included).
    A step trains ``tokens_per_step`` tokens, so steps = compute /
    (flops_per_token * tokens_per_step), rounded to the nearest whole step
    (at least 1).
    Shapes: flops_per_token (P,) -> list of P ints.
    Raises ValueError for a budget, FLOP count or tokens_per_step that is
    not positive.
    Example: budget_steps(6e6, [6000, 12000], 100) -> [10, 5]
    """
    if not (compute > 0 and math.isfinite(compute)):
        raise ValueError(f"compute={compute!r} must be a positive number of FLOPs")
    if tokens_per_step < 1:
        raise ValueError(f"tokens_per_step={tokens_per_step!r} must be >= 1")
    per_token = np.asarray(flops_per_token, dtype=np.float64).ravel()
    if np.any(~np.isfinite(per_token) | (per_token <= 0)):
        raise ValueError(
            f"flops_per_token must be positive and finite, got {flops_per_token!r}"
        )
    return [max(1, round(compute / (f * tokens_per_step))) for f in per_token]


def isoflop_steps(compute: float, n_params, tokens_per_step: int) -> list[int]:
    """Optimizer steps that spend ``compute`` FLOPs on each model size, with
    the FLOPs counted as C = 6 N D (Kaplan et al., 2020).

    6 FLOPs per parameter per token (2 forward, 4 backward); attention's
    scores and, with non-embedding N, the output layer are left out. For
    small models they are a large share: ``budget_steps`` with
    ``labkit.counting.flops_per_token`` counts them.
    Shapes: n_params (P,) -> list of P ints.
    Raises ValueError for a budget, size or tokens_per_step that is not
    positive.
    Example: isoflop_steps(6e6, [1000, 2000], 100) -> [10, 5]
    """
    sizes = np.asarray(n_params, dtype=np.float64).ravel()
    if np.any(~np.isfinite(sizes) | (sizes <= 0)):
        raise ValueError(f"n_params must be positive and finite, got {n_params!r}")
    return budget_steps(compute, 6 * sizes, tokens_per_step)


def isoflop_optimum(n_params, losses) -> float:
    """The compute-optimal size on one IsoFLOP curve (Hoffmann et al., 2022).

    Fits a parabola to loss against log N, L = a (log N)^2 + b log N + c, by
    least squares and returns the N at its vertex, exp(-b / 2a). With the
    same compute, small models see more tokens and large ones fewer: the
    loss bends up on both sides of the best size.
    Shapes: n_params (P,), losses (P,) with P >= 3 and 3+ different sizes.
    Raises ValueError when the parabola opens downwards or is flat (a <= 0:
    the points do not bend up, so they hold no minimum), and for bad input.
    Example: isoflop_optimum([1e3, 1e4, 1e5], [2.0, 1.8, 2.0]) -> 1e4
    """
    n, y = _check(n_params, losses, 3, "a parabola has 3 constants")
    if np.unique(n).size < 3:
        raise ValueError("an IsoFLOP curve needs at least 3 different sizes")
    u = np.log(n)
    a, b, _ = np.linalg.lstsq(np.vander(u, 3), y, rcond=None)[0]
    if not a * np.ptp(u) ** 2 > 1e-9 * np.abs(y).max():  # a <= 0 up to rounding
        raise ValueError(
            f"the parabola in log N opens downwards or is flat (a={a:.3g}): "
            "these points hold no minimum; widen the range of sizes"
        )
    return float(math.exp(-b / (2 * a)))
