"""labkit.model: config validation, presets, shapes, KV-cache decoding, tracing."""

import dataclasses
import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.attention import KVCache
from labkit.counting import param_counts
from labkit.model import GPT, PRESETS, GPTConfig, count_params, trace

TINY = GPTConfig(vocab_size=50, context_len=16, n_layers=2, n_heads=4, d_model=32)
TOL = dict(rtol=1e-5, atol=1e-5)

VARIANTS = {
    "gpt2-like": {},
    "llama-like": dict(
        pos="rope",
        norm="rmsnorm",
        mlp="swiglu",
        bias=False,
        tie_weights=False,
        n_kv_heads=2,
    ),
    "sinusoidal": dict(pos="sinusoidal", mlp="gelu"),
    "alibi": dict(pos="alibi", n_kv_heads=1),
    "nopos-postnorm": dict(pos="none", prenorm=False, mlp="relu"),
    "attn-only": dict(mlp="none"),
    "attn-only-postnorm": dict(mlp="none", prenorm=False, norm="rmsnorm"),
}


def test_derived_sizes_are_none_until_resolved():
    cfg = GPTConfig(d_model=64, n_heads=4)
    assert (cfg.n_kv_heads, cfg.d_mlp, cfg.d_head) == (None, None, 16)
    full = cfg.resolved()
    assert (full.n_kv_heads, full.d_mlp) == (4, 256)
    assert full.resolved() == full and GPT(cfg).cfg is cfg  # nothing filled in


def test_replace_on_a_preset_follows_the_new_width_and_heads():
    tiny = PRESETS["tiny"]  # d_model=64, n_heads=4, both sizes derived
    wider = dataclasses.replace(tiny, d_model=32)
    assert GPT(wider).blocks[0].mlp.up_proj.out_features == 4 * 32
    assert wider.resolved().d_mlp == 128
    fewer = dataclasses.replace(tiny, n_heads=2)  # n_kv_heads follows
    attn = GPT(fewer).blocks[0].attn
    assert (attn.n_heads, attn.n_kv_heads, attn.k_proj.out_features) == (2, 2, 64)


def test_explicit_sizes_are_kept_by_replace():
    llama = PRESETS["tiny-llama"]  # n_kv_heads=2, d_mlp=176 set by hand
    wider = dataclasses.replace(llama, d_model=128, n_heads=8)
    assert (wider.n_kv_heads, wider.d_mlp) == (2, 176)
    with pytest.raises(ValueError, match="n_heads=3 is not divisible by n_kv_heads=2"):
        dataclasses.replace(llama, n_heads=3, d_model=96)
    back = dataclasses.replace(llama, d_mlp=None)  # derived again
    assert back.resolved().d_mlp == 4 * 64


def test_cli_set_follows_like_replace():
    from labkit.cli import apply_overrides

    def model_after(*sets):
        return apply_overrides({"model": PRESETS["tiny"]}, list(sets))["model"]

    narrow = GPT(model_after("model.d_model=32")).blocks[0]
    assert narrow.mlp.up_proj.out_features == 4 * 32
    assert GPT(model_after("model.n_heads=2")).blocks[0].attn.n_kv_heads == 2
    assert model_after("model.d_mlp=100", "model.d_mlp=none").d_mlp is None


def test_records_with_sizes_written_out_load_as_the_same_model():
    # run.json and the small model's config.json before derived sizes were
    # kept as None held them written out; both spellings build one model
    old = dataclasses.asdict(PRESETS["tiny"].resolved())
    assert (old["n_kv_heads"], old["d_mlp"]) == (4, 256)
    loaded = GPTConfig(**json.loads(json.dumps(old)))
    assert loaded.resolved() == PRESETS["tiny"].resolved()
    shapes = {k: v.shape for k, v in GPT(loaded).state_dict().items()}
    assert shapes == {k: v.shape for k, v in GPT(PRESETS["tiny"]).state_dict().items()}
    new = dataclasses.asdict(PRESETS["tiny"])
    assert GPTConfig(**json.loads(json.dumps(new))) == PRESETS["tiny"]


def test_small_model_cache_key_ignores_how_sizes_are_spelled(monkeypatch):
    from labkit import recipes

    name = recipes.recipe_name()
    monkeypatch.setattr(recipes, "SMALL_MODEL", recipes.SMALL_MODEL.resolved())
    assert recipes.recipe_name() == name


@pytest.mark.parametrize(
    "fields,message",
    [
        (dict(d_model=30), "d_model=30 is not divisible by n_heads=4"),
        (dict(n_kv_heads=3), "n_heads=4 is not divisible by n_kv_heads=3"),
        (dict(pos="absolute"), "pos='absolute' is not one of"),
        (dict(norm="batchnorm"), "norm='batchnorm' is not one of"),
        (dict(mlp="tanh"), "mlp='tanh' is not one of"),
        (dict(pos="rope", d_model=24, n_heads=8), "pos='rope' needs an even d_head"),
        (dict(dropout=1.0), "dropout=1.0 must be in"),
        (dict(dropout=-0.1), "dropout=-0.1 must be in"),
        (dict(norm_eps=0.0), "norm_eps=0.0 must be positive"),
        (dict(rope_theta=-1.0), "rope_theta=-1.0 must be positive"),
        (dict(n_layers=0), "n_layers=0 must be a positive integer"),
        (dict(vocab_size=2.5), "vocab_size=2.5 must be a positive integer"),
        (dict(context_len=True), "context_len=True must be a positive integer"),
        (dict(d_mlp=-4), "d_mlp=-4 must be a positive integer"),
    ],
)
def test_config_errors_name_the_fields(fields, message):
    with pytest.raises(ValueError, match=message.replace("(", "\\(")):
        dataclasses.replace(TINY, **fields)


def test_config_reports_every_problem_at_once():
    with pytest.raises(ValueError, match="pos='x'.*norm='y'"):
        dataclasses.replace(TINY, pos="x", norm="y")


# published shapes: (n_layers, n_heads, n_kv_heads, d_model, d_mlp, vocab, context)
PUBLISHED_SHAPES = {
    "gpt2": (12, 12, 12, 768, 3072, 50257, 1024),
    "gpt2-medium": (24, 16, 16, 1024, 4096, 50257, 1024),
    "gpt2-large": (36, 20, 20, 1280, 5120, 50257, 1024),
    "gpt2-xl": (48, 25, 25, 1600, 6400, 50257, 1024),
    "llama2-7b": (32, 32, 32, 4096, 11008, 32000, 4096),
    "llama3-8b": (32, 32, 8, 4096, 14336, 128256, 8192),
}


@pytest.mark.parametrize("name", PUBLISHED_SHAPES)
def test_presets_have_the_published_shapes(name):
    c = PRESETS[name].resolved()
    shape = (c.n_layers, c.n_heads, c.n_kv_heads, c.d_model, c.d_mlp)
    assert shape + (c.vocab_size, c.context_len) == PUBLISHED_SHAPES[name]
    assert c.d_head == (128 if name.startswith("llama") else 64)


@pytest.mark.parametrize("variant", VARIANTS)
def test_gpt_logits_shape_and_attribute_names(seed, variant):
    cfg = dataclasses.replace(TINY, **VARIANTS[variant])
    model = GPT(cfg)
    idx = torch.randint(0, cfg.vocab_size, (3, 11))
    assert model(idx).shape == (3, 11, cfg.vocab_size)
    modules = {k.rsplit(".", 1)[0] for k in model.state_dict()}
    block = {m.removeprefix("blocks.0.") for m in modules if m.startswith("blocks.0.")}
    want = {"norm_1", "attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.o_proj"}
    if cfg.mlp != "none":
        want |= {"norm_2", "mlp.up_proj", "mlp.down_proj"}
    if cfg.mlp == "swiglu":
        want.add("mlp.gate_proj")
    assert block == want  # STYLE.md's names
    tied = model.lm_head.weight is model.tok_emb.weight
    assert tied == cfg.tie_weights


@pytest.mark.parametrize("variant", VARIANTS)
def test_need_weights_path_equals_fast_path(seed, variant):
    model = GPT(dataclasses.replace(TINY, **VARIANTS[variant]))
    idx = torch.randint(0, 50, (2, 9))
    torch.testing.assert_close(model(idx, need_weights=True), model(idx), **TOL)


@pytest.mark.parametrize("variant", VARIANTS)
def test_kv_cache_decode_equals_full_forward(seed, variant):
    cfg = dataclasses.replace(TINY, **VARIANTS[variant])
    model = GPT(cfg).eval()
    idx = torch.randint(0, cfg.vocab_size, (2, 12))
    full = model(idx)
    cache = KVCache.for_model(cfg, batch_size=2)
    steps = [model(idx[:, :5], cache=cache)]  # prompt, then token by token
    steps += [model(idx[:, t : t + 1], cache=cache) for t in range(5, 12)]
    torch.testing.assert_close(torch.cat(steps, 1), full, **TOL)
    assert cache.length == 12


@pytest.mark.parametrize("prenorm", [True, False])
def test_attention_only_block_is_residual_plus_attention(seed, prenorm):
    cfg = dataclasses.replace(TINY, mlp="none", prenorm=prenorm)
    model = GPT(cfg)
    block = model.blocks[0]
    assert not list(block.mlp.parameters()) and not list(block.norm_2.parameters())
    assert count_params(cfg) == sum(p.numel() for p in model.parameters())
    assert param_counts(cfg)["mlp"] == 0
    x, pos = torch.randn(2, 5, 32), torch.arange(5)
    attn = block.attn(block.norm_1(x) if prenorm else x, positions=pos)[0]
    want = x + attn if prenorm else block.norm_1(x + attn)
    torch.testing.assert_close(block(x, positions=pos), want)
    with trace(model) as acts:
        model(torch.randint(0, 50, (1, 4)))
    assert not acts["blocks.1.mlp_out"].any()


def test_unknown_mlp_lists_none_among_the_choices():
    with pytest.raises(ValueError, match="mlp='nothing' is not one of.*'none'"):
        dataclasses.replace(TINY, mlp="nothing")


def test_learned_positions_past_context_is_an_error():
    model = GPT(TINY)
    with pytest.raises(ValueError, match="position 16 is past context_len=16"):
        model(torch.zeros(1, 17, dtype=torch.long))


def test_trace_collects_documented_keys(seed):
    model = GPT(TINY)
    idx = torch.randint(0, 50, (2, 6))
    with trace(model) as acts:
        logits = model(idx, need_weights=True)
    for i in range(2):
        for key in ("resid_pre", "attn_out", "resid_mid", "mlp_out", "resid_post"):
            assert acts[f"blocks.{i}.{key}"].shape == (2, 6, 32)
        w = acts[f"blocks.{i}.attn.weights"]
        assert w.shape == (2, 4, 6, 6)
        torch.testing.assert_close(w.sum(-1), torch.ones(2, 4, 6))
    # the residual stream adds up: pre + attn = mid, mid + mlp = post
    b0 = {k[9:]: v for k, v in acts.items() if k.startswith("blocks.0.")}
    torch.testing.assert_close(b0["resid_pre"] + b0["attn_out"], b0["resid_mid"])
    torch.testing.assert_close(b0["resid_mid"] + b0["mlp_out"], b0["resid_post"])
    torch.testing.assert_close(acts["blocks.1.resid_post"], acts["resid_final"])
    torch.testing.assert_close(model.lm_head(acts["norm_f"]), logits)


def test_trace_removes_hooks_and_skips_weights_without_need_weights(seed):
    model = GPT(TINY)
    idx = torch.randint(0, 50, (1, 4))
    with trace(model) as acts:
        model(idx)
    assert "blocks.0.attn.weights" not in acts and "blocks.0.resid_pre" in acts
    n = len(acts)
    model(idx)
    assert len(acts) == n and not model.blocks[0]._forward_hooks


def test_trace_without_detach_keeps_gradients(seed):
    model = GPT(TINY)
    with trace(model, detach=False) as acts:
        model(torch.randint(0, 50, (1, 4))).sum().backward()
    assert acts["blocks.0.resid_post"].requires_grad


@pytest.mark.parametrize("name", ["tiny", "small", "tiny-llama"])
def test_small_presets_build_and_run(name):
    cfg = PRESETS[name]
    model = GPT(cfg)
    idx = torch.randint(0, cfg.vocab_size, (1, 8))
    assert model(idx).shape == (1, 8, cfg.vocab_size)


@settings(max_examples=10, deadline=None)
@given(
    B=st.integers(1, 3),
    T=st.integers(1, 16),
    layers=st.integers(1, 3),
    variant=st.sampled_from(sorted(VARIANTS)),
)
def test_gpt_shapes(B, T, layers, variant):
    cfg = dataclasses.replace(TINY, n_layers=layers, **VARIANTS[variant])
    assert GPT(cfg)(torch.zeros(B, T, dtype=torch.long)).shape == (B, T, 50)


def test_parallel_block_adds_attention_and_mlp_of_one_norm(seed):
    cfg = dataclasses.replace(TINY, parallel=True)
    block = GPT(cfg).blocks[0]
    assert not list(block.norm_2.parameters())  # one norm per block
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0, 0.3)
    x, pos = torch.randn(2, 5, 32), torch.arange(5)
    h = block.norm_1(x)
    want = x + block.attn(h, positions=pos)[0] + block.mlp(h)
    torch.testing.assert_close(block(x, positions=pos), want)
    serial = x + block.attn(h, positions=pos)[0]
    serial = serial + block.mlp(block.norm_1(serial))  # what a serial block does
    assert not torch.allclose(block(x, positions=pos), serial, atol=1e-3)


def test_parallel_gpt_stream_is_embedding_plus_writes_and_decodes_with_cache(seed):
    cfg = dataclasses.replace(TINY, parallel=True)
    model = GPT(cfg).eval()
    idx = torch.randint(0, 50, (2, 9))
    with trace(model) as acts:
        full = model(idx)
    writes = sum(
        acts[f"blocks.{i}.{part}"]
        for i in range(cfg.n_layers)
        for part in ("attn_out", "mlp_out")
    )
    torch.testing.assert_close(
        acts["resid_final"], acts["blocks.0.resid_pre"] + writes, **TOL
    )
    assert "blocks.0.resid_mid" not in acts  # no stream between the sublayers
    cache = KVCache.for_model(cfg, batch_size=2)
    steps = [model(idx[:, :4], cache=cache)]
    steps += [model(idx[:, t : t + 1], cache=cache) for t in range(4, 9)]
    torch.testing.assert_close(torch.cat(steps, 1), full, **TOL)


def test_parallel_needs_prenorm():
    with pytest.raises(ValueError, match="parallel=True needs prenorm=True"):
        dataclasses.replace(TINY, parallel=True, prenorm=False)
