"""Graded exercises: the learner writes a function, a check answers.

Each chapter's exercises call a ``check_<name>(fn)`` from the submodule of its
topic (``labkit.exercises.utf8``, ``labkit.exercises.attention``, ...). A check
runs the learner's function on hand-derived cases (edge cases first: T=1, an
empty input, a tie) and then on random ones, compares each answer with labkit's
own implementation, and stops at the first case that fails. It prints one of:

- ``not done yet``: the function still raises NotImplementedError or returns
  None (the stub a chapter ships), so an unfinished exercise never breaks a
  notebook run;
- ``passed``: every case agreed, with the number of cases;
- ``failed``: the input, the expected and the returned value, what differs,
  and a hint written for that case.

It returns a ``CheckResult`` that is true only when every case passed, so a
chapter's folded solution ends with ``assert check_<name>(solution)``.

This module holds the machinery (cases, comparison, the report); the topic
modules hold the cases. Leaves out on purpose: timing, partial credit.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

_WIDTH = 72  # characters of a value shown in a report before it is cut


@dataclass(frozen=True)
class Case:
    """One input for the learner's function and what it must give back.

    ``expected`` is a value, or ``Raises(ValueError)`` when the function must
    refuse the input. ``hint`` says what this case is there to catch.
    """

    args: tuple
    expected: Any
    hint: str
    label: str | None = None  # how the input is shown; default: repr of args


@dataclass(frozen=True)
class Raises:
    """Expected outcome of a case where the function must raise ``error``."""

    error: type[BaseException]


@dataclass
class CheckResult:
    """What a check found; true only if every case passed."""

    name: str
    status: str  # "passed", "not done" or "failed"
    n_cases: int
    report: str
    failed_case: Case | None = field(default=None, repr=False)

    def __bool__(self) -> bool:
        return self.status == "passed"

    def __str__(self) -> str:
        return self.report

    def _ipython_display_(self) -> None:
        """Show nothing more in a notebook: the check already printed its report."""


def short(value: Any) -> str:
    """A value as one readable line, cut to a report's width."""
    torch = sys.modules.get("torch")  # a tensor means torch is loaded already
    if torch is not None and isinstance(value, torch.Tensor) and value.numel() > 12:
        return f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}"
    text = " ".join(repr(value).split())
    return text if len(text) <= _WIDTH else text[: _WIDTH - 3] + "..."


def _is_stub(error: BaseException | None, returned: Any, case: Case) -> bool:
    if isinstance(error, NotImplementedError):
        return True
    return error is None and returned is None and case.expected is not None


def _failure(name: str, index: int, n: int, case: Case, got: str, why: str) -> str:
    shown = case.label if case.label is not None else short(case.args)
    expected = case.expected
    if isinstance(expected, Raises):
        expected_text = f"raises {expected.error.__name__}"
    else:
        expected_text = short(expected)
    return "\n".join(
        [
            f"✗ {name}: case {index} of {n} failed",
            f"  input:    {shown}",
            f"  expected: {expected_text}",
            f"  returned: {got}",
            f"  problem:  {why}",
            f"  hint:     {case.hint}",
        ]
    )


def _uses(fn: Callable, forbidden: Sequence[str]) -> str | None:
    """The first forbidden text in ``fn``'s source, if its source is known."""
    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):
        return None
    return next((word for word in forbidden if word in text), None)


def _refuse(name: str, n: int, why: str) -> CheckResult:
    report = f"✗ {name}: {why}"
    print(report)
    return CheckResult(name, "failed", n, report)


def run_check(
    name: str,
    fn: Callable,
    cases: Sequence[Case],
    compare: Callable[[Any, Any], str | None],
    *,
    summary: str = "",
    forbidden: Sequence[str] = (),
    references: Sequence[Callable] = (),
) -> CheckResult:
    """Run ``fn`` on every case, print the report, return the result.

    ``compare(expected, returned)`` gives None when they agree, else a short
    reason ("shape (2, 3), expected (3, 2)"). The first case decides whether
    the function is still a stub. ``summary`` says what the cases covered.
    ``forbidden`` lists calls the exercise rules out (``".decode("``), looked
    for in the function's source when Python can find it; ``references`` are
    the reference answers (labkit's or torch's), refused if handed in as they
    are.
    """
    n = len(cases)
    if not callable(fn):
        return _refuse(name, n, f"expected a function, got {short(fn)}")
    if any(fn is ref for ref in references):
        owner = getattr(fn, "__module__", "") or ""
        whose = (
            "labkit's own function"
            if owner.startswith("labkit")
            else ("the reference answer itself")
        )
        return _refuse(name, n, f"that is {whose}: write yours")
    used = _uses(fn, forbidden)
    if used is not None:
        return _refuse(
            name,
            n,
            f"{fn.__name__} uses {used!r}, which this exercise asks you to do without",
        )
    for index, case in enumerate(cases, start=1):
        error, returned = None, None
        try:
            returned = fn(*case.args)
        except Exception as err:  # the learner's bug is reported, not raised
            error = err
        if index == 1 and _is_stub(error, returned, case):
            report = (
                f"… {name}: not done yet ({fn.__name__} still returns None or "
                "raises NotImplementedError). Write its body, then run this cell "
                "again."
            )
            print(report)
            return CheckResult(name, "not done", n, report)
        why, got = _verdict(case, error, returned, compare)
        if why is not None:
            report = _failure(name, index, n, case, got, why)
            print(report)
            return CheckResult(name, "failed", n, report, case)
    report = f"✓ {name}: passed all {n} cases" + (f" ({summary})" if summary else "")
    print(report)
    return CheckResult(name, "passed", n, report)


def _verdict(case, error, returned, compare) -> tuple[str | None, str]:
    """(None, "") when the case passed, else (what is wrong, what came back)."""
    expected = case.expected
    if isinstance(expected, Raises):
        if isinstance(error, expected.error):
            return None, ""
        if error is not None:
            kind = type(error).__name__
            return f"raised {kind}, expected {expected.error.__name__}", kind
        return f"returned a value; it must raise {expected.error.__name__}", short(
            returned
        )
    if error is not None:
        text = f"{type(error).__name__}: {error}"
        return "your function raised an error on this input", short(text)
    return compare(expected, returned), short(returned)


def exact(expected: Any, returned: Any) -> str | None:
    """Equality, with the type of a wrong answer named (a tuple for a list)."""
    if returned == expected and type(returned) is type(expected):
        return None
    sequences = (list, tuple)
    same_items = (
        isinstance(returned, sequences)
        and isinstance(expected, sequences)
        and list(returned) == list(expected)
    )
    if returned == expected or same_items:
        return (
            f"equal values but of type {type(returned).__name__}, "
            f"expected {type(expected).__name__}"
        )
    return "the values differ"


def tensors_close(
    expected: Any, returned: Any, *, rtol: float = 1e-5, atol: float = 1e-6
) -> str | None:
    """Tensor comparison naming the first of: type, shape, dtype, values.

    Tuples of tensors (``(output, weights)``) are compared item by item.
    """
    import torch

    if isinstance(expected, tuple):
        if not isinstance(returned, tuple) or len(returned) != len(expected):
            return f"expected a tuple of {len(expected)} tensors"
        for i, (e, r) in enumerate(zip(expected, returned, strict=True)):
            why = tensors_close(e, r, rtol=rtol, atol=atol)
            if why is not None:
                return f"item {i} of the tuple: {why}"
        return None
    if not isinstance(returned, torch.Tensor):
        return f"expected a tensor, got {type(returned).__name__}"
    if returned.shape != expected.shape:
        return f"shape {tuple(returned.shape)}, expected {tuple(expected.shape)}"
    if returned.dtype != expected.dtype:
        return f"dtype {returned.dtype}, expected {expected.dtype}"
    if expected.dtype == torch.bool:
        wrong = (returned != expected).sum().item()
        return None if wrong == 0 else f"{wrong} of {expected.numel()} entries differ"
    if returned.isnan().any() and not expected.isnan().any():
        return "NaN in the result (an overflow, or a row with every key masked?)"
    close = torch.isclose(returned, expected, rtol=rtol, atol=atol, equal_nan=True)
    if close.all():
        return None
    diff = (returned - expected).abs().nan_to_num(float("inf")).max().item()
    return f"{(~close).sum().item()} of {close.numel()} values differ (max {diff:.3g})"
