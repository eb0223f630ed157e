"""labkit.positions: hand-derived values, HF Llama's and GPT-J's RoPE, the two
RoPE layouts, position interpolation and NTK scaling, relative positions."""

import math

import pytest
import torch

from labkit.positions import (
    ALiBi,
    LearnedPositions,
    RotaryEmbedding,
    SinusoidalPositions,
    alibi_slopes,
    half_to_adjacent,
    make,
    ntk_theta,
    rope_adjacent,
    rope_inv_freq,
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


def test_sinusoidal_positions_scale_sets_the_rms_of_whole_turns():
    pos = torch.arange(6)
    scaled = SinusoidalPositions(4, scale=0.5)(pos)
    torch.testing.assert_close(scaled, 0.5 * sinusoidal(pos, 4))
    assert SinusoidalPositions(4)(pos).equal(sinusoidal(pos, 4))
    # pair 0 turns once per 2 pi positions: over many turns its RMS is a / sqrt 2
    a = 0.02 * math.sqrt(2)
    fast = SinusoidalPositions(2, scale=a)(torch.arange(100_000))  # (T, 2)
    assert fast.pow(2).mean().sqrt().item() == pytest.approx(0.02, rel=1e-3)


def test_sinusoidal_scale_sets_each_pairs_rms_not_each_features():
    a = 0.02 * math.sqrt(2)
    pe = SinusoidalPositions(32, scale=a)(torch.arange(32))  # (T, C)
    pair_rms = pe.view(32, 16, 2).pow(2).mean(-1).sqrt()  # every position
    torch.testing.assert_close(pair_rms, torch.full((32, 16), 0.02))
    torch.testing.assert_close(pe.norm(dim=-1), torch.full((32,), 0.02 * 32**0.5))
    # over 32 positions the slowest pair barely turns: sine ~ 0, cosine ~ a
    feature_rms = pe.pow(2).mean(0).sqrt()
    assert feature_rms[-2].item() < 0.001 and feature_rms[-1].item() > 0.027


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


def test_rope_inv_freq_hand_derived_slowest_is_not_one_over_theta():
    torch.testing.assert_close(rope_inv_freq(4, 100.0), torch.tensor([1.0, 0.1]))
    slowest = rope_inv_freq(16)[-1].item()
    assert slowest == pytest.approx(10000.0 ** (-14 / 16), rel=1e-6)
    assert 1 / slowest == pytest.approx(3162.3, rel=1e-4)
    with pytest.raises(ValueError, match="even d_head, got 5"):
        rope_inv_freq(5)


def rotation_matrix(positions, d_head, theta):
    """Block-diagonal 2x2 rotations on adjacent pairs, built independently."""
    inv = [theta ** (-2 * i / d_head) for i in range(d_head // 2)]
    out = torch.zeros(len(positions), d_head, d_head)
    for t, p in enumerate(positions.tolist()):
        for i, w in enumerate(inv):
            c, s = math.cos(p * w), math.sin(p * w)
            out[t, 2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = torch.tensor(
                [[c, -s], [s, c]]
            )
    return out  # (T, D, D): out[t] @ x[t] rotates x[t]


def test_rope_adjacent_is_the_block_rotation_matrix(seed):
    pos = torch.tensor([0, 1, 5, 37])
    x = torch.randn(2, 4, 8)  # (B, T, D)
    R = rotation_matrix(pos, 8, 100.0)
    expected = torch.einsum("tij,btj->bti", R, x)
    torch.testing.assert_close(rope_adjacent(x, pos, 100.0), expected)


def test_rope_adjacent_d2_rotates_by_the_position_in_radians():
    x = torch.tensor([[1.0, 0.0]])  # (T=1, D=2): the point 1 + 0j
    out = rope_adjacent(x, torch.tensor([2]))
    torch.testing.assert_close(out, torch.tensor([[math.cos(2), math.sin(2)]]))


def test_half_to_adjacent_hand_derived():
    assert half_to_adjacent(6).tolist() == [0, 3, 1, 4, 2, 5]
    with pytest.raises(ValueError, match="even d_head, got 3"):
        half_to_adjacent(3)


def test_two_rope_layouts_are_one_rotation_up_to_the_permutation(seed):
    D, pos = 16, torch.arange(3, 12)
    x = torch.randn(2, 3, 9, D)  # (B, H, T, D) in the rotate-half layout
    perm = half_to_adjacent(D)
    half, _ = RotaryEmbedding(D, 500.0)(x, x, pos)
    torch.testing.assert_close(rope_adjacent(x[..., perm], pos, 500.0), half[..., perm])
    # the same function on unpermuted features is a different rotation
    assert not torch.allclose(rope_adjacent(x, pos, 500.0), half, atol=1e-3)


def test_permuted_projections_give_the_same_scores(seed):
    """A checkpoint trained in one layout runs in the other once the rows of
    W_q and W_k are permuted: the scores are unchanged."""
    D, C, pos = 8, 12, torch.arange(6)
    x, W_q, W_k = torch.randn(6, C), torch.randn(D, C), torch.randn(D, C)
    perm = half_to_adjacent(D)
    q_half, k_half = RotaryEmbedding(D)(x @ W_q.T, x @ W_k.T, pos)
    q_adj = rope_adjacent(x @ W_q[perm].T, pos)
    k_adj = rope_adjacent(x @ W_k[perm].T, pos)
    torch.testing.assert_close(q_adj @ k_adj.T, q_half @ k_half.T)


@pytest.mark.needs_hf
def test_rope_adjacent_matches_hf_gptj(seed):
    pytest.importorskip("transformers")
    from transformers.models.gptj import modeling_gptj as gptj

    B, T, H, D = 2, 7, 3, 16
    x = torch.randn(B, T, H, D)
    pos = torch.arange(4, 4 + T)
    table = gptj.create_sinusoidal_positions(32, D)  # (positions, D): sin, cos
    sin, cos = table[pos][None].expand(B, -1, -1).chunk(2, dim=-1)  # (B, T, D/2)
    expected = gptj.apply_rotary_pos_emb(x, sin, cos)  # (B, T, H, D)
    ours = rope_adjacent(x.transpose(1, 2), pos).transpose(1, 2)
    torch.testing.assert_close(ours, expected)


def test_position_interpolation_divides_the_positions(seed):
    q, k = torch.randn(1, 2, 8, 16), torch.randn(1, 2, 8, 16)
    pos = torch.arange(0, 32, 4)  # positions 0, 4, ..., 28 at scale 4 ...
    scaled = RotaryEmbedding(16, scale=4.0)(q, k, pos)
    plain = RotaryEmbedding(16)(q, k, torch.arange(8))  # ... are 0, 1, ..., 7
    torch.testing.assert_close(scaled[0], plain[0])
    torch.testing.assert_close(scaled[1], plain[1])
    with pytest.raises(ValueError, match="scale must be positive, got 0"):
        RotaryEmbedding(16, scale=0)


def test_ntk_theta_slows_the_slowest_pair_by_the_scale_and_keeps_the_fastest():
    D, s = 16, 4.0
    plain, ntk = rope_inv_freq(D), rope_inv_freq(D, ntk_theta(10000.0, s, D))
    assert ntk[0] == plain[0] == 1.0
    torch.testing.assert_close(ntk[-1], plain[-1] / s)
    assert (ntk[1:] < plain[1:]).all()
    with pytest.raises(ValueError, match="even d_head >= 4, got 2"):
        ntk_theta(10000.0, s, 2)


@pytest.mark.needs_hf
def test_scaled_rope_matches_hf_linear_and_dynamic_ntk():
    pytest.importorskip("transformers")
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import (
        _compute_dynamic_ntk_parameters,
        _compute_linear_scaling_rope_parameters,
    )

    def config(kind, factor):
        return LlamaConfig(
            hidden_size=64,
            num_attention_heads=4,
            max_position_embeddings=32,
            rope_parameters={"rope_type": kind, "rope_theta": 500.0, "factor": factor},
        )

    linear, _ = _compute_linear_scaling_rope_parameters(config("linear", 4.0))
    torch.testing.assert_close(RotaryEmbedding(16, 500.0, scale=4.0).inv_freq, linear)
    # dynamic NTK with factor 1 at 4x the trained length: the static NTK base
    dynamic, _ = _compute_dynamic_ntk_parameters(config("dynamic", 1.0), seq_len=128)
    torch.testing.assert_close(rope_inv_freq(16, ntk_theta(500.0, 4.0, 16)), dynamic)


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
