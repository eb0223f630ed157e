"""The RL checks pass correct answers and reject plausible wrong ones:
advantages not divided by the std, a std of zero not handled, the batch
normalised as one group; the clip without the min, or on the wrong side;
the KL estimator with its ratio inverted, or k1."""

import torch

from labkit.exercises.rl import (
    check_clipped_surrogate,
    check_group_advantages,
    check_k3_kl,
)
from labkit.grpo import group_advantages, k3_kl


def advantages(rewards, divide=True, guard=True, per_group=True, unbiased=False):
    if rewards.shape[-1] < 2:
        raise ValueError("a group of one has no baseline")
    dims = dict(dim=-1, keepdim=True) if per_group else {}
    centred = rewards - rewards.mean(**dims)
    if not divide:
        return centred
    std = rewards.std(unbiased=unbiased, **dims)
    if guard:
        return torch.where(std > 0, centred / std.clamp(min=1e-12), 0.0)
    return centred / std


def test_correct_advantages_pass_and_labkits_is_refused():
    assert check_group_advantages(advantages)
    assert check_group_advantages(lambda r: None).status == "not done"
    assert "labkit's own function" in check_group_advantages(group_advantages).report


def test_wrong_advantages_are_rejected():
    cases = {
        "not divided by the std": dict(divide=False),
        "std of zero not handled": dict(guard=False),
        "whole batch as one group": dict(per_group=False),
        "sample std": dict(unbiased=True),
    }
    hints = {
        "not divided by the std": "divide by the population std",
        "std of zero not handled": "not 0/0",
        "whole batch as one group": "all equal",
        "sample std": "population std",
    }
    for name, kwargs in cases.items():
        result = check_group_advantages(lambda r, kw=kwargs: advantages(r, **kw))
        assert result.status == "failed", name
        assert hints[name] in result.failed_case.hint, (name, result.report)

    def no_check(rewards):
        return advantages(torch.cat([rewards, rewards], -1))[:, : rewards.shape[1]]

    assert check_group_advantages(no_check).failed_case.label.startswith("groups of")


def surrogate(ratio, adv, eps, mode="min"):
    A = adv[:, None]
    clipped = ratio.clamp(1 - eps, 1 + eps) * A
    if mode == "clip only":
        return clipped
    if mode == "max":
        return torch.maximum(ratio * A, clipped)
    if mode == "upper side only":
        return torch.minimum(ratio * A, ratio.clamp(max=1 + eps) * A)
    return torch.minimum(ratio * A, clipped)


def test_a_correct_surrogate_passes_and_wrong_ones_are_rejected():
    assert check_clipped_surrogate(surrogate)
    expected = {
        "clip only": "ratio 0.5, A = 1",
        "max": "ratio 1.5, A = 1",
        "upper side only": "ratio 0.5, A = -1",
    }
    for mode, label in expected.items():
        result = check_clipped_surrogate(lambda r, a, e, m=mode: surrogate(r, a, e, m))
        assert result.status == "failed" and result.failed_case.label == label, mode


def test_a_correct_k3_passes_and_an_inverted_ratio_or_k1_is_rejected():
    def k3(logp, ref):
        d = ref - logp
        return d.exp() - d - 1

    def inverted(logp, ref):
        d = logp - ref
        return d.exp() - d - 1

    def k1(logp, ref):
        return logp - ref

    assert check_k3_kl(k3)
    assert "labkit's own function" in check_k3_kl(k3_kl).report
    result = check_k3_kl(inverted)
    assert result.status == "failed" and "reference first" in result.failed_case.hint
    result = check_k3_kl(k1)
    assert result.status == "failed" and result.failed_case.label == "p = 0.5, q = 0.25"
