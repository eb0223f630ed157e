"""Asserts that cannot fail, and comparisons printed instead of asserted.

``assert x == x``, the same call on both sides, ``assert_close(a, a)``, an
asserted constant, ``... or True``; and ``print("same:", a == b)``, which shows
a comparison that nobody checks.
"""

from __future__ import annotations

import ast

from booktools.cells import Finding, parse_cell

EQUALITY_CALLS = ("equal", "allclose", "isclose", "assert_close", "array_equal")


def _same(a: ast.AST, b: ast.AST) -> bool:
    return ast.dump(a) == ast.dump(b)


def _vacuous(test: ast.AST) -> str | None:
    """Why an asserted expression cannot be false, or None."""
    if isinstance(test, ast.Constant):
        return "asserts a constant" if test.value else None
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        if isinstance(test.ops[0], ast.Eq | ast.Is | ast.LtE | ast.GtE) and _same(
            test.left, test.comparators[0]
        ):
            return f"compares `{ast.unparse(test.left)}` with itself"
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or):
        if any(isinstance(v, ast.Constant) and v.value for v in test.values):
            return "is `... or <true constant>`"
    if isinstance(test, ast.Call) and len(test.args) >= 2:
        func = test.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name.endswith(EQUALITY_CALLS) and _same(test.args[0], test.args[1]):
            return f"compares `{ast.unparse(test.args[0])}` with itself"
    return None


def _printed_comparison(node: ast.AST) -> str | None:
    """print(..., a == b, ...) or print(torch.equal(a, b)): shown, not checked."""
    if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "print"):
        return None
    for arg in node.args:
        if isinstance(arg, ast.Compare) and isinstance(arg.ops[0], ast.Eq | ast.NotEq):
            return ast.unparse(arg)
        if isinstance(arg, ast.Call):
            func = arg.func
            name = (
                func.attr
                if isinstance(func, ast.Attribute)
                else getattr(func, "id", "")
            )
            if name.endswith(EQUALITY_CALLS):
                return ast.unparse(arg)
    return None


def trivial_assert_findings(nb: dict) -> list[Finding]:
    findings = []
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        tree = parse_cell(cell)
        if tree is None:
            continue
        for node in ast.walk(tree):
            test = None
            if isinstance(node, ast.Assert):
                test = node.test
            elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
                test = node.value  # assert_close(a, a) as a statement
            why = _vacuous(test) if test is not None else None
            printed = _printed_comparison(node)
            if printed:
                findings.append(
                    Finding(
                        index,
                        "assert",
                        f"line {node.lineno} prints the comparison `{printed}`: "
                        "assert it, so the run fails when it stops holding",
                    )
                )
            if why:
                findings.append(
                    Finding(
                        index, "assert", f"line {node.lineno} {why}: it cannot fail"
                    )
                )
    return findings
