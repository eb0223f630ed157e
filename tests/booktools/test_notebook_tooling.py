"""The checks that guard the chapters: publishability, nbval drift, book errors."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from notebook_factory import execute, make_notebook

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


from booktools import check_notebooks as check  # noqa: E402


def book_root(tmp_path, listed=("notebooks/01_ch",)):
    toc = "format: jb-book\nroot: intro\nchapters:\n" + "".join(
        f"  - file: {entry}\n" for entry in listed
    )
    (tmp_path / "_toc.yml").write_text(toc)
    (tmp_path / "intro.md").write_text("# Intro\n")
    return tmp_path


def test_executed_listed_notebook_has_no_problems(tmp_path):
    root = book_root(tmp_path)
    nb = execute(make_notebook(root / "notebooks" / "01_ch.ipynb"))
    assert check.notebook_problems(nb, root) == []


def test_unexecuted_unlisted_notebook_is_reported(tmp_path):
    root = book_root(tmp_path, listed=())
    nb = make_notebook(root / "notebooks" / "01_ch.ipynb")
    problems = check.notebook_problems(nb, root)
    assert f"{nb}: cell 1: never executed" in problems
    assert any(
        "not listed in _toc.yml (add 'file: notebooks/01_ch')" in p for p in problems
    )


def test_out_of_order_error_and_missing_parameters_are_reported(tmp_path):
    root = book_root(tmp_path)
    nb = execute(make_notebook(root / "notebooks" / "01_ch.ipynb"))
    data = json.loads(nb.read_text())
    data["cells"][2]["execution_count"] = 7
    data["cells"][3]["outputs"].append(
        {
            "output_type": "error",
            "ename": "ValueError",
            "evalue": "bad",
            "traceback": [],
        }
    )
    data["cells"][1]["metadata"]["tags"] = []
    nb.write_text(json.dumps(data))
    problems = check.notebook_problems(nb, root)
    assert (
        f"{nb}: cell 2: execution count 7, expected 2 (run the notebook top to "
        "bottom in a fresh kernel)" in problems
    )
    assert f"{nb}: cell 3: stored error ValueError: bad" in problems
    assert f"{nb}: 0 cells tagged 'parameters', expected 1" in problems


@pytest.mark.slow
def test_nbval_fails_when_a_checked_output_drifts(tmp_path):
    """nbval-lax compares the cells marked NBVAL_CHECK_OUTPUT, and only those."""
    nb = execute(make_notebook(tmp_path / "ch.ipynb"))

    def nbval():
        return subprocess.run(
            [BIN / "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", nb.name],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )

    assert nbval().returncode == 0
    data = json.loads(nb.read_text())
    checked = data["cells"][3]
    assert "".join(checked["source"]).startswith("# NBVAL_CHECK_OUTPUT")
    checked["outputs"][0]["text"] = "hihihi-corrupted\n"
    nb.write_text(json.dumps(data))
    result = nbval()
    assert result.returncode == 1, result.stdout
    assert "hihihi-corrupted" in result.stdout


@pytest.mark.slow
def test_chapter_one_fails_nbval_when_its_checked_output_is_corrupted(tmp_path):
    source = REPO / "notebooks" / "01_text_as_numbers.ipynb"
    if not source.exists():
        pytest.skip("chapter 1 not present")
    data = json.loads(source.read_text())
    cell = next(
        c
        for c in data["cells"]
        if "".join(c["source"]).startswith("# NBVAL_CHECK_OUTPUT") and c["outputs"]
    )
    cell["outputs"][0]["text"] = ["this is not what the chapter prints\n"]
    copy = tmp_path / "01_copy.ipynb"
    copy.write_text(json.dumps(data))
    result = subprocess.run(
        [BIN / "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", copy.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "1 failed" in result.stdout, result.stdout


def test_plotly_renderer_draws_with_local_plotly_only():
    import plotly.graph_objects as go
    from myst_nb.core.render import MimeData

    from booktools.bookext import PLOTLY_MIME, RECORD_MIME, PlotlyMimeRenderer

    spec = json.loads(go.Figure(go.Scatter(y=[1, 2])).to_json())
    nodes = PlotlyMimeRenderer.handle_mime(None, MimeData(PLOTLY_MIME, spec), False)
    html = nodes[0].astext()
    assert "Plotly.newPlot" in html and "plotly-graph-div" in html
    assert "cdn" not in html.lower() and "<script src" not in html
    assert PlotlyMimeRenderer.handle_mime(None, MimeData(RECORD_MIME, {}), False) == []
    assert (
        PlotlyMimeRenderer.handle_mime(None, MimeData("text/plain", "x"), False) is None
    )


@pytest.mark.slow
def test_book_build_fails_naming_the_notebook_and_cell_that_raised(tmp_path):
    root = book_root(tmp_path, listed=("ch",))
    shutil.copy(REPO / "_config.yml", root / "_config.yml")
    config = (root / "_config.yml").read_text()
    config = config.replace("    html_static_path: [book/vendor]\n", "")
    (root / "_config.yml").write_text(
        config.replace("bibtex_bibfiles:\n  - book/references.bib\n", "")
    )
    nb = make_notebook(root / "ch.ipynb", body=("x = 1", "1 / 0", "print('after')"))
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(nb, as_version=4)
    NotebookClient(notebook, allow_errors=True).execute()
    nbformat.write(notebook, nb)
    result = subprocess.run(
        [BIN / "jupyter-book", "build", str(root), "-W", "--keep-going"],
        capture_output=True,
        text=True,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"{nb}: cell 3 raised: ZeroDivisionError: division by zero" in output
