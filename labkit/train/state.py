"""What a checkpoint needs besides the weights: the optimizer and the RNGs.

AdamW keeps two moment tensors per parameter and a step count; the run also
has random states (torch's CPU and CUDA generators for dropout, and the batch
generator, whose state *is* the position in the data). ``optimizer_to_flat``
splits the optimizer's state_dict into named tensors (for safetensors) and
JSON-able settings; ``rng_tensors`` adds the random states. Loading goes the
other way, and first checks everything against the live optimizer and
generator (``check_optimizer_state``, ``check_rng``) so that a file that does
not fit raises FileFormatError naming it before anything is changed.
Built in: notebooks/11_training_loop.ipynb (save, kill, resume).
"""

from pathlib import Path

import torch

from labkit.train.files import FileFormatError, finite_number

MOMENTS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")  # shaped as the parameter


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


def _saved_params(optimizer, info, path: Path) -> dict[int, torch.Tensor]:
    """Map each saved parameter id to the live parameter it will load into
    (torch matches them group by group, in order)."""
    groups = info.get("param_groups") if isinstance(info, dict) else None
    if not isinstance(groups, list) or not isinstance(info.get("scalars"), dict):
        raise FileFormatError(
            f"{path}: 'optimizer' needs a 'param_groups' list and a 'scalars' dict"
        )
    if len(groups) != len(optimizer.param_groups):
        raise FileFormatError(
            f"{path}: the optimizer state has {len(groups)} parameter groups, "
            f"the optimizer {len(optimizer.param_groups)}"
        )
    out = {}
    for i, (saved, live) in enumerate(zip(groups, optimizer.param_groups, strict=True)):
        ids = saved.get("params") if isinstance(saved, dict) else None
        if not isinstance(ids, list) or not all(isinstance(j, int) for j in ids):
            raise FileFormatError(f"{path}: param group {i} has no list of ids")
        if len(ids) != len(live["params"]):
            raise FileFormatError(
                f"{path}: param group {i} holds {len(ids)} parameters, the "
                f"optimizer's {len(live['params'])} (another model?)"
            )
        _check_settings(saved, i, path)
        out.update(zip(ids, live["params"], strict=True))
    return out


def _check_settings(group: dict, i: int, path: Path) -> None:
    for key in ("lr", "eps", "weight_decay"):
        if key in group and not finite_number(group[key]):
            raise FileFormatError(f"{path}: param group {i} has {key}={group[key]!r}")
    betas = group.get("betas", [0.9, 0.999])
    if not (
        isinstance(betas, list)
        and len(betas) == 2
        and all(finite_number(b) for b in betas)
    ):
        raise FileFormatError(f"{path}: param group {i} has betas={betas!r}")


def _split_key(key: str, path: Path) -> tuple[int, str]:
    idx, dot, name = key.partition(".")
    if not dot or not idx.isdigit():
        raise FileFormatError(f"{path}: optimizer entry {key!r} is not 'ID.name'")
    return int(idx), name


def check_optimizer_state(
    optimizer, tensors: dict, info, path: Path, info_path: Path
) -> None:
    """Raise FileFormatError unless the saved state fits ``optimizer``: the
    same groups and sizes and finite settings (``info``, from ``info_path``),
    each moment tensor (from ``path``) shaped as its parameter."""
    params = _saved_params(optimizer, info, info_path)
    for key, value in tensors.items():
        if not key.startswith("optim."):
            continue
        idx, name = _split_key(key[len("optim.") :], path)
        if idx not in params:
            raise FileFormatError(f"{path}: {key!r} names no saved parameter")
        want = params[idx].shape if name in MOMENTS else None
        if name == "step" and value.numel() != 1:
            raise FileFormatError(f"{path}: {key!r} is not a single step count")
        if want is not None and value.shape != want:
            raise FileFormatError(
                f"{path}: {key!r} has shape {tuple(value.shape)}, its parameter "
                f"{tuple(want)}"
            )
    for key, value in info["scalars"].items():
        _split_key(key, info_path)
        if not finite_number(value):
            raise FileFormatError(
                f"{info_path}: optimizer setting {key!r} is {value!r}"
            )


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
    """The random states to save: torch CPU (and CUDA) and the batch generator."""
    out = {"rng.torch": torch.get_rng_state(), "rng.data": generator.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["rng.cuda"] = torch.cuda.get_rng_state()
    return out


def check_rng(tensors: dict, generator: torch.Generator, path: Path) -> None:
    """Raise FileFormatError naming ``path`` unless the random states are
    there and of the sizes this torch uses."""
    live = {"rng.torch": torch.get_rng_state(), "rng.data": generator.get_state()}
    if "rng.cuda" in tensors and torch.cuda.is_available():
        live["rng.cuda"] = torch.cuda.get_rng_state()
    for name, now in live.items():
        saved = tensors.get(name)
        if saved is None:
            raise FileFormatError(f"{path} has no {name!r} tensor")
        if saved.dtype != now.dtype or saved.shape != now.shape:
            raise FileFormatError(
                f"{path}: {name!r} is {saved.dtype} {tuple(saved.shape)}, a "
                f"random state is {now.dtype} {tuple(now.shape)}"
            )


def restore_rng(tensors: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    generator.set_state(tensors["rng.data"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
