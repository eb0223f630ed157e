"""labkit.scaling: the fit recovers known constants; bad input is named."""

import numpy as np
import pytest

from labkit.scaling import fit_scaling_law, scaling_law, solve_e_a

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
