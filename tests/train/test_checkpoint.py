"""labkit.train.checkpoint: exact resume, last + best kept, atomic saves, and
every bad checkpoint file refused in one line before anything changes."""

import dataclasses
import json
import pickle
import random
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from labkit.model import GPT
from labkit.train import FileFormatError, read_run, train
from labkit.train import checkpoint as ckpt_mod
from labkit.train.optim import make_optimizer


def test_resume_gives_the_identical_loss_sequence(
    data, model, cfg, tmp_path, monkeypatch
):
    straight = train(model(), data, cfg(out_dir=str(tmp_path / "a")))
    first = train(model(), data, cfg(out_dir=str(tmp_path / "b"), stop_at=4))
    assert first.step == 4

    def no_unpickling(*args, **kwargs):
        raise AssertionError("a checkpoint must load without pickle")

    monkeypatch.setattr(torch, "load", no_unpickling)
    monkeypatch.setattr("pickle.loads", no_unpickling)
    monkeypatch.setattr("pickle.load", no_unpickling)
    rest = train(model(seed=1), data, cfg(out_dir=str(tmp_path / "b"), resume=True))
    assert min(rest.losses) == 5
    resumed = {**first.losses, **rest.losses}
    assert resumed == straight.losses  # exact, not approximate
    metrics = read_run(tmp_path / "b")["metrics"]
    assert [m["step"] for m in metrics] == list(range(1, 9))


def test_stopping_between_evaluations_still_resumes_exactly(data, model, cfg, tmp_path):
    straight = train(model(), data, cfg())
    first = train(model(), data, cfg(out_dir=str(tmp_path), stop_at=3))
    rest = train(model(seed=2), data, cfg(out_dir=str(tmp_path), resume=True))
    assert {**first.losses, **rest.losses} == straight.losses


def test_resume_with_another_model_config_lists_the_differences(
    data, model, cfg, tiny_cfg, half_run
):
    other = GPT(dataclasses.replace(tiny_cfg, n_layers=2))
    with pytest.raises(ValueError, match=r"n_layers: 1 \(checkpoint\) -> 2"):
        train(other, data, cfg(out_dir=str(half_run), resume=True))


def test_checkpoints_are_safetensors_and_json_keeping_last_and_best(
    data, model, cfg, tmp_path
):
    train(model(), data, cfg(out_dir=str(tmp_path), steps=16, keep_last=1))
    ckpts = ckpt_mod.list_checkpoints(tmp_path / "checkpoints")
    best = ckpt_mod.best_checkpoint(tmp_path / "checkpoints")
    assert ckpts[-1].name == "step_000016"
    assert set(ckpts) == {ckpts[-1], best}
    for p in ckpts:
        suffixes = {f.suffix for f in p.iterdir()}
        assert suffixes == {".safetensors", ".json"}
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == sorted(
        p.name for p in ckpts
    )  # nothing else is left in the folder


def test_killed_while_saving_leaves_the_previous_checkpoint(
    data, model, cfg, tmp_path, monkeypatch
):
    net = model()
    train(net, data, cfg(out_dir=str(tmp_path), stop_at=4))

    def dies(*args, **kwargs):
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(ckpt_mod, "save_file", dies)
    with pytest.raises(KeyboardInterrupt):
        train(model(), data, cfg(out_dir=str(tmp_path), resume=True))
    names = [p.name for p in ckpt_mod.list_checkpoints(tmp_path / "checkpoints")]
    assert names == ["step_000004"]
    fresh = model(seed=5)
    info = ckpt_mod.load_checkpoint(tmp_path / "checkpoints" / names[0], fresh)
    assert info["step"] == 4
    torch.testing.assert_close(fresh.state_dict(), net.state_dict())


def test_prune_removes_what_a_killed_save_or_prune_left(half_run):
    ckpts = half_run / "checkpoints"
    for leftover in (".step_000002.del", ".step_000006.tmp"):
        (ckpts / leftover).mkdir()
        (ckpts / leftover / "model.safetensors").write_bytes(b"half")
    (ckpts / "step_000003").mkdir()  # no state.json: never a checkpoint
    assert [p.name for p in ckpt_mod.list_checkpoints(ckpts)] == ["step_000004"]
    ckpt_mod.prune(ckpts, keep_last=2)
    assert sorted(p.name for p in ckpts.iterdir()) == ["step_000003", "step_000004"]


# --- bad files --------------------------------------------------------------------
def _newest(run: Path) -> Path:
    return ckpt_mod.list_checkpoints(run / "checkpoints")[-1]


def _edit_tensors(path: Path, edit) -> None:
    tensors = load_file(str(path))
    edit(tensors)
    save_file(tensors, str(path))


def _set_nan(tensors, prefix):
    name = next(k for k in sorted(tensors) if k.startswith(prefix))
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[0] = float("nan")


def _reshape_first(tensors, prefix):
    name = next(k for k in sorted(tensors) if k.startswith(prefix))
    tensors[name] = torch.zeros(3, 5)


def _corrupt(path: Path, how: str) -> None:
    raw = path.read_bytes()
    if how == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(random.Random(0).randbytes(300))
    elif how == "pickle":
        path.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    elif how == "torch zip":
        torch.save({"w": torch.ones(2)}, path)
    elif how == "nan weight":
        _edit_tensors(path, lambda t: _set_nan(t, ""))
    elif how == "nan moment":
        _edit_tensors(path, lambda t: _set_nan(t, "optim."))
    elif how == "missing tensor":
        _edit_tensors(path, lambda t: t.pop(sorted(t)[-1]))
    elif how == "wrong shape":
        _edit_tensors(
            path, lambda t: _reshape_first(t, "" if "model" in path.name else "optim.")
        )
    else:  # state.json edits
        info = json.loads(raw)
        if how == "json list":
            info = [info]
        elif how == "no step":
            del info["step"]
        elif how == "step text":
            info["step"] = "four"
        elif how == "no optimizer":
            del info["optimizer"]
        elif how == "groups lost":
            info["optimizer"]["param_groups"] = info["optimizer"]["param_groups"][:1]
        elif how == "other format":
            info["format"] = "nanogpt"
        path.write_text(json.dumps(info))


BAD_FILES = [
    ("model.safetensors", how)
    for how in ("truncated", "empty", "garbage", "pickle", "torch zip", "nan weight",
                "missing tensor", "wrong shape")
] + [
    ("state.safetensors", how)
    for how in ("truncated", "empty", "garbage", "pickle", "nan moment",
                "missing tensor", "wrong shape")
] + [
    ("state.json", how)
    for how in ("truncated", "empty", "garbage", "pickle", "json list", "no step",
                "step text", "no optimizer", "groups lost", "other format")
]  # fmt: skip


def _snapshot(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file()
    }


@pytest.mark.parametrize("name, how", BAD_FILES)
def test_a_bad_checkpoint_file_is_one_line_naming_it_and_changes_nothing(
    name, how, half_run, model, cfg
):
    ckpt = _newest(half_run)
    _corrupt(ckpt / name, how)
    net = model(seed=3)
    opt = make_optimizer(net, cfg())
    gen = torch.Generator().manual_seed(7)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(FileFormatError) as err:
        ckpt_mod.load_checkpoint(ckpt, net, opt, gen)
    message = str(err.value)
    assert str(ckpt / name) in message and "\n" not in message
    torch.testing.assert_close(net.state_dict(), before)
    assert opt.state_dict()["state"] == {}
    assert torch.equal(gen.get_state(), torch.Generator().manual_seed(7).get_state())


@pytest.mark.parametrize(
    "name, how",
    [("model.safetensors", "truncated"), ("state.safetensors", "missing tensor"),
     ("state.json", "garbage"), ("state.json", "groups lost")],
)  # fmt: skip
def test_resuming_from_a_bad_checkpoint_fails_before_writing(
    name, how, half_run, data, model, cfg
):
    _corrupt(_newest(half_run) / name, how)
    before = _snapshot(half_run)
    with pytest.raises(FileFormatError, match=str(_newest(half_run) / name)):
        train(model(), data, cfg(out_dir=str(half_run), resume=True))
    assert _snapshot(half_run) == before


def test_a_state_past_the_end_of_the_run_is_refused(half_run, data, model, cfg):
    ckpts = half_run / "checkpoints"
    info = json.loads((ckpts / "step_000004" / "state.json").read_text())
    shutil.copytree(ckpts / "step_000004", ckpts / "step_000999")
    info["step"] = 999
    (ckpts / "step_000999" / "state.json").write_text(json.dumps(info))
    before = _snapshot(half_run)
    with pytest.raises(ValueError, match="its step 999 is past the end of this run"):
        train(model(), data, cfg(out_dir=str(half_run), resume=True))
    assert _snapshot(half_run) == before
    with pytest.raises(FileFormatError, match="says step 4, its folder step_000999"):
        info["step"] = 4
        (ckpts / "step_000999" / "state.json").write_text(json.dumps(info))
        ckpt_mod.read_info(ckpts / "step_000999")


def test_model_from_checkpoint_builds_the_saved_model(half_run, model):
    ckpt = _newest(half_run)
    rebuilt = ckpt_mod.model_from_checkpoint(ckpt)
    trained = model(seed=9)
    ckpt_mod.load_checkpoint(ckpt, trained)
    torch.testing.assert_close(rebuilt.state_dict(), trained.state_dict())
    info = json.loads((ckpt / "state.json").read_text())
    info["model_config"]["d_model"] = 15  # not divisible by n_heads=2
    (ckpt / "state.json").write_text(json.dumps(info))
    with pytest.raises(FileFormatError, match="model_config is not a valid GPTConfig"):
        ckpt_mod.model_from_checkpoint(ckpt)
    info["model_config"]["colour"] = "red"
    (ckpt / "state.json").write_text(json.dumps(info))
    with pytest.raises(FileFormatError, match=r"unknown fields \['colour'\]"):
        ckpt_mod.model_from_checkpoint(ckpt)
