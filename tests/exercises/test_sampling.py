"""The sampling checks accept correct answers and reject plausible wrong ones."""

import torch
import torch.nn.functional as F

from labkit.attention import KVCache, attention, causal_mask
from labkit.exercises.sampling import (
    check_attend_with_cache,
    check_kv_cache_bytes,
    check_top_p,
)
from labkit.sampling import next_token_probs


def top_p(logits, p):
    """A correct nucleus: drop a token once the mass ranked above it >= p."""
    if not 0 < p <= 1:
        raise ValueError(f"p={p} must be in (0, 1]")
    probs = logits.softmax(-1)
    sorted_probs, order = probs.sort(-1, descending=True)
    above = sorted_probs.cumsum(-1) - sorted_probs
    keep_sorted = above < p
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    kept = probs * keep
    return kept / kept.sum(-1, keepdim=True)


def test_correct_top_p_passes_and_stub_is_not_done():
    assert check_top_p(top_p)
    wrapped = check_top_p(lambda logits, p: next_token_probs(logits, 1.0, None, p))
    assert "uses 'next_token_probs'" in wrapped.report  # a bypass is refused
    assert check_top_p(lambda logits, p: None).status == "not done"


def test_labkit_own_functions_are_refused():
    assert "labkit's own function" in check_top_p(next_token_probs).report
    report = check_kv_cache_bytes(KVCache.nbytes_for).report
    assert "labkit's own function" in report


def test_top_p_that_drops_the_token_crossing_p_is_caught():
    def cumsum_at_most_p(logits, p):  # keeps tokens while the total <= p
        if not 0 < p <= 1:
            raise ValueError(f"p={p}")
        probs = logits.softmax(-1)
        sorted_probs, order = probs.sort(-1, descending=True)
        keep_sorted = sorted_probs.cumsum(-1) <= p
        keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
        kept = probs * keep
        return kept / kept.sum(-1, keepdim=True)

    result = check_top_p(cumsum_at_most_p)
    assert result.status == "failed"
    assert "crosses p" in result.failed_case.hint


def test_top_p_that_keeps_a_token_once_the_total_is_exactly_p_is_caught():
    def above_at_most_p(logits, p):  # `<=` where the definition has `<`
        if not 0 < p <= 1:
            raise ValueError(f"p={p}")
        probs = logits.softmax(-1)
        sorted_probs, order = probs.sort(-1, descending=True)
        keep_sorted = sorted_probs.cumsum(-1) - sorted_probs <= p
        keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
        kept = probs * keep
        return kept / kept.sum(-1, keepdim=True)

    result = check_top_p(above_at_most_p)
    assert result.status == "failed"
    assert "exactly p" in result.failed_case.hint


def test_top_p_in_sorted_order_or_without_renormalising_is_caught():
    def sorted_order(logits, p):  # forgets to put the ids back
        probs = top_p(logits, p)
        return probs.sort(-1, descending=True).values

    assert "not in order" in check_top_p(sorted_order).failed_case.hint

    def not_renormalised(logits, p):
        probs = top_p(logits, p)
        return probs * logits.softmax(-1).max(-1, keepdim=True).values

    assert check_top_p(not_renormalised).status == "failed"


def attend_with_cache(q, k_new, v_new, past_k, past_v):
    k_all = torch.cat([past_k, k_new], dim=2)
    v_all = torch.cat([past_v, v_new], dim=2)
    T, S = q.shape[2], k_all.shape[2]
    mask = torch.ones(T, S, dtype=torch.bool).tril(diagonal=S - T)
    return F.scaled_dot_product_attention(q, k_all, v_all, attn_mask=mask), k_all, v_all


def test_correct_cache_step_passes_and_stub_is_not_done():
    assert check_attend_with_cache(attend_with_cache)

    def own_mask(q, k_new, v_new, past_k, past_v):  # own mask: fine
        k_all = torch.cat([past_k, k_new], dim=2)
        v_all = torch.cat([past_v, v_new], dim=2)
        T, S = q.shape[2], k_all.shape[2]
        mask = torch.ones(T, S, dtype=torch.bool).tril(diagonal=S - T)
        return attention(q, k_all, v_all, mask)[0], k_all, v_all

    assert check_attend_with_cache(own_mask)

    def given_mask(q, k_new, v_new, past_k, past_v):  # the mask is the point
        k_all = torch.cat([past_k, k_new], dim=2)
        v_all = torch.cat([past_v, v_new], dim=2)
        mask = causal_mask(q.shape[2], k_all.shape[2])
        return attention(q, k_all, v_all, mask)[0], k_all, v_all

    assert "uses 'causal_mask'" in check_attend_with_cache(given_mask).report
    assert check_attend_with_cache(lambda *a: None).status == "not done"


def test_cache_step_with_torch_is_causal_is_caught():
    def is_causal(q, k_new, v_new, past_k, past_v):  # top-left aligned mask
        k_all = torch.cat([past_k, k_new], dim=2)
        v_all = torch.cat([past_v, v_new], dim=2)
        out = F.scaled_dot_product_attention(q, k_all, v_all, is_causal=True)
        return out, k_all, v_all

    result = check_attend_with_cache(is_causal)
    assert result.status == "failed"
    # one new query against 5 keys: top-left alignment lets it read key 0 only
    assert "reads every key" in result.failed_case.hint


def test_cache_step_that_ignores_the_cache_or_the_mask_is_caught():
    def new_keys_only(q, k_new, v_new, past_k, past_v):
        T = q.shape[2]
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        out = F.scaled_dot_product_attention(q, k_new, v_new, attn_mask=mask)
        return out, k_new, v_new

    result = check_attend_with_cache(new_keys_only)
    assert result.status == "failed" and "reads every key" in result.report

    def no_mask(q, k_new, v_new, past_k, past_v):
        k_all = torch.cat([past_k, k_new], dim=2)
        v_all = torch.cat([past_v, v_new], dim=2)
        return F.scaled_dot_product_attention(q, k_all, v_all), k_all, v_all

    assert "empty cache" in check_attend_with_cache(no_mask).failed_case.hint

    def wrong_axis(q, k_new, v_new, past_k, past_v):
        k_all = torch.cat([past_k, k_new], dim=-1)
        v_all = torch.cat([past_v, v_new], dim=-1)
        return q, k_all, v_all

    assert check_attend_with_cache(wrong_axis).status == "failed"


def kv_cache_bytes(cfg, batch_size, seq_len, bytes_per_value):
    n_kv = cfg.n_kv_heads or cfg.n_heads
    per_token = 2 * cfg.n_layers * n_kv * cfg.d_head * bytes_per_value
    return batch_size * seq_len * per_token


def test_correct_cache_bytes_passes_and_stub_is_not_done():
    assert check_kv_cache_bytes(kv_cache_bytes)
    assert check_kv_cache_bytes(lambda *a: None).status == "not done"


def test_cache_bytes_without_the_two_or_with_all_heads_is_caught():
    def keys_only(cfg, batch_size, seq_len, bytes_per_value):
        return kv_cache_bytes(cfg, batch_size, seq_len, bytes_per_value) // 2

    assert check_kv_cache_bytes(keys_only).failed_case.args[2] == 128

    def every_head(cfg, batch_size, seq_len, bytes_per_value):
        per_token = 2 * cfg.n_layers * cfg.d_model * bytes_per_value
        return batch_size * seq_len * per_token

    result = check_kv_cache_bytes(every_head)
    assert result.status == "failed" and "kv heads" in result.failed_case.hint

    def float_answer(cfg, batch_size, seq_len, bytes_per_value):
        return kv_cache_bytes(cfg, batch_size, seq_len, bytes_per_value) / 1

    assert "of type float" in check_kv_cache_bytes(float_answer).report
