"""labkit.train.schedule: linear warmup, then cosine to the floor."""

import pytest

from labkit.train import lr_at, schedule


def test_lr_schedule_hand_values():
    # warmup: (step + 1) / warmup * lr
    assert lr_at(0, 1.0, 0.1, 4, 20) == pytest.approx(0.25)
    assert lr_at(3, 1.0, 0.1, 4, 20) == pytest.approx(1.0)
    # cosine: at the midpoint of the decay, halfway between lr and min_lr
    assert lr_at(4 + 15 / 2, 1.0, 0.1, 4, 20) == pytest.approx(0.55)
    assert lr_at(19, 1.0, 0.1, 4, 20) == pytest.approx(0.1)
    rates = [lr_at(s, 1.0, 0.1, 4, 20) for s in range(4, 20)]
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False))


def test_schedule_lists_one_rate_per_step_ending_at_the_floor(cfg):
    rates = schedule(cfg(steps=20, warmup_steps=4, lr=1.0, min_lr=0.1))
    assert len(rates) == 20
    assert rates[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert rates[-1] == pytest.approx(0.1) and max(rates) == pytest.approx(1.0)
