"""Running chapters as experiments: parameters in, recorded results out.

Every chapter has one cell tagged ``parameters`` whose assignments are annotated
(``steps: int = 200  # training steps``). papermill injects new values after that
cell; this module checks them against the annotations *before* anything runs, so a
wrong type is one clear sentence instead of a traceback twenty cells later, and
collects the numbers a chapter ``record``s as data stored inside the executed
notebook.

Built in: notebooks/01_text_as_numbers.ipynb (parameters, record) and
notebooks/14_experiments_with_papermill.ipynb (sweeps, in ``labkit.sweep``).
Leaves out on purpose: scheduling across machines; a sweep is local processes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

RECORD_MIME = "application/vnd.labkit.record+json"

# annotation name -> Python types a value of that parameter may have
_TYPES = {
    "int": (int,),
    "float": (float, int),
    "str": (str,),
    "bool": (bool,),
    "list": (list, tuple),
    "dict": (dict,),
}


class ParameterError(ValueError):
    """A notebook parameter is unknown, of the wrong type, or not declared."""


class NotebookFailed(RuntimeError):
    """A cell of a run notebook raised. ``ename`` and ``evalue`` are the
    error's type name and message; ``cell`` the cell's number (from 1) in the
    executed copy ``out``, ``exec_count`` the In [N] it shows."""

    def __init__(self, notebook, out, cell, exec_count, ename: str, evalue: str):
        self.notebook, self.out, self.cell = notebook, out, cell
        self.exec_count, self.ename, self.evalue = exec_count, ename, evalue
        first = (evalue.strip().splitlines() or [""])[0]
        super().__init__(
            f"{notebook} failed in cell {cell} (In [{exec_count}]) with {ename}: "
            f"{first} (the executed notebook, with the traceback: {out})"
        )


def literal(text: str):
    """A command-line value as Python: '3' -> 3, '0.1' -> 0.1, 'true' -> True,
    'none' -> None, '[1, 2]' -> [1, 2] (JSON lists and objects), anything else
    -> the text itself."""
    if text[:1] in ("[", "{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _type_ok(value: Any, type_name: str) -> bool:
    """True if ``value`` fits the annotation ``type_name`` ('int', 'str | None')."""
    names = [n.strip() for n in type_name.split("|")]
    if value is None:
        return "None" in names or "Optional" in type_name
    for name in names:
        base = name.split("[", 1)[0]
        if base not in _TYPES:
            return True  # an annotation we do not model: accept
        if isinstance(value, bool) and base in ("int", "float"):
            continue  # True is an int to Python, not to a reader
        if isinstance(value, _TYPES[base]):
            return True
    return False


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) < 40 else text[:37] + '...'}"


def check_parameters(namespace: dict[str, Any]) -> None:
    """Check a notebook's parameter values against the annotations of its cell.

    Call ``check_parameters(globals())`` in the cell after the parameters cell.
    The annotations stay in ``__annotations__`` even after papermill injects plain
    assignments, so both are visible here.

    Raises:
        ParameterError: naming the parameter, its declared type and the value given.
    """
    annotations = namespace.get("__annotations__", {})
    for name, annotation in annotations.items():
        type_name = (
            annotation
            if isinstance(annotation, str)
            else getattr(annotation, "__name__", str(annotation))
        )
        value = namespace.get(name)
        if not _type_ok(value, type_name):
            raise ParameterError(
                f"parameter {name!r} must be {type_name}, got {_describe(value)}"
            )


def _parameters_cell(nb: dict, notebook: Path) -> dict:
    cells = [
        c
        for c in nb["cells"]
        if c["cell_type"] == "code"
        and "parameters" in c.get("metadata", {}).get("tags", [])
    ]
    if len(cells) != 1:
        raise ParameterError(
            f"{notebook}: expected exactly one cell tagged 'parameters', "
            f"found {len(cells)}"
        )
    return cells[0]


def declared_parameters(notebook: str | Path) -> dict[str, dict[str, Any]]:
    """The parameters a notebook declares: name -> {type, default, help}.

    Reads the ``parameters`` cell with papermill's own parser (its public
    ``inspect_notebook``), so what it reports is what ``papermill
    --help-notebook`` shows.
    """
    import papermill

    notebook = Path(notebook)
    if not notebook.is_file():
        raise FileNotFoundError(f"no notebook at {notebook}")
    _parameters_cell(json.loads(notebook.read_text(encoding="utf-8")), notebook)
    # papermill formats the path with its own parameters: keep braces literal
    path = str(notebook).replace("{", "{{").replace("}", "}}")
    return {
        name: {
            "type": p["inferred_type_name"],
            "default": p["default"],
            "help": p["help"],
        }
        for name, p in papermill.inspect_notebook(path).items()
    }


def validate_parameters(notebook: str | Path, params: dict[str, Any]) -> None:
    """Raise ParameterError before a run if ``params`` do not fit ``notebook``."""
    declared = declared_parameters(notebook)
    for name, value in params.items():
        if name not in declared:
            raise ParameterError(
                f"{Path(notebook).name} has no parameter {name!r}; "
                f"it declares: {', '.join(declared)}"
            )
        type_name = declared[name]["type"]
        if not _type_ok(value, type_name):
            raise ParameterError(
                f"parameter {name!r} of {Path(notebook).name} must be {type_name}, "
                f"got {_describe(value)}"
            )


def run_notebook(
    notebook: str | Path,
    out: str | Path,
    params: dict[str, Any] | None = None,
    cwd: str | Path | None = None,
    timeout: int = 1800,
) -> dict[str, Any]:
    """Validate ``params``, run ``notebook`` with papermill into ``out``.

    The kernel runs in ``cwd`` (default: the notebook's own folder, as in JupyterLab
    and the book). Returns the executed notebook's recorded results.
    Safe to call from several threads at once (labkit.sweep does): papermill's
    own ``cwd=`` calls os.chdir, which would move every thread of the process,
    so the kernel is started in ``cwd`` instead (nbclient's resources path).
    A cell that raises ends the run with NotebookFailed (the cell, the error).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    params = dict(params or {})
    validate_parameters(notebook, params)
    notebook = Path(notebook)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            str(notebook),
            str(out),
            parameters=params,
            progress_bar=False,
            execution_timeout=timeout,
            resources={
                "metadata": {"path": str(Path(cwd or notebook.parent).resolve())}
            },
            # the kernel's own log lines (a TCP warning, the interrupt before
            # shutdown) would otherwise land in the caller's output
            extra_arguments=["--log-level=CRITICAL"],
            # every output has arrived when the last cell ends: stop the
            # kernel at once rather than ask it to (about 1.3 s of each run)
            shutdown_kernel="immediate",
        )
    except PapermillExecutionError as e:
        cell = e.cell_index + 1
        raise NotebookFailed(
            notebook, out, cell, e.exec_count, e.ename, e.evalue
        ) from e
    return read_records(out)


def _jsonable(value: Any) -> Any:
    """Plain JSON types from numpy / torch scalars, arrays and tuples."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class Record:
    """One recorded result; displays as ``name = value`` and carries JSON data."""

    def __init__(self, name: str, value: Any):
        self.name, self.value = name, _jsonable(value)

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {
            RECORD_MIME: {self.name: self.value},
            "text/plain": f"{self.name} = {self.value!r}",
        }


def record(name: str, value: Any) -> None:
    """Store a result in the executed notebook as data: ``record("loss", 1.92)``.

    The value is shown as ``name = value`` and saved in the output under the mime
    type ``application/vnd.labkit.record+json``; ``read_records`` and sweeps read
    it back. Values must be JSON-like (numbers, strings, lists, dicts; numpy and
    torch scalars and arrays are converted).
    """
    from IPython.display import display

    json.dumps(_jsonable(value))  # fail here, in the cell, if it cannot be stored
    display(Record(name, value))


def read_records(notebook: str | Path) -> dict[str, Any]:
    """Every value a notebook recorded, in cell order (later names win)."""
    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    results: dict[str, Any] = {}
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if RECORD_MIME in data:
                results.update(data[RECORD_MIME])
    return results
