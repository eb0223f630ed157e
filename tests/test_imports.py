"""labkit's imports flow one way: no module imports, directly or through others,
a module that imports it back.

Every ``import`` and ``from ... import`` statement of every labkit module is read
with ``ast``, at any depth (an import inside a function is still an edge: a
deferred import that breaks a circle at load time leaves the circle in the
design). Imports under ``if TYPE_CHECKING:`` are left out: they never run.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "labkit"


def module_names() -> dict[str, Path]:
    """Dotted name -> file, for every module and package of labkit."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    name = test.attr if isinstance(test, ast.Attribute) else getattr(test, "id", "")
    return name == "TYPE_CHECKING"


def import_nodes(tree: ast.AST):
    """Import statements anywhere in the tree, skipping TYPE_CHECKING blocks."""
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            todo.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        todo.extend(ast.iter_child_nodes(node))


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The labkit modules that module ``name`` (at ``path``) imports.

    ``from pkg import sub`` where pkg.sub is a module is an edge to pkg.sub
    alone (the parent package is already loading by then); ``from pkg import
    obj`` is an edge to pkg itself, whose __init__ has to have defined obj.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    edges = set()
    for node in import_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            edges |= {alias.name for alias in node.names}
            continue
        base = node.module or ""
        if node.level:  # relative: from . import x, from ..a import b
            anchor = package.rsplit(".", node.level - 1)[0]
            base = f"{anchor}.{base}" if base else anchor
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            edges.add(sub if sub in known else base)
    return {e for e in edges if e in known and e != name}


def import_graph() -> dict[str, set[str]]:
    names = module_names()
    known = set(names)
    return {n: imported_modules(n, p, known) for n, p in names.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None (depth-first search)."""
    state: dict[str, str] = {}  # "open" while on the stack, then "done"
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def all_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every circle found, one per strongly connected group of modules."""
    graph = {k: set(v) for k, v in graph.items()}
    cycles = []
    while (cycle := find_cycle(graph)) is not None:
        cycles.append(cycle)
        graph[cycle[-2]].discard(cycle[-1])  # break it and look for more
    return cycles


def test_labkit_has_no_import_cycles():
    cycles = all_cycles(import_graph())
    assert not cycles, "import cycles in labkit: " + "; ".join(
        " -> ".join(c) for c in cycles
    )


def test_cycle_finder_names_the_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_imports_inside_functions_and_from_packages_are_edges(tmp_path):
    pkg = tmp_path / "labkit"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from labkit import b\n")
    (pkg / "b.py").write_text("from labkit.sub import thing\n")
    (pkg / "sub" / "__init__.py").write_text("from .c import thing\n")
    (pkg / "sub" / "c.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from labkit import a\n"
        "thing = 1\n"
    )
    known = {"labkit", "labkit.a", "labkit.b", "labkit.sub", "labkit.sub.c"}
    edges = {
        name: imported_modules(name, path, known)
        for name, path in [
            ("labkit.a", pkg / "a.py"),
            ("labkit.b", pkg / "b.py"),
            ("labkit.sub", pkg / "sub" / "__init__.py"),
            ("labkit.sub.c", pkg / "sub" / "c.py"),
        ]
    }
    assert edges == {
        "labkit.a": {"labkit.b"},
        "labkit.b": {"labkit.sub"},
        "labkit.sub": {"labkit.sub.c"},
        "labkit.sub.c": set(),
    }


@pytest.mark.parametrize("name", sorted(module_names()))
def test_labkit_imports_no_private_names_of_other_packages(name):
    """A private name (``_infer_parameters``) may change in any release."""
    tree = ast.parse(module_names()[name].read_text(encoding="utf-8"))
    private = [
        f"from {node.module} import {alias.name}"
        for node in import_nodes(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module
        and not node.level
        and node.module.split(".")[0] != "labkit"
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert not private, f"{name} imports private names: {private}"


def rebound_imports(tree: ast.Module) -> list[str]:
    """'function: name' for each function that assigns or takes as an argument
    a name its module imports (``trace = heatmap(...)`` under ``from labkit.model
    import trace``): inside it the import is hidden."""
    imported = {
        (alias.asname or alias.name).split(".")[0]
        for node in tree.body
        if isinstance(node, (ast.Import, ast.ImportFrom))
        and getattr(node, "module", None) != "__future__"
        for alias in node.names
    }
    out = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        args = fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
        bound = {a.arg for a in args}
        bound |= {
            n.id
            for n in ast.walk(fn)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        }
        out += [f"{fn.name}: {name}" for name in sorted(bound & imported)]
    return out


def test_rebound_imports_are_found():
    tree = ast.parse(
        "from m import trace\ndef f(x):\n    trace = x\n    return trace\n"
    )
    assert rebound_imports(tree) == ["f: trace"]


@pytest.mark.parametrize("name", sorted(module_names()))
def test_no_function_hides_a_name_its_module_imports(name):
    tree = ast.parse(module_names()[name].read_text(encoding="utf-8"))
    assert not rebound_imports(tree), f"{name}: {rebound_imports(tree)}"
