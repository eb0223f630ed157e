"""labkit.train.runlog: the run record, the append-only logs and their
recovery after a write cut short."""

import json
import os

import pytest
import torch

from labkit.tokenizer import Tokenizer
from labkit.train import FileFormatError, read_run, runlog, train


def test_run_folder_records_config_versions_and_metrics(data, model, cfg, tmp_path):
    tok = Tokenizer()
    train(model(), data, cfg(out_dir=str(tmp_path)), tokenizer=tok)
    run = read_run(tmp_path)
    record = run["run"]
    assert record["train_config"]["lr"] == 1e-2
    assert record["model_config"]["d_model"] == 16
    assert record["data_manifest"]["tokenizer"]["sha256"] == record["tokenizer_sha256"]
    assert "torch" in record["versions"] and "git_commit" in record
    assert record["wall_s"] > 0 and record["device"] == "cpu"
    lines = run["metrics"]
    assert {"loss", "lr", "grad_norm", "tokens_per_s"} <= set(lines[0])
    assert "val_loss" in lines[3] and "val_bpb" in lines[3]
    assert [s["step"] for s in run["samples"]] == [4, 8]
    assert run["samples"][0]["text"].startswith("Once upon a time")


def test_unwritable_run_folder_fails_before_training(data, model, tmp_path, cfg):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    net = model()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(OSError, match="not writable"):
        train(net, data, cfg(out_dir=str(blocker / "run")))
    torch.testing.assert_close(net.state_dict(), before)


def test_full_disk_fails_before_training(data, model, cfg, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(100, 100, 0))
    with pytest.raises(OSError, match="not enough free space"):
        train(model(), data, cfg(out_dir=str(tmp_path)))
    assert not (tmp_path / "metrics.jsonl").exists()


def test_a_last_line_cut_short_is_skipped_and_dropped_on_resume(half_run):
    log = half_run / "metrics.jsonl"
    with open(log, "a") as f:
        f.write('{"step": 5, "loss": 2.')  # a kill in the middle of a write
    assert [m["step"] for m in read_run(half_run)["metrics"]] == [1, 2, 3, 4]
    runlog.MetricsLog(half_run).truncate_after(4)
    assert log.read_text().endswith("}\n") and log.read_text().count("\n") == 4


def test_a_bad_line_before_the_last_names_the_file_and_line(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(
        '{"step": 1}\n{"step": 2, "lo\n{"step": 3}\n'
    )
    with pytest.raises(FileFormatError, match=r"metrics.jsonl, line 2: not a JSON"):
        runlog.read_jsonl(tmp_path / "metrics.jsonl")
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n[2]\n')
    with pytest.raises(FileFormatError, match=r"line 2: not a JSON object"):
        runlog.read_jsonl(tmp_path / "metrics.jsonl")


def test_truncate_rewrites_through_a_temporary_file(half_run, monkeypatch):
    log = half_run / "metrics.jsonl"
    before = log.read_text()
    seen = []

    def killed(src, dst):
        seen.append((os.path.basename(src), os.path.basename(dst)))
        raise KeyboardInterrupt("killed before the rename")

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        runlog.MetricsLog(half_run).truncate_after(2)
    assert seen == [("metrics.jsonl.tmp", "metrics.jsonl")]
    assert log.read_text() == before  # the log itself was never opened to write


def test_read_run_names_a_bad_run_json(half_run):
    (half_run / "run.json").write_text('{"train_config": ')
    with pytest.raises(FileFormatError, match=r"run.json is not valid JSON"):
        read_run(half_run)
    (half_run / "run.json").write_text(json.dumps(["a", "list"]))
    with pytest.raises(FileFormatError, match=r"run.json holds a JSON list"):
        read_run(half_run)


def test_existing_run_says_what_the_folder_holds(half_run, tmp_path):
    assert runlog.existing_run(tmp_path / "nothing-here") is None
    held = runlog.existing_run(half_run)
    assert held == "run.json, metrics.jsonl, 1 checkpoint (newest: step 4)"


def test_a_new_run_in_a_used_folder_starts_over(half_run, data, model, cfg):
    """The Python API: resume=False replaces the old run instead of mixing."""
    (half_run / "checkpoints" / "step_000004").rename(
        half_run / "checkpoints" / "step_000012"
    )  # an old run's later checkpoint, which the new run would never replace
    info = json.loads(
        (half_run / "checkpoints" / "step_000012" / "state.json").read_text()
    )
    info["step"] = 12
    (half_run / "checkpoints" / "step_000012" / "state.json").write_text(
        json.dumps(info)
    )
    train(model(), data, cfg(out_dir=str(half_run), steps=4, warmup_steps=1))
    steps = [p.name for p in (half_run / "checkpoints").iterdir()]
    assert steps == ["step_000004"]
    assert [m["step"] for m in read_run(half_run)["metrics"]] == [1, 2, 3, 4]
