"""Sweeps: run a chapter once per point of a parameter grid, collect a table.

``sweep("notebooks/experiments/train_one.ipynb", {"lr": [1e-3, 3e-3]})``
checks every point against the notebook's ``parameters`` cell first (an unknown
name, a wrong type or a missing cell fails before anything runs), then runs
the points with papermill, ``workers`` kernels at a time. Each executed
notebook is kept in the sweep folder beside a small JSON file saying how the
point went; the values each run ``record``ed come back as one table: a list of
dicts, ``results.json`` and ``results.csv``. A failed run is a row with
``status="failed"`` and its error, never dropped.

Running the same sweep again reuses every point already done with the same
parameters and the same code version (a hash of the notebook's cells and of
labkit's sources), so a grown grid only runs its new points, and editing the
notebook or labkit runs everything again. Failed points are always retried.

The command line does the same: ``labkit sweep NOTEBOOK -p lr 1e-3,3e-3``
(labkit.cli). Every file here is written atomically (a temporary file, then
os.replace), and a status file that cannot be read counts as a point not yet
done, so a sweep killed at any moment runs again.
Built in: notebooks/14_experiments_with_papermill.ipynb.
Leaves out on purpose: scheduling across machines, random or Bayesian search.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from labkit.experiments import (
    ParameterError,
    read_records,
    run_notebook,
    validate_parameters,
)


def _write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file and os.replace: a kill leaves the old
    file or the new one, never half of it."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:  # csv's own \r\n
        f.write(text)
    os.replace(tmp, path)


def grid_points(grid: dict[str, list]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the last name varying fastest.

    Example: grid_points({"a": [1, 2], "b": ["x"]}) -> [{a: 1, b: x}, {a: 2, b: x}]
    """
    for name, values in grid.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ParameterError(
                f"grid[{name!r}] must be a non-empty list of values, got {values!r}"
            )
        repeated = [v for i, v in enumerate(values) if v in values[:i]]
        if repeated:
            raise ParameterError(f"grid[{name!r}] lists {repeated[0]!r} twice")
    names = list(grid)
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*grid.values())
    ]


def code_version(notebook: str | Path) -> str:
    """A short hash of the notebook's cell sources and of labkit's .py files."""
    digest = hashlib.sha256()
    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        source = cell.get("source", "")
        digest.update(
            ("".join(source) if isinstance(source, list) else source).encode()
        )
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def point_name(params: dict[str, Any]) -> str:
    """A readable, unique file name for one point: 'lr=0.001,steps=50-1a2b3c'."""
    text = ",".join(f"{k}={v}" for k, v in params.items())
    safe = re.sub(r"[^A-Za-z0-9_.=,+-]", "_", text)[:80]
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    return f"{safe}-{digest.hexdigest()[:6]}"


def default_folder(notebook: str | Path) -> Path:
    """Where a sweep of ``notebook`` goes unless told: _build/sweeps/<name>."""
    return Path("_build") / "sweeps" / Path(notebook).stem


def _run_point(notebook: Path, out: Path, params: dict, cwd: Path, timeout) -> dict:
    """Run one point; never raises: the outcome is a dict."""
    start = time.perf_counter()
    try:
        records = run_notebook(notebook, out, params, cwd=cwd, timeout=timeout)
        status, error = "ok", ""
    except Exception as e:  # noqa: BLE001 (a failed run is a result, not a crash)
        records = read_records(out) if Path(out).exists() else {}
        name = getattr(e, "ename", type(e).__name__)
        value = getattr(e, "evalue", str(e))
        status, error = "failed", f"{name}: {value}".strip().splitlines()[0]
    return dict(
        status=status,
        error=error,
        seconds=round(time.perf_counter() - start, 2),
        records=records,
    )


def _done(status_file: Path, params: dict, version: str) -> dict | None:
    """The saved outcome if this point already ran ok with this code."""
    try:
        saved = json.loads(status_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # absent, or unreadable: run it again
        return None
    if not isinstance(saved, dict):
        return None
    as_saved = json.loads(json.dumps(params, default=str))  # tuples -> lists
    same = saved.get("params") == as_saved and saved.get("code_version") == version
    kept = status_file.with_suffix(".ipynb").exists()
    return saved if same and kept and saved.get("status") == "ok" else None


def sweep(
    notebook: str | Path,
    grid: dict[str, list],
    *,
    out_dir: str | Path | None = None,
    workers: int = 2,
    cwd: str | Path | None = None,
    timeout: int = 1800,
) -> list[dict[str, Any]]:
    """Run ``notebook`` once per grid point, ``workers`` at a time.

    Args:
        grid: parameter name -> list of values (``{"lr": [1e-3, 3e-3]}``).
        out_dir: the sweep folder (default ``_build/sweeps/<notebook name>``,
            ignored by git and kept out of the book and of pytest): one
            executed notebook and one status JSON per point, results.json,
            results.csv.
        cwd: the kernels' working folder (default: the notebook's folder).
    Returns one dict per point, in grid order: the parameters, then
    status ("ok" | "failed"), error, reused (True if skipped as already done),
    seconds, notebook (the executed copy), then every recorded value.
    Raises ParameterError before any run if a point does not fit the notebook.
    """
    return sweep_points(
        notebook,
        grid_points(grid),
        out_dir=out_dir,
        workers=workers,
        cwd=cwd,
        timeout=timeout,
    )


def sweep_points(
    notebook: str | Path,
    points: list[dict[str, Any]],
    *,
    out_dir: str | Path | None = None,
    workers: int = 2,
    cwd: str | Path | None = None,
    timeout: int = 1800,
) -> list[dict[str, Any]]:
    """``sweep`` over an explicit list of points instead of a product grid.

    For grids that are not products: an IsoFLOP grid gives each model size
    its own number of steps. Each point is a dict parameter name -> value;
    the same point listed twice is refused. Returns and raises as ``sweep``.
    """
    if not isinstance(points, (list, tuple)) or not points:
        raise ParameterError(f"points must be a non-empty list, got {points!r}")
    keys = [json.dumps(p, sort_keys=True, default=str) for p in points]
    twice = [p for i, p in enumerate(points) if keys[i] in keys[:i]]
    if twice:
        raise ParameterError(f"points lists {twice[0]!r} twice")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers={workers!r} must be a positive integer")
    notebook = Path(notebook)
    for params in points:
        validate_parameters(notebook, params)
    folder = Path(out_dir or default_folder(notebook))
    folder.mkdir(parents=True, exist_ok=True)
    version = code_version(notebook)
    outcomes: dict[int, dict] = {}
    todo = []
    for i, params in enumerate(points):
        saved = _done(folder / f"{point_name(params)}.json", params, version)
        if saved is not None:
            outcomes[i] = dict(saved, reused=True)
        else:
            todo.append(i)
    if todo:
        where = Path(cwd or notebook.parent).resolve()
        run = (notebook.resolve(), where, timeout)
        outcomes.update(_run_all(points, todo, folder, run, workers, version))
    rows = [_row(points[i], outcomes[i], folder) for i in range(len(points))]
    write_table(rows, folder)
    return rows


def _run_all(points, todo, folder: Path, run: tuple, workers: int, version: str):
    """Run the points ``todo``, ``workers`` at a time; {index: outcome}.

    Each run is its own kernel process; a thread here only waits on it, so
    threads are enough, start at once and need no ``__main__`` guard.
    """
    notebook, cwd, timeout = run
    outcomes = {}
    with ThreadPoolExecutor(min(workers, len(todo))) as pool:
        futures = {
            i: pool.submit(
                _run_point,
                notebook,
                (folder / f"{point_name(points[i])}.ipynb").resolve(),
                points[i],
                cwd,
                timeout,
            )
            for i in todo
        }
        for i, future in futures.items():
            try:
                outcome = future.result()
            except Exception as e:  # noqa: BLE001 (the runner itself broke)
                error = f"{type(e).__name__}: {e}".splitlines()[0]
                outcome = dict(status="failed", error=error, seconds=0, records={})
            outcome.update(params=points[i], code_version=version)
            _write_atomic(
                folder / f"{point_name(points[i])}.json",
                json.dumps(outcome, indent=1, default=str) + "\n",
            )
            outcomes[i] = dict(outcome, reused=False)
    return outcomes


def _row(params: dict, outcome: dict, folder: Path) -> dict[str, Any]:
    row = dict(params)
    row.update(
        status=outcome["status"],
        error=outcome["error"],
        reused=outcome["reused"],
        seconds=outcome["seconds"],
        notebook=str(folder / f"{point_name(params)}.ipynb"),
    )
    # recorded values never overwrite the parameters or the bookkeeping
    row.update({k: v for k, v in outcome["records"].items() if k not in row})
    return row


def write_table(rows: list[dict], folder: str | Path) -> None:
    """results.json (the list of dicts) and results.csv (lists and dicts as
    JSON text) in ``folder``; columns are the union of every row's keys."""
    folder = Path(folder)
    _write_atomic(folder / "results.json", json.dumps(rows, indent=1) + "\n")
    columns = list(dict.fromkeys(k for row in rows for k in row))
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, columns)
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                k: json.dumps(v) if isinstance(v, (list, dict)) else v
                for k, v in row.items()
            }
        )
    _write_atomic(folder / "results.csv", text.getvalue())


def failed(rows: list[dict]) -> list[dict]:
    """The rows whose run failed (each with its error)."""
    return [r for r in rows if r["status"] != "ok"]
