"""The learning-rate schedule: linear warmup, then cosine decay to a floor.

The rate is a pure function of the step, so resuming needs no scheduler state:
the step number is enough. (Loshchilov & Hutter, 2017, "SGDR"; the warmup is
the GPT-2/3 recipe.)
Built in: notebooks/11_training_loop.ipynb.
"""

import math


def lr_at(step: int, lr: float, min_lr: float, warmup_steps: int, steps: int) -> float:
    """The learning rate for optimizer step ``step`` (0-based).

    Steps 0..warmup-1 rise linearly to lr ((step + 1) / warmup * lr); then the
    rate follows half a cosine from lr to min_lr, reaching min_lr at the last
    step (steps - 1).
    Example: lr_at(0, 1.0, 0.0, 10, 100) -> 0.1
    """
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    span = max(1, steps - 1 - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * progress))


def schedule(cfg) -> list[float]:
    """The whole schedule of a TrainConfig, one rate per step (for plots)."""
    return [
        lr_at(s, cfg.lr, cfg.min_lr, cfg.warmup_steps, cfg.steps)
        for s in range(cfg.steps)
    ]
