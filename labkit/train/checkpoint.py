"""Checkpoints: safetensors + JSON, written atomically, pruned to last K + best.

A checkpoint is a folder ``checkpoints/step_000100/`` holding

* ``model.safetensors``: the weights (tied weights stored once);
* ``state.safetensors``: the optimizer's moment tensors and the RNG states
  (torch CPU, CUDA, and the batch generator, i.e. the data position);
* ``state.json``: the step, the optimizer's hyper-parameters, the model and
  train configs, the eval losses.

The folder is first written as ``.step_000100.tmp``, every file flushed to
disk, then renamed: a process killed while saving leaves only a temporary
folder, which loading ignores. Deleting goes the same way backwards: a folder
is renamed to ``.step_000100.del`` (at once no longer a checkpoint), then
removed; leftovers of either kind are cleaned at the next prune.
Loading checks every file first (names, shapes, finite values, the JSON's
entries) and only then changes the model, optimizer and generator: a bad file
is a FileFormatError naming it, and leaves them as they were. Nothing is ever
unpickled. Built in: notebooks/11_training_loop.ipynb (save, kill, resume).
"""

import dataclasses
import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file, save_model

from labkit.model import GPT, GPTConfig
from labkit.train import state as state_mod
from labkit.train.files import (
    FileFormatError,
    finite_number,
    fsync_file,
    read_json,
    read_safetensors,
    require,
)

PREFIX = "step_"
FORMAT = "labkit.checkpoint/1"
FILES = ("model.safetensors", "state.safetensors", "state.json")


def _remove_dir(folder: Path) -> None:
    """Rename, then delete: a kill midway leaves a '.del' folder, not a
    half-deleted checkpoint."""
    doomed = folder.with_name(f".{folder.name}.del")
    if doomed.exists():
        shutil.rmtree(doomed)
    os.replace(folder, doomed)
    shutil.rmtree(doomed)


def save_checkpoint(
    ckpt_dir: Path, step: int, model, optimizer, generator, info: dict
) -> Path:
    """Write checkpoint ``step`` atomically under ckpt_dir; return its folder."""
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    final = ckpt_dir / f"{PREFIX}{step:06d}"
    tmp = ckpt_dir / f".{final.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_model(model, str(tmp / "model.safetensors"))
    tensors, optim_info = state_mod.optimizer_to_flat(optimizer)
    tensors.update(state_mod.rng_tensors(generator))
    save_file(tensors, str(tmp / "state.safetensors"))
    record = {"format": FORMAT, "step": step, "optimizer": optim_info, **info}
    (tmp / "state.json").write_text(json.dumps(record, indent=1) + "\n")
    for name in FILES:
        fsync_file(tmp / name)
    if final.exists():  # the same step saved again (after a resume)
        _remove_dir(final)
    os.replace(tmp, final)
    return final


def list_checkpoints(ckpt_dir: Path) -> list[Path]:
    """Complete checkpoints (temporary folders ignored), oldest step first."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    found = [
        p
        for p in ckpt_dir.iterdir()
        if p.is_dir()
        and p.name.startswith(PREFIX)
        and p.name[len(PREFIX) :].isdigit()
        and (p / "state.json").exists()
    ]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def read_info(ckpt: Path) -> dict:
    """The checkpoint's state.json, checked: format, step (matching the folder
    name), optimizer settings, model config, losses."""
    path = Path(ckpt) / "state.json"
    info = read_json(path, "a checkpoint's state.json")
    require(info, {"format": str, "step": int, "optimizer": dict}, path)
    if info["format"] != FORMAT:
        raise FileFormatError(
            f"{path} has format {info['format']!r}; labkit reads {FORMAT!r}"
        )
    name = Path(ckpt).name
    if name.startswith(PREFIX) and name[len(PREFIX) :] != f"{info['step']:06d}":
        raise FileFormatError(f"{path} says step {info['step']}, its folder {name}")
    if info["step"] < 0:
        raise FileFormatError(f"{path}: step {info['step']} is negative")
    if info.get("model_config") is not None:
        require(info, {"model_config": dict}, path)
    for key in ("val_loss", "best_val_loss"):
        if info.get(key) is not None and not finite_number(info[key]):
            raise FileFormatError(f"{path}: {key} is {info[key]!r}, not a number")
    return info


def best_checkpoint(ckpt_dir: Path) -> Path | None:
    """The checkpoint with the lowest recorded val_loss (None if none has one)."""
    scored = [(read_info(p).get("val_loss"), p) for p in list_checkpoints(ckpt_dir)]
    scored = [(loss, p) for loss, p in scored if loss is not None]
    return min(scored, key=lambda s: s[0])[1] if scored else None


def clean_leftovers(ckpt_dir: Path) -> list[Path]:
    """Remove the '.tmp' and '.del' folders a kill left behind; return them."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    left = [
        p
        for p in ckpt_dir.iterdir()
        if p.is_dir() and p.name.startswith(".") and p.suffix in (".tmp", ".del")
    ]
    for p in left:
        shutil.rmtree(p)
    return left


def prune(ckpt_dir: Path, keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` and the best; return the deleted.

    Also removes what a killed save or prune left behind.
    """
    ckpts = list_checkpoints(ckpt_dir)
    keep = set(ckpts[-keep_last:])
    best = best_checkpoint(ckpt_dir)
    if best is not None:
        keep.add(best)
    gone = [p for p in ckpts if p not in keep]
    for p in gone:
        _remove_dir(p)
    clean_leftovers(ckpt_dir)
    return gone


def config_differences(saved: dict, now: dict) -> list[str]:
    """Fields whose values differ, as 'name: saved -> now' lines."""
    keys = sorted(set(saved) | set(now))
    missing = object()
    out = []
    for k in keys:
        a, b = saved.get(k, missing), now.get(k, missing)
        if a != b:
            a = "(absent)" if a is missing else repr(a)
            b = "(absent)" if b is missing else repr(b)
            out.append(f"{k}: {a} (checkpoint) -> {b} (now)")
    return out


def check_weights(model, tensors: dict, path: Path) -> dict[str, torch.Tensor]:
    """The full state dict to load into ``model`` from a file's tensors.

    A tied weight is stored under one of its names; the others get the same
    tensor. Raises FileFormatError naming ``path`` for a missing, unexpected,
    mis-shaped or non-float tensor, before anything is loaded.
    """
    own = model.state_dict()
    aliases: dict[tuple, list[str]] = {}
    for name, t in own.items():  # names sharing storage are one tensor
        key = (t.data_ptr(), t.shape) if t.numel() else (name,)
        aliases.setdefault(key, []).append(name)
    full, missing = {}, []
    for names in aliases.values():
        stored = [n for n in names if n in tensors]
        if not stored:
            missing.append(names[0])
        full.update({n: tensors[stored[0]] for n in names if stored})
    extra = sorted(set(tensors) - set(own))
    if missing or extra:
        raise FileFormatError(
            f"{path} does not hold this model's weights: missing {missing[:4]}, "
            f"unexpected {extra[:4]}"
        )
    for name, t in full.items():
        if t.shape != own[name].shape:
            raise FileFormatError(
                f"{path}: {name!r} has shape {tuple(t.shape)}, the model's "
                f"{tuple(own[name].shape)}"
            )
        if own[name].is_floating_point() and not t.is_floating_point():
            raise FileFormatError(f"{path}: {name!r} is {t.dtype}, not a float")
    return full


def model_from_checkpoint(ckpt: Path):
    """A labkit GPT built from a checkpoint's model_config, its weights loaded.

    Raises FileFormatError naming state.json when the config is absent or is
    not a valid GPTConfig, and as load_checkpoint for the weights.
    """
    path = Path(ckpt) / "state.json"
    info = read_info(ckpt)
    saved = info.get("model_config")
    if saved is None:
        raise FileFormatError(f"{path} has no model_config: cannot build the model")
    known = {f.name for f in dataclasses.fields(GPTConfig)}
    if set(saved) - known:
        raise FileFormatError(
            f"{path}: model_config has unknown fields {sorted(set(saved) - known)}"
        )
    try:
        model = GPT(GPTConfig(**saved))
    except (TypeError, ValueError, RuntimeError) as e:
        raise FileFormatError(
            f"{path}: model_config is not a valid GPTConfig: {e}"
        ) from None
    load_checkpoint(ckpt, model)
    return model


def load_checkpoint(
    ckpt: Path, model, optimizer=None, generator=None, model_config=None
) -> dict:
    """Load weights (and optimizer and RNG when given) from a checkpoint folder.

    With ``model_config`` (a dict), refuse a checkpoint of another model shape,
    listing the differing fields. Every file is checked before anything is
    loaded (FileFormatError naming the file). Returns the state.json record.
    """
    ckpt = Path(ckpt)
    info = read_info(ckpt)
    if model_config is not None and info.get("model_config") is not None:
        diff = config_differences(info["model_config"], model_config)
        if diff:
            raise ValueError(
                f"cannot resume from {ckpt}: the model config differs: "
                + "; ".join(diff)
            )
    path = ckpt / "model.safetensors"
    weights = check_weights(model, read_safetensors(path)[0], path)
    tensors: dict = {}
    if optimizer is not None or generator is not None:
        path = ckpt / "state.safetensors"
        tensors = read_safetensors(path)[0]
        if optimizer is not None:
            state_mod.check_optimizer_state(
                optimizer, tensors, info["optimizer"], path, ckpt / "state.json"
            )
        if generator is not None:
            state_mod.check_rng(tensors, generator, path)
    model.load_state_dict(weights)
    if optimizer is not None:
        state_mod.optimizer_from_flat(optimizer, tensors, info["optimizer"])
    if generator is not None:
        state_mod.restore_rng(tensors, generator)
    return info


def remove_all(ckpt_dir: Path) -> None:
    """Delete every checkpoint (and leftover) under ckpt_dir: a new run there."""
    for p in list_checkpoints(ckpt_dir):
        _remove_dir(p)
    clean_leftovers(ckpt_dir)
