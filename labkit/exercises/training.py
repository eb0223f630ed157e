"""Checks for the exercises of the chapter on the training loop.

The references are labkit.train's ``adamw_step`` (one AdamW update of one
tensor, checked against torch.optim.AdamW in tests/train/test_optim.py) and
``lr_at`` (linear warmup, then half a cosine to a floor).

Built in: notebooks/11_training_loop.ipynb.
"""

from __future__ import annotations

import math

import torch

from labkit.exercises import Case, CheckResult, Raises, run_check, tensors_close
from labkit.train.optim import adamw_step
from labkit.train.schedule import lr_at


def _adamw_case(p, g, m, v, step, lr, betas, eps, wd, hint, label=None):
    args = (p, g, m, v, step, lr, betas, eps, wd)
    expected = adamw_step(
        p, g, m, v, step, lr=lr, betas=betas, eps=eps, weight_decay=wd
    )
    shown = label or (
        f"param {tuple(p.shape)}, step={step}, lr={lr:g}, betas={betas}, "
        f"eps={eps:g}, weight_decay={wd:g}"
    )
    return Case(args, expected, hint, label=shown)


def _adamw_cases() -> list[Case]:
    t = torch.tensor
    zero = torch.zeros(3)
    p = t([1.0, -2.0, 3.0])
    cases = [
        _adamw_case(
            p,
            t([0.5, -100.0, 0.0]),
            zero,
            zero,
            1,
            0.1,
            (0.9, 0.999),
            1e-8,
            0.0,
            "step 1 with zero moments: after bias correction m-hat = g and "
            "v-hat = g**2, so each weight moves by lr * g / (|g| + eps), about "
            "lr * sign(g); without the corrections the move is 0.1/sqrt(0.001) "
            "= 3.16 times too large",
            label="param [1, -2, 3], grad [0.5, -100, 0], zero moments, step=1, "
            "lr=0.1, no decay",
        ),
        _adamw_case(
            p,
            zero,
            zero,
            zero,
            1,
            0.1,
            (0.9, 0.999),
            1e-8,
            0.5,
            "a zero gradient with weight_decay=0.5 at lr=0.1: decoupled decay "
            "shrinks the weight by lr * weight_decay = 5% (not by weight_decay "
            "alone, and not through the gradient as L2 would)",
            label="param [1, -2, 3], zero grad and moments, step=1, lr=0.1, "
            "weight_decay=0.5",
        ),
        _adamw_case(
            p,
            t([1e-9, -1e-9, 0.0]),
            zero,
            zero,
            1,
            0.1,
            (0.9, 0.999),
            1e-8,
            0.0,
            "a gradient below eps: eps is added to sqrt(v-hat), outside the "
            "square root (inside it, eps=1e-8 would count as 1e-4)",
            label="param [1, -2, 3], grad [1e-9, -1e-9, 0], step=1, lr=0.1, eps=1e-8",
        ),
    ]
    gen = torch.Generator().manual_seed(0)
    for step, betas, wd in [
        (10, (0.9, 0.95), 0.1),
        (3, (0.8, 0.99), 0.0),
        (500, (0.9, 0.999), 0.01),
    ]:
        shape = (2, 4)
        m = torch.randn(shape, generator=gen) * 0.1
        v = torch.rand(shape, generator=gen) * 0.01
        cases.append(
            _adamw_case(
                torch.randn(shape, generator=gen),
                torch.randn(shape, generator=gen),
                m,
                v,
                step,
                1e-2,
                betas,
                1e-8,
                wd,
                f"step {step} with moments carried over: update m and v first, "
                "then divide by 1 - beta**step (with this step, counted from 1)",
            )
        )
    cases.append(
        Case(
            (p, zero, zero, zero, 0, 0.1, (0.9, 0.999), 1e-8, 0.0),
            Raises(ValueError),
            "steps count from 1 (1 - beta**0 = 0 would divide by zero): refuse "
            "step 0 with ValueError",
            label="step=0",
        )
    )
    return cases


def check_adamw_step(fn) -> CheckResult:
    """Check ``fn(param, grad, exp_avg, exp_avg_sq, step, lr, betas, eps,
    weight_decay) -> (param, exp_avg, exp_avg_sq)``: one AdamW update, with
    bias correction and decoupled weight decay; ValueError for step < 1.
    """
    return run_check(
        "check_adamw_step",
        fn,
        _adamw_cases(),
        lambda e, r: tensors_close(e, r, rtol=1e-5, atol=1e-7),
        summary="first step, decay alone, gradient below eps, 3 random steps "
        "with moments, step 0 refused",
        forbidden=("labkit", "torch.optim", "optim.AdamW"),
        references=(adamw_step,),
    )


def _close(expected, returned) -> str | None:
    if isinstance(returned, bool) or not isinstance(returned, int | float):
        return f"expected a number, got {type(returned).__name__}"
    if math.isclose(returned, expected, rel_tol=1e-9, abs_tol=1e-12):
        return None
    return f"{returned:.6g} instead of {expected:.6g}"


def _lr_cases() -> list[Case]:
    def case(step, lr, min_lr, warmup, steps, hint):
        label = (
            f"step={step}, lr={lr:g}, min_lr={min_lr:g}, "
            f"warmup_steps={warmup}, steps={steps}"
        )
        return Case(
            (step, lr, min_lr, warmup, steps),
            lr_at(step, lr, min_lr, warmup, steps),
            hint,
            label=label,
        )

    cases = [
        case(
            0,
            1.0,
            0.1,
            10,
            100,
            "the first step of warmup already trains: (step + 1) / warmup * "
            "lr, so step 0 gets lr / 10 here, not 0",
        ),
        case(
            9,
            1.0,
            0.1,
            10,
            100,
            "the last warmup step (warmup - 1) reaches the peak lr",
        ),
        case(
            10,
            1.0,
            0.1,
            10,
            100,
            "the cosine starts at the peak, the step after warmup",
        ),
        case(
            99,
            1.0,
            0.1,
            10,
            100,
            "the last step (steps - 1) is at min_lr: progress = (step - warmup)"
            " / (steps - 1 - warmup) reaches 1 there",
        ),
        case(0, 3e-3, 3e-4, 0, 50, "no warmup: step 0 is at the peak lr"),
        case(
            55,
            1.0,
            0.1,
            10,
            100,
            "half way through the cosine the rate is the mean of lr and min_lr",
        ),
    ]
    gen = torch.Generator().manual_seed(0)
    for _ in range(8):
        steps = int(torch.randint(20, 400, (1,), generator=gen))
        warmup = int(torch.randint(0, steps // 2, (1,), generator=gen))
        step = int(torch.randint(0, steps, (1,), generator=gen))
        cases.append(case(step, 6e-4, 6e-5, warmup, steps, "random settings"))
    return cases


def check_lr_schedule(fn) -> CheckResult:
    """Check ``fn(step, lr, min_lr, warmup_steps, steps) -> float``: linear
    warmup to lr over warmup_steps (step 0 gets lr / warmup_steps), then half
    a cosine from lr down to min_lr at the last step, steps - 1.
    """
    return run_check(
        "check_lr_schedule",
        fn,
        _lr_cases(),
        _close,
        summary="warmup start and end, cosine start, middle and end, no "
        "warmup, 8 random",
        forbidden=("labkit", "lr_at("),
        references=(lr_at,),
    )
