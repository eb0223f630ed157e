"""Exercises: each has a solution that runs, is folded, and asserts its claim.

- an "### Exercise N" (code or a number) without a code cell tagged
  ``solution`` after it; a solution that never ran, asserts nothing, or is not
  folded (tag ``hide-input`` for the book, ``jupyter.source_hidden`` for
  JupyterLab); an ``exercise`` cell that calls no ``check_`` function;
- a "### Question N" (a conceptual answer) without a ``<details>`` answer;
- a solution written as code in prose, and exercises as a bare numbered list.
"""

from __future__ import annotations

import ast
import re

from booktools.cells import Finding, calls_named, parse_cell, source, tags

ITEM_HEADING = re.compile(r"^#{2,4}\s*(Exercise|Question)\s+(\d+)", re.MULTILINE)
EXERCISES_SECTION = re.compile(r"^#{1,3}\s*(Exercises|Questions)\b", re.MULTILINE)
LIST_ITEM = re.compile(r"^\d+\.\s", re.MULTILINE)
ANY_HEADING = re.compile(r"^#{1,4}\s", re.MULTILINE)
PROSE_CODE_SOLUTION = re.compile(r"<details>.*?```\s*python", re.DOTALL)


def asserts_something(tree: ast.AST | None) -> bool:
    if tree is None:
        return False
    if any(isinstance(node, ast.Assert) for node in ast.walk(tree)):
        return True
    return calls_named(tree, lambda name: name.startswith("assert"))


def calls_a_check(tree: ast.AST | None) -> bool:
    return tree is not None and calls_named(tree, lambda n: n.startswith("check_"))


def _items(nb: dict) -> list[dict]:
    """Exercise and question items: kind, number, heading cell, cells inside."""
    items: list[dict] = []
    current = None
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") == "markdown":
            text = source(cell)
            headings = list(ITEM_HEADING.finditer(text))
            if headings:
                for heading in headings:
                    end = ANY_HEADING.search(text, heading.end())
                    body = text[heading.start() : end.start() if end else None]
                    current = {
                        "kind": heading.group(1),
                        "number": heading.group(2),
                        "cell": index,
                        "text": body,
                        "cells": [],
                    }
                    items.append(current)
                continue
            if ANY_HEADING.search(text):
                current = None
                continue
        if current is not None:
            current["cells"].append(index)
            if cell.get("cell_type") == "markdown":
                current["text"] += "\n" + source(cell)
    return items


def _solution_problems(index: int, cell: dict) -> list[Finding]:
    found = []
    if cell.get("execution_count") is None:
        found.append(Finding(index, "exercise", "solution cell never executed"))
    if not asserts_something(parse_cell(cell)):
        found.append(
            Finding(index, "exercise", "solution cell asserts nothing it claims")
        )
    hidden = cell.get("metadata", {}).get("jupyter", {}).get("source_hidden")
    if "hide-input" not in tags(cell) or not hidden:
        found.append(
            Finding(
                index,
                "exercise",
                "solution cell not folded: tag it 'hide-input' and set metadata "
                "jupyter.source_hidden to true",
            )
        )
    return found


def exercise_findings(nb: dict) -> list[Finding]:
    cells = nb.get("cells", [])
    findings = []
    inside = set()
    for item in _items(nb):
        name = f"{item['kind']} {item['number']}"
        inside.update(item["cells"])
        solutions = [i for i in item["cells"] if "solution" in tags(cells[i])]
        if item["kind"] == "Question":
            if "<details>" not in item["text"]:
                findings.append(
                    Finding(
                        item["cell"],
                        "exercise",
                        f"{name} has no folded answer (<details>...</details>)",
                    )
                )
        elif not solutions:
            findings.append(
                Finding(
                    item["cell"],
                    "exercise",
                    f"{name} has no code cell tagged 'solution' after it",
                )
            )
    findings += _prose_form_findings(cells)
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        if "solution" in tags(cell):
            findings += _solution_problems(index, cell)
        if "exercise" in tags(cell):
            if not calls_a_check(parse_cell(cell)):
                findings.append(
                    Finding(index, "exercise", "exercise cell calls no check_ function")
                )
            if index not in inside:
                findings.append(
                    Finding(index, "exercise", "exercise cell outside an Exercise N")
                )
    return findings


def _prose_form_findings(cells: list[dict]) -> list[Finding]:
    """Solutions as code in prose, and exercises not in the standard form."""
    findings = []
    in_exercises = False
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "markdown":
            continue
        text = source(cell)
        if PROSE_CODE_SOLUTION.search(text):
            findings.append(
                Finding(
                    index,
                    "exercise",
                    "a solution written as code in prose: make it a code cell "
                    "tagged 'solution' that runs and asserts what it says",
                )
            )
        if EXERCISES_SECTION.search(text):
            in_exercises = True
        elif re.search(r"^#{1,2}\s", text, re.MULTILINE):
            in_exercises = False
        if in_exercises and LIST_ITEM.search(text) and not ITEM_HEADING.search(text):
            findings.append(
                Finding(
                    index,
                    "exercise",
                    "exercises as a numbered list: give each its heading, "
                    "'### Exercise N' (code or a number, with a solution cell) or "
                    "'### Question N' (a prose answer in <details>)",
                )
            )
    return findings


def graded_exercise_count(nb: dict) -> int:
    return sum(
        1
        for cell in nb.get("cells", [])
        if cell.get("cell_type") == "code"
        and "exercise" in tags(cell)
        and calls_a_check(parse_cell(cell))
    )
