"""labkit.interp on a hand-built GPT whose heads have known patterns."""

import math

import pytest
import torch

from labkit.interp import (
    attention_entropy,
    attention_figure,
    contributions,
    cosine_similarity,
    head_scores,
    inspect,
    label_heads,
    layer_similarity,
    logit_lens,
    top_links,
    top_predictions,
    uniform_scores,
)
from labkit.model import GPT, GPTConfig, trace

T, V = 16, 16  # positions and tokens each get one block of 16 residual dims
POS, TOK, PREV = 0, 16, 32  # residual dims: position, token, previous token


def hand_built_gpt() -> GPT:
    """Layer 0: previous-token (copies the previous token into PREV dims),
    first-token, self (local) and a zero (uniform, diffuse) head. Layer 1:
    head 0 matches the current token with the keys' previous token
    (induction), the rest uniform. MLPs are zero."""
    cfg = GPTConfig(
        vocab_size=V,
        context_len=T,
        n_layers=2,
        n_heads=4,
        d_model=64,
        norm="rmsnorm",
        bias=False,
    )
    model = GPT(cfg)
    eye = torch.eye(16)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for norm in [model.norm_f] + [
            n for b in model.blocks for n in (b.norm_1, b.norm_2)
        ]:
            norm.weight.fill_(1.0)
        model.tok_emb.weight[:, TOK : TOK + 16] = eye
        model.pos_emb.weight[:, POS : POS + 16] = eye
        a0, a1 = model.blocks[0].attn, model.blocks[1].attn
        shift = torch.diag(torch.ones(15), 1)  # row j reads position j + 1
        a0.q_proj.weight[0:16, POS : POS + 16] = 4 * shift  # wants key t - 1
        a0.k_proj.weight[0:16, POS : POS + 16] = eye
        a0.v_proj.weight[0:16, TOK : TOK + 16] = eye
        a0.o_proj.weight[PREV : PREV + 16, 0:16] = eye / math.sqrt(32)
        a0.q_proj.weight[16, POS : POS + 16] = 4.0  # every query wants key 0
        a0.k_proj.weight[16:32, POS : POS + 16] = eye
        a0.q_proj.weight[32:48, POS : POS + 16] = 4 * eye  # wants itself
        a0.k_proj.weight[32:48, POS : POS + 16] = eye
        a1.q_proj.weight[0:16, TOK : TOK + 16] = 5 * eye  # current token
        a1.k_proj.weight[0:16, PREV : PREV + 16] = eye  # key's previous token
    return model.eval()


@pytest.fixture(scope="module")
def seen():
    g = torch.Generator().manual_seed(0)
    half = torch.randperm(V, generator=g)[:8]
    tokens = torch.cat([half, half])  # (16,) eight random tokens, repeated
    return inspect(hand_built_gpt(), tokens)


def test_inspect_is_one_forward_pass_seen_through_trace(seen):
    assert seen.weights.shape == (2, 4, T, T)
    assert seen.resid.shape == (3, T, 64)
    assert seen.attn_out.shape == seen.mlp_out.shape == (2, T, 64)
    model = hand_built_gpt()
    idx = seen.tokens[None]  # (1, T)
    with torch.no_grad(), trace(model) as acts:
        logits = model(idx, need_weights=True)  # (1, T, V)
    torch.testing.assert_close(seen.logits, logits[0])
    torch.testing.assert_close(seen.weights[1], acts["blocks.1.attn.weights"][0])
    emb = model.tok_emb(seen.tokens) + model.pos_emb(torch.arange(T))  # (T, C)
    torch.testing.assert_close(seen.resid[0], emb)  # the stream entering block 0
    # each block adds its attention and MLP writes to the stream
    torch.testing.assert_close(
        seen.resid[1:], seen.resid[:-1] + seen.attn_out + seen.mlp_out
    )


def test_labels_match_the_built_patterns(seen):
    labels = {(h.layer, h.head): h for h in label_heads(seen.weights, seen.tokens)}
    assert [labels[0, h].label for h in range(4)] == [
        "previous-token",
        "first-token",
        "local",
        "diffuse",
    ]
    assert labels[1, 0].label == "induction"
    assert [labels[1, h].label for h in (1, 2, 3)] == ["diffuse"] * 3
    assert labels[0, 0].score > 0.9 and labels[1, 0].score > 0.9
    assert labels[0, 3].scores["diffuse"] == pytest.approx(1.0)
    assert labels[1, 0].scores["previous-token"] < 0.2


def test_head_scores_hand_derived_for_uniform_attention():
    causal = torch.tril(torch.ones(T, T))
    uniform = (causal / causal.sum(-1, keepdim=True))[None, None]  # (1,1,T,T)
    tokens = torch.arange(T)  # no repeats: no induction keys at all
    s = head_scores(uniform, tokens)
    first = sum(1 / (t + 1) for t in range(1, T)) / (T - 1)
    assert float(s["first-token"]) == pytest.approx(first)
    assert float(s["previous-token"]) == pytest.approx(first)
    assert float(s["local"]) == pytest.approx(0.0, abs=1e-6)
    assert float(s["induction"]) == 0.0
    entropy = sum(math.log2(t + 1) for t in range(1, T)) / (T - 1)
    assert float(attention_entropy(uniform)) == pytest.approx(entropy)


def test_top_links_finds_previous_and_induction_links(seen):
    links = top_links(seen.weights, k=200)
    assert links == sorted(links, key=lambda d: -d["weight"])
    assert all(d["key"] != 0 and d["query"] != 0 for d in links)
    prev = [d for d in links if (d["layer"], d["head"]) == (0, 0)]
    assert prev and all(d["key"] == d["query"] - 1 for d in prev)
    ind = [d for d in links if (d["layer"], d["head"]) == (1, 0)]
    assert all(d["key"] == d["query"] - 7 for d in ind if d["query"] >= 8)


def test_logit_lens_last_row_is_the_model_and_first_row_the_embedding(seen):
    model = hand_built_gpt()
    lens = logit_lens(model, seen.resid, k=3)
    assert lens.log_probs.shape == (3, T, V) and lens.top_ids.shape == (3, T, 3)
    torch.testing.assert_close(lens.log_probs[-1], seen.logits.log_softmax(-1))
    # tied head, embeddings only: each position predicts its own token
    assert lens.top_ids[0, :, 0].tolist() == seen.tokens.tolist()
    top = top_predictions(seen.logits, k=2)
    assert len(top) == T and all(len(row) == 2 for row in top)
    assert top[0][0][1] >= top[0][1][1]


def test_contributions_and_similarity(seen):
    c = contributions(seen)
    assert c.shape == (2, 3)
    assert torch.all(c[:, 1] == 0)  # zero MLPs write nothing
    assert float(c[1, 0]) == 0.0  # layer 1's o_proj is zero
    torch.testing.assert_close(c[0, 2], seen.resid[0].norm(dim=-1).mean())
    sim = cosine_similarity(seen.resid)
    assert sim.shape == (3, T, T)
    torch.testing.assert_close(sim.diagonal(dim1=-2, dim2=-1), torch.ones(3, T))
    layers = layer_similarity(seen.resid)
    torch.testing.assert_close(layers.diagonal(), torch.ones(3))
    assert float(layers[0, 1]) < 1.0  # block 0 added the previous token


def test_attention_figure_has_a_step_per_layer(seen):
    pytest.importorskip("plotly")
    heads = label_heads(seen.weights, seen.tokens)
    fig = attention_figure(seen.weights, [str(int(t)) for t in seen.tokens], heads)
    assert len(fig.data) == 2 * 4
    steps = fig.layout.sliders[0].steps
    assert [s.args[0]["visible"] for s in steps][1] == [False] * 4 + [True] * 4
    assert "induction" in steps[1].args[1]["annotations"][0]["text"]


def test_uniform_scores_are_hand_derived_on_a_short_text():
    # tokens 5 6 5 6: queries 1..3 see 2, 3, 4 keys evenly
    base = uniform_scores(torch.tensor([5, 6, 5, 6]))
    assert base["previous-token"] == pytest.approx((1 / 2 + 1 / 3 + 1 / 4) / 3)
    assert base["first-token"] == pytest.approx((1 / 2 + 1 / 3 + 1 / 4) / 3)
    # query 2 (token 5) matches key 1 (after the 5 at 0); query 3 key 2
    assert base["induction"] == pytest.approx((1 / 3 + 1 / 4) / 2)
    assert base["diffuse"] == pytest.approx(1.0)


def test_relative_labels_score_even_attention_zero_and_a_pure_head_one():
    T = 12
    tokens = torch.arange(T) % 4
    causal = torch.tril(torch.ones(T, T))
    even = causal / causal.sum(-1, keepdim=True)
    prev = torch.zeros(T, T)
    prev[0, 0] = 1.0
    prev[torch.arange(1, T), torch.arange(T - 1)] = 1.0
    w = torch.stack([even, prev])[None]  # (1, 2, T, T)
    flat, pure = label_heads(w, tokens, threshold=0.5, relative=True)
    assert flat.label == "diffuse"
    assert flat.scores["previous-token"] == pytest.approx(0.0, abs=1e-3)
    assert pure.label == "previous-token" and pure.score == pytest.approx(1.0)
    raw = label_heads(w, tokens, threshold=0.05)
    assert raw[0].label != "diffuse"  # an absolute threshold labels even heads


def test_top_links_skip_queries_with_few_keys():
    T = 6
    w = torch.tril(torch.ones(T, T))
    w = (w / w.sum(-1, keepdim=True))[None, None].clone()  # (1, 1, T, T)
    w[0, 0, 1] = torch.tensor([0.0, 1.0, 0, 0, 0, 0])  # forced: 1 key left
    w[0, 0, 5] = torch.tensor([0.0, 0.1, 0.1, 0.1, 0.6, 0.1])
    assert top_links(w, k=1)[0]["query"] == 1
    best = top_links(w, k=1, min_query=3)[0]
    assert (best["query"], best["key"], best["uniform"]) == (5, 4, round(1 / 6, 4))
