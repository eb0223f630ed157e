"""Checks for the exercises of the chapter on attention.

The references are labkit.attention's ``causal_mask`` and ``attention``, and
the head split that ``MultiHeadAttention.forward`` does inline.

Built in: notebooks/06_attention.ipynb.
"""

from __future__ import annotations

import torch

from labkit.attention import attention, causal_mask, padding_mask
from labkit.exercises import Case, CheckResult, Raises, run_check, tensors_close


def _mask_cases() -> list[Case]:
    def case(T: int, S: int, hint: str) -> Case:
        return Case((T, S), causal_mask(T, S), hint, label=f"T={T}, S={S}")

    cases = [
        case(3, 3, "query t may read keys 0..t: a lower triangle"),
        case(1, 1, "one query, one key: it may read itself"),
        case(
            1,
            5,
            "with a KV cache the one new query is the last of S "
            "positions: it may read all S keys",
        ),
        case(2, 5, "two new queries at positions 3 and 4 of 5"),
        case(4, 6, "query t sits at position S - T + t"),
    ]
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):
        S = int(torch.randint(1, 17, (1,), generator=gen))
        T = int(torch.randint(1, S + 1, (1,), generator=gen))
        cases.append(case(T, S, "random sizes with T <= S"))
    cases.append(
        Case(
            (4, 2),
            Raises(ValueError),
            "fewer keys than queries cannot happen "
            "(every query is also a key): raise ValueError",
            label="T=4, S=2",
        )
    )
    return cases


def check_causal_mask(fn) -> CheckResult:
    """Check ``fn(T, S) -> (T, S) bool tensor``, True where query t (the last T
    of S positions) may attend to key s; ValueError when S < T.
    """
    return run_check(
        "check_causal_mask",
        fn,
        _mask_cases(),
        tensors_close,
        summary="square, KV-cache offsets, 10 random sizes, S < T refused",
        forbidden=("labkit",),
        references=(causal_mask,),
    )


def _attention_case(shape, mask_kind: str, hint: str, scale: float = 1.0, seed=0):
    B, H, T, S, D = shape
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, T, D, generator=gen) * scale
    k = torch.randn(B, H, S, D, generator=gen) * scale
    v = torch.randn(B, H, S, D, generator=gen)
    mask = None
    if mask_kind in ("causal", "causal+padding"):
        mask = causal_mask(T, S)
    if mask_kind == "causal+padding":
        keep = torch.ones(B, S, dtype=torch.bool)
        keep[-1, S - 2 :] = False  # the last sequence is padded at the end
        mask = mask & padding_mask(keep)  # (B, 1, T, S); no row fully masked
    expected = attention(q, k, v, mask)
    label = f"q {tuple(q.shape)}, k and v {tuple(k.shape)}, mask: {mask_kind}"
    if scale != 1.0:
        label += f", q and k scaled by {scale:g}"
    return Case((q, k, v, mask), expected, hint, label=label)


def _attention_cases() -> list[Case]:
    cases = [
        _attention_case(
            (1, 1, 1, 1, 4),
            "none",
            "one key: its weight is 1 and the output is its value",
        ),
        _attention_case(
            (2, 2, 5, 5, 8),
            "causal",
            "divide the scores by "
            "sqrt(D) before the softmax; masked scores become -inf",
        ),
        _attention_case(
            (1, 2, 3, 7, 4),
            "causal",
            "a KV-cache mask (T < S): use the mask you are given, do not rebuild it",
        ),
        _attention_case(
            (2, 1, 4, 6, 16),
            "causal+padding",
            "a (B, 1, T, S) mask broadcasts over heads",
        ),
        _attention_case(
            (1, 1, 3, 5, 8),
            "none",
            "no mask: every query reads "
            "every key; the softmax runs over the keys (last dim)",
        ),
        _attention_case(
            (1, 2, 6, 6, 64),
            "causal",
            "large scores: exp overflows "
            "unless the row's maximum is subtracted first (or use "
            "torch's softmax)",
            scale=12.0,
        ),
    ]
    for seed in range(1, 6):
        cases.append(
            _attention_case((2, 3, 5, 5, 4), "causal", "random inputs", seed=seed)
        )
    return cases


def check_attention(fn) -> CheckResult:
    """Check ``fn(q, k, v, mask) -> (output, weights)``: scaled dot-product
    attention with an optional boolean mask (True = may attend). No case has
    a query whose keys are all masked (its answer is undefined).
    """
    return run_check(
        "check_attention",
        fn,
        _attention_cases(),
        tensors_close,
        summary="one key, causal, KV-cache and padding masks, no mask, large "
        "scores, 5 random",
        forbidden=("labkit", "my_attention"),
        references=(attention,),
    )


def _split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    B, T, C = x.shape
    if C % n_heads:
        raise ValueError(f"C={C} is not divisible by n_heads={n_heads}")
    return x.view(B, T, n_heads, C // n_heads).transpose(1, 2)


def _split_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(0)

    def case(B, T, C, H, hint):
        x = torch.randn(B, T, C, generator=gen)
        label = f"x of shape {(B, T, C)}, n_heads={H}"
        return Case((x, H), _split_heads(x, H), hint, label=label)

    cases = [
        case(
            2,
            3,
            8,
            2,
            "head h holds features h*D .. (h+1)*D - 1 of every "
            "token: view as (B, T, H, D), then swap T and H",
        ),
        case(1, 4, 4, 1, "one head: the same numbers, shape (B, 1, T, C)"),
        case(
            2,
            5,
            12,
            3,
            "reshaping straight to (B, H, T, D) mixes tokens "
            "into heads: the values land in the wrong places",
        ),
        case(1, 1, 6, 6, "D = 1: one feature per head"),
    ]
    for T, C, H in ((7, 16, 4), (3, 24, 6), (9, 10, 5)):
        cases.append(case(2, T, C, H, "random sizes"))
    x = torch.randn(1, 2, 10, generator=gen)
    cases.append(
        Case(
            (x, 3),
            Raises(ValueError),
            "C must split evenly into heads: raise ValueError naming C and n_heads",
            label="x of shape (1, 2, 10), n_heads=3",
        )
    )
    return cases


def check_split_heads(fn) -> CheckResult:
    """Check ``fn(x, n_heads) -> (B, H, T, D)`` from x of shape (B, T, C)."""
    return run_check(
        "check_split_heads",
        fn,
        _split_cases(),
        tensors_close,
        summary="one head, D = 1, several sizes, C not divisible refused",
    )
