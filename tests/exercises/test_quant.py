"""The quantization checks accept correct answers and reject plausible wrong
ones (a scale of max instead of max / 127, truncation, a signed max, one
scale per tensor, the nibbles in the wrong order, floor instead of nearest,
an all-zero group or row divided by zero, an odd check on the wrong
dimension). The int8 zero row is caught by the NaN on the way, not by the
codes: NaN cast to int8 gives 0 on some machines, the right code."""

import torch

from labkit.exercises.quant import (
    check_absmax_int8,
    check_nf4_quantize,
    check_pack_int4,
)
from labkit.quant import NF4_TABLE

LEVELS = torch.tensor(NF4_TABLE)


def absmax_int8(w):
    absmax = w.abs().amax(1, keepdim=True)
    step = absmax / 127
    safe = torch.where(step > 0, step, torch.ones_like(step))
    return torch.round(w / safe).clamp(-127, 127).to(torch.int8), step


def pack(codes):
    if codes.shape[-1] % 2:
        raise ValueError("odd")
    return (codes[..., 0::2] | codes[..., 1::2] << 4).to(torch.uint8)


def nf4(w, g):
    R, N = w.shape
    groups = w.reshape(R, N // g, g)
    absmax = groups.abs().amax(-1)
    safe = torch.where(absmax > 0, absmax, torch.ones_like(absmax))
    x = groups / safe[..., None]
    codes = (x[..., None] - LEVELS).abs().argmin(-1)
    return codes.reshape(R, N).to(torch.uint8), absmax


def stub(*args):
    raise NotImplementedError


def test_correct_answers_pass_and_stubs_are_not_done():
    assert check_absmax_int8(absmax_int8)
    assert check_pack_int4(pack)
    assert check_nf4_quantize(nf4)
    for check in (check_absmax_int8, check_pack_int4, check_nf4_quantize):
        assert check(stub).status == "not done"
        assert check(lambda *a: None).status == "not done"


def test_int8_wrong_scales_and_rounding_are_caught():
    def scale_is_max(w):
        step = w.abs().amax(1, keepdim=True)  # forgot / 127
        safe = torch.where(step > 0, step, torch.ones_like(step))
        return torch.round(w / safe).to(torch.int8), step

    result = check_absmax_int8(scale_is_max)
    assert result.status == "failed" and "absmax / 127" in result.failed_case.hint

    def truncates(w):
        codes, step = absmax_int8(w)
        safe = torch.where(step > 0, step, torch.ones_like(step))
        return (w / safe).to(torch.int8), step  # rounds toward zero

    result = check_absmax_int8(truncates)
    assert result.status == "failed" and "nearest" in result.failed_case.hint

    def signed_max(w):
        step = w.amax(1, keepdim=True) / 127  # max, not max |value|
        safe = torch.where(step > 0, step, torch.ones_like(step))
        return torch.round(w / safe).clamp(-127, 127).to(torch.int8), step

    result = check_absmax_int8(signed_max)
    assert result.status == "failed" and "negative" in result.failed_case.hint

    def per_tensor(w):
        step = w.abs().max() / 127 * torch.ones(w.shape[0], 1)
        return torch.round(w / step).to(torch.int8), step

    assert check_absmax_int8(per_tensor).status == "failed"


def test_int8_zero_row_divided_by_zero_is_caught():
    def no_guard(w):
        step = w.abs().amax(1, keepdim=True) / 127
        return torch.round(w / step).clamp(-127, 127).to(torch.int8), step

    result = check_absmax_int8(no_guard)
    assert result.status == "failed" and "all-zero" in result.failed_case.hint


def test_pack_odd_check_on_the_wrong_dimension_is_caught():
    def first_dim(codes):
        if len(codes) % 2:
            raise ValueError("odd")
        return (codes[..., 0::2] | codes[..., 1::2] << 4).to(torch.uint8)

    def total_count(codes):
        if codes.numel() % 2:
            raise ValueError("odd")
        return (codes[..., 0::2] | codes[..., 1::2] << 4).to(torch.uint8)

    for wrong in (first_dim, total_count):
        result = check_pack_int4(wrong)
        assert result.status == "failed" and "last dimension" in result.failed_case.hint


def test_pack_in_the_wrong_nibble_order_is_caught():
    def high_first(codes):
        if codes.shape[-1] % 2:
            raise ValueError("odd")
        return (codes[..., 0::2] << 4 | codes[..., 1::2]).to(torch.uint8)

    result = check_pack_int4(high_first)
    assert result.status == "failed" and "low nibble" in result.failed_case.hint

    def wrong_dtype(codes):
        return pack(codes).long()

    assert "dtype" in check_pack_int4(wrong_dtype).report

    def no_error_on_odd(codes):
        return pack(codes[..., : codes.shape[-1] // 2 * 2])

    result = check_pack_int4(no_error_on_odd)
    assert result.status == "failed" and "odd" in result.failed_case.hint


def test_nf4_floor_per_row_scale_or_zero_division_are_caught():
    def floor(w, g):
        R, N = w.shape
        groups = w.reshape(R, N // g, g)
        absmax = groups.abs().amax(-1)
        safe = torch.where(absmax > 0, absmax, torch.ones_like(absmax))
        x = (groups / safe[..., None]).contiguous()
        codes = torch.searchsorted(LEVELS, x, right=True) - 1  # level below
        return codes.clamp(0, 15).reshape(R, N).to(torch.uint8), absmax

    result = check_nf4_quantize(floor)
    assert result.status == "failed" and "nearest" in result.failed_case.hint

    def per_row(w, g):
        absmax = w.abs().amax(1, keepdim=True)
        codes = ((w / absmax)[..., None] - LEVELS).abs().argmin(-1)
        G = w.shape[1] // g
        return codes.to(torch.uint8), absmax.expand(-1, G).contiguous()

    result = check_nf4_quantize(per_row)
    assert result.status == "failed" and "group" in result.failed_case.hint

    def zero_division(w, g):
        R, N = w.shape
        groups = w.reshape(R, N // g, g)
        absmax = groups.abs().amax(-1)
        x = groups / absmax[..., None]  # 0 / 0 = NaN in an all-zero group
        codes = (x[..., None] - LEVELS).abs().argmin(-1)
        return codes.reshape(R, N).to(torch.uint8), absmax

    result = check_nf4_quantize(zero_division)
    assert result.status == "failed" and "all-zero" in result.failed_case.hint
