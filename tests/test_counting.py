"""labkit.counting: published totals, the built model, FLOP counter, autograd."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from labkit.attention import KVCache, attention, causal_mask
from labkit.counting import (
    activation_elements_per_token,
    count_params,
    finetune_bytes,
    flops_by_part,
    flops_per_token,
    kv_cache_bytes,
    linear_shapes,
    lora_params,
    memory_estimate,
    mfu,
    non_embedding_params,
    param_counts,
    weight_bytes,
)
from labkit.model import GPT, PRESETS, GPTConfig

PUBLISHED = {
    "gpt2": 124_439_808,
    "gpt2-medium": 354_823_168,
    "gpt2-large": 774_030_080,
    "gpt2-xl": 1_557_611_200,
    "llama2-7b": 6_738_415_616,
    "llama3-8b": 8_030_261_248,
}
SMALL = GPTConfig(vocab_size=64, context_len=16, n_layers=2, n_heads=4, d_model=32)
VARIANTS = [
    {},
    dict(
        pos="rope",
        norm="rmsnorm",
        mlp="swiglu",
        bias=False,
        tie_weights=False,
        n_kv_heads=2,
    ),
    dict(pos="sinusoidal", mlp="geglu", n_kv_heads=1),
    dict(pos="alibi", norm="layernorm", bias=False, prenorm=False, d_mlp=40),
    dict(parallel=True),  # one norm per block (norm_1 feeds both)
    dict(parallel=True, pos="rope", norm="rmsnorm", mlp="swiglu", bias=False),
]


@pytest.mark.parametrize("name", PUBLISHED)
def test_count_params_equals_published_totals(name):
    assert count_params(PRESETS[name]) == PUBLISHED[name]


@pytest.mark.parametrize("name", ["tiny", "small", "tiny-llama"])
def test_count_params_equals_built_small_presets(name):
    model = GPT(PRESETS[name])
    assert count_params(PRESETS[name]) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("fields", VARIANTS)
def test_param_counts_by_part_match_the_modules(fields):
    cfg = dataclasses.replace(SMALL, **fields)
    model = GPT(cfg)
    parts = param_counts(cfg)

    def n(modules):
        return sum(p.numel() for m in modules for p in m.parameters())

    assert parts["attn"] == n(b.attn for b in model.blocks)
    assert parts["mlp"] == n(b.mlp for b in model.blocks)
    norms = [b.norm_1 for b in model.blocks] + [b.norm_2 for b in model.blocks]
    assert parts["norms"] == n([m for m in norms if m is not None] + [model.norm_f])
    assert count_params(cfg) == n([model])


def test_gpt2_parts_hand_derived():
    parts = param_counts(PRESETS["gpt2"])
    assert parts["tok_emb"] == 50257 * 768 and parts["pos_emb"] == 1024 * 768
    assert parts["attn"] == 12 * (768 * 3 * 768 + 3 * 768 + 768 * 768 + 768)
    assert parts["lm_head"] == 0  # tied


@pytest.mark.parametrize("fields", VARIANTS)
def test_flops_per_token_equals_torch_flop_counter(seed, fields):
    cfg = dataclasses.replace(SMALL, **fields)
    model = GPT(cfg)
    B, T = 2, 12
    idx = torch.randint(0, cfg.vocab_size, (B, T))
    with FlopCounterMode(display=False) as counter:  # written-out attention
        model(idx, need_weights=True)
    assert counter.get_total_flops() == B * T * flops_per_token(cfg, T)
    with FlopCounterMode(display=False) as counter:
        model(idx, need_weights=True).sum().backward()
    assert counter.get_total_flops() == B * T * flops_per_token(cfg, T, training=True)


def test_gpt2_flops_hand_derived():
    cfg = PRESETS["gpt2"]
    matmul_weights = 12 * (4 * 768**2 + 2 * 768 * 3072) + 50257 * 768
    forward = 2 * matmul_weights + 12 * 4 * 1024 * 768
    assert flops_per_token(cfg) == forward == 284_812_800
    assert flops_per_token(cfg, 1024, training=True) == 3 * forward


def test_training_memory_weights_gradients_adamw():
    cfg = PRESETS["gpt2"]
    est = memory_estimate(cfg, batch_size=1)
    P = PUBLISHED["gpt2"]
    assert (est.weights, est.gradients, est.optimizer) == (4 * P, 4 * P, 8 * P)
    assert est.kv_cache == 0
    assert est.total == 16 * P + est.activations
    sgd = memory_estimate(cfg, 1, optimizer="sgd", bytes_per_param=2)
    assert (sgd.weights, sgd.optimizer) == (2 * P, 0)


def saved_bytes(model, idx, need_weights):
    """Bytes of the tensors autograd saves for the backward pass (not weights)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logits = model(idx, need_weights=need_weights)
        F.cross_entropy(logits.flatten(0, 1), idx.flatten())
    return sum(saved.values())


@pytest.mark.parametrize("fields", VARIANTS[:2])
def test_activation_estimate_close_to_what_autograd_saves(seed, fields):
    cfg = dataclasses.replace(SMALL, **fields)
    model = GPT(cfg)
    B, T = 4, 16
    idx = torch.randint(0, cfg.vocab_size, (B, T))
    estimate = memory_estimate(cfg, B, T, fused=True).activations
    assert 0.8 < estimate / saved_bytes(model, idx, False) < 1.2


@pytest.mark.parametrize("T", [16, 256])
@pytest.mark.parametrize("need_weights", [False, True])
def test_activation_estimate_on_both_attention_paths(seed, T, need_weights):
    # GPT-2's layout, within 3%: at T=256 the weights H*T are 2x the rest
    cfg = GPTConfig(vocab_size=256, context_len=T, n_layers=2, n_heads=4, d_model=32)
    idx = torch.randint(0, 256, (2, T))
    saved = saved_bytes(GPT(cfg), idx, need_weights)
    estimate = memory_estimate(cfg, 2, T, fused=not need_weights).activations
    assert 0.97 < estimate / saved < 1.03


def test_activation_weights_term_hand_derived():
    # GPT-2 small per layer: 16 C without the weights, H * T with them
    cfg = PRESETS["gpt2"]
    fused = activation_elements_per_token(cfg, 1024, fused=True)
    written = activation_elements_per_token(cfg, 1024)
    assert fused == 12 * (16 * 768 + 12) + 2 * 768 + 50257
    assert written - fused == 12 * (12 * 1024 - 12)
    assert memory_estimate(cfg, 1, 1024).activations == 4 * 1024 * written


def test_inference_memory_kv_cache_equals_real_cache():
    cfg = PRESETS["tiny-llama"]
    est = memory_estimate(cfg, batch_size=3, seq_len=100, training=False)
    cache = KVCache.for_model(cfg, batch_size=3, max_len=100)
    assert est.kv_cache == cache.nbytes
    assert est.gradients == est.optimizer == 0


def test_llama3_kv_cache_hand_derived():
    # 32 layers * (k and v) * 8 kv heads * 128 dims * 2 bytes = 128 KiB per token
    est = memory_estimate(PRESETS["llama3-8b"], 1, 1, training=False, bytes_per_param=2)
    assert est.kv_cache == 131072


def test_unknown_optimizer_names_the_choices():
    with pytest.raises(ValueError, match="optimizer='adam'.*adamw"):
        memory_estimate(SMALL, 1, optimizer="adam")


def test_counts_follow_a_width_changed_with_replace():
    # GPT-2 medium is GPT-2 small at 24 layers, 16 heads and width 1024: d_mlp
    # (4 * d_model) follows the width without being set again
    medium = dataclasses.replace(PRESETS["gpt2"], n_layers=24, n_heads=16, d_model=1024)
    assert count_params(medium) == PUBLISHED["gpt2-medium"]
    assert flops_per_token(medium) == flops_per_token(PRESETS["gpt2-medium"])


def test_non_embedding_params_hand_derived():
    gpt2 = PRESETS["gpt2"]
    assert non_embedding_params(gpt2) == 124_439_808 - 50257 * 768 - 1024 * 768
    assert non_embedding_params(gpt2) == 85_056_000
    # untied head: both vocabulary tables are left out (no position table)
    llama = PRESETS["llama2-7b"]
    assert non_embedding_params(llama) == 6_738_415_616 - 2 * 32000 * 4096


@pytest.mark.parametrize("fields", VARIANTS)
def test_non_embedding_params_equal_the_built_model_without_tables(fields):
    cfg = dataclasses.replace(SMALL, **fields)
    model = GPT(cfg)
    tables = {"tok_emb.weight", "pos_emb.weight", "lm_head.weight"}
    body = sum(p.numel() for n, p in model.named_parameters() if n not in tables)
    assert non_embedding_params(cfg) == body


def test_flops_by_part_hand_derived_and_summed():
    cfg = PRESETS["gpt2"]
    parts = flops_by_part(cfg, 1024)
    assert parts == {
        "attn_proj": 2 * 12 * 4 * 768**2,
        "attn_scores": 12 * 4 * 1024 * 768,
        "mlp": 2 * 12 * 8 * 768**2,
        "lm_head": 2 * 50257 * 768,
    }
    assert sum(parts.values()) == flops_per_token(cfg, 1024)
    train = flops_by_part(cfg, 1024, training=True)
    assert train == {k: 3 * v for k, v in parts.items()}


def test_causal_flops_count_the_keys_each_query_sees(seed):
    # a causal loop, query by query over its own keys, counted by torch
    cfg = dataclasses.replace(SMALL, mlp="none")
    B, H, T, D = 1, cfg.n_heads, 12, cfg.d_head
    q, k, v = (torch.randn(B, H, T, D) for _ in range(3))
    with FlopCounterMode(display=False) as counter:
        for t in range(T):
            w = (q[:, :, t : t + 1] @ k[:, :, : t + 1].transpose(-2, -1)).softmax(-1)
            w @ v[:, :, : t + 1]
    causal = flops_by_part(cfg, T, causal=True)["attn_scores"]
    assert cfg.n_layers * counter.get_total_flops() == T * causal
    full = flops_by_part(cfg, T)["attn_scores"]
    assert causal == cfg.n_layers * 2 * cfg.d_model * (T + 1)
    assert causal / full == (T + 1) / (2 * T)  # about half
    with FlopCounterMode(display=False) as counter:  # the full written-out path
        attention(q, k, v, causal_mask(T))
    assert cfg.n_layers * counter.get_total_flops() == T * full


def test_kv_cache_bytes_hand_derived_and_grouped_query():
    # Llama 2 7B: 32 layers, 32 kv heads of 128; Llama 3 8B: 8 kv heads
    assert kv_cache_bytes(PRESETS["llama2-7b"], 1, 1, 2) == 2 * 32 * 32 * 128 * 2
    assert kv_cache_bytes(PRESETS["llama3-8b"], 1, 1, 2) == 131072
    assert kv_cache_bytes(PRESETS["gpt2"], 3, 100, 4) == 2 * 12 * 768 * 300 * 4


def test_mfu_hand_derived_and_refuses_a_bad_peak():
    cfg = PRESETS["gpt2"]
    assert mfu(cfg, 1000, 1e12) == 3 * 284_812_800 * 1000 / 1e12
    assert mfu(cfg, 1000, 1e12, causal=True) < mfu(cfg, 1000, 1e12)
    with pytest.raises(ValueError, match="peak_flops_per_second=0"):
        mfu(cfg, 1000, 0)
    with pytest.raises(ValueError, match="tokens_per_second=-1"):
        mfu(cfg, -1, 1e12)


def test_weight_bytes_of_llama2_7b_by_scheme():
    cfg = PRESETS["llama2-7b"]
    n = PUBLISHED["llama2-7b"]
    assert weight_bytes(cfg, "fp16") == 2 * n
    n_linear = 32 * sum(i * o for i, o in linear_shapes(cfg).values())
    rest = n - n_linear  # embeddings, head, norms: kept in 16 bits
    assert (
        weight_bytes(cfg, "int8-channel")
        == n_linear + 32 * 4 * (4 * 4096 + 2 * 11008 + 4096) + 2 * rest
    )
    nf4 = weight_bytes(cfg, "nf4", 64)
    assert nf4 == n_linear // 2 + 4 * n_linear // 64 + 2 * rest
    dq = weight_bytes(cfg, "nf4", 64, double_quant=True)
    assert (nf4 - dq) / n_linear * 8 == pytest.approx(0.5 - 0.127, abs=1e-3)


def test_lora_params_and_finetune_bytes():
    cfg = PRESETS["llama2-7b"]
    assert lora_params(cfg, 64, ("q_proj", "v_proj")) == 32 * 2 * 64 * 8192
    gelu = PRESETS["gpt2"]  # no gate_proj: that target adds nothing
    assert lora_params(gelu, 8, ("up_proj", "gate_proj")) == 12 * 8 * (768 + 3072)
    with pytest.raises(ValueError, match="choose among"):
        lora_params(cfg, 8, ("c_attn",))
    parts = finetune_bytes(cfg, "nf4", 16, ("q_proj",), 64, True)
    n = 32 * 16 * 8192
    assert parts == {
        "weights": weight_bytes(cfg, "nf4", 64, True),
        "adapters": 4 * n,
        "adapter_grads": 4 * n,
        "optimizer": 8 * n,
    }
    with pytest.raises(ValueError, match="unknown scheme"):
        weight_bytes(cfg, "fp8")
