"""The preference-tuning checks pass correct answers and reject plausible
wrong ones: swapped log-ratio signs, no beta, a sum over pairs, log of a
sigmoid, a mean over answer tokens, the prompt counted."""

import torch
import torch.nn.functional as F

from labkit.dpo import dpo_loss, sequence_logprobs
from labkit.exercises.dpo import check_dpo_loss, check_sequence_logprobs
from labkit.sft import IGNORE_INDEX


def make_loss(sign=1.0, use_beta=True, reduce="mean", logsig=True):
    def loss(pi_w, pi_l, ref_w, ref_l, beta):
        if not beta > 0:
            raise ValueError("beta must be positive")
        z = sign * ((pi_w - ref_w) - (pi_l - ref_l)) * (beta if use_beta else 1.0)
        per_pair = -F.logsigmoid(z) if logsig else -torch.log(torch.sigmoid(z))
        return per_pair.mean() if reduce == "mean" else per_pair.sum()

    return loss


def test_a_correct_dpo_loss_passes_and_labkits_is_refused():
    assert check_dpo_loss(make_loss())
    assert check_dpo_loss(lambda *a: None).status == "not done"
    assert "labkit's own function" in check_dpo_loss(dpo_loss).report


def test_swapped_signs_are_caught():
    result = check_dpo_loss(make_loss(sign=-1.0))
    assert result.status == "failed" and "by hand" in result.failed_case.hint


def test_a_loss_without_beta_is_caught():
    result = check_dpo_loss(make_loss(use_beta=False))
    assert result.status == "failed" and "by hand" in result.failed_case.hint


def test_a_sum_over_pairs_and_log_of_sigmoid_are_caught():
    result = check_dpo_loss(make_loss(reduce="sum"))
    assert (
        result.status == "failed" and "policy == reference" in result.failed_case.hint
    )
    result = check_dpo_loss(make_loss(logsig=False))
    assert result.status == "failed" and "logsigmoid" in result.failed_case.hint

    def no_check(pi_w, pi_l, ref_w, ref_l, beta):
        return -F.logsigmoid(beta * ((pi_w - ref_w) - (pi_l - ref_l))).mean()

    assert check_dpo_loss(no_check).failed_case.label == "beta = 0"

    def zero_only(pi_w, pi_l, ref_w, ref_l, beta):
        if beta == 0:
            raise ValueError("beta must not be 0")
        return no_check(pi_w, pi_l, ref_w, ref_l, beta)

    assert check_dpo_loss(zero_only).failed_case.label == "beta = -0.5"

    def not_negative(pi_w, pi_l, ref_w, ref_l, beta):
        if beta <= 0:
            raise ValueError("beta must be positive")
        return no_check(pi_w, pi_l, ref_w, ref_l, beta)

    assert check_dpo_loss(not_negative).failed_case.label == "beta = nan"


def logps(logits, y):
    logp = logits.log_softmax(-1).gather(-1, y.clamp(min=0)[..., None])[..., 0]
    return (logp * (y != IGNORE_INDEX)).sum(-1)


def test_a_correct_sequence_logprob_passes():
    assert check_sequence_logprobs(logps)
    assert "labkit's own function" in check_sequence_logprobs(sequence_logprobs).report


def test_a_mean_over_answer_tokens_is_caught():
    def mean(logits, y):
        keep = y != IGNORE_INDEX
        return logps(logits, y) / keep.sum(-1)

    result = check_sequence_logprobs(mean)
    assert result.status == "failed" and "not a mean" in result.failed_case.hint


def test_counting_the_prompt_is_caught():
    def with_prompt(logits, y):
        logp = logits.log_softmax(-1).gather(-1, y.clamp(min=0)[..., None])[..., 0]
        return logp.sum(-1)

    result = check_sequence_logprobs(with_prompt)
    assert result.status == "failed" and "only the answer" in result.failed_case.hint
