"""The checked-chapter standard fails a chapter copy for each planted defect.

Each test copies a real chapter into a small book, plants one defect, and shows
that the check `make test` runs (booktools.check_notebooks, or nbval for a wrong
solution) fails and names the notebook and the cell.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from booktools import check_notebooks

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHAPTER_1 = REPO / "notebooks" / "01_text_as_numbers.ipynb"
CHAPTER_6 = REPO / "notebooks" / "06_attention.ipynb"


def copy_into_book(tmp_path: Path, chapter: Path) -> Path:
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    copy = notebooks / chapter.name
    shutil.copy(chapter, copy)
    (tmp_path / "_toc.yml").write_text(
        f"format: jb-book\nroot: intro\nchapters:\n  - file: notebooks/{copy.stem}\n"
    )
    return copy


def problems(copy: Path, root: Path) -> list[str]:
    found, waiting = check_notebooks.check([copy], root)
    assert not waiting, "the copied chapter must be one the standard checks"
    return found


def edit(copy: Path, change) -> None:
    nb = json.loads(copy.read_text())
    change(nb["cells"])
    copy.write_text(json.dumps(nb))


def test_the_unchanged_chapters_pass(tmp_path):
    for chapter in (CHAPTER_1, CHAPTER_6):
        root = tmp_path / chapter.stem
        root.mkdir()
        assert problems(copy_into_book(root, chapter), root) == []


def test_a_changed_prose_number_is_named_with_its_cell(tmp_path):
    copy = copy_into_book(tmp_path, CHAPTER_1)
    where = {}

    def change(cells):
        for index, cell in enumerate(cells):
            text = "".join(cell["source"])
            if cell["cell_type"] == "markdown" and re.search(r"0 to\s+255", text):
                cell["source"] = re.sub(r"0 to(\s+)255", r"0 to\g<1>254", text)
                where["cell"] = index
                return
        raise AssertionError("chapter 1 no longer says 'numbers from 0 to 255'")

    edit(copy, change)
    assert (
        f"{copy}: cell {where['cell']}: [prose-number] 254 appears in no code "
        "or output of the chapter" in "\n".join(problems(copy, tmp_path))
    )


def test_an_unexecuted_solution_is_named_with_its_cell(tmp_path):
    copy = copy_into_book(tmp_path, CHAPTER_1)
    where = {}

    def change(cells):
        index = next(
            i
            for i, c in enumerate(cells)
            if "solution" in c.get("metadata", {}).get("tags", [])
        )
        cells[index]["execution_count"] = None
        cells[index]["outputs"] = []
        where["cell"] = index

    edit(copy, change)
    found = problems(copy, tmp_path)
    assert f"{copy}: cell {where['cell']}: [exercise] solution cell never executed" in (
        found
    )


def test_a_slider_whose_steps_carry_identical_data_is_named_with_its_cell(tmp_path):
    copy = copy_into_book(tmp_path, CHAPTER_6)
    where = {}

    def change(cells):
        for index, cell in enumerate(cells):
            for output in cell.get("outputs", []):
                fig = output.get("data", {}).get("application/vnd.plotly.v1+json")
                if fig and fig["layout"].get("sliders"):
                    first = fig["data"][0]
                    for trace in fig["data"][1:]:
                        for key in ("x", "y", "z", "text"):
                            if key in first:
                                trace[key] = first[key]
                    where["cell"] = index
                    return

    edit(copy, change)
    found = "\n".join(problems(copy, tmp_path))
    assert f"{copy}: cell {where['cell']}: [slider] slider steps" in found
    assert "show the same data" in found


@pytest.mark.slow
def test_a_planted_wrong_solution_fails_nbval_naming_its_cell(tmp_path):
    """The folded solution asserts its graded check: a wrong one fails the run."""
    copy = copy_into_book(tmp_path, CHAPTER_1)
    where = {}

    def change(cells):
        for index, cell in enumerate(cells):
            text = "".join(cell["source"])
            if "solution" in cell.get("metadata", {}).get("tags", []) and (
                "def utf8_decode_char" in text
            ):
                planted = text.replace("(byte & 0x3F)", "byte")  # mask forgotten
                assert planted != text
                cell["source"] = planted
                # nbval numbers the code cells only
                where["cell"] = sum(c["cell_type"] == "code" for c in cells[:index])
                return
        raise AssertionError("chapter 1's decoder solution not found")

    edit(copy, change)
    result = subprocess.run(
        [BIN / "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", copy.name],
        cwd=copy.parent,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stdout[-2000:]
    assert f"{copy.name}::Cell {where['cell']}" in result.stdout
    assert "AssertionError" in result.stdout
    assert "---> " in result.stdout and "check_utf8_decode_char(" in result.stdout
