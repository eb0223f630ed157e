"""labkit.attention: the written-out path against torch SDPA, masks, GQA, KV cache."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.attention import (
    KVCache,
    MultiHeadAttention,
    attention,
    attention_fast,
    causal_mask,
    padding_mask,
    repeat_kv,
)
from labkit.positions import ALiBi, RotaryEmbedding

TOL = dict(rtol=1e-5, atol=1e-5)  # float32


def test_causal_mask_hand_derived():
    expected = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    assert torch.equal(causal_mask(3), expected)
    # two new queries after three cached keys: the last two rows of causal_mask(5)
    assert torch.equal(causal_mask(2, 5), causal_mask(5)[3:])
    with pytest.raises(ValueError, match="S >= T"):
        causal_mask(4, 2)


def test_padding_mask_shape_and_values():
    keep = torch.tensor([[True, True, False], [True, False, False]])
    mask = padding_mask(keep)
    assert mask.shape == (2, 1, 1, 3)
    assert torch.equal(mask[:, 0, 0], keep)


def make_mask(kind, B, T, S):
    if kind == "none":
        return None
    if kind == "causal":
        return causal_mask(T, S)
    keep = torch.ones(B, S, dtype=torch.bool)
    keep[0, S - 2 :] = False  # the first sequence is padded at the end
    return (
        padding_mask(keep) & causal_mask(T, S) if kind == "both" else padding_mask(keep)
    )


@pytest.mark.parametrize("mask_kind", ["none", "causal", "padding", "both"])
@pytest.mark.parametrize("H,K", [(4, 4), (4, 2), (4, 1)])
def test_attention_matches_torch_sdpa(seed, mask_kind, H, K):
    B, T, S, D = 2, 5, 5, 8
    q, k, v = torch.randn(B, H, T, D), torch.randn(B, K, S, D), torch.randn(B, K, S, D)
    mask = make_mask(mask_kind, B, T, S)
    out, weights = attention(q, k, v, mask)
    ref = F.scaled_dot_product_attention(
        q, repeat_kv(k, H // K), repeat_kv(v, H // K), attn_mask=mask
    )
    torch.testing.assert_close(out, ref, **TOL)
    torch.testing.assert_close(attention_fast(q, k, v, mask), ref, **TOL)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, H, T), **TOL)
    if mask is not None:
        assert (weights.masked_select(~mask.expand_as(weights)) == 0).all()


def test_attention_fast_is_causal_flag_equals_explicit_mask(seed):
    q, k, v = (torch.randn(2, 4, 6, 8) for _ in range(3))
    torch.testing.assert_close(
        attention_fast(q, k, v, is_causal=True),
        attention(q, k, v, causal_mask(6))[0],
        **TOL,
    )


def test_attention_with_position_bias_matches_fast_path(seed):
    q, k, v = (torch.randn(2, 4, 6, 8) for _ in range(3))
    bias = ALiBi(4)(torch.arange(6), torch.arange(6))
    mask = causal_mask(6)
    torch.testing.assert_close(
        attention(q, k, v, mask, bias)[0], attention_fast(q, k, v, mask, bias), **TOL
    )


def test_attention_one_key_returns_its_value():
    q, k, v = torch.randn(1, 1, 1, 4), torch.randn(1, 1, 1, 4), torch.randn(1, 1, 1, 4)
    out, weights = attention(q, k, v)
    torch.testing.assert_close(out, v)
    assert weights.item() == 1.0


def make_mha(kind, H=4, K=2, C=32):
    rope = RotaryEmbedding(C // H) if kind == "rope" else None
    alibi = ALiBi(H) if kind == "alibi" else None
    return MultiHeadAttention(C, H, K, rope=rope, alibi=alibi)


@pytest.mark.parametrize("kind", ["plain", "rope", "alibi"])
def test_mha_written_out_and_fast_paths_agree(seed, kind):
    mha = make_mha(kind)
    x = torch.randn(2, 7, 32)
    fast, none = mha(x)
    slow, weights = mha(x, need_weights=True)
    assert none is None and weights.shape == (2, 4, 7, 7)
    torch.testing.assert_close(fast, slow, **TOL)
    assert (weights.triu(diagonal=1) == 0).all()  # causal


@pytest.mark.parametrize("kind", ["plain", "rope", "alibi"])
def test_mha_kv_cache_decode_equals_full_forward(seed, kind):
    mha = make_mha(kind)
    x = torch.randn(2, 9, 32)
    full, _ = mha(x)
    cache = KVCache(1, 2, 2, 8, max_len=9)
    steps = [mha(x[:, :4], cache=cache)[0]]  # a prompt of 4, then one at a time
    steps += [mha(x[:, t : t + 1], cache=cache)[0] for t in range(4, 9)]
    torch.testing.assert_close(torch.cat(steps, 1), full, **TOL)
    assert cache.length == 9


def test_mha_padding_mask_matches_shorter_sequence(seed):
    mha = make_mha("rope")
    x = torch.randn(1, 6, 32)
    keep = torch.tensor([[True] * 4 + [False] * 2])
    padded, _ = mha(x, mask=padding_mask(keep))
    short, _ = mha(x[:, :4])
    torch.testing.assert_close(padded[:, :4], short, **TOL)


def test_kv_cache_for_model_and_overflow(tiny_llama_cfg):
    cfg = dataclasses.replace(tiny_llama_cfg, n_layers=3, context_len=5)
    cache = KVCache.for_model(cfg, batch_size=2)  # K = 2 kv heads of D = 8
    assert cache.k.shape == (3, 2, 2, 5, 8)
    assert cache.nbytes == 2 * 3 * 2 * 2 * 5 * 8 * 4
    plain = KVCache.for_model(dataclasses.replace(cfg, n_kv_heads=None), 1)
    assert plain.k.shape == (3, 1, 4, 5, 8)  # n_kv_heads=None: one per head
    k = torch.randn(2, 2, 4, 8)
    cache.update(0, k, k)
    with pytest.raises(ValueError, match="KV cache is full: 4 cached \\+ 2 new"):
        cache.update(0, k[:, :, :2], k[:, :, :2])
    cache.reset()
    assert cache.length == 0


def test_kv_cache_nbytes_for_equals_the_allocated_cache(tiny_llama_cfg):
    for n_kv in (None, 2, 1):  # one kv head per head, grouped, multi-query
        cfg = dataclasses.replace(tiny_llama_cfg, n_layers=3, n_kv_heads=n_kv)
        for dtype in (torch.float32, torch.float16):
            for B, S in ((1, None), (3, 7), (2, 0)):
                made = KVCache.for_model(cfg, B, S, dtype=dtype)
                assert KVCache.nbytes_for(cfg, B, S, dtype=dtype) == made.nbytes


def test_kv_cache_nbytes_for_gpt2_small_by_hand():
    from labkit.model import GPTConfig

    # 2 (k, v) x 12 layers x 12 heads x 64 features x 1024 tokens x 2 bytes
    assert KVCache.nbytes_for(GPTConfig(), 1, dtype=torch.float16) == 37_748_736
    assert KVCache.nbytes_for(GPTConfig(), 4, 10) == 4 * 10 * 2 * 12 * 768 * 4
    with pytest.raises(ValueError, match="batch_size=-1"):
        KVCache.nbytes_for(GPTConfig(), -1)


def test_mha_rejects_bad_head_counts():
    with pytest.raises(ValueError, match="n_kv_heads=3"):
        MultiHeadAttention(32, 4, 3)
    with pytest.raises(ValueError, match="d_model=30 divisible by n_heads=4"):
        MultiHeadAttention(30, 4)


@settings(max_examples=15, deadline=None)
@given(
    B=st.integers(1, 3),
    T=st.integers(1, 6),
    K=st.sampled_from([1, 2, 4]),
    D=st.sampled_from([2, 4, 8]),
)
def test_mha_shapes(B, T, K, D):
    mha = MultiHeadAttention(4 * D, 4, K)
    out, weights = mha(torch.randn(B, T, 4 * D), need_weights=True)
    assert out.shape == (B, T, 4 * D) and weights.shape == (B, 4, T, T)


@pytest.mark.parametrize("need_weights", [False, True])
def test_projection_hooks_run_on_both_paths(need_weights):
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 2)
    x = torch.randn(1, 3, 16)
    seen = []
    # a hook on every module (a profiler, a tracer) sees each projection
    everywhere = torch.nn.modules.module.register_module_forward_hook(
        lambda m, i, o: seen.append(type(m).__name__)
    )
    try:
        mha(x, need_weights=need_weights)
    finally:
        everywhere.remove()
    assert seen == ["Linear"] * 4 + ["MultiHeadAttention"]
    seen.clear()
    handles = [
        getattr(mha, f"{p}_proj").register_forward_hook(
            lambda m, i, o, p=p: seen.append((p, tuple(o.shape)))
        )
        for p in "qkv"
    ]
    mha(x, need_weights=need_weights)
    for h in handles:
        h.remove()
    assert seen == [("q", (1, 3, 16)), ("k", (1, 3, 16)), ("v", (1, 3, 16))]


def test_replaced_projection_runs_its_own_forward(seed):
    mha = MultiHeadAttention(16, 2)
    x = torch.randn(1, 3, 16)

    class Doubled(torch.nn.Linear):
        def forward(self, x):
            return 2 * super().forward(x)

    with torch.no_grad():
        mha.o_proj.weight.copy_(torch.eye(16))
        mha.o_proj.bias.zero_()
        mha.q_proj.weight.zero_()  # uniform attention: output = mean of values
        mha.q_proj.bias.zero_()
    before, _ = mha(x)
    doubled = Doubled(16, 16)
    doubled.load_state_dict(mha.v_proj.state_dict())
    mha.v_proj = doubled  # as LoRA replaces a projection
    torch.testing.assert_close(mha(x)[0], 2 * before)
