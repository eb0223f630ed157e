"""The tokenizer's modules import one way: no circle, gpt2.py on top."""

import ast
from pathlib import Path

import labkit.tokenizer

PACKAGE = Path(labkit.tokenizer.__file__).parent
PREFIX = "labkit.tokenizer."


def _module_level_imports(path: Path) -> set[str]:
    """labkit.tokenizer modules imported when ``path`` is imported.

    Only statements run at import time count: those at the top of the file
    and inside top-level if/try blocks, not the bodies of functions.
    """
    found = set()
    todo = list(ast.parse(path.read_text(encoding="utf-8")).body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if isinstance(node, ast.ClassDef):  # a class body runs at import
                todo.extend(n for n in node.body if not isinstance(n, ast.FunctionDef))
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        else:
            todo.extend(ast.iter_child_nodes(node))
    return {m[len(PREFIX) :] for m in found if m.startswith(PREFIX)}


def _graph() -> dict[str, set[str]]:
    names = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    return {
        name: _module_level_imports(PACKAGE / f"{name}.py") & names for name in names
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a list of modules, or None."""
    state: dict[str, str] = {}

    def visit(name, path):
        state[name] = "open"
        for dep in sorted(graph[name]):
            if state.get(dep) == "open":
                return [*path[path.index(dep) :], dep]
            if dep not in state:
                found = visit(dep, [*path, dep])
                if found:
                    return found
        state[name] = "done"
        return None

    for name in sorted(graph):
        if name not in state:
            found = visit(name, [name])
            if found:
                return found
    return None


def test_no_import_circle_among_tokenizer_modules():
    assert _cycle(_graph()) is None, f"import circle: {' -> '.join(_cycle(_graph()))}"


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_tokenizer_does_not_import_gpt2():
    """GPT-2's loader builds a Tokenizer; the Tokenizer knows nothing of it."""
    graph = _graph()
    assert "tokenizer" in graph["gpt2"]
    assert "gpt2" not in graph["tokenizer"]
    source = (PACKAGE / "tokenizer.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    # not even inside a function: the deprecated from_gpt2_files alias is
    # attached in the package's __init__
    assert not [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and "gpt2" in (node.module or "")
    ]


def test_package_code_does_not_reach_for_shared():
    """../shared is test data, found by tests/conftest.py, not by labkit."""
    for path in PACKAGE.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        assert '"shared"' not in source and "parents[3]" not in source, path.name
