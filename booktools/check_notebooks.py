"""Check that every committed chapter is fit to publish.

For each notebook: it was executed top to bottom in one kernel (execution counts
1, 2, 3, ... in cell order, no code cell left unrun), no output is an error, it has
exactly one cell tagged ``parameters``, and ``_toc.yml`` lists it. Chapters also
meet the checked-chapter standard (``booktools.chapter_rules``: claims, exercises
and solutions, sliders, axes, printed floats, asserts that cannot fail) and hold
at least ``MIN_GRADED_EXERCISES`` graded exercises. Exits 1 and names the
notebook and cell for every problem found.

Chapters listed in ``NOT_YET_CHECKED`` are not yet rewritten to the standard:
their findings are counted and reported on every run, but do not fail it. Each
chapter rewrite removes its chapters from the list; it must end empty.

Usage: python -m booktools.check_notebooks [--strict] [notebooks/NN_topic.ipynb ...]
(``--strict``: apply the standard to chapters in NOT_YET_CHECKED too.)
"""

import json
import sys
from pathlib import Path

import yaml

from booktools.chapter_rules import Finding, chapter_findings, graded_exercise_count

ROOT = Path(__file__).resolve().parents[1]
MIN_GRADED_EXERCISES = 2
# chapter number prefixes still to be rewritten to the standard
NOT_YET_CHECKED: list[str] = []  # every chapter is held to the standard


def toc_entries(toc_path: Path) -> set[str]:
    """Every 'file:' in a Jupyter Book _toc.yml, without its extension."""
    found: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("file", "root") and isinstance(value, str):
                    found.add(str(Path(value).with_suffix("")))
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load(toc_path.read_text(encoding="utf-8")))
    return found


def notebook_problems(path: Path, root: Path = ROOT) -> list[str]:
    """Every reason ``path`` may not be published, as 'path: cell N: ...' lines."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        return [f"{path}: cannot be read as a notebook ({err})"]
    problems = []
    expected = 1
    n_params = 0
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        where = f"{path}: cell {index}"
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            n_params += 1
        if not "".join(cell.get("source", "")).strip():
            continue
        count = cell.get("execution_count")
        if count is None:
            problems.append(f"{where}: never executed")
        elif count != expected:
            problems.append(
                f"{where}: execution count {count}, expected {expected} "
                "(run the notebook top to bottom in a fresh kernel)"
            )
        expected = (count or expected) + 1
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                problems.append(
                    f"{where}: stored error {output.get('ename')}: "
                    f"{output.get('evalue', '')[:120]}"
                )
    if n_params != 1:
        problems.append(f"{path}: {n_params} cells tagged 'parameters', expected 1")
    toc = root / "_toc.yml"
    try:
        rel = path.resolve().relative_to(root.resolve()).with_suffix("")
    except ValueError:
        return problems + [f"{path}: outside the book at {root}"]
    if not toc.is_file():
        problems.append(f"{path}: no _toc.yml at {root}")
    elif str(rel) not in toc_entries(toc):
        problems.append(f"{path}: not listed in _toc.yml (add 'file: {rel}')")
    return problems


def standard_findings(path: Path) -> list[Finding]:
    """The checked-chapter standard's findings for one chapter."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return []  # notebook_problems reports it
    findings = chapter_findings(nb)
    graded = graded_exercise_count(nb)
    if graded < MIN_GRADED_EXERCISES:
        findings.append(
            Finding(
                None,
                "exercise",
                f"{graded} graded exercises (cells tagged 'exercise' that call a "
                f"check_ function), expected at least {MIN_GRADED_EXERCISES}",
            )
        )
    return findings


def is_checked(path: Path) -> bool:
    return path.name[:2] not in NOT_YET_CHECKED


def check(
    paths: list[Path], root: Path = ROOT, strict: bool = False
) -> tuple[list[str], dict[str, int]]:
    """(problem lines, findings per chapter not yet checked) for ``paths``.

    ``strict`` holds every chapter to the standard, listed as waiting or not
    (what a chapter rewrite runs before it takes its chapter off the list).
    """
    problems = [p for path in paths for p in notebook_problems(path, root)]
    waiting = {}
    for path in paths:
        findings = standard_findings(path)
        if strict or is_checked(path):
            problems += [f.line(path) for f in findings]
        else:
            waiting[path.name[:2]] = len(findings)
    return problems, waiting


def main(argv: list[str]) -> int:
    strict = "--strict" in argv
    argv = [a for a in argv if a != "--strict"]
    paths = [Path(a) for a in argv] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    problems, waiting = check(paths, strict=strict)
    for line in problems:
        print(line)
    if waiting:
        counts = ", ".join(f"{name} ({n})" for name, n in waiting.items())
        print(f"not yet checked against the chapter standard (findings): {counts}")
    print(f"checked {len(paths)} notebooks: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
