"""labkit.circuits: per-head outputs add up to attention's output, the hooks
change only what they name, and direct logit attribution adds up to the
logits."""

import pytest
import torch

from labkit.circuits import (
    direct_logit_attribution,
    head_contributions,
    head_z,
    remove_from_input,
    replace_heads,
)
from labkit.model import GPT, GPTConfig, trace
from labkit.norms import LayerNorm, RMSNorm


def small_gpt(norm="layernorm", mlp="gelu"):
    torch.manual_seed(0)
    cfg = GPTConfig(
        vocab_size=11,
        context_len=8,
        n_layers=2,
        n_heads=2,
        d_model=8,
        norm=norm,
        mlp=mlp,
    )
    return GPT(cfg).eval()


@pytest.fixture
def tokens():
    return torch.randint(0, 11, (3, 8), generator=torch.Generator().manual_seed(1))


def test_head_contributions_add_up_to_attention_output(tokens):
    model = small_gpt()
    with trace(model) as acts, torch.no_grad():
        model(tokens)
        parts = head_contributions(model, head_z(model, tokens))  # (B,L,H,T,C)
    for i, block in enumerate(model.blocks):
        total = parts[:, i].sum(1) + block.attn.o_proj.bias
        torch.testing.assert_close(total, acts[f"blocks.{i}.attn_out"])


def test_replace_heads_with_own_z_changes_nothing_and_zero_leaves_bias(tokens):
    model = small_gpt()
    z = head_z(model, tokens)
    with torch.no_grad():
        clean = model(tokens)
        with replace_heads(model, {(1, 0): z[:, 1, 0], (0, 1): z[:, 0, 1]}):
            same = model(tokens)
        torch.testing.assert_close(same, clean)
        with replace_heads(model, {(0, 0): 0.0, (0, 1): 0.0}), trace(model) as acts:
            model(tokens)
        bias = model.blocks[0].attn.o_proj.bias
        torch.testing.assert_close(acts["blocks.0.attn_out"], bias.expand(3, 8, -1))
        torch.testing.assert_close(model(tokens), clean)


def test_replace_heads_names_a_missing_head():
    with pytest.raises(ValueError, match="no head \\(2, 0\\)"):
        with replace_heads(small_gpt(), {(2, 0): 0.0}):
            pass


@pytest.mark.parametrize("norm", ["layernorm", "rmsnorm"])
def test_attribution_over_every_part_gives_the_logits(tokens, norm):
    model = small_gpt(norm=norm, mlp="none")
    seq = tokens[0]
    with trace(model) as acts, torch.no_grad():
        logits = model(seq[None])[0]  # (T, V)
        parts = head_contributions(model, head_z(model, seq[None]))[0]
    embed = acts["blocks.0.resid_pre"][0]  # (T, C)
    biases = [b.attn.o_proj.bias.expand_as(embed) for b in model.blocks]
    every = torch.cat([embed[None], parts.flatten(0, 1), torch.stack(biases)])
    final = acts["resid_final"][0]
    torch.testing.assert_close(every.sum(0), final, rtol=1e-5, atol=1e-5)
    targets = torch.arange(len(seq)) % 11
    dla = direct_logit_attribution(
        every, final, model.norm_f, model.lm_head.weight, targets
    )
    want = logits.gather(-1, targets[:, None])[:, 0]
    if isinstance(model.norm_f, LayerNorm):
        want = want - model.lm_head.weight[targets] @ model.norm_f.bias
    else:
        assert isinstance(model.norm_f, RMSNorm)
    torch.testing.assert_close(dla.sum(0), want, rtol=1e-4, atol=1e-4)


def test_attribution_refuses_an_unknown_norm():
    with pytest.raises(ValueError, match="LayerNorm or RMSNorm"):
        direct_logit_attribution(
            torch.ones(1, 2, 3),
            torch.ones(2, 3),
            torch.nn.Identity(),
            torch.ones(4, 3),
            [0, 1],
        )


def test_remove_from_input_changes_only_the_later_layer(tokens):
    model = small_gpt(mlp="none")
    with torch.no_grad(), trace(model) as clean:
        model(tokens)
    clean = dict(clean)
    for path in "qkv":
        with torch.no_grad(), remove_from_input(model, (0, 1), 1, path):
            with trace(model) as acts:
                model(tokens)
        torch.testing.assert_close(
            acts["blocks.0.attn_out"], clean["blocks.0.attn_out"]
        )
        torch.testing.assert_close(
            acts["blocks.1.resid_pre"], clean["blocks.1.resid_pre"]
        )
        assert not torch.allclose(acts["blocks.1.attn_out"], clean["blocks.1.attn_out"])


def test_removing_from_all_three_paths_is_a_forward_without_the_head(tokens):
    """With q, k and v all reading the stream minus the head's (centred)
    output, layer 1 computes block(x - delta); the residual keeps delta."""
    model = small_gpt(mlp="none")
    pos = torch.arange(8)
    with torch.no_grad():
        delta = head_contributions(model, head_z(model, tokens))[:, 0, 1]
        delta = delta - delta.mean((0, 1))  # (B, T, C)
        x = model.blocks[0](model.tok_emb(tokens) + model.pos_emb(pos), positions=pos)
        x = model.blocks[1](x - delta, positions=pos) + delta
        want = model.lm_head(model.norm_f(x))
        with (
            remove_from_input(model, (0, 1), 1, "q"),
            remove_from_input(model, (0, 1), 1, "k"),
            remove_from_input(model, (0, 1), 1, "v"),
        ):
            got = model(tokens)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_remove_from_input_names_bad_arguments():
    model = small_gpt()
    with pytest.raises(ValueError, match="path must be"):
        with remove_from_input(model, (0, 0), 1, "o"):
            pass
    with pytest.raises(ValueError, match="source layer 1 < layer 1"):
        with remove_from_input(model, (1, 0), 1, "k"):
            pass
