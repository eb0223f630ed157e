"""Checkpoints: safetensors + JSON, written atomically, pruned to last K + best.

A checkpoint is a folder ``checkpoints/step_000100/`` holding

* ``model.safetensors``: the weights (tied weights stored once);
* ``state.safetensors``: the optimizer's moment tensors and the RNG states
  (torch CPU, CUDA, and the batch generator, i.e. the data position);
* ``state.json``: the step, the optimizer's hyper-parameters, the model and
  train configs, the eval losses.

The folder is first written as ``.step_000100.tmp``, every file flushed to
disk, then renamed: a process killed while saving leaves only a temporary
folder, which loading ignores, and the previous checkpoint stays loadable.
Loading reads tensors and JSON only; nothing is ever unpickled.
Built in: notebooks/11_training_loop.ipynb (save, kill, resume).
"""

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, load_model, save_file, save_model

PREFIX = "step_"
FORMAT = "labkit.checkpoint/1"


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def optimizer_to_flat(optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state_dict into tensors and JSON-able settings."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_flat(optimizer, tensors: dict, info: dict) -> None:
    """Load what ``optimizer_to_flat`` split back into ``optimizer``."""
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for key, value in info["scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    groups = [dict(g) for g in info["param_groups"]]
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def rng_tensors(generator: torch.Generator) -> dict[str, torch.Tensor]:
    out = {"rng.torch": torch.get_rng_state(), "rng.data": generator.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["rng.cuda"] = torch.cuda.get_rng_state()
    return out


def restore_rng(tensors: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    generator.set_state(tensors["rng.data"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])


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
    tensors, optim_info = optimizer_to_flat(optimizer)
    tensors.update(rng_tensors(generator))
    save_file(tensors, str(tmp / "state.safetensors"))
    record = {"format": FORMAT, "step": step, "optimizer": optim_info, **info}
    (tmp / "state.json").write_text(json.dumps(record, indent=1) + "\n")
    for name in ("model.safetensors", "state.safetensors", "state.json"):
        _fsync(tmp / name)
    if final.exists():  # the same step saved again (after a resume)
        shutil.rmtree(final)
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
        if p.is_dir() and p.name.startswith(PREFIX) and (p / "state.json").exists()
    ]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def read_info(ckpt: Path) -> dict:
    return json.loads((Path(ckpt) / "state.json").read_text())


def best_checkpoint(ckpt_dir: Path) -> Path | None:
    """The checkpoint with the lowest recorded val_loss (None if none has one)."""
    scored = [
        (read_info(p)["val_loss"], p)
        for p in list_checkpoints(ckpt_dir)
        if read_info(p).get("val_loss") is not None
    ]
    return min(scored, key=lambda s: s[0])[1] if scored else None


def prune(ckpt_dir: Path, keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` and the best; return the deleted."""
    ckpts = list_checkpoints(ckpt_dir)
    keep = set(ckpts[-keep_last:])
    best = best_checkpoint(ckpt_dir)
    if best is not None:
        keep.add(best)
    gone = [p for p in ckpts if p not in keep]
    for p in gone:
        shutil.rmtree(p)
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


def load_checkpoint(
    ckpt: Path, model, optimizer=None, generator=None, model_config=None
) -> dict:
    """Load weights (and optimizer and RNG when given) from a checkpoint folder.

    With ``model_config`` (a dict), refuse a checkpoint of another model shape,
    listing the differing fields. Returns the state.json record.
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
    load_model(model, str(ckpt / "model.safetensors"))
    if optimizer is not None or generator is not None:
        tensors = load_file(str(ckpt / "state.safetensors"))
        if optimizer is not None:
            optimizer_from_flat(optimizer, tensors, info["optimizer"])
        if generator is not None:
            restore_rng(tensors, generator)
    return info
