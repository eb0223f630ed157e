"""The scaling checks accept correct answers and reject plausible wrong ones."""

import math

import numpy as np

from labkit.exercises.scaling import check_fit_power_law, check_isoflop_optimum
from labkit.scaling import fit_power_law, isoflop_optimum


def power_law(n_params, losses, floor):
    u = np.log(np.asarray(n_params, float))
    y = np.asarray(losses, float) - floor
    if np.any(y <= 0):
        raise ValueError("a loss at or below the floor")
    slope, intercept = np.polyfit(u, np.log(y), 1)
    return math.exp(intercept), -slope


def optimum(n_params, losses):
    u = np.log(np.asarray(n_params, float))
    a, b, _ = np.polyfit(u, np.asarray(losses, float), 2)
    if a <= 1e-9:
        raise ValueError("no minimum")
    return math.exp(-b / (2 * a))


def test_correct_answers_pass():
    assert check_fit_power_law(power_law)
    assert check_isoflop_optimum(optimum)


def test_stubs_are_not_done():
    def stub(*args):
        raise NotImplementedError

    assert check_fit_power_law(stub).status == "not done"
    assert check_isoflop_optimum(lambda n, y: None).status == "not done"


def test_labkits_own_functions_are_refused():
    for check, ref in [
        (check_fit_power_law, fit_power_law),
        (check_isoflop_optimum, isoflop_optimum),
    ]:
        result = check(ref)
        assert result.status == "failed" and "labkit's own" in result.report


def test_forgetting_to_subtract_the_floor_is_caught():
    result = check_fit_power_law(lambda n, y, floor: power_law(n, y, 0.0))
    assert result.status == "failed"
    assert "subtract the floor" in result.report or "below the floor" in (result.report)


def test_the_slope_itself_instead_of_minus_it_is_caught():
    def slope_sign(n, y, floor):
        A, alpha = power_law(n, y, floor)
        return A, -alpha

    result = check_fit_power_law(slope_sign)
    assert result.status == "failed" and "case 1 of" in result.report


def test_a_list_instead_of_a_tuple_and_log10_intercept_are_caught():
    assert not check_fit_power_law(lambda n, y, f: list(power_law(n, y, f)))

    def log10_mixup(n, y, floor):  # a log10 line, then e^intercept
        slope, b = np.polyfit(np.log10(n), np.log10(np.subtract(y, floor)), 1)
        return math.exp(b), -slope

    assert not check_fit_power_law(log10_mixup)


def test_the_best_sampled_size_instead_of_the_vertex_is_caught():
    def argmin(n, y):
        return float(n[int(np.argmin(y))])

    result = check_isoflop_optimum(argmin)
    assert result.status == "failed" and "case 2 of" in result.report
    assert "between the samples" in result.report


def test_a_parabola_in_n_instead_of_log_n_is_caught():
    def linear_n(n, y):
        a, b, _ = np.polyfit(np.asarray(n, float), y, 2)
        if a <= 0:
            raise ValueError("no minimum")
        return -b / (2 * a)

    assert not check_isoflop_optimum(linear_n)


def test_a_missing_minimum_must_raise():
    def no_check(n, y):
        a, b, _ = np.polyfit(np.log(n), y, 2)
        return math.exp(-b / (2 * a)) if a != 0 else 0.0

    result = check_isoflop_optimum(no_check)
    assert result.status == "failed" and "no minimum" in result.report


def test_comparing_a_with_zero_fails_on_points_on_a_line():
    # the text's rule is a <= 1e-9; with lstsq the collinear case gives
    # a = +3e-16, so `a <= 0` lets it through and exp(-b/2a) overflows
    def exact_zero(n, y):
        u = np.log(np.asarray(n, float))
        a, b, _ = np.linalg.lstsq(np.vander(u, 3), np.asarray(y, float), rcond=None)[0]
        if a <= 0:
            raise ValueError("no minimum")
        return math.exp(-b / (2 * a))

    result = check_isoflop_optimum(exact_zero)
    assert result.status == "failed" and "case 6 of" in result.report
    assert "up to rounding" in result.report


def test_the_texts_tolerance_passes_with_lstsq_too():
    def with_tolerance(n, y):
        u = np.log(np.asarray(n, float))
        a, b, _ = np.linalg.lstsq(np.vander(u, 3), np.asarray(y, float), rcond=None)[0]
        if a <= 1e-9:
            raise ValueError("no minimum")
        return math.exp(-b / (2 * a))

    assert check_isoflop_optimum(with_tolerance)
