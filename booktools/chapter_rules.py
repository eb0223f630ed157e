"""The checked-chapter standard, as rules a program can apply to a notebook.

A chapter says only what it shows. These rules find the defects a careful
reader found by hand, so that ``make test`` finds them next time. Each lives
in the module of its kind:

- ``number_rules``: numbers in prose that the run does not print
  (``prose-number``); floats printed with more than 6 significant digits
  (``long-float``);
- ``exercise_rules``: exercises without an executed, folded solution that
  asserts; exercise cells that call no check; questions without an answer
  (``exercise``);
- ``assert_rules``: asserts that cannot fail, comparisons printed instead of
  asserted (``assert``);
- ``figure_rules``: sliders whose steps look alike (``slider``), axes without
  titles (``axis``).

``chapter_findings(nb)`` applies them all to a parsed notebook.
"""

from __future__ import annotations

from booktools.assert_rules import trivial_assert_findings
from booktools.cells import Finding
from booktools.exercise_rules import exercise_findings, graded_exercise_count
from booktools.figure_rules import figure_findings
from booktools.number_rules import long_float_findings, prose_number_findings

__all__ = ["Finding", "chapter_findings", "graded_exercise_count"]


def chapter_findings(nb: dict) -> list[Finding]:
    """Every rule of the standard, applied to one notebook (a parsed dict)."""
    findings = (
        prose_number_findings(nb)
        + exercise_findings(nb)
        + long_float_findings(nb)
        + trivial_assert_findings(nb)
        + [Finding(*found) for found in figure_findings(nb)]
    )
    return sorted(findings, key=lambda f: f.cell if f.cell is not None else -1)
