"""The attention checks accept correct answers and reject plausible wrong ones."""

import torch

from labkit.attention import attention, causal_mask
from labkit.exercises.attention import (
    check_attention,
    check_causal_mask,
    check_split_heads,
)


def test_labkit_causal_mask_passes_and_stub_is_not_done():
    assert check_causal_mask(lambda T, S: causal_mask(T, S))
    assert check_causal_mask(lambda T, S: None).status == "not done"


def test_labkit_own_functions_are_refused():
    assert "labkit's own function" in check_causal_mask(causal_mask).report
    assert "labkit's own function" in check_attention(attention).report


def test_no_attention_case_has_a_fully_masked_query():
    from labkit.exercises.attention import _attention_cases

    for case in _attention_cases():
        mask = case.args[3]
        if mask is not None:
            assert mask.any(-1).all(), case.label
    assert check_attention(finite_fill)


def finite_fill(q, k, v, mask=None):
    """The common practice of a large negative number instead of -inf."""
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, -1e9)
    w = scores.softmax(-1)
    return w @ v, w


def test_masks_without_the_kv_cache_offset_or_off_by_one_are_caught():
    def no_offset(T, S):
        if S < T:
            raise ValueError("S < T")
        return torch.ones(T, S, dtype=torch.bool).tril()

    result = check_causal_mask(no_offset)
    assert result.status == "failed" and result.failed_case.args == (1, 5)

    def off_by_one(T, S):
        if S < T:
            raise ValueError("S < T")
        return torch.ones(T, S, dtype=torch.bool).tril(diagonal=S - T - 1)

    assert check_causal_mask(off_by_one).failed_case.args == (3, 3)

    def ints(T, S):
        return causal_mask(T, S).int()

    assert "dtype torch.int32" in check_causal_mask(ints).report


def test_labkit_attention_passes():
    assert check_attention(lambda q, k, v, mask=None: attention(q, k, v, mask))


def test_attention_without_the_sqrt_d_scaling_is_caught():
    def unscaled(q, k, v, mask=None):
        scores = q @ k.transpose(-2, -1)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        w = scores.softmax(-1)
        return w @ v, w

    result = check_attention(unscaled)
    assert result.status == "failed" and "sqrt(D)" in result.failed_case.hint


def test_attention_with_masked_scores_set_to_zero_is_caught():
    def zero_fill(q, k, v, mask=None):
        scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
        if mask is not None:
            scores = scores.masked_fill(~mask, 0.0)
        w = scores.softmax(-1)
        return w @ v, w

    assert check_attention(zero_fill).status == "failed"


def test_attention_that_overflows_on_large_scores_is_caught():
    def naive_exp(q, k, v, mask=None):
        scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
        e = scores.exp()
        if mask is not None:
            e = e * mask
        w = e / e.sum(-1, keepdim=True)
        return w @ v, w

    result = check_attention(naive_exp)
    assert result.status == "failed" and "NaN" in result.report


def test_split_heads_view_without_transpose_is_caught():
    def correct(x, n_heads):
        B, T, C = x.shape
        if C % n_heads:
            raise ValueError("C not divisible by n_heads")
        return x.view(B, T, n_heads, C // n_heads).transpose(1, 2)

    assert check_split_heads(correct)

    def no_transpose(x, n_heads):
        B, T, C = x.shape
        if C % n_heads:
            raise ValueError("C not divisible by n_heads")
        return x.reshape(B, n_heads, T, C // n_heads)

    result = check_split_heads(no_transpose)
    assert result.status == "failed" and "then swap T and H" in result.report
