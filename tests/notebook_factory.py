"""Tiny notebooks for tests of the notebook tooling (no torch in their kernels)."""

from __future__ import annotations

from pathlib import Path

import nbformat as nbf


def make_notebook(
    path: Path,
    params: str = 'n: int = 3  # how many\nword: str = "hi"  # a word',
    body: tuple[str, ...] = (
        "from labkit.experiments import check_parameters, record\n"
        "check_parameters(globals())",
        "# NBVAL_CHECK_OUTPUT\nprint(word * n)",
        "record('length', len(word * n))",
    ),
    tag_parameters: bool = True,
) -> Path:
    nb = nbf.v4.new_notebook()
    first = nbf.v4.new_code_cell(params)
    if tag_parameters:
        first.metadata["tags"] = ["parameters"]
    nb.cells = [nbf.v4.new_markdown_cell("# A test chapter"), first]
    nb.cells += [nbf.v4.new_code_cell(src) for src in body]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    nbf.write(nb, path)
    return path


def execute(path: Path) -> Path:
    from nbclient import NotebookClient

    nb = nbf.read(path, as_version=4)
    NotebookClient(nb, resources={"metadata": {"path": str(path.parent)}}).execute()
    nbf.write(nb, path)
    return path
