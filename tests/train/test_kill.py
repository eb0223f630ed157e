"""kill -9 at each file operation a run makes: the run resumes (or re-runs)
to the same losses, with every metrics line, and leaves nothing behind.

Each test runs training in a fresh Python process that SIGKILLs itself at one
audit event (an open for writing, a rename, a delete), sometimes first leaving
the file as a kill would (emptied just after open, or half a line appended),
then resumes in this process.
"""

import json
from pathlib import Path

import pytest

from labkit.train import checkpoint as ckpt_mod
from labkit.train import read_run, train

pytestmark = pytest.mark.slow  # a few seconds each: a process per kill


def _resume_and_check(run: Path, data, model, cfg, straight, **kw):
    rest = train(model(seed=4), data, cfg(out_dir=str(run), resume=True, **kw))
    metrics = read_run(run)["metrics"]
    steps = kw.get("steps", 8)
    assert [m["step"] for m in metrics] == list(range(1, steps + 1))
    if steps == 8:
        logged = {m["step"]: m["loss"] for m in metrics}
        assert logged == pytest.approx(straight, rel=1e-6)
    for ckpt in ckpt_mod.list_checkpoints(run / "checkpoints"):
        ckpt_mod.load_checkpoint(ckpt, model())  # each one loads
    left = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert left == [p.name for p in ckpt_mod.list_checkpoints(run / "checkpoints")]
    return rest


def test_killed_just_after_a_checkpoint_keeps_its_metrics_line(
    killed_train, tmp_path, data, model, cfg, straight
):
    run = tmp_path / "run"
    # the checkpoint's rename is done; die at the very next file opened
    spec = {"event": "os.rename", "contains": ["step_000004"], "then": "open"}
    killed_train(spec, run)
    assert [p.name for p in ckpt_mod.list_checkpoints(run / "checkpoints")] == [
        "step_000004"
    ]
    assert [m["step"] for m in read_run(run)["metrics"]] == [1, 2, 3, 4]
    _resume_and_check(run, data, model, cfg, straight)


def test_killed_while_resume_rewrites_the_metrics(
    killed_train, half_run, data, model, cfg, straight
):
    spec = {"event": "open", "mode": "w", "contains": ["metrics.jsonl"],
            "effect": "truncate"}  # fmt: skip
    killed_train(spec, half_run, resume=True)
    assert [m["step"] for m in read_run(half_run)["metrics"]] == [1, 2, 3, 4]
    _resume_and_check(half_run, data, model, cfg, straight)


def test_killed_in_the_middle_of_a_metrics_line(
    killed_train, tmp_path, data, model, cfg, straight
):
    run = tmp_path / "run"
    spec = {"event": "open", "mode": "a", "contains": ["metrics.jsonl"], "nth": 6,
            "effect": "half-line"}  # fmt: skip
    killed_train(spec, run)
    assert (run / "metrics.jsonl").read_text().endswith('"loss": 1.2')
    assert [m["step"] for m in read_run(run)["metrics"]] == [1, 2, 3, 4, 5]
    _resume_and_check(run, data, model, cfg, straight)


def test_killed_while_saving_a_checkpoint(
    killed_train, tmp_path, data, model, cfg, straight
):
    run = tmp_path / "run"
    spec = {"event": "open", "mode": "w", "contains": ["step_000008", "state.json"]}
    killed_train(spec, run)
    assert [p.name for p in ckpt_mod.list_checkpoints(run / "checkpoints")] == [
        "step_000004"
    ]
    _resume_and_check(run, data, model, cfg, straight)


def test_killed_while_prune_deletes_a_checkpoint(
    killed_train, tmp_path, data, model, cfg
):
    run = tmp_path / "run"
    # after step 8, prune deletes step 4 (keep_last=1, best = 8): die after the
    # first file of that folder is gone
    spec = {"event": "shutil.rmtree", "contains": ["step_000004"],
            "then": "os.remove", "then_nth": 2}  # fmt: skip
    killed_train(spec, run, steps=12, keep_last=1)
    for ckpt in ckpt_mod.list_checkpoints(run / "checkpoints"):
        ckpt_mod.load_checkpoint(ckpt, model())  # no half-deleted checkpoint is listed
    _resume_and_check(run, data, model, cfg, None, steps=12, keep_last=1)


def test_killed_while_writing_run_json(
    killed_train, half_run, data, model, cfg, straight
):
    spec = {
        "event": "open",
        "mode": "w",
        "contains": ["run.json"],
        "effect": "truncate",
    }
    killed_train(spec, half_run, resume=True)
    assert read_run(half_run)["run"]["train_config"]["steps"] == 8
    _resume_and_check(half_run, data, model, cfg, straight)


SWEEP = """
import json, sys
from pathlib import Path
import labkit.sweep
from labkit.sweep import sweep

def fake_run(notebook, out, params, cwd=None, timeout=None):
    Path(out).write_text(json.dumps({"cells": []}))
    return {"twice": 2 * params["n"]}

labkit.sweep.run_notebook = fake_run
nb, out = json.loads(sys.argv[2])
sweep(nb, {"n": [1, 2]}, out_dir=out, workers=1)
"""


def test_killed_while_a_sweep_writes_a_status_file(run_killed, tmp_path, monkeypatch):
    from notebook_factory import make_notebook

    import labkit.sweep
    from labkit.sweep import sweep

    nb = make_notebook(tmp_path / "ch.ipynb")
    out = tmp_path / "sweep"
    spec = {"event": "open", "mode": "w", "contains": ["n=2", ".json"],
            "effect": "truncate"}  # fmt: skip
    run_killed(spec, SWEEP, [str(nb), str(out)])
    ran = []

    def fake_run(notebook, out, params, cwd=None, timeout=None):
        ran.append(params["n"])
        Path(out).write_text(json.dumps({"cells": []}))
        return {"twice": 2 * params["n"]}

    monkeypatch.setattr(labkit.sweep, "run_notebook", fake_run)
    rows = sweep(nb, {"n": [1, 2]}, out_dir=out, workers=1)
    assert ran == [2]  # n=1 was done; n=2's status never got written
    assert [(r["n"], r["status"], r["twice"]) for r in rows] == [
        (1, "ok", 2),
        (2, "ok", 4),
    ]
