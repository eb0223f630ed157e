"""labkit.positions: hand-derived values, HF Llama's RoPE, relative positions."""

import math

import pytest
import torch

from labkit.positions import (
    ALiBi,
    LearnedPositions,
    RotaryEmbedding,
    alibi_slopes,
    make,
    rotate_half,
    sinusoidal,
)


def test_sinusoidal_hand_derived():
    pe = sinusoidal(torch.arange(3), 4)
    # features: sin(p), cos(p), sin(p / 100), cos(p / 100)
    p = torch.arange(3.0)
    expected = torch.stack([p.sin(), p.cos(), (p / 100).sin(), (p / 100).cos()], 1)
    torch.testing.assert_close(pe, expected)


def test_sinusoidal_odd_width_and_offset():
    pe = sinusoidal(torch.arange(5, 8), 5)
    assert pe.shape == (3, 5)
    torch.testing.assert_close(pe, sinusoidal(torch.arange(8), 5)[5:])


def test_learned_positions_reject_positions_past_context():
    emb = LearnedPositions(4, 8)
    assert emb(torch.arange(4)).shape == (4, 8)
    with pytest.raises(ValueError, match="position 4 is past context_len=4"):
        emb(torch.arange(5))


def test_rotate_half():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    torch.testing.assert_close(rotate_half(x), torch.tensor([-3.0, -4.0, 1.0, 2.0]))


def test_rope_scores_depend_only_on_distance(seed):
    rope = RotaryEmbedding(8)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)

    def score(m, n):
        qm, _ = rope(q, k, torch.tensor([m]))
        _, kn = rope(q, k, torch.tensor([n]))
        return (qm * kn).sum()

    torch.testing.assert_close(score(5, 2), score(13, 10), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(score(0, 0), (q * k).sum())


def test_rope_keeps_norms(seed):
    q = torch.randn(2, 3, 7, 16)
    rq, _ = RotaryEmbedding(16)(q, q, torch.arange(7))
    torch.testing.assert_close(rq.norm(dim=-1), q.norm(dim=-1))


def test_rope_odd_head_dim_is_an_error():
    with pytest.raises(ValueError, match="even d_head, got 7"):
        RotaryEmbedding(7)


@pytest.mark.needs_hf
def test_rope_matches_hf_llama(seed):
    pytest.importorskip("transformers")
    from transformers import LlamaConfig
    from transformers.models.llama import modeling_llama as hf

    cfg = LlamaConfig(
        hidden_size=64,
        num_attention_heads=4,
        num_key_value_heads=2,
        rope_theta=500000.0,
    )
    hf_rope = hf.LlamaRotaryEmbedding(cfg)
    q, k = torch.randn(2, 4, 9, 16), torch.randn(2, 2, 9, 16)
    pos = torch.arange(3, 12)
    cos, sin = hf_rope(q, pos[None].expand(2, -1))
    expected = hf.apply_rotary_pos_emb(q, k, cos, sin)
    ours = RotaryEmbedding(16, theta=500000.0)(q, k, pos)
    torch.testing.assert_close(ours[0], expected[0])
    torch.testing.assert_close(ours[1], expected[1])


def test_alibi_slopes_power_of_two():
    torch.testing.assert_close(alibi_slopes(8), 2.0 ** -torch.arange(1.0, 9.0))


def test_alibi_slopes_not_power_of_two():
    # 12 heads: the 8 slopes of 8 heads, then every other slope of 16 heads
    expected = [2 ** -(i + 1) for i in range(8)] + [2 ** -(0.5 + i) for i in range(4)]
    torch.testing.assert_close(alibi_slopes(12), torch.tensor(expected))


def test_alibi_bias_hand_derived():
    bias = ALiBi(2)(torch.arange(2, 4), torch.arange(4))  # (H=2, T=2, S=4)
    dist = torch.tensor([[2.0, 1, 0, 1], [3, 2, 1, 0]])
    torch.testing.assert_close(bias[0], -dist / 16)  # slope 2**-4 for 2 heads
    torch.testing.assert_close(bias[1], -dist / 256)
    assert not math.isnan(float(bias.sum()))


def test_make_builds_the_named_positions():
    for inside_attention in ("rope", "alibi", "none"):
        assert make(inside_attention, 8, 4) is None
    learned = make("learned", 8, 4)  # a trained table: context_len x d_model
    assert [p.shape for p in learned.parameters()] == [(8, 4)]
    torch.testing.assert_close(learned(torch.arange(3)), learned.weight[:3])
    fixed = make("sinusoidal", 8, 4)
    assert not list(fixed.parameters())
    torch.testing.assert_close(fixed(torch.arange(3)), sinusoidal(torch.arange(3), 4))
    with pytest.raises(ValueError, match="pos='absolute'.*alibi"):
        make("absolute", 8, 4)
