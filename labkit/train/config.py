"""TrainConfig: every knob of the training loop, in one frozen dataclass.

Each field has a comment; ``validate`` (run by ``__post_init__``) rejects bad
values with a message that names the field, so a typo fails before any work.
``TrainConfig.fields()`` lists the valid names (the CLI's ``--set train.x=``
uses it to reject unknown keys).
Built in: notebooks/11_training_loop.ipynb.
"""

import dataclasses
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    """The loop's settings. Frozen: change one with dataclasses.replace."""

    steps: int = 200  # optimizer steps
    batch_size: int = 16  # sequences per optimizer step (the global batch)
    context_len: int | None = None  # tokens per sequence; None: the model's
    grad_accum: int = 1  # micro-batches per step; must divide batch_size
    lr: float = 3e-3  # peak learning rate, reached after warmup
    min_lr: float = 3e-4  # the cosine floor at the last step
    warmup_steps: int = 20  # linear warmup from 0 to lr
    weight_decay: float = 0.1  # AdamW decay on the matrices (see optim.py)
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0  # clip the global grad norm; 0 turns clipping off
    eval_every: int = 50  # evaluate every N steps (and at the last step)
    eval_batches: int = 10  # held-out batches per evaluation
    log_every: int = 1  # write a metrics line every N steps
    seed: int = 0  # model-independent seed: batches, dropout, samples
    device: str = "auto"  # "auto" (cuda, mps, cpu) or a torch device string
    compile: bool = False  # torch.compile the model (CUDA only)
    out_dir: str | None = None  # run folder; None: no files are written
    keep_last: int = 2  # checkpoints kept besides the best (one per eval)
    stop_at: int | None = None  # evaluate, checkpoint and stop after this step;
    # the schedule still spans ``steps`` (to show save, kill, resume)
    resume: bool = False  # continue from the newest checkpoint in out_dir
    sample_prompts: tuple[str, ...] = ("Once upon a time",)  # at each eval
    sample_tokens: int = 64  # tokens per sample (greedy-free, seeded)
    progress: bool = True  # a tqdm progress bar

    def __post_init__(self):
        if isinstance(self.sample_prompts, list):
            object.__setattr__(self, "sample_prompts", tuple(self.sample_prompts))
        problems = config_problems(self)
        if problems:
            raise ValueError("invalid TrainConfig: " + "; ".join(problems))

    @property
    def micro_batch(self) -> int:
        """Sequences per forward pass: batch_size // grad_accum."""
        return self.batch_size // self.grad_accum

    @classmethod
    def fields(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]


def _positive_int(cfg, name, out, allow_zero=False):
    value = getattr(cfg, name)
    low = 0 if allow_zero else 1
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        kind = "a non-negative" if allow_zero else "a positive"
        out.append(f"{name}={value!r} must be {kind} integer")
        return False
    return True


def _finite(value) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _number_problems(cfg) -> list[str]:
    out = []
    for name in ("lr", "min_lr", "weight_decay", "grad_clip", "eps", "beta1", "beta2"):
        value = getattr(cfg, name)
        if not _finite(value) or value < 0:
            off = " (0 turns clipping off)" if name == "grad_clip" else ""
            out.append(f"{name}={value!r} must be a non-negative, finite number{off}")
    return out


def _range_problems(cfg) -> list[str]:
    if cfg.lr <= 0:
        return [f"lr={cfg.lr} must be positive"]
    out = []
    if cfg.min_lr > cfg.lr:
        out.append(f"min_lr={cfg.min_lr} is above lr={cfg.lr}")
    for name in ("beta1", "beta2"):
        if not 0 <= getattr(cfg, name) < 1:
            out.append(f"{name}={getattr(cfg, name)} must be in [0, 1)")
    return out


def config_problems(cfg: TrainConfig) -> list[str]:
    """Every problem with the config, each naming its field."""
    out: list[str] = []
    for name in ("steps", "batch_size", "grad_accum", "eval_every"):
        _positive_int(cfg, name, out)
    for name in ("eval_batches", "log_every", "keep_last", "sample_tokens"):
        _positive_int(cfg, name, out)
    _positive_int(cfg, "warmup_steps", out, allow_zero=True)
    for name in ("context_len", "stop_at"):
        if getattr(cfg, name) is not None:
            _positive_int(cfg, name, out)
    if out:
        return out
    if cfg.batch_size % cfg.grad_accum:
        out.append(
            f"grad_accum={cfg.grad_accum} does not divide batch_size={cfg.batch_size}"
        )
    if cfg.warmup_steps >= cfg.steps:
        out.append(
            f"warmup_steps={cfg.warmup_steps} must be shorter than the run "
            f"(steps={cfg.steps})"
        )
    bad_numbers = _number_problems(cfg)
    out += bad_numbers or _range_problems(cfg)
    if not isinstance(cfg.device, str) or not cfg.device:
        out.append(f"device={cfg.device!r} must be 'auto' or a device string")
    if cfg.resume and not cfg.out_dir:
        out.append("resume=True needs out_dir (the run folder to resume)")
    if not all(isinstance(p, str) and p for p in cfg.sample_prompts):
        out.append("sample_prompts must be non-empty strings")
    return out
