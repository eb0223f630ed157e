"""Checks for the exercises of the chapter on sampling and the KV cache.

The references are labkit.sampling's ``next_token_probs`` (nucleus sampling),
labkit.attention's ``attention`` and ``causal_mask`` (one attention step on
top of a cache, as ``MultiHeadAttention`` does it with a ``KVCache``) and
``KVCache.nbytes_for`` (the memory a cache needs).

Built in: notebooks/12_sampling.ipynb.
"""

from __future__ import annotations

import dataclasses

import torch

from labkit.attention import KVCache, attention, causal_mask
from labkit.exercises import Case, CheckResult, Raises, exact, run_check, tensors_close
from labkit.model import GPTConfig
from labkit.sampling import next_token_probs, top_p_filter


def _top_p_case(logits, p: float, hint: str, label: str | None = None) -> Case:
    expected = next_token_probs(logits, 1.0, None, p)
    if label is None:
        label = f"logits {logits.numpy().round(3).tolist()}, p={p}"
    return Case((logits, p), expected, hint, label=label)


def _clear_of_the_boundary(logits: torch.Tensor, p: float) -> bool:
    """True when no running total of sorted probabilities is within 1e-3 of p
    (there, float rounding alone could decide whether a token stays)."""
    probs = torch.softmax(logits, -1).sort(-1, descending=True).values
    return bool(((probs.cumsum(-1) - p).abs() > 1e-3).all())


def _top_p_cases() -> list[Case]:
    log = torch.log
    cases = [
        _top_p_case(
            log(torch.tensor([0.5, 0.3, 0.2])),
            0.6,
            "keep tokens until their total reaches p: 0.5 is not yet 0.6, so "
            "the second token (which crosses p) stays too",
        ),
        _top_p_case(
            log(torch.tensor([0.5, 0.25, 0.125, 0.125])),
            0.5,
            "the top token alone adds up to exactly p = 0.5 (these probabilities "
            "are exact in floating point): the total has reached p, so stop; "
            "keep a token only while the mass ranked above it is below p",
            label="logits log([0.5, 0.25, 0.125, 0.125]), p=0.5",
        ),
        _top_p_case(
            log(torch.tensor([0.5, 0.3, 0.2])),
            0.1,
            "p below the top probability: the most likely token is always kept",
        ),
        _top_p_case(
            log(torch.tensor([0.2, 0.5, 0.3])),
            0.6,
            "the tokens are not in order: sort to choose, then put the "
            "probabilities back at their own token ids",
        ),
        _top_p_case(
            log(torch.tensor([0.4, 0.3, 0.2, 0.1])),
            1.0,
            "p = 1 keeps every token: the plain softmax",
        ),
        _top_p_case(
            torch.tensor([2.0, 1.0, 0.0, -1.0]),
            0.8,
            "logits, not probabilities: take the softmax first, and "
            "renormalise the kept tokens so they sum to 1",
        ),
        _top_p_case(
            log(torch.tensor([[0.7, 0.2, 0.1], [0.2, 0.3, 0.5]])),
            0.75,
            "two rows (..., V): each row gets its own nucleus over its last dimension",
            label="logits log([[0.7, 0.2, 0.1], [0.2, 0.3, 0.5]]), p=0.75",
        ),
    ]
    gen = torch.Generator().manual_seed(0)
    while len(cases) < 15:
        logits = torch.randn(2, 20, generator=gen) * 2
        p = round(float(torch.rand(1, generator=gen)) * 0.6 + 0.3, 2)
        if all(_clear_of_the_boundary(row, p) for row in logits):
            label = f"random logits of shape (2, 20), p={p}"
            cases.append(_top_p_case(logits, p, "random logits", label))
    for p in (0.0, 1.5):
        cases.append(
            Case(
                (torch.zeros(3), p),
                Raises(ValueError),
                "p must be in (0, 1]: raise ValueError naming p",
                label=f"logits [0, 0, 0], p={p}",
            )
        )
    return cases


def check_top_p(fn) -> CheckResult:
    """Check ``fn(logits, p) -> probs``: the nucleus (top-p) distribution at
    temperature 1 over the last dimension; ValueError unless 0 < p <= 1.
    """
    return run_check(
        "check_top_p",
        fn,
        _top_p_cases(),
        tensors_close,
        summary="the token that crosses p, a total of exactly p, p below the "
        "top token, unsorted "
        "ids, p = 1, logits, rows, 8 random, bad p refused",
        forbidden=("labkit", "next_token_probs", "top_p_filter"),
        references=(next_token_probs, top_p_filter),
    )


def _cache_reference(q, k_new, v_new, past_k, past_v):
    k_all = torch.cat([past_k, k_new], dim=2)  # (B, H, S, D)
    v_all = torch.cat([past_v, v_new], dim=2)
    T, S = q.shape[2], k_all.shape[2]
    out, _ = attention(q, k_all, v_all, causal_mask(T, S))
    return out, k_all, v_all


def _cache_case(B, H, T, P, D, hint: str, seed: int = 0) -> Case:
    gen = torch.Generator().manual_seed(seed)
    q, k_new, v_new = (torch.randn(B, H, T, D, generator=gen) for _ in "qkv")
    past_k, past_v = (torch.randn(B, H, P, D, generator=gen) for _ in "kv")
    args = (q, k_new, v_new, past_k, past_v)
    label = (
        f"q, k_new, v_new of shape {(B, H, T, D)}, past_k, past_v of shape "
        f"{(B, H, P, D)}"
    )
    return Case(args, _cache_reference(*args), hint, label=label)


def _cache_cases() -> list[Case]:
    cases = [
        _cache_case(
            1,
            1,
            3,
            0,
            4,
            "an empty cache (P = 0): plain causal attention over the 3 new tokens",
        ),
        _cache_case(
            1,
            2,
            1,
            4,
            8,
            "one decoding step: the new query is the last of S = 5 positions "
            "and reads every key, the 4 cached ones and its own",
        ),
        _cache_case(
            1,
            1,
            1,
            0,
            4,
            "the very first token: S = 1, its weight is 1",
        ),
        _cache_case(
            1,
            2,
            3,
            4,
            8,
            "3 new tokens on top of 4 cached: query t sits at position 4 + t, "
            "so the mask's diagonal moves right by S - T (torch's "
            "is_causal=True aligns it top-left, which is wrong here)",
        ),
        _cache_case(
            2,
            2,
            2,
            3,
            4,
            "append along the sequence axis (dim 2): k_all is (B, H, P + T, D)",
        ),
    ]
    for seed in range(1, 6):
        T, P = (1, 6) if seed % 2 else (2, 5)
        cases.append(_cache_case(2, 3, T, P, 8, "random inputs", seed=seed))
    return cases


def check_attend_with_cache(fn) -> CheckResult:
    """Check ``fn(q, k_new, v_new, past_k, past_v) -> (out, k_all, v_all)``:
    append the T new keys and values to the P cached ones, then causal
    attention of the T new queries (the last T of S = P + T positions).
    """
    return run_check(
        "check_attend_with_cache",
        fn,
        _cache_cases(),
        lambda expected, returned: tensors_close(
            expected, returned, rtol=1e-4, atol=1e-5
        ),
        summary="empty cache, one step, first token, a chunk on top of a "
        "cache, a batch, 5 random",
        forbidden=("labkit", "causal_mask"),
        references=(attention,),
    )


def _bytes_case(cfg, B, S, size, hint, label) -> Case:
    dtype = {4: torch.float32, 2: torch.float16, 1: torch.int8}[size]
    expected = KVCache.nbytes_for(cfg, B, S, dtype=dtype)
    return Case((cfg, B, S, size), expected, hint, label=label)


def _bytes_cases() -> list[Case]:
    quick = GPTConfig(
        vocab_size=256, context_len=128, n_layers=2, n_heads=4, d_model=64
    )
    gpt2 = GPTConfig()  # GPT-2 small
    gqa = dataclasses.replace(
        GPTConfig(n_layers=4, n_heads=8, d_model=256), n_kv_heads=2
    )
    return [
        _bytes_case(
            quick,
            1,
            128,
            4,
            "a key and a value per token, per layer, per kv head: D numbers "
            "each, so 2 x n_layers x n_kv_heads x D x S x bytes",
            "2 layers, 4 heads, d_model 64; batch 1, 128 tokens, 4 bytes",
        ),
        _bytes_case(
            gpt2,
            1,
            1024,
            2,
            "GPT-2 small: 12 layers, 12 heads of D = 64 (n_kv_heads None means "
            "one kv head per head)",
            "GPT-2 small; batch 1, 1024 tokens, 2 bytes",
        ),
        _bytes_case(
            gqa,
            1,
            100,
            2,
            "grouped-query attention: 8 query heads share 2 kv heads; the "
            "cache holds only the kv heads (D is still d_model / n_heads)",
            "4 layers, 8 heads, 2 kv heads, d_model 256; batch 1, 100 tokens, 2 bytes",
        ),
        _bytes_case(
            quick,
            8,
            128,
            4,
            "every sequence of the batch has its own cache",
            "2 layers, 4 heads, d_model 64; batch 8, 128 tokens, 4 bytes",
        ),
        _bytes_case(
            gpt2,
            3,
            0,
            1,
            "no tokens yet: nothing cached",
            "GPT-2 small; batch 3, 0 tokens, 1 byte",
        ),
        _bytes_case(
            gqa,
            2,
            4096,
            1,
            "the memory grows linearly in the tokens and the batch",
            "4 layers, 8 heads, 2 kv heads, d_model 256; batch 2, 4096 tokens, 1 byte",
        ),
    ]


def check_kv_cache_bytes(fn) -> CheckResult:
    """Check ``fn(cfg, batch_size, seq_len, bytes_per_value) -> int``: the
    bytes a KV cache for a GPTConfig holds at ``seq_len`` tokens.
    """
    return run_check(
        "check_kv_cache_bytes",
        fn,
        _bytes_cases(),
        exact,
        summary="this chapter's model, GPT-2 small, grouped-query heads, a "
        "batch, no tokens, a long context",
        forbidden=("KVCache", "nbytes", "element_size"),
        references=(KVCache.nbytes_for,),
    )
