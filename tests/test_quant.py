"""labkit.quant: round-trip error bounds, the NF4 table, packing, bytes."""

import pytest
import torch

from labkit.quant import (
    NF4_TABLE,
    SCHEMES,
    absmax_int8,
    dequantize_int4,
    dequantize_int8,
    dequantize_nf4,
    dequantize_scales,
    dequantize_weight,
    double_quantize,
    int4_groups,
    nf4_groups,
    nf4_levels,
    pack_int4,
    quantize_weight,
    unpack_int4,
)


def weight(rows=16, cols=128, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, cols, generator=gen) * 0.02
    w[3] *= 40  # one large row: per-tensor scaling coarsens every row
    return w


def test_nf4_levels_equal_the_published_table_and_are_normal_quantiles():
    levels = nf4_levels()
    table = torch.tensor(NF4_TABLE)
    assert levels.shape == (16,) and levels.dtype == torch.float32
    # the paper prints float32 values: equal to float32 rounding
    torch.testing.assert_close(levels, table, atol=2e-7, rtol=0)
    assert levels[7] == 0 and levels[0] == -1 and levels[-1] == 1
    # how they are built: quantile of p, divided by the top quantile
    delta = (1 / 32 + 1 / 30) / 2
    top = torch.special.ndtri(torch.tensor(1 - delta, dtype=torch.float64))
    p = 0.5 + (0.5 - delta) * 3 / 8  # the 3rd positive level of 8
    expected = torch.special.ndtri(torch.tensor(p, dtype=torch.float64)) / top
    assert abs(float(levels[8 + 2]) - float(expected)) < 1e-6
    # the negative side has 7 levels at spacing (0.5 - delta) / 7
    p_neg = 0.5 + (0.5 - delta) / 7
    neg = torch.special.ndtri(torch.tensor(p_neg, dtype=torch.float64)) / top
    assert abs(float(levels[6]) + float(neg)) < 1e-6


@pytest.mark.parametrize("per", ["tensor", "channel"])
def test_int8_error_is_at_most_half_a_step(per):
    w = weight()
    codes, step = absmax_int8(w, per)
    assert codes.dtype == torch.int8 and codes.abs().max() == 127
    assert step.shape == ((1, 1) if per == "tensor" else (16, 1))
    err = (dequantize_int8(codes, step) - w).abs()
    assert (err <= step / 2 * (1 + 1e-5)).all()
    if per == "channel":  # each row gets its own step: most rows are finer
        _, step_t = absmax_int8(w, "tensor")
        assert (step <= step_t).all() and (step < step_t / 10).sum() >= 14


def test_int4_groups_error_is_at_most_half_a_step():
    w = weight()
    codes, step = int4_groups(w, 32)
    assert step.shape == (16, 4) and codes.min() >= 1 and codes.max() <= 15
    err = (dequantize_int4(codes, step) - w).abs().reshape(16, 4, 32)
    assert (err <= step[..., None] / 2 * (1 + 1e-5)).all()


def test_nf4_error_is_at_most_half_the_widest_gap_times_the_scale():
    w = weight()
    codes, absmax = nf4_groups(w, 64)
    levels = nf4_levels()
    half_gap = float((levels[1:] - levels[:-1]).max()) / 2
    err = (dequantize_nf4(codes, absmax) - w).abs().reshape(16, 2, 64)
    assert (err <= absmax[..., None] * half_gap * (1 + 1e-5)).all()
    # every number lands on its nearest level
    x = (w.reshape(16, 2, 64) / absmax[..., None]).reshape(16, 128)
    nearest = (x[..., None] - levels).abs().argmin(-1)
    assert torch.equal(codes.long(), nearest)


def test_nf4_beats_int4_on_normal_weights_and_not_on_uniform_ones():
    gen = torch.Generator().manual_seed(1)
    normal = torch.randn(64, 256, generator=gen)
    uniform = torch.rand(64, 256, generator=gen) * 2 - 1

    def mse(w, scheme):
        return float(
            (dequantize_weight(quantize_weight(w, scheme, 64)) - w).pow(2).mean()
        )

    assert mse(normal, "nf4") < 0.85 * mse(normal, "int4")
    assert mse(uniform, "int4") < mse(uniform, "nf4")


def test_all_zero_rows_and_groups_quantize_to_zero():
    w = weight()
    w[5] = 0
    for scheme in SCHEMES:
        q = quantize_weight(w, scheme, 32)
        back = dequantize_weight(q)
        assert torch.isfinite(back).all(), scheme
        assert (back[5] == 0).all(), scheme


def test_pack_int4_puts_element_2i_in_the_low_nibble_and_round_trips():
    codes = torch.tensor([[1, 2, 15, 0]], dtype=torch.uint8)
    packed = pack_int4(codes)
    assert packed.tolist() == [[1 | 2 << 4, 15 | 0 << 4]]
    rand = torch.randint(0, 16, (8, 64), dtype=torch.uint8)
    assert torch.equal(unpack_int4(pack_int4(rand)), rand)
    with pytest.raises(ValueError, match="even"):
        pack_int4(torch.zeros(3, 5, dtype=torch.uint8))
    with pytest.raises(ValueError, match="0..15"):
        pack_int4(torch.full((2,), 16, dtype=torch.uint8))


def test_packed_storage_is_really_smaller_counted_from_the_tensors():
    w = weight(64, 256)
    fp32 = w.numel() * w.element_size()
    q8 = quantize_weight(w, "int8-channel")
    q4 = quantize_weight(w, "nf4", 64)
    dq = quantize_weight(w, "nf4", 64, double_quant=True)
    assert q8.codes.dtype == torch.int8 and q8.codes.numel() == w.numel()
    assert q4.codes.dtype == torch.uint8 and q4.codes.numel() == w.numel() // 2
    assert q8.nbytes == w.numel() + 64 * 4
    assert q4.nbytes == w.numel() // 2 + 64 * 4 * 4  # 4 groups per row
    assert q4.bits_per_weight == 4.5 and q4.nbytes < fp32 / 7
    # double quantization: 8-bit scales, one float32 step per 256, one mean
    assert dq.nbytes == w.numel() // 2 + 256 + 4 + 4
    assert dq.bits_per_weight < 4.14


def test_double_quantized_scales_stay_close():
    gen = torch.Generator().manual_seed(2)
    scales = torch.rand(40, 10, generator=gen) * 0.1 + 0.02  # 400: 2 blocks
    codes, steps, mean = double_quantize(scales)
    assert codes.shape == (40, 10) and steps.shape == (2,)
    back = dequantize_scales(codes, steps, mean)
    assert (back - scales).abs().max() <= steps.max() / 2 * (1 + 1e-5)


def test_group_size_that_does_not_divide_the_row_is_an_error_naming_it():
    w = weight(4, 96)
    for scheme in ("int4", "nf4"):
        with pytest.raises(ValueError, match="group_size=64 does not divide the row"):
            quantize_weight(w, scheme, 64)
    with pytest.raises(ValueError, match="unknown scheme"):
        quantize_weight(w, "int3")
    with pytest.raises(ValueError, match="2-d"):
        int4_groups(torch.zeros(8), 4)
