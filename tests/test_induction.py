"""labkit.induction: the data, the score on hand-built attention, and the
phase change of a seeded run (default InductionConfig: 300 steps, seed 0)."""

import math

import pytest
import torch

from labkit.induction import (
    InductionConfig,
    attention_weights,
    half_losses,
    induction_score,
    phase_change_step,
    repeated_tokens,
    train_induction,
)
from labkit.interp import head_scores

SCORE_THRESHOLD = 0.5  # best head's final induction score (measured: 0.91)
LOSS_RATIO = 0.3  # repeated-half / first-half loss, last 10 steps (measured: 0.06)


@pytest.fixture(scope="module")
def run():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model trains faster on one thread
    try:
        yield train_induction(InductionConfig())
    finally:
        torch.set_num_threads(threads)


def test_repeated_tokens_repeat_and_are_seeded():
    gen = torch.Generator().manual_seed(3)
    x = repeated_tokens(4, 5, 7, gen)
    assert x.shape == (4, 10) and x.dtype == torch.long
    assert torch.equal(x[:, :5], x[:, 5:])
    assert 0 <= x.min() and x.max() < 7
    again = repeated_tokens(4, 5, 7, torch.Generator().manual_seed(3))
    assert torch.equal(x, again)
    assert not torch.equal(x, repeated_tokens(4, 5, 7, gen))  # the stream moves on


def test_half_losses_split_at_the_repeat():
    tokens = torch.tensor([[0, 1, 2, 0, 1, 2]])  # h = 3
    logits = torch.zeros(1, 6, 3)
    logits[0, 3:5, :] = -100.0  # the repeated half predicts tokens 4, 5 exactly
    logits[0, 3, 1] = logits[0, 4, 2] = 100.0
    first, repeat = half_losses(logits, tokens)
    assert first == pytest.approx(math.log(3))  # uniform over 3 tokens
    assert repeat == pytest.approx(0.0, abs=1e-6)


def test_induction_score_on_hand_built_attention():
    tokens = torch.tensor([[5, 6, 7, 5, 6, 7]])  # T = 6
    T = 6
    induction = torch.zeros(T, T)
    for t in range(T):  # queries 3, 4, 5 look at the key after their copy
        induction[t, t - 2 if t >= 3 else 0] = 1.0
    previous = torch.zeros(T, T)
    previous[0, 0] = 1.0
    previous[torch.arange(1, T), torch.arange(T - 1)] = 1.0
    half = (induction + torch.eye(T)) / 2  # half on the target, half on itself
    w = torch.stack([induction, previous, half])[None, None]  # (1, 1, 3, T, T)
    score = induction_score(w, tokens)
    torch.testing.assert_close(score, torch.tensor([[1.0, 0.0, 0.5]]))
    torch.testing.assert_close(score, head_scores(w[0], tokens[0])["induction"])
    both = induction_score(
        torch.cat([w[:, :, :1], w[:, :, 2:]]), torch.cat([tokens, tokens])
    )  # two sequences, one head: the mean of 1.0 and 0.5
    torch.testing.assert_close(both, torch.tensor([[0.75]]))


def test_phase_change_step_finds_the_halfway_crossing():
    loss = [3.0] * 10 + [2.0, 1.0, 0.2] + [0.1] * 7
    assert phase_change_step(loss, rising=False) == 11
    assert phase_change_step([-v for v in loss], rising=True) == 11
    with pytest.raises(ValueError, match="never cross"):
        phase_change_step([float("nan")] * 5, rising=True)


def test_trained_model_has_an_induction_head(run):
    h, log_v = run.history, math.log(run.cfg.vocab_size)
    assert h["step"] == list(range(run.cfg.steps + 1))
    assert h["score"][-1] > SCORE_THRESHOLD
    first, repeat = (sum(h[k][-10:]) / 10 for k in ("loss_first", "loss_repeat"))
    assert repeat < LOSS_RATIO * first
    assert first > 0.9 * log_v  # the random half stays unpredictable
    scores = induction_score(attention_weights(run.model, run.probe), run.probe)
    assert float(scores.max()) == pytest.approx(h["score"][-1], abs=1e-5)
    # the circuit: an induction head in layer 1 reading a previous-token head
    assert int(scores.argmax()) // run.cfg.n_heads == 1
    assert float(scores[0].max()) < 0.2  # layer 0 cannot match by itself
    w = attention_weights(run.model, run.probe)
    prev = head_scores(w[0], run.probe[0])["previous-token"]  # (L, H)
    assert float(prev[0].max()) > 0.3


def test_loss_and_score_change_together(run):
    h, steps = run.history, run.cfg.steps
    early = steps // 5
    assert max(h["score"][:early]) < 0.2  # no induction head early on
    assert min(h["loss_repeat"][:early]) > 0.85 * math.log(run.cfg.vocab_size)
    loss_step = phase_change_step(h["loss_repeat"], rising=False)
    score_step = phase_change_step(h["score"], rising=True)
    assert early < score_step < steps - early and early < loss_step < steps - early
    assert abs(loss_step - score_step) <= 0.1 * steps  # the same moment


def test_bad_config_names_the_field():
    with pytest.raises(ValueError, match="half_len=1"):
        InductionConfig(half_len=1)


def test_snapshots_hold_the_weights_of_a_shorter_run():
    """A snapshot at step s is the model a run of s steps ends with (seeded)."""
    cfg = InductionConfig(steps=6, snapshots=(0, 3), batch_size=8, probe_size=2)
    long = train_induction(cfg)
    short = train_induction(InductionConfig(steps=3, batch_size=8, probe_size=2))
    assert sorted(long.snapshots) == [0, 3]
    for k, v in short.model.state_dict().items():
        torch.testing.assert_close(long.snapshots[3][k], v)
    assert not torch.equal(
        long.snapshots[0]["lm_head.weight"], long.snapshots[3]["lm_head.weight"]
    )
