"""labkit.hf: HF GPT-2 and Llama with random weights, loaded into labkit.

Parity in float32: logits to 1e-5, and the gradient of the loss with respect to
every parameter to 1e-4 relative (max |ours - theirs| / max |theirs|).
"""

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from labkit.counting import count_params
from labkit.hf import (
    CONFIG_NAMES,
    LAYOUTS,
    from_hf_gpt2,
    from_hf_llama,
    gpt2_config,
    hf_state_dict,
    llama_config,
    to_hf_gpt2,
    to_hf_llama,
)
from labkit.model import GPT, PRESETS
from labkit.parity import PARITY_TOL, logits_relative_error, unit_scale_

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.needs_hf

LOGITS_TOL = dict(rtol=1e-5, atol=1e-5)
GRAD_REL_TOL = 1e-4


def randomize(model, std=0.2):
    """Random weights everywhere, norms included (ones would prove nothing)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, std)
    return model.eval()


def hf_gpt2(attn="eager", **kw):
    cfg = transformers.GPT2Config(
        vocab_size=97,
        n_positions=32,
        n_embd=48,
        n_layer=3,
        n_head=4,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
        **kw,
    )
    cfg._attn_implementation = attn
    return randomize(transformers.GPT2LMHeadModel(cfg))


def hf_llama(attn="eager", **kw):
    kw.setdefault("tie_word_embeddings", False)
    cfg = transformers.LlamaConfig(
        vocab_size=97,
        hidden_size=64,
        intermediate_size=88,
        num_hidden_layers=3,
        num_attention_heads=8,
        num_key_value_heads=2,
        max_position_embeddings=64,
        rms_norm_eps=1e-5,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
        rope_parameters={"rope_type": "default", "rope_theta": 50000.0},
        **kw,
    )
    cfg._attn_implementation = attn
    return randomize(transformers.LlamaForCausalLM(cfg))


def assert_grads_match(ours, hf, family, idx):
    targets = torch.roll(idx, -1, dims=1)
    for model, logits in ((ours, ours(idx)), (hf, hf(idx).logits)):
        model.zero_grad()
        F.cross_entropy(logits.flatten(0, 1), targets.flatten()).backward()
    grads = {n: p.grad for n, p in ours.named_parameters()}
    ours_as_hf = hf_state_dict(family, grads, ours.cfg.n_layers)
    for name, p in hf.named_parameters():
        rel = (ours_as_hf[name] - p.grad).abs().max() / p.grad.abs().max()
        assert rel < GRAD_REL_TOL, f"{name}: relative gradient error {rel:.2e}"


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_gpt_logits_match_hf_gpt2_random_weights(attn):
    hf = hf_gpt2(attn)
    ours = from_hf_gpt2(hf)
    idx = torch.randint(0, 97, (2, 32), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(ours(idx), hf(idx).logits, **LOGITS_TOL)
    torch.testing.assert_close(
        ours(idx, need_weights=True), hf(idx).logits, **LOGITS_TOL
    )


def test_gpt_gradients_match_hf_gpt2():
    hf = hf_gpt2()
    ours = from_hf_gpt2(hf)
    idx = torch.randint(0, 97, (2, 24), generator=torch.Generator().manual_seed(2))
    assert_grads_match(ours, hf, "gpt2", idx)


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_gpt_logits_match_hf_llama_random_weights(attn):
    hf = hf_llama(attn)
    ours = from_hf_llama(hf)
    assert ours.cfg.n_kv_heads == 2 and not ours.cfg.tie_weights
    assert ours.cfg.rope_theta == 50000.0
    idx = torch.randint(0, 97, (2, 40), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(ours(idx), hf(idx).logits, **LOGITS_TOL)


def test_gpt_gradients_match_hf_llama():
    hf = hf_llama()
    ours = from_hf_llama(hf)
    idx = torch.randint(0, 97, (2, 24), generator=torch.Generator().manual_seed(2))
    assert_grads_match(ours, hf, "llama", idx)


def test_kv_cache_decode_matches_hf_llama():
    hf = hf_llama()
    ours = from_hf_llama(hf)
    from labkit.attention import KVCache

    idx = torch.randint(0, 97, (1, 12), generator=torch.Generator().manual_seed(3))
    cache = KVCache.for_model(ours.cfg, batch_size=1)
    steps = [ours(idx[:, :4], cache=cache)]
    steps += [ours(idx[:, t : t + 1], cache=cache) for t in range(4, 12)]
    torch.testing.assert_close(torch.cat(steps, 1), hf(idx).logits, **LOGITS_TOL)


def test_export_round_trips_gpt2_and_llama():
    idx = torch.randint(0, 256, (1, 10))
    for name, export in (("tiny", to_hf_gpt2), ("tiny-llama", to_hf_llama)):
        ours = randomize(GPT(PRESETS[name]))
        hf = export(ours)
        torch.testing.assert_close(hf(idx).logits, ours(idx), **LOGITS_TOL)
        assert sum(p.numel() for p in hf.parameters()) == count_params(PRESETS[name])


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_config_names_are_read_both_ways(family, tiny_cfg, tiny_llama_cfg):
    export, read = {
        "gpt2": (to_hf_gpt2, gpt2_config),
        "llama": (to_hf_llama, llama_config),
    }[family]
    base = tiny_cfg if family == "gpt2" else tiny_llama_cfg
    cfg = dataclasses.replace(
        base, d_mlp=40, norm_eps=1e-6, tie_weights=False, rope_theta=5e4
    )
    hf = export(GPT(cfg))
    for ours, theirs in CONFIG_NAMES[family].items():
        assert getattr(hf.config, theirs) == getattr(cfg, ours), (ours, theirs)
    back = read(hf.config)
    if family == "gpt2":  # GPT-2 has no RoPE: rope_theta comes back the default
        cfg = dataclasses.replace(cfg, rope_theta=10000.0)
    assert back.resolved() == cfg.resolved()
    for field, value in LAYOUTS[family].items():
        assert getattr(back, field) == value


def test_gpt2_n_inner_none_is_d_mlp_none():
    cfg = gpt2_config(transformers.GPT2Config(n_embd=64, n_head=4, n_inner=None))
    assert cfg.d_mlp is None and cfg.resolved().d_mlp == 256
    assert gpt2_config(hf_gpt2().config).mlp == "gelu_tanh"


def test_tied_llama_loads_with_one_embedding():
    ours = from_hf_llama(hf_llama(tie_word_embeddings=True))
    assert ours.lm_head.weight is ours.tok_emb.weight


def test_unsupported_hf_options_are_named():
    with pytest.raises(ValueError, match="reorder_and_upcast_attn"):
        from_hf_gpt2(hf_gpt2(reorder_and_upcast_attn=True))
    with pytest.raises(ValueError, match="activation_function='tanh'"):
        gpt2_config(transformers.GPT2Config(activation_function="tanh"))
    with pytest.raises(ValueError, match="hidden_act='gelu'"):
        llama_config(transformers.LlamaConfig(hidden_act="gelu"))


def test_export_refuses_other_layouts():
    cfg = dataclasses.replace(PRESETS["tiny"], pos="rope")
    with pytest.raises(ValueError, match="pos='rope' \\(needs 'learned'\\)"):
        to_hf_gpt2(GPT(cfg))
    with pytest.raises(ValueError, match="norm='layernorm' \\(needs 'rmsnorm'\\)"):
        to_hf_llama(GPT(PRESETS["tiny"]))


def test_missing_checkpoint_tensor_is_named():
    from labkit.hf import _import

    sd = hf_gpt2().state_dict()
    del sd["transformer.h.1.mlp.c_fc.bias"]
    with pytest.raises(KeyError, match="transformer.h.1.mlp.c_fc.bias"):
        _import("gpt2", sd, GPT(gpt2_config(hf_gpt2().config)))


class ExactGeluMLP(nn.Module):
    """A planted bug: GPT-2's MLP with exact GELU instead of the tanh form."""

    def __init__(self, mlp):
        super().__init__()
        self.up_proj, self.down_proj = mlp.up_proj, mlp.down_proj

    def forward(self, x):
        return self.down_proj(F.gelu(self.up_proj(x)))


def plant(model, bug):
    """model (loaded from HF) with one bug; the HF model is untouched."""
    with torch.no_grad():
        for block in model.blocks:
            if bug == "no 1/sqrt(D)":  # sqrt(D) q . k / sqrt(D) = q . k
                block.attn.q_proj.weight *= model.cfg.d_head**0.5
                block.attn.q_proj.bias *= model.cfg.d_head**0.5
            elif bug == "exact GELU":
                block.mlp = ExactGeluMLP(block.mlp)
    return model


def fresh_hf_gpt2():
    """The test's GPT-2 with transformers' own initialisation, not randomised."""
    config = hf_gpt2().config
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(config).eval()


BUGS = ["no 1/sqrt(D)", "exact GELU"]
IDX = torch.randint(0, 97, (2, 24), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("bug", BUGS)
def test_hf_parity_check_fails_on_planted_bugs(bug):
    hf = unit_scale_(fresh_hf_gpt2(), seed=0)
    assert logits_relative_error(from_hf_gpt2(hf), hf, IDX) < PARITY_TOL / 10
    buggy = plant(from_hf_gpt2(hf), bug)
    assert logits_relative_error(buggy, hf, IDX) > 10 * PARITY_TOL


@pytest.mark.parametrize("bug", BUGS)
def test_small_weights_hide_the_planted_bugs(bug):
    # why unit_scale_: HF's std-0.02 weights with gains drawn around 0 make both
    # bugs pass a 1e-4 comparison of the logits
    hf = fresh_hf_gpt2()
    with torch.no_grad():
        for p in hf.parameters():
            if p.dim() == 1:
                p.normal_(0, 0.1)
    buggy = plant(from_hf_gpt2(hf), bug)
    with torch.no_grad():
        torch.testing.assert_close(buggy(IDX), hf(IDX).logits, atol=1e-4, rtol=1e-4)


def test_from_hf_into_an_existing_model_reloads_its_weights():
    hf = hf_gpt2()
    ours = from_hf_gpt2(hf)
    unit_scale_(hf, seed=5)
    assert from_hf_gpt2(hf, into=ours) is ours
    torch.testing.assert_close(ours(IDX), hf(IDX).logits, **LOGITS_TOL)
    llama = hf_llama()
    ours_llama = from_hf_llama(llama)
    unit_scale_(llama, seed=5)
    from_hf_llama(llama, into=ours_llama)
    idx = torch.randint(0, 97, (1, 12))
    torch.testing.assert_close(ours_llama(idx), llama(idx).logits, **LOGITS_TOL)


def test_from_hf_into_a_model_of_another_config_is_refused():
    with pytest.raises(ValueError, match="into= holds a model of another config"):
        from_hf_gpt2(hf_gpt2(), into=GPT(PRESETS["tiny"]))


@pytest.mark.parametrize("tied", [True, False])
def test_gpt2_loaded_without_drawing_weights_is_complete_and_tied(tied):
    # from_hf_gpt2 builds GPT-2 on the meta device: every tensor must come
    # from the checkpoint, and a tied head must stay tied
    hf = hf_gpt2(tie_word_embeddings=tied)
    ours = from_hf_gpt2(hf)
    assert (ours.lm_head.weight is ours.tok_emb.weight) == tied
    assert all(p.device.type == "cpu" for p in ours.parameters())
    torch.testing.assert_close(ours(IDX), hf(IDX).logits, **LOGITS_TOL)
