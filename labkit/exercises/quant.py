"""Checks for the exercises of the chapter on quantization and QLoRA.

The references are labkit.quant's ``absmax_int8`` (per output channel),
``pack_int4`` and ``nf4_groups``: each case keeps what they return.

Built in: notebooks/19_quantization_and_qlora.ipynb.
"""

from __future__ import annotations

import torch

from labkit.exercises import Case, CheckResult, Raises, run_check, tensors_close
from labkit.quant import absmax_int8, nf4_groups, pack_int4


class _RaisesOnNaN(torch.Tensor):
    """A tensor whose every float result is checked for NaN: a 0 / 0 in the
    learner's code raises here, instead of being cast to an integer code
    (NaN to int8 is undefined and gives 0 on some machines, the right code).
    """

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        out = super().__torch_function__(func, types, args, kwargs or {})
        with torch._C.DisableTorchFunctionSubclass():
            if (
                isinstance(out, torch.Tensor)
                and out.is_floating_point()
                and out.isnan().any()
            ):
                raise FloatingPointError("a NaN appeared (0 / 0?)")
        return out


def _plain(value):
    """The learner's result without the NaN watch, for the comparison."""
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, torch.Tensor):
        return value.as_subclass(torch.Tensor)
    return value


def _int8_close(expected, returned) -> str | None:
    return tensors_close(expected, _plain(returned))


def _int8_case(w: torch.Tensor, hint: str) -> Case:
    codes, step = absmax_int8(w, "channel")
    label = f"w {tuple(w.shape)} = {w.tolist()}" if w.numel() <= 8 else None
    watched = w.as_subclass(_RaisesOnNaN)
    label = label or f"w of shape {tuple(w.shape)}"
    return Case((watched,), (codes, step), hint, label)


def _int8_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(0)
    cases = [
        _int8_case(torch.tensor([[1.0, 0.0, -1.0]]), "step = absmax / 127"),
        _int8_case(
            torch.tensor([[1.0, 0.699]]),
            "round to the nearest code: 0.699 * 127 = 88.8 -> 89, not 88",
        ),
        _int8_case(
            torch.tensor([[-4.0, 1.0, 3.0]]),
            "absmax is the largest |value|: here the negative one, 4.0",
        ),
        _int8_case(
            torch.tensor([[1.0, 2.0], [0.0, 0.0]]),
            "an all-zero row: step 0 and codes 0, no 0 / 0 (NaN) on the way",
        ),
        _int8_case(
            torch.tensor([[4.0, 1.0], [0.1, -0.05]]),
            "one step per row (output channel), shape (R, 1)",
        ),
    ]
    for rows, cols in [(3, 16), (8, 5), (1, 64)]:
        w = torch.randn(rows, cols, generator=gen) * 0.05
        cases.append(_int8_case(w, "random weights"))
    return cases


def check_absmax_int8(fn) -> CheckResult:
    """Check ``fn(w) -> (codes, step)``: absmax int8 per output channel,
    codes int8 = round(w / step) in -127..127, step (R, 1) = absmax / 127.
    Every input is watched: a NaN in any float result (0 / 0 on an all-zero
    row) fails the case, whatever it would have been cast to.
    """
    return run_check(
        "check_absmax_int8",
        fn,
        _int8_cases(),
        _int8_close,
        summary="step = absmax / 127, negative absmax, rounding, an all-zero "
        "row, one step per row, 3 random",
        forbidden=("labkit",),
        references=(absmax_int8,),
    )


def _pack_case(codes, hint: str) -> Case:
    codes = torch.tensor(codes, dtype=torch.uint8)
    label = f"codes {codes.tolist()}" if codes.numel() <= 8 else None
    label = label or f"codes of shape {tuple(codes.shape)}"
    try:
        expected = pack_int4(codes)
    except ValueError:
        expected = Raises(ValueError)
    return Case((codes,), expected, hint, label)


def _pack_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(1)
    cases = [
        _pack_case([1, 2], "element 0 in the low nibble: 1 + 2 * 16 = 33"),
        _pack_case([15, 0], "15 in the low nibble, 0 in the high: 15"),
        _pack_case([0, 15], "15 in the high nibble: 15 * 16 = 240"),
        _pack_case([15, 15, 3, 7], "each pair of codes is one byte: (2,) out"),
        _pack_case([[1, 2], [3, 4]], "pack along the last dimension, per row"),
        _pack_case([1, 2, 3], "an odd number of codes cannot pack: ValueError"),
        _pack_case(
            [[1, 2, 3], [4, 5, 6]],
            "an odd last dimension cannot pack, even if the total count is even",
        ),
    ]
    for shape in [(4, 8), (2, 3, 6)]:
        codes = torch.randint(0, 16, shape, generator=gen)
        cases.append(_pack_case(codes.tolist(), "random codes"))
    return cases


def check_pack_int4(fn) -> CheckResult:
    """Check ``fn(codes) -> packed``: two 4-bit codes (uint8, 0..15) per
    uint8 byte, element 2i in the low nibble and 2i + 1 in the high nibble;
    ValueError for an odd last dimension.
    """
    return run_check(
        "check_pack_int4",
        fn,
        _pack_cases(),
        tensors_close,
        summary="nibble order, 0 and 15, several bytes, rows, an odd count, an "
        "odd row length, 2 random",
        forbidden=("labkit",),
        references=(pack_int4,),
    )


def _nf4_case(w: torch.Tensor, group_size: int, hint: str) -> Case:
    expected = nf4_groups(w, group_size)
    label = f"w of shape {tuple(w.shape)}, group_size {group_size}"
    if w.numel() <= 8:
        label = f"w {w.tolist()}, group_size {group_size}"
    return Case((w, group_size), expected, hint, label)


def _nf4_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(2)
    cases = [
        _nf4_case(torch.tensor([[1.0, -1.0, 0.0, 0.5]]), 4, "-1, 0, 1 are levels"),
        _nf4_case(
            torch.tensor([[1.0, 0.06, 0.12, -0.6]]),
            4,
            "nearest level, not the one below: 0.06 is closer to 0.0796 than 0",
        ),
        _nf4_case(
            torch.tensor([[2.0, 1.0, 0.1, 0.2]]),
            2,
            "one absmax per group of group_size along the row: (R, N / g)",
        ),
        _nf4_case(
            torch.tensor([[0.0, 0.0, 1.0, -0.3]]),
            2,
            "an all-zero group: absmax 0 and every code the index of level 0",
        ),
    ]
    for rows, cols, g in [(2, 16, 8), (4, 32, 16), (3, 64, 64)]:
        w = torch.randn(rows, cols, generator=gen) * 0.03
        cases.append(_nf4_case(w, g, "random weights"))
    return cases


def check_nf4_quantize(fn) -> CheckResult:
    """Check ``fn(w, group_size) -> (codes, absmax)``: per group of
    ``group_size`` along each row, absmax (R, N / g) float32, and codes
    (R, N) uint8, the index of the NF4 level nearest w / absmax.
    """
    return run_check(
        "check_nf4_quantize",
        fn,
        _nf4_cases(),
        tensors_close,
        summary="exact levels, nearest not floor, groups along the row, an "
        "all-zero group, 3 random",
        forbidden=("labkit.quant",),
        references=(nf4_groups,),
    )
