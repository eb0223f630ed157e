"""labkit.sweep: parallel papermill runs, one results table, reuse, failures."""

import csv
import json
from pathlib import Path

import pytest
from notebook_factory import make_notebook

from labkit import cli
from labkit.experiments import ParameterError
from labkit.sweep import (
    code_version,
    failed,
    grid_points,
    point_name,
    sweep,
    sweep_points,
)

# n=1 and n=2 wait for each other (they only finish if they run at the same
# time); n=2 then fails after recording; every other n records its length.
BARRIER = """import pathlib, time
pathlib.Path(f"started-{n}").touch()
if n in (1, 2):
    other, deadline = pathlib.Path(f"started-{3 - n}"), time.time() + 60
    while not other.exists() and time.time() < deadline:
        time.sleep(0.05)
    record("saw_other", other.exists())"""
BODY = (
    "from labkit.experiments import check_parameters, record\n"
    "check_parameters(globals())",
    BARRIER,
    "if n == 2:\n    raise RuntimeError('two is not allowed')",
    "record('length', len(word * n))\nrecord('text', [word] * n)",
)


def test_grid_points_and_names():
    assert grid_points({"a": [1, 2], "b": ["x", "y"]}) == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
    ]
    with pytest.raises(ParameterError, match=r"grid\['a'\] must be a non-empty"):
        grid_points({"a": []})
    with pytest.raises(ParameterError, match=r"grid\['a'\] lists 2 twice"):
        grid_points({"a": [1, 2, 2]})
    assert point_name({"lr": 0.001, "s": "a b"}).startswith("lr=0.001,s=a_b-")
    assert point_name({"x": 1}) != point_name({"x": "1"})


def test_code_version_follows_the_notebook_source(tmp_path):
    a = make_notebook(tmp_path / "a.ipynb")
    b = make_notebook(tmp_path / "b.ipynb")
    assert code_version(a) == code_version(b)
    make_notebook(b, body=("print(1)",))
    assert code_version(a) != code_version(b)


def test_bad_input_fails_before_any_run(tmp_path, capsys):
    nb = make_notebook(tmp_path / "ch.ipynb")
    out = tmp_path / "sweep"
    with pytest.raises(ParameterError, match="has no parameter 'm'"):
        sweep(nb, {"n": [1], "m": [2]}, out_dir=out)
    with pytest.raises(ParameterError, match="'n' of ch.ipynb must be int, got str"):
        sweep(nb, {"n": [1, "two"]}, out_dir=out)
    bare = make_notebook(tmp_path / "bare.ipynb", tag_parameters=False)
    with pytest.raises(ParameterError, match="exactly one cell tagged 'parameters'"):
        sweep(bare, {"n": [1]}, out_dir=out)
    with pytest.raises(ValueError, match="workers=0 must be a positive integer"):
        sweep(nb, {"n": [1]}, out_dir=out, workers=0)
    # the command line: one line on stderr, exit status 2
    assert cli.main(["sweep", str(nb), "-p", "n", "1,x", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("labkit: error: parameter 'n' of ch.ipynb must be int")
    assert not out.exists()


@pytest.mark.slow
def test_sweep_runs_in_parallel_reports_failures_and_reuses(
    tmp_path, capsys, monkeypatch
):
    make_notebook(tmp_path / "nbs" / "ch.ipynb", body=BODY)
    monkeypatch.chdir(tmp_path)  # relative paths, as a reader types them
    nb, out = Path("nbs/ch.ipynb"), Path("sweep")
    rows = sweep(nb, {"n": [1, 2, 3], "word": ["ab"]}, out_dir=out, workers=2)
    assert Path.cwd() == tmp_path  # papermill's chdir is not used
    assert (tmp_path / "nbs" / "started-3").exists()  # kernels ran in nbs/
    assert [r["n"] for r in rows] == [1, 2, 3]
    assert [r["status"] for r in rows] == ["ok", "failed", "ok"]
    assert rows[0]["saw_other"] and rows[1]["saw_other"]  # ran side by side
    assert [r.get("length") for r in rows] == [2, None, 6]
    assert rows[2]["text"] == ["ab", "ab", "ab"]
    assert failed(rows) == [rows[1]]
    assert rows[1]["error"] == "RuntimeError: two is not allowed"
    assert not any(r["reused"] for r in rows)
    assert all(Path(r["notebook"]).is_file() for r in rows)  # failed one too
    table = list(csv.DictReader(open(out / "results.csv")))
    assert [t["status"] for t in table] == ["ok", "failed", "ok"]
    assert table[1]["error"] == "RuntimeError: two is not allowed"
    assert table[2]["text"] == '["ab", "ab", "ab"]'
    assert json.loads((out / "results.json").read_text()) == rows

    # again from the command line, grown: 3 is reused, 2 retried, 4 is new
    args = ["sweep", str(nb), "-p", "n", "2,3,4", "-p", "word", "ab"]
    assert cli.main(args + ["--out", str(out), "--workers", "2"]) == 1
    printed = capsys.readouterr().out
    assert "failed n=2, word=ab" in printed and "two is not allowed" in printed
    assert "ok     n=3, word=ab (reused)" in printed
    assert "3 runs, 1 failed" in printed
    again = json.loads((out / "results.json").read_text())
    assert [r["reused"] for r in again] == [False, True, False]
    assert [r.get("length") for r in again] == [None, 6, 8]

    # new code: nothing is reused
    make_notebook(nb, body=BODY[:1] + BODY[3:])
    (changed,) = sweep(nb, {"n": [3], "word": ["ab"]}, out_dir=out)
    assert changed["reused"] is False and changed["length"] == 6


def _fake_runs(monkeypatch, ran):
    import labkit.sweep

    def fake_run(notebook, out, params, cwd=None, timeout=None):
        ran.append(params["n"])
        Path(out).write_text(json.dumps({"cells": []}))
        return {"twice": 2 * params["n"]}

    monkeypatch.setattr(labkit.sweep, "run_notebook", fake_run)


@pytest.mark.parametrize("content", ["", '{"status": "ok", "par', "[1, 2]", "\x00\xff"])
def test_an_unreadable_status_file_reruns_its_point(content, tmp_path, monkeypatch):
    nb = make_notebook(tmp_path / "ch.ipynb")
    out = tmp_path / "sweep"
    ran = []
    _fake_runs(monkeypatch, ran)
    sweep(nb, {"n": [1, 2]}, out_dir=out, workers=1)
    (out / f"{point_name({'n': 2})}.json").write_text(content)  # as a kill leaves it
    rows = sweep(nb, {"n": [1, 2]}, out_dir=out, workers=1)
    assert ran == [1, 2, 2] and [r["reused"] for r in rows] == [True, False]
    assert [r["twice"] for r in rows] == [2, 4]
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".tmp") == []


def test_sweep_writes_every_file_through_a_temporary_one(tmp_path, monkeypatch):
    import os

    nb = make_notebook(tmp_path / "ch.ipynb")
    _fake_runs(monkeypatch, [])
    renames = []
    real = os.replace
    monkeypatch.setattr(
        os, "replace", lambda a, b: (renames.append(Path(b).name), real(a, b))
    )
    sweep(nb, {"n": [1]}, out_dir=tmp_path / "sweep", workers=1)
    assert renames == [f"{point_name({'n': 1})}.json", "results.json", "results.csv"]


def test_sweep_module_knows_nothing_of_the_command_line():
    import ast

    import labkit.sweep

    tree = ast.parse(Path(labkit.sweep.__file__).read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert not {"labkit.cli", "argparse"} & imported


def test_sweep_points_runs_a_list_that_is_not_a_product(tmp_path):
    nb = make_notebook(tmp_path / "w.ipynb")  # records len(word * n)
    points = [{"word": "x", "n": 4}, {"word": "yz", "n": 3}]
    rows = sweep_points(nb, points, out_dir=tmp_path / "out", workers=2)
    assert [(r["word"], r["n"], r["length"]) for r in rows] == [
        ("x", 4, 4),
        ("yz", 3, 6),
    ]
    again = sweep_points(nb, points[::-1], out_dir=tmp_path / "out")
    assert [r["reused"] for r in again] == [True, True]  # same points, any order
    with pytest.raises(ParameterError, match="lists .* twice"):
        sweep_points(nb, [points[0], dict(points[0])], out_dir=tmp_path / "out")
    with pytest.raises(ParameterError, match="non-empty list"):
        sweep_points(nb, [], out_dir=tmp_path / "out")
