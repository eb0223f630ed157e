"""The position checks accept correct answers and reject plausible wrong ones."""

import torch

from labkit.exercises.positions import check_alibi, check_rope, check_sinusoidal
from labkit.positions import rope_adjacent, sinusoidal


def pe_table(positions, C):
    freqs = 10000.0 ** (-torch.arange(0, C, 2).float() / C)  # (C/2,)
    angles = positions.float()[:, None] * freqs  # (T, C/2)
    pe = torch.zeros(len(positions), C)
    pe[:, 0::2], pe[:, 1::2] = angles.sin(), angles.cos()
    return pe


def test_a_correct_sinusoidal_passes_and_a_stub_is_not_done():
    assert check_sinusoidal(pe_table)

    def stub(positions, C):
        return None

    assert check_sinusoidal(stub).status == "not done"


def test_sinusoidal_written_with_exp_and_log_passes_the_tolerance():
    def via_exp(positions, C):
        i = torch.arange(C // 2).float()
        angles = positions.float()[:, None] * torch.exp(-i * 2 / C * 9.210340371976184)
        return torch.stack([angles.sin(), angles.cos()], -1).flatten(-2)

    assert check_sinusoidal(via_exp)


def test_labkit_sinusoidal_is_refused():
    assert "labkit's own function" in check_sinusoidal(sinusoidal).report


def test_sinusoidal_with_exponent_i_over_c_is_caught():
    def half_exponent(positions, C):
        freqs = 10000.0 ** (-torch.arange(C // 2).float() / C)  # i/C, not 2i/C
        angles = positions.float()[:, None] * freqs
        return torch.stack([angles.sin(), angles.cos()], -1).flatten(-2)

    result = check_sinusoidal(half_exponent)
    assert result.status == "failed" and "not i/C" in result.failed_case.hint


def test_sinusoidal_with_sines_then_cosines_is_caught():
    def halves(positions, C):  # GPT-J's table layout: [sin ..., cos ...]
        freqs = 10000.0 ** (-torch.arange(0, C, 2).float() / C)
        angles = positions.float()[:, None] * freqs
        return torch.cat([angles.sin(), angles.cos()], -1)

    result = check_sinusoidal(halves)
    assert result.status == "failed" and "interleaved" in result.failed_case.hint


def test_sinusoidal_that_ignores_the_positions_is_caught():
    result = check_sinusoidal(
        lambda positions, C: pe_table(torch.arange(len(positions)), C)
    )
    assert result.status == "failed" and "not 0 .. T-1" in result.failed_case.hint


def rotate(x, positions, theta):
    D = x.shape[-1]
    if D % 2:
        raise ValueError(f"odd D={D}")
    freqs = theta ** (-torch.arange(0, D, 2).float() / D)
    angles = positions.float()[:, None] * freqs  # (T, D/2)
    cos, sin = angles.cos(), angles.sin()
    x1, x2 = x[..., : D // 2], x[..., D // 2 :]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1)


def test_a_correct_rope_passes_and_a_stub_is_not_done():
    assert check_rope(rotate)
    assert check_rope(lambda x, positions, theta: None).status == "not done"


def test_rope_in_the_adjacent_layout_is_caught_with_the_layout_hint():
    def adjacent(x, positions, theta):
        if x.shape[-1] % 2:
            raise ValueError("odd D")
        return rope_adjacent(x, positions, theta)

    result = check_rope(adjacent)
    assert result.status == "failed" and "rotate half" in result.failed_case.hint


def test_rope_turning_the_wrong_way_is_caught():
    """q.k still depends on the distance only, so only the check can tell."""

    def clockwise(x, positions, theta):
        return rotate(x, -positions, theta)

    result = check_rope(clockwise)
    assert result.status == "failed" and "counter-clockwise" in result.failed_case.hint


def test_rope_that_ignores_theta_is_caught():
    def fixed_base(x, positions, theta):
        return rotate(x, positions, 10000.0)

    result = check_rope(fixed_base)
    assert result.status == "failed" and "theta you are given" in result.report


def test_rope_that_rotates_by_the_row_index_is_caught():
    def row_index(x, positions, theta):
        return rotate(x, torch.arange(len(positions)), theta)

    result = check_rope(row_index)
    assert result.status == "failed"
    assert "positions you are given" in result.failed_case.hint


def test_rope_that_accepts_odd_d_is_caught():
    def no_check(x, positions, theta):
        if x.shape[-1] % 2:
            return x
        return rotate(x, positions, theta)

    result = check_rope(no_check)
    assert result.status == "failed" and "raise ValueError" in result.report


def bias_table(n_heads, q_pos, k_pos):
    if n_heads & (n_heads - 1):
        raise ValueError(f"n_heads={n_heads} is not a power of two")
    slopes = 2.0 ** (-8 * torch.arange(1, n_heads + 1) / n_heads)  # (H,)
    distance = (q_pos[:, None] - k_pos[None, :]).abs()  # (T, S)
    return -slopes[:, None, None] * distance


def test_a_correct_alibi_passes_and_a_stub_is_not_done():
    assert check_alibi(bias_table)
    assert check_alibi(lambda H, q, k: None).status == "not done"


def test_alibi_with_slopes_from_h_equal_zero_is_caught():
    def from_zero(n_heads, q_pos, k_pos):
        if n_heads & (n_heads - 1):
            raise ValueError("not a power of two")
        slopes = 2.0 ** (-8 * torch.arange(n_heads) / n_heads)  # starts at 1
        distance = (q_pos[:, None] - k_pos[None, :]).abs()
        return -slopes[:, None, None] * distance

    result = check_alibi(from_zero)
    assert result.status == "failed" and "h starts at 1" in result.failed_case.hint


def test_alibi_built_from_row_and_column_indices_is_caught():
    def indices(n_heads, q_pos, k_pos):
        T, S = len(q_pos), len(k_pos)
        return bias_table(n_heads, torch.arange(T), torch.arange(S))

    result = check_alibi(indices)
    assert result.status == "failed" and "KV cache" in result.failed_case.hint


def test_alibi_with_a_positive_bias_is_caught():
    def plus(n_heads, q_pos, k_pos):
        return -bias_table(n_heads, q_pos, k_pos)

    assert check_alibi(plus).failed_case.args[0] == 1  # the one-head case


def test_alibi_that_follows_the_papers_rule_for_6_heads_is_told_to_refuse():
    def papers_rule(n_heads, q_pos, k_pos):
        lower = 2 ** (n_heads.bit_length() - 1)  # nearest lower power of two
        slopes = [2 ** (-8 * h / lower) for h in range(1, lower + 1)]
        slopes += [2 ** (-4 * h / lower) for h in range(1, 2 * lower, 2)]
        slopes = torch.tensor(slopes[:n_heads])  # (H,)
        distance = (q_pos[:, None] - k_pos[None, :]).abs()
        return -slopes[:, None, None] * distance

    result = check_alibi(papers_rule)
    assert result.status == "failed"
    assert result.failed_case.label == "n_heads=6"
    assert "asks you to raise ValueError" in result.failed_case.hint
    assert "does not refuse" in result.failed_case.hint
