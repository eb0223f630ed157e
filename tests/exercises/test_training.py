"""The training checks accept correct answers and reject plausible wrong ones."""

import math

from labkit.exercises.training import check_adamw_step, check_lr_schedule
from labkit.train.optim import adamw_step
from labkit.train.schedule import lr_at


def adamw(p, g, m, v, step, lr, betas, eps, wd, *, correct=True, decay="ok",
          eps_inside=False):  # fmt: skip
    """AdamW written out, with switches for the usual bugs."""
    if step < 1:
        raise ValueError("step counts from 1")
    b1, b2 = betas
    if decay == "ok":
        p = p * (1 - lr * wd)
    elif decay == "no lr":
        p = p * (1 - wd)
    elif decay == "l2":
        g = g + wd * p
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    m_hat = m / (1 - b1**step) if correct else m
    v_hat = v / (1 - b2**step) if correct else v
    denom = (v_hat + eps).sqrt() if eps_inside else v_hat.sqrt() + eps
    return p - lr * m_hat / denom, m, v


def test_a_correct_adamw_passes_and_a_stub_is_not_done():
    assert check_adamw_step(adamw)
    assert check_adamw_step(lambda *args: None).status == "not done"


def test_labkit_adamw_step_is_refused():
    assert "labkit's own function" in check_adamw_step(adamw_step).report


def test_adamw_without_bias_correction_is_caught_on_the_first_step():
    result = check_adamw_step(lambda *a: adamw(*a, correct=False))
    assert result.status == "failed" and "bias correction" in result.failed_case.hint


def test_coupled_or_lr_free_weight_decay_is_caught():
    for bug in ("l2", "no lr"):
        result = check_adamw_step(lambda *a, bug=bug: adamw(*a, decay=bug))
        assert result.status == "failed", bug
        assert "decoupled decay" in result.failed_case.hint, bug


def test_eps_inside_the_square_root_is_caught():
    result = check_adamw_step(lambda *a: adamw(*a, eps_inside=True))
    assert result.status == "failed" and "outside the" in result.failed_case.hint


def test_adamw_that_accepts_step_zero_is_caught():
    def no_guard(p, g, m, v, step, lr, betas, eps, wd):
        return adamw(p, g, m, v, max(step, 1), lr, betas, eps, wd)

    result = check_adamw_step(no_guard)
    assert result.status == "failed" and result.failed_case.label == "step=0"


def schedule(step, lr, min_lr, warmup, steps, *, start=1, end=1):
    if step < warmup:
        return lr * (step + start) / warmup
    progress = (step - warmup) / max(1, steps - end - warmup)
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * progress))


def test_a_correct_schedule_passes_and_labkit_is_refused():
    assert check_lr_schedule(schedule)
    assert check_lr_schedule(lambda *a: None).status == "not done"
    assert "labkit's own function" in check_lr_schedule(lr_at).report
    assert check_lr_schedule(lambda *a: lr_at(*a)).status == "failed"  # forbidden


def test_warmup_from_zero_is_caught_on_step_zero():
    result = check_lr_schedule(lambda *a: schedule(*a, start=0))
    assert result.status == "failed" and result.failed_case.args[0] == 0
    assert "not 0" in result.failed_case.hint


def test_cosine_ending_one_step_late_is_caught():
    result = check_lr_schedule(lambda *a: schedule(*a, end=0))
    assert result.status == "failed" and "steps - 1" in result.failed_case.hint


def test_a_schedule_returning_a_tensor_is_told_to_return_a_number():
    import torch

    result = check_lr_schedule(lambda *a: torch.tensor(schedule(*a)))
    assert "expected a number" in result.report


def test_a_schedule_that_divides_by_a_zero_warmup_is_caught():
    def divides(step, lr, min_lr, warmup, steps):
        ramp = (step + 1) / warmup  # ZeroDivisionError without a warmup
        return lr * ramp if step < warmup else schedule(step, lr, min_lr, warmup, steps)

    result = check_lr_schedule(divides)
    assert result.status == "failed"
    assert "no warmup" in result.failed_case.hint
