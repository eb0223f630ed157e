"""What the chapter rules share: a finding, and a notebook cell's parts."""

from __future__ import annotations

import ast
from dataclasses import dataclass

from booktools.figure_rules import figure_label_texts

PLOTLY_MIME = "application/vnd.plotly.v1+json"
RECORD_MIME = "application/vnd.labkit.record+json"
TEXT_MIMES = ("text/plain", "text/html", "text/markdown", "text/latex")


@dataclass(frozen=True)
class Finding:
    cell: int | None  # index in the notebook's cell list; None for the whole file
    rule: str
    message: str

    def line(self, path) -> str:
        where = f"{path}: cell {self.cell}" if self.cell is not None else f"{path}"
        return f"{where}: [{self.rule}] {self.message}"


def source(cell: dict) -> str:
    return "".join(cell.get("source", ""))


def tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def output_texts(cell: dict) -> list[str]:
    """Every text a code cell showed: streams, text mimes, figure labels."""
    texts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            texts.append("".join(output.get("text", "")))
        data = output.get("data", {})
        for mime in TEXT_MIMES:
            if mime in data and PLOTLY_MIME not in data:
                texts.append("".join(data[mime]))
        if PLOTLY_MIME in data:
            texts.extend(figure_label_texts(data[PLOTLY_MIME]))
    return texts


def calls_named(tree: ast.AST, predicate) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = (
                func.attr
                if isinstance(func, ast.Attribute)
                else getattr(func, "id", "")
            )
            if predicate(name):
                return True
    return False


def parse_cell(cell: dict) -> ast.AST | None:
    """The cell's Python syntax tree (IPython magics blanked), or None."""
    lines = [
        "" if line.lstrip().startswith(("%", "!")) else line
        for line in source(cell).splitlines()
    ]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None
