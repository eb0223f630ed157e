"""The interpretability checks accept correct answers and reject plausible
wrong ones."""

import torch

from labkit.circuits import direct_logit_attribution
from labkit.exercises.interp import (
    check_direct_logit_attribution,
    check_induction_score,
)
from labkit.interp import head_scores
from labkit.norms import LayerNorm


def induction(weights, tokens, shift=1, only_matched=True):
    """A from-scratch induction score; shift=0 is the off-by-one bug."""
    H, T, _ = weights.shape
    per_query = []
    for t in range(1, T):
        keys = [s for s in range(1, t) if tokens[s - shift] == tokens[t]]
        if keys:
            per_query.append(weights[:, t, keys].sum(-1))
        elif not only_matched:
            per_query.append(weights.new_zeros(H))
    if not per_query:
        return weights.new_zeros(H)
    return torch.stack(per_query, -1).mean(-1)


def test_a_correct_induction_score_passes_and_a_stub_is_not_done():
    assert check_induction_score(induction)
    assert check_induction_score(lambda w, t: None).status == "not done"
    assert "labkit's own function" in check_induction_score(head_scores).report


def test_induction_score_one_key_early_is_caught_by_the_hand_case():
    result = check_induction_score(lambda w, t: induction(w, t, shift=0))
    assert result.status == "failed" and "not at key 0" in result.failed_case.hint


def test_induction_score_averaged_over_every_query_is_caught():
    result = check_induction_score(lambda w, t: induction(w, t, only_matched=False))
    assert result.status == "failed"
    assert result.failed_case.label.startswith("tokens 5 6 5 6")


def test_induction_score_nan_without_repeats_is_caught():
    def nan_mean(w, t):
        got = induction(w, t)
        if not any(t[s] == t[u] for u in range(len(t)) for s in range(u)):
            return got * float("nan")
        return got

    result = check_induction_score(nan_mean)
    assert result.status == "failed" and "not NaN" in result.failed_case.hint


def dla(parts, final, weight, eps, unembed, targets, centre=True, own_std=False):
    if centre:
        parts = parts - parts.mean(-1, keepdim=True)
    ref = parts if own_std else final
    std = (ref.var(-1, unbiased=False, keepdim=True) + eps).sqrt()
    return (parts / std * weight * unembed[targets]).sum(-1)


def test_a_correct_attribution_passes_and_labkit_is_refused():
    assert check_direct_logit_attribution(dla)
    assert check_direct_logit_attribution(lambda *a: None).status == "not done"
    report = check_direct_logit_attribution(direct_logit_attribution).report
    assert "labkit's own function" in report


def test_attribution_through_a_layernorm_per_part_is_caught():
    """The typical bug: normalising each part by its own std, as if the final
    norm were applied to each part alone."""
    result = check_direct_logit_attribution(lambda *a: dla(*a, own_std=True))
    assert result.status == "failed" and "not each by its own" in (
        result.failed_case.hint
    )


def test_attribution_without_centring_or_the_norm_weight_is_caught():
    result = check_direct_logit_attribution(lambda *a: dla(*a, centre=False))
    assert result.status == "failed"

    def no_weight(parts, final, weight, eps, unembed, targets):
        return dla(parts, final, torch.ones_like(weight), eps, unembed, targets)

    assert check_direct_logit_attribution(no_weight).status == "failed"


def test_the_layernorm_cases_agree_with_torch():
    norm = LayerNorm(6)
    final = torch.randn(3, 6)
    unembed = torch.randn(4, 6)
    targets = torch.tensor([0, 3, 1])
    got = direct_logit_attribution(final[None], final, norm, unembed, targets)
    want = torch.nn.functional.layer_norm(final, (6,)) @ unembed.T
    torch.testing.assert_close(got[0], want.gather(-1, targets[:, None])[:, 0])


def test_induction_score_averaged_over_queries_seen_before_is_caught():
    """The exercise's text read too literally: every query whose token
    appeared earlier counts, even one whose only earlier copy sits at t - 1
    (it has no key right after a copy, so it adds a 0 to the mean)."""

    def seen_before(weights, tokens):
        H, T, _ = weights.shape
        per_query = []
        for t in range(1, T):
            if any(tokens[s] == tokens[t] for s in range(t)):
                keys = [s for s in range(1, t) if tokens[s - 1] == tokens[t]]
                per_query.append(weights[:, t, keys].sum(-1))
        if not per_query:
            return weights.new_zeros(H)
        return torch.stack(per_query, -1).mean(-1)

    assert check_induction_score(seen_before).status == "failed"
