"""Numbers: a number in prose is one the run printed; printed floats are rounded.

- ``prose-number``: a number with 3 or more significant figures in a markdown
  cell that appears in none of the chapter's code or outputs (rounding allowed:
  "2.23" is supported by a printed 2.2347, "45.5%" by 0.455). A number from
  elsewhere is listed in the cell's metadata ``cited`` (the citation goes in
  the prose); a year right after "et al." counts as cited.
- ``long-float``: a float printed with more than 6 significant digits
  (``0.00030000000000000003``), in text outputs and in figure labels.
"""

from __future__ import annotations

import json
import re
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation

from booktools.cells import PLOTLY_MIME, RECORD_MIME, Finding, output_texts, source

MAX_PRINTED_DIGITS = 6

PROSE_NUMBER = re.compile(
    r"(?<![\w.])(?<!U\+)(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w]|\.\d|,\d{3})(%?)"
)
SUPPORT_NUMBER = re.compile(
    r"(?<![\w.])(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
)
PLAIN_NUMBER = re.compile(r"\d+(?:\.\d+)?")
LINK_OR_URL = re.compile(r"\]\([^)]*\)|https?://\S+|<[^>]+>")
YEAR_CITATION = re.compile(r"et al\.?,?\s*\(?\s*$")


def significant_figures(integer: str, fraction: str) -> int:
    """'1,114,112' -> 7, '0.0990' -> 3, '150,000' -> 2 (trailing zeros of an
    integer are taken as not significant)."""
    integer = integer.replace(",", "")
    if fraction:
        digits = (integer + fraction.lstrip(".")).lstrip("0")
        return len(digits)
    return len(integer.lstrip("0").rstrip("0"))


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


class NumberSupport:
    """The numbers a chapter's code and outputs contain, for rounding lookups."""

    def __init__(self, texts: list[str]):
        self.values: set[Decimal] = set()
        for text in texts:
            for pattern in (SUPPORT_NUMBER, PLAIN_NUMBER):
                for match in pattern.finditer(text):
                    value = _decimal(match.group(0))
                    if value is not None:
                        self.values.add(abs(value))
        self._rounded: dict[tuple[int, bool], set[Decimal]] = {}

    def _at(self, places: int, percent: bool) -> set[Decimal]:
        key = (places, percent)
        if key not in self._rounded:
            step = Decimal(1).scaleb(-places)
            found = set()
            for value in self.values:
                for scaled in (value, value * 100) if percent else (value,):
                    if abs(scaled) > Decimal("1e15"):
                        continue
                    for rounding in (ROUND_HALF_UP, ROUND_HALF_EVEN):
                        found.add(scaled.quantize(step, rounding=rounding))
            self._rounded[key] = found
        return self._rounded[key]

    def supports(self, value: Decimal, places: int, percent: bool) -> bool:
        return value in self.values or value in self._at(places, percent)


def chapter_support(nb: dict) -> NumberSupport:
    texts = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            texts.append(source(cell))
            texts.extend(output_texts(cell))
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                for mime in (PLOTLY_MIME, RECORD_MIME):
                    if mime in data:
                        texts.append(json.dumps(data[mime]))
    return NumberSupport(texts)


def prose_number_findings(nb: dict) -> list[Finding]:
    support = chapter_support(nb)
    findings = []
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "markdown":
            continue
        cited = {str(c).replace(",", "") for c in cell["metadata"].get("cited", [])}
        text = LINK_OR_URL.sub(" ", source(cell))
        reported = set()
        for match in PROSE_NUMBER.finditer(text):
            integer, fraction, percent = match.groups()
            fraction = fraction or ""
            if significant_figures(integer, fraction) < 3:
                continue
            shown = integer + fraction
            if shown.replace(",", "") in cited | reported:
                continue
            if YEAR_CITATION.search(text[max(0, match.start() - 12) : match.start()]):
                continue
            places = len(fraction) - 1 if fraction else 0
            if support.supports(_decimal(shown), places, bool(percent)):
                continue
            reported.add(shown.replace(",", ""))
            findings.append(
                Finding(
                    index,
                    "prose-number",
                    f"{shown}{percent} appears in no code or output of the "
                    "chapter: print it from the run, or list it in the cell's "
                    "metadata 'cited' with its source in the text",
                )
            )
    return findings


PRINTED_FLOAT = re.compile(r"(?<![\w.])(\d+)\.(\d+)(?:[eE][-+]?\d+)?(?![\w]|\.\d)")


def long_float_findings(nb: dict) -> list[Finding]:
    findings = []
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        for text in output_texts(cell):
            for match in PRINTED_FLOAT.finditer(text):
                digits = (match.group(1) + match.group(2)).strip("0")
                if len(digits) > MAX_PRINTED_DIGITS:
                    findings.append(
                        Finding(
                            index,
                            "long-float",
                            f"printed {match.group(0)}: round it (at most "
                            f"{MAX_PRINTED_DIGITS} significant digits)",
                        )
                    )
                    break
            else:
                continue
            break
    return findings
