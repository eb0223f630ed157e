"""labkit.train: schedule, groups, config errors, loop, checkpoints, resume."""

import dataclasses
import json
import math
import random

import pytest
import torch

from labkit.data import prepare_tokens
from labkit.model import GPT, GPTConfig
from labkit.tokenizer import Tokenizer
from labkit.train import TrainConfig, lr_at, param_groups, read_run, train
from labkit.train import checkpoint as ckpt_mod

TINY = GPTConfig(vocab_size=256, context_len=16, n_layers=1, n_heads=2, d_model=16)


def _text(n_lines=400, seed=0):
    rng = random.Random(seed)
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "away"]
    return "".join(" ".join(rng.choices(words, k=8)) + ".\n" for _ in range(n_lines))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("tokens")
    return prepare_tokens(_text(), Tokenizer(), out, val_fraction=0.1, seed=0)


def _cfg(**kw):
    base = dict(
        steps=8,
        batch_size=4,
        lr=1e-2,
        min_lr=1e-3,
        warmup_steps=2,
        eval_every=4,
        eval_batches=2,
        progress=False,
        sample_tokens=8,
    )
    return TrainConfig(**{**base, **kw})


def _model(seed=0):
    torch.manual_seed(seed)
    return GPT(TINY)


def test_lr_schedule_hand_values():
    # warmup: (step + 1) / warmup * lr
    assert lr_at(0, 1.0, 0.1, 4, 20) == pytest.approx(0.25)
    assert lr_at(3, 1.0, 0.1, 4, 20) == pytest.approx(1.0)
    # cosine: at the midpoint of the decay, halfway between lr and min_lr
    assert lr_at(4 + 15 / 2, 1.0, 0.1, 4, 20) == pytest.approx(0.55)
    assert lr_at(19, 1.0, 0.1, 4, 20) == pytest.approx(0.1)
    rates = [lr_at(s, 1.0, 0.1, 4, 20) for s in range(4, 20)]
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False))


def test_param_groups_no_decay_on_norms_biases_embeddings():
    cfg = dataclasses.replace(TINY, tie_weights=False)
    decay, no_decay = param_groups(GPT(cfg), 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert "tok_emb.weight" in no_decay["names"]
    assert "pos_emb.weight" in " ".join(no_decay["names"])
    assert "lm_head.weight" in decay["names"]
    assert all(n.endswith(("bias", "weight")) for n in no_decay["names"])
    assert not any("norm" in n or n.endswith("bias") for n in decay["names"])
    total = sum(p.numel() for p in GPT(cfg).parameters())
    counted = sum(p.numel() for g in (decay, no_decay) for p in g["params"])
    assert counted == total


def test_tied_head_is_counted_once_and_not_decayed():
    decay, no_decay = param_groups(GPT(TINY), 0.1)
    names = decay["names"] + no_decay["names"]
    assert "lm_head.weight" not in names and "tok_emb.weight" in no_decay["names"]


@pytest.mark.parametrize(
    "kw, field",
    [
        (dict(lr=-1e-3), "lr"),
        (dict(warmup_steps=8), "warmup_steps"),
        (dict(batch_size=6, grad_accum=4), "grad_accum"),
        (dict(steps=0), "steps"),
        (dict(beta2=1.0), "beta2"),
        (dict(resume=True), "out_dir"),
        (dict(min_lr=1.0), "min_lr"),
    ],
)
def test_bad_config_names_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        _cfg(**kw)


def test_training_lowers_the_loss(data):
    result = train(_model(), data, _cfg(steps=30, eval_every=30))
    losses = list(result.losses.values())
    assert losses[-1] < losses[0] - 1.0
    assert result.evals[-1]["val_loss"] < math.log(256)
    assert result.evals[-1]["val_bpb"] == pytest.approx(
        result.evals[-1]["val_loss"] / math.log(2) / data.bytes_per_token("val")
    )


def test_grad_accumulation_equals_the_full_batch(data):
    a = train(_model(), data, _cfg(grad_accum=1))
    b = train(_model(), data, _cfg(grad_accum=2))
    for s in a.losses:
        assert a.losses[s] == pytest.approx(b.losses[s], abs=1e-5)


def test_resume_gives_the_identical_loss_sequence(data, tmp_path, monkeypatch):
    straight = train(_model(), data, _cfg(out_dir=str(tmp_path / "a")))
    first = train(_model(), data, _cfg(out_dir=str(tmp_path / "b"), stop_at=4))
    assert first.step == 4

    def no_unpickling(*args, **kwargs):
        raise AssertionError("a checkpoint must load without pickle")

    monkeypatch.setattr(torch, "load", no_unpickling)
    monkeypatch.setattr("pickle.loads", no_unpickling)
    monkeypatch.setattr("pickle.load", no_unpickling)
    rest = train(_model(seed=1), data, _cfg(out_dir=str(tmp_path / "b"), resume=True))
    assert min(rest.losses) == 5
    resumed = {**first.losses, **rest.losses}
    assert resumed == straight.losses  # exact, not approximate
    metrics = read_run(tmp_path / "b")["metrics"]
    assert [m["step"] for m in metrics] == list(range(1, 9))


def test_stopping_between_evaluations_still_resumes_exactly(data, tmp_path):
    straight = train(_model(), data, _cfg())
    first = train(_model(), data, _cfg(out_dir=str(tmp_path), stop_at=3))
    rest = train(_model(seed=2), data, _cfg(out_dir=str(tmp_path), resume=True))
    assert {**first.losses, **rest.losses} == straight.losses


def test_resume_with_another_model_config_lists_the_differences(data, tmp_path):
    train(_model(), data, _cfg(out_dir=str(tmp_path), stop_at=4))
    other = GPT(dataclasses.replace(TINY, n_layers=2))
    with pytest.raises(ValueError, match=r"n_layers: 1 \(checkpoint\) -> 2"):
        train(other, data, _cfg(out_dir=str(tmp_path), resume=True))


def test_run_folder_records_config_versions_and_metrics(data, tmp_path):
    tok = Tokenizer()
    train(_model(), data, _cfg(out_dir=str(tmp_path)), tokenizer=tok)
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


def test_checkpoints_are_safetensors_and_json_keeping_last_and_best(data, tmp_path):
    train(_model(), data, _cfg(out_dir=str(tmp_path), steps=16, keep_last=1))
    ckpts = ckpt_mod.list_checkpoints(tmp_path / "checkpoints")
    best = ckpt_mod.best_checkpoint(tmp_path / "checkpoints")
    assert ckpts[-1].name == "step_000016"
    assert set(ckpts) == {ckpts[-1], best}
    for p in ckpts:
        suffixes = {f.suffix for f in p.iterdir()}
        assert suffixes == {".safetensors", ".json"}


def test_killed_while_saving_leaves_the_previous_checkpoint(
    data, tmp_path, monkeypatch
):
    model = _model()
    train(model, data, _cfg(out_dir=str(tmp_path), stop_at=4))

    def dies(*args, **kwargs):
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(ckpt_mod, "save_file", dies)
    with pytest.raises(KeyboardInterrupt):
        train(_model(), data, _cfg(out_dir=str(tmp_path), resume=True))
    names = [p.name for p in ckpt_mod.list_checkpoints(tmp_path / "checkpoints")]
    assert names == ["step_000004"]
    fresh = _model(seed=5)
    info = ckpt_mod.load_checkpoint(tmp_path / "checkpoints" / names[0], fresh)
    assert info["step"] == 4
    torch.testing.assert_close(fresh.state_dict(), model.state_dict())


def test_unwritable_run_folder_fails_before_training(data, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(OSError, match="not writable"):
        train(model, data, _cfg(out_dir=str(blocker / "run")))
    torch.testing.assert_close(model.state_dict(), before)


def test_full_disk_fails_before_training(data, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(100, 100, 0))
    with pytest.raises(OSError, match="not enough free space"):
        train(_model(), data, _cfg(out_dir=str(tmp_path)))
    assert not (tmp_path / "metrics.jsonl").exists()


def test_on_eval_hook_sees_each_evaluation(data):
    seen = []
    train(_model(), data, _cfg(), on_eval=lambda step, rec: seen.append((step, rec)))
    assert [s for s, _ in seen] == [4, 8]
    assert all("val_loss" in rec and "train_loss" in rec for _, rec in seen)
    assert json.dumps([r for _, r in seen])  # records are plain data


def test_compare_runs_overlays_curves_labelled_by_the_differing_setting(data, tmp_path):
    from labkit.train.plots import compare_runs
    from labkit.train.runlog import differing_settings

    for lr in (1e-2, 3e-3):
        train(_model(), data, _cfg(out_dir=str(tmp_path / f"lr{lr}"), lr=lr))
    folders = [tmp_path / "lr0.01", tmp_path / "lr0.003"]
    assert differing_settings(folders) == {"train.lr": [1e-2, 3e-3]}
    fig = compare_runs(folders)
    assert [t.name for t in fig.data] == ["lr0.01 (lr=0.01)", "lr0.003 (lr=0.003)"]
    assert list(fig.data[0].x) == [4, 8]


def test_live_plot_keeps_one_figure_per_evaluation(data, monkeypatch):
    from labkit.train import plots

    plot = plots.LiveLossPlot(floor=0.5)
    monkeypatch.setattr(plot, "show", lambda: None)
    train(_model(), data, _cfg(), on_eval=plot)
    fig = plot.figure()
    assert list(fig.data[1].x) == [4, 8] and len(fig.data[1].y) == 2
