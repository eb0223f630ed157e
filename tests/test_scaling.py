"""labkit.scaling: the fit recovers known constants; bad input is named."""

import numpy as np
import pytest

from labkit.counting import flops_per_token
from labkit.model import GPTConfig
from labkit.scaling import (
    budget_steps,
    fit_power_law,
    fit_scaling_law,
    isoflop_optimum,
    isoflop_steps,
    power_law_stderr,
    scaling_law,
    solve_e_a,
)

SIZES = np.geomspace(1e3, 1e6, 8)


@pytest.mark.parametrize(
    "E, A, alpha",
    [(1.2, 50.0, 0.4), (0.8, 3.0, 0.1), (2.0, 1e4, 1.0), (0.0, 20.0, 0.3)],
)
def test_recovers_exact_constants(E, A, alpha):
    fit = fit_scaling_law(SIZES, scaling_law(SIZES, E, A, alpha))
    np.testing.assert_allclose(fit, (E, A, alpha), rtol=1e-5, atol=1e-6)


def test_recovers_constants_from_noisy_points():
    rng = np.random.default_rng(0)
    n = np.geomspace(1e3, 1e7, 12)
    losses = scaling_law(n, 1.5, 40.0, 0.35) * (1 + 0.002 * rng.standard_normal(12))
    E, A, alpha = fit_scaling_law(n, losses)
    assert abs(E - 1.5) < 0.03 and abs(alpha - 0.35) < 0.03
    assert abs(A - 40.0) / 40.0 < 0.3  # A trades off against alpha


def test_fit_beats_every_grid_alpha():
    n = np.array([2e3, 5e3, 1e4, 3e4, 1e5])
    y = np.array([3.1, 2.7, 2.55, 2.3, 2.25])
    E, A, alpha = fit_scaling_law(n, y)
    best = np.sum((scaling_law(n, E, A, alpha) - y) ** 2)
    for a in np.geomspace(0.01, 3.0, 50):
        e, b = solve_e_a(n, y, a)
        assert best <= np.sum((scaling_law(n, e, b, a) - y) ** 2) + 1e-12


def test_floor_is_never_negative():
    n = SIZES
    E, A, alpha = fit_scaling_law(n, scaling_law(n, -0.5, 10.0, 0.3))
    assert E == 0.0 and A > 0
    flat = fit_scaling_law([1e3, 1e4, 1e5], [2.0, 2.1, 2.2])  # rising: A = 0
    assert flat[1] == 0.0 and flat[0] == pytest.approx(2.1)


@pytest.mark.parametrize(
    "n, losses, message",
    [
        ([1e3, 1e4], [2.0, 1.5], "needs at least 3 points, got 2"),
        ([1e3, 1e4, 1e5], [2.0, 1.5], "n_params has 3 values but losses has 2"),
        ([1e3, 0, 1e5], [2.0, 1.5, 1.2], "must be positive and finite, got 0"),
        ([1e3, -5, 1e5], [2.0, 1.5, 1.2], "must be positive and finite, got -5"),
        ([1e3, 1e4, 1e5], [2.0, float("nan"), 1.2], "losses must be finite"),
        ([1e3, 1e3, 1e3], [2.0, 1.9, 1.8], "at least 2 different sizes"),
    ],
)
def test_bad_input_is_named(n, losses, message):
    with pytest.raises(ValueError, match=message):
        fit_scaling_law(n, losses)
    with pytest.raises(ValueError, match="0 < low < high"):
        fit_scaling_law(SIZES, SIZES**-0.5, alpha_range=(0.5, 0.1))


def test_min_floor_bounds_the_floor_or_frees_it():
    n = SIZES
    y = scaling_law(n, -0.5, 10.0, 0.3)  # a "floor" below zero
    free = fit_scaling_law(n, y, min_floor=-np.inf)
    np.testing.assert_allclose(free, (-0.5, 10.0, 0.3), rtol=1e-5, atol=1e-6)
    E, A, alpha = fit_scaling_law(n, y, min_floor=0.2)
    assert E == 0.2 and A > 0  # held on the bound
    # with E on its bound the best A for each alpha is x.(y - E) / x.x
    x = n ** (-alpha)
    assert A == pytest.approx(x @ (y - 0.2) / (x @ x), rel=1e-9)
    assert fit_scaling_law(n, scaling_law(n, 1.0, 5.0, 0.4), min_floor=0.5)[
        0
    ] == pytest.approx(1.0, abs=1e-6)  # a bound that does not bind changes nothing
    with pytest.raises(ValueError, match="min_floor=nan must be a number"):
        fit_scaling_law(n, y, min_floor=float("nan"))


def test_power_law_with_known_floor_is_a_line_in_log_space():
    n = np.array([1e2, 1e3, 1e4])
    A, alpha = fit_power_law(n, 1.0 + 3.0 * n**-0.25, floor=1.0)
    assert A == pytest.approx(3.0) and alpha == pytest.approx(0.25)
    # by hand: two points (100, 1.1), (10000, 1.01): slope -0.5, A = 1
    A, alpha = fit_power_law([1e2, 1e4], [1.1, 1.01], floor=1.0)
    assert A == pytest.approx(1.0) and alpha == pytest.approx(0.5)
    # the floor matters: fitting log L instead of log(L - E) is another line
    assert fit_power_law(n, 1.0 + 3.0 * n**-0.25)[1] < 0.1


def test_power_law_stderr_matches_numpy_polyfit():
    rng = np.random.default_rng(1)
    n = np.geomspace(1e3, 1e6, 7)
    y = 0.5 + 8.0 * n**-0.3 * np.exp(0.05 * rng.standard_normal(7))
    _, cov = np.polyfit(np.log(n), np.log(y - 0.5), 1, cov="unscaled")
    resid = np.log(y - 0.5) - np.polyval(
        np.polyfit(np.log(n), np.log(y - 0.5), 1), np.log(n)
    )
    expected = np.sqrt(cov[0, 0] * (resid @ resid) / (7 - 2))
    assert power_law_stderr(n, y, 0.5) == pytest.approx(expected, rel=1e-9)
    assert power_law_stderr(n, 0.5 + 8.0 * n**-0.3, 0.5) < 1e-12  # exact: 0


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: fit_power_law([1e3, 1e4], [2.0, 0.9], floor=1.0), "above the floor 1"),
        (lambda: fit_power_law([1e3], [2.0]), "needs at least 2 points, got 1"),
        (lambda: power_law_stderr([1e3, 1e4], [2.0, 1.5]), "needs a residual"),
    ],
)
def test_power_law_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_isoflop_steps_spend_the_same_compute():
    steps = isoflop_steps(6e6, [1000, 2000, 3000], 100)
    assert steps == [10, 5, 3]  # 6e6 / (6 * 3000 * 100) = 3.33 -> 3
    assert isoflop_steps(1.0, [1e6], 64) == [1]  # never zero steps
    for bad, message in [
        (lambda: isoflop_steps(0, [1000], 10), "compute=0 must be a positive"),
        (lambda: isoflop_steps(1e9, [0], 10), "n_params must be positive"),
        (lambda: isoflop_steps(1e9, [1000], 0), "tokens_per_step=0 must be"),
    ]:
        with pytest.raises(ValueError, match=message):
            bad()


def test_budget_steps_divide_the_budget_by_each_models_flops():
    assert budget_steps(6e6, [6000, 12000, 18000], 100) == [10, 5, 3]
    # C = 6 N D is budget_steps with 6 N FLOPs per token
    assert isoflop_steps(6e6, [1000, 2000], 100) == budget_steps(
        6e6, [6000, 12000], 100
    )
    # counted FLOPs: a tiny model's head and attention cost more than 6 N
    cfg = GPTConfig(vocab_size=256, context_len=64, n_layers=1, n_heads=4, d_model=8)
    per_token = flops_per_token(cfg, training=True)
    assert per_token == 3 * (2 * 12 * 8 * 8 + 4 * 64 * 8 + 2 * 256 * 8)
    (steps,) = budget_steps(per_token * 1024 * 50, [per_token], 1024)
    assert steps == 50
    for bad, message in [
        (lambda: budget_steps(0, [1000], 10), "compute=0 must be a positive"),
        (lambda: budget_steps(1e9, [-1], 10), "flops_per_token must be positive"),
        (lambda: budget_steps(1e9, [1000], 0), "tokens_per_step=0 must be"),
    ]:
        with pytest.raises(ValueError, match=message):
            bad()


def test_isoflop_optimum_is_the_parabola_vertex_in_log_n():
    assert isoflop_optimum([1e3, 1e4, 1e5], [2.0, 1.8, 2.0]) == pytest.approx(1e4)
    # by hand: L = (log N - log 3000)^2 + 1 through 4 sizes -> 3000 exactly
    n = np.array([500.0, 2000.0, 8000.0, 32000.0])
    y = (np.log(n) - np.log(3000.0)) ** 2 + 1.0
    assert isoflop_optimum(n, y) == pytest.approx(3000.0, rel=1e-9)
    # the vertex lies between samples, not at the best sampled size
    assert isoflop_optimum(n, y) not in n
    with pytest.raises(ValueError, match="opens downwards or is flat"):
        isoflop_optimum([1e3, 1e4, 1e5], [2.0, 2.2, 2.0])
    with pytest.raises(ValueError, match="at least 3 different sizes"):
        isoflop_optimum([1e3, 1e3, 1e5], [2.0, 2.1, 2.0])
