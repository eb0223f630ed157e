"""What stays fixed for a whole training run, chosen and checked once.

``prepare_run`` picks the device, joins the process group under torchrun,
chooses bf16 autocast on CUDA, seeds the batch generator and checks that the
model, data, tokenizer and config fit together, all before the first step: a
device that does not exist, a vocabulary the model is too small for or a
validation split shorter than the context is an error now, not after
nineteen training steps. The loop then passes the one ``RunSetup`` around.
Built in: notebooks/11_training_loop.ipynb.
"""

import contextlib
from dataclasses import dataclass
from pathlib import Path

import torch

from labkit.train import ddp
from labkit.train.config import TrainConfig

DEVICES = "auto, cpu, cuda, cuda:N or mps"


@dataclass(frozen=True)
class RunSetup:
    """The per-run state: built by ``prepare_run``, read by every step."""

    cfg: TrainConfig
    device: torch.device
    info: ddp.DistInfo  # rank and world size (one process: rank 0 of 1)
    T: int  # tokens per training sequence
    gen: torch.Generator  # the batch generator: its state is the data position
    autocast: contextlib.AbstractContextManager  # bf16 on CUDA, else nothing
    run_dir: Path | None  # None: no files are written
    stop: int  # the last step of this call (stop_at, else steps)

    @property
    def writes(self) -> bool:
        """True for the one process that writes the run folder."""
        return self.run_dir is not None and self.info.is_main


def pick_device(name: str = "auto") -> torch.device:
    """ "auto" -> cuda if available, else mps, else cpu; otherwise as given.

    Raises ValueError for a name that is not a device, or one this machine
    does not have (naming it and the choices).
    """
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if has_mps else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device={name!r} is not a device; use {DEVICES}") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index or 0) >= count:
            raise ValueError(
                f"device={name!r} is not on this machine ({count} CUDA devices); "
                f"use 'auto' or 'cpu'"
            )
    elif device.type == "mps" and not has_mps:
        raise ValueError(f"device={name!r} is not on this machine; use 'auto'")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device={name!r}: labkit trains on {DEVICES}")
    return device


def _check_sizes(model, data, tokenizer, T: int) -> None:
    model_cfg = getattr(model, "cfg", None)
    if model_cfg is not None and T > model_cfg.context_len:
        raise ValueError(
            f"context_len={T} is longer than the model's "
            f"context_len={model_cfg.context_len}"
        )
    if hasattr(data, "tokens"):  # a TokenData: count the tokens of each split
        for split in ("train", "val"):
            n = len(data.tokens(split))
            if n <= T:
                raise ValueError(
                    f"the {split} split has {n} tokens, fewer than context_len + 1 "
                    f"= {T + 1}: use a shorter context or more text in it"
                )
    if model_cfg is None:
        return
    for source, size in (
        ("the tokenizer's", getattr(tokenizer, "vocab_size", None)),
        ("the data's", getattr(data, "vocab_size", None)),
    ):
        if size is not None and size > model_cfg.vocab_size:
            raise ValueError(
                f"the model's vocab_size={model_cfg.vocab_size} is smaller than "
                f"{source} ({size}): its ids would index past the embedding table"
            )


def _context_len(model, cfg: TrainConfig) -> int:
    if cfg.context_len is not None:
        return cfg.context_len
    model_cfg = getattr(model, "cfg", None)
    if model_cfg is None:
        raise ValueError(
            "the model has no cfg.context_len: set TrainConfig.context_len"
        )
    return model_cfg.context_len


def prepare_run(model, data, cfg: TrainConfig, tokenizer=None) -> RunSetup:
    """Check the inputs against each other and build the run's RunSetup."""
    device = pick_device(cfg.device)
    info = ddp.setup(device.type)
    if device.type == "cuda" and info.enabled:
        device = torch.device("cuda", info.local_rank)
    if cfg.micro_batch % info.world_size:
        raise ValueError(
            f"batch_size={cfg.batch_size} / grad_accum={cfg.grad_accum} = "
            f"{cfg.micro_batch} rows do not split over {info.world_size} processes"
        )
    T = _context_len(model, cfg)
    _check_sizes(model, data, tokenizer, T)
    if tokenizer is not None and cfg.sample_prompts and not hasattr(model, "cfg"):
        raise ValueError(
            "samples at each evaluation need a labkit GPT (model.cfg); pass "
            "tokenizer=None or sample_prompts=()"
        )
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else contextlib.nullcontext()
    )
    return RunSetup(
        cfg=cfg,
        device=device,
        info=info,
        T=T,
        gen=torch.Generator().manual_seed(cfg.seed),
        autocast=autocast,
        run_dir=Path(cfg.out_dir) if cfg.out_dir else None,
        stop=min(cfg.steps, cfg.stop_at or cfg.steps),
    )
