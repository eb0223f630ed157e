"""The grading machinery: stub, pass and failure reports."""

import torch

from labkit.exercises import Case, Raises, exact, run_check, tensors_close

CASES = [
    Case((2,), 4, "two squared", label="x=2"),
    Case((-3,), 9, "a negative number squared is positive", label="x=-3"),
    Case((0.5,), Raises(ValueError), "only integers", label="x=0.5"),
]


def square(x):
    if not isinstance(x, int):
        raise ValueError("integers only")
    return x * x


def test_a_correct_function_passes_and_is_true(capsys):
    result = run_check("check_square", square, CASES, exact, summary="3 cases")
    assert result and result.status == "passed" and result.n_cases == 3
    assert capsys.readouterr().out == "✓ check_square: passed all 3 cases (3 cases)\n"


def test_stubs_are_not_done_and_never_raise(capsys):
    def returns_none(x):
        pass

    def raises(x):
        raise NotImplementedError

    for stub in (returns_none, raises):
        result = run_check("check_square", stub, CASES, exact)
        assert not result and result.status == "not done"
        assert "not done yet" in capsys.readouterr().out


def test_the_first_failing_case_is_reported_with_input_expected_and_hint(capsys):
    result = run_check("check_square", lambda x: x * abs(x), CASES, exact)
    out = capsys.readouterr().out
    assert not result and result.status == "failed"
    assert result.failed_case is CASES[1]
    assert out.splitlines() == [
        "✗ check_square: case 2 of 3 failed",
        "  input:    x=-3",
        "  expected: 9",
        "  returned: -9",
        "  problem:  the values differ",
        "  hint:     a negative number squared is positive",
    ]


def test_a_missing_error_and_a_crash_are_failures_not_exceptions(capsys):
    result = run_check("check_square", lambda x: x * x, CASES, exact)
    assert result.failed_case is CASES[2]
    assert "returned a value; it must raise ValueError" in capsys.readouterr().out

    def crashes(x):
        return [][x]

    result = run_check("check_square", crashes, CASES, exact)
    out = capsys.readouterr().out
    assert result.status == "failed" and "IndexError: list index out of range" in out


def test_not_a_function_is_reported(capsys):
    assert not run_check("check_square", 42, CASES, exact)
    assert "expected a function, got 42" in capsys.readouterr().out


def test_exact_names_a_wrong_type():
    assert exact([1, 2], [1, 2]) is None
    assert exact([1, 2], (1, 2)) == "equal values but of type tuple, expected list"


def test_tensors_close_names_shape_dtype_values_and_nan():
    a = torch.ones(2, 3)
    assert tensors_close(a, a.clone()) is None
    assert tensors_close(a, a.T) == "shape (3, 2), expected (2, 3)"
    assert tensors_close(a, a.double()) == "dtype torch.float64, expected torch.float32"
    assert tensors_close(a, a + 1) == "6 of 6 values differ (max 1)"
    assert "NaN" in tensors_close(a, a * float("nan"))
    assert tensors_close((a, a), (a, a + 1)).startswith("item 1 of the tuple")
    assert tensors_close(a, a.tolist()) == "expected a tensor, got list"


def test_a_reference_answer_handed_in_is_refused_naming_whose_it_is(capsys):
    import torch.nn.functional as F

    from labkit.attention import causal_mask

    assert (
        "labkit's own function"
        in run_check(
            "check_mask", causal_mask, CASES, exact, references=(causal_mask,)
        ).report
    )
    assert (
        "the reference answer itself"
        in run_check(
            "check_ce", F.cross_entropy, CASES, exact, references=(F.cross_entropy,)
        ).report
    )
