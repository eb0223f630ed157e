"""Checks for the exercises of the chapter on LoRA.

The references are ``labkit.lora.LoRALinear``'s forward and ``delta``: each
case builds a LoRALinear around the case's weight and bias, gives it the
case's A and B, and keeps what it computes.

Built in: notebooks/15_lora.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from labkit.exercises import Case, CheckResult, run_check, short, tensors_close
from labkit.lora import LoRALinear


def _tensors(d_in, d_out, rank, seed, bias=True, zero_b=False):
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(d_out, d_in, generator=gen) / d_in**0.5
    b = torch.randn(d_out, generator=gen) if bias else None
    lora_a = torch.randn(rank, d_in, generator=gen) / d_in**0.5
    lora_b = torch.zeros(d_out, rank)
    if not zero_b:
        lora_b = torch.randn(d_out, rank, generator=gen) * 0.5
    return weight, b, lora_a, lora_b


def _layer(weight, bias, lora_a, lora_b, alpha, rslora=False) -> LoRALinear:
    d_out, d_in = weight.shape
    linear = nn.Linear(d_in, d_out, bias=bias is not None)
    layer = LoRALinear(linear, lora_a.shape[0], alpha, rslora)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
        layer.lora_A.copy_(lora_a)
        layer.lora_B.copy_(lora_b)
    return layer


def _forward_case(lead, d_in, d_out, rank, alpha, hint, seed=0, **kw) -> Case:
    weight, bias, lora_a, lora_b = _tensors(d_in, d_out, rank, seed, **kw)
    x = torch.randn(*lead, d_in, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected = _layer(weight, bias, lora_a, lora_b, alpha)(x)
    label = (
        f"x {tuple(x.shape)}, W ({d_out}, {d_in}), "
        f"bias {'None' if bias is None else 'yes'}, rank {rank}, alpha {alpha:g}"
    )
    if kw.get("zero_b"):
        label += ", B = 0"
    return Case((x, weight, bias, lora_a, lora_b, alpha), expected, hint, label)


def _forward_cases() -> list[Case]:
    cases = [
        _forward_case(
            (3,), 4, 4, 2, 4.0, "B = 0: the output is the base layer's", zero_b=True
        ),
        _forward_case((2,), 4, 4, 1, 1.0, "rank 1, alpha 1: the scale is 1"),
        _forward_case(
            (2,), 4, 4, 4, 8.0, "the low-rank path is scaled by alpha / rank (2 here)"
        ),
        _forward_case(
            (3,),
            6,
            5,
            2,
            2.0,
            "W is (out, in) and A is (rank, in), B (out, rank): y = x W^T + b "
            "+ s (x A^T) B^T",
        ),
        _forward_case((3,), 6, 5, 3, 6.0, "bias may be None", bias=False),
        _forward_case(
            (2, 3), 8, 4, 2, 4.0, "x may have batch dimensions: use the last one"
        ),
    ]
    gen = torch.Generator().manual_seed(1)
    for seed in range(2, 8):
        d_in, d_out = (int(v) for v in torch.randint(1, 13, (2,), generator=gen))
        rank = int(torch.randint(1, 6, (1,), generator=gen))
        alpha = float(torch.randint(1, 33, (1,), generator=gen))
        cases.append(
            _forward_case((2, 5), d_in, d_out, rank, alpha, "random sizes", seed)
        )
    return cases


def check_lora_forward(fn) -> CheckResult:
    """Check ``fn(x, weight, bias, lora_A, lora_B, alpha) -> y``: a frozen
    linear layer plus its LoRA path, y = x W^T + b + (alpha / r) x A^T B^T
    with r = lora_A.shape[0].
    """
    return run_check(
        "check_lora_forward",
        fn,
        _forward_cases(),
        tensors_close,
        summary="B = 0, the alpha / rank scale, (out, in) layout, no bias, "
        "batch dims, 6 random layers",
        forbidden=("labkit",),
    )


@dataclass(frozen=True)
class _Merged:
    """What a merge case expects: the merged weight, and the inputs as they
    were before the call (a merge must not change the caller's tensors)."""

    value: torch.Tensor
    inputs: tuple  # (weight, lora_A, lora_B) as handed to the function
    before: tuple  # their copies, taken before the call

    def __repr__(self) -> str:
        return short(self.value)


_NAMES = ("weight", "lora_A", "lora_B")


def _merge_close(expected: _Merged, returned) -> str | None:
    for name, arg, was in zip(_NAMES, expected.inputs, expected.before, strict=True):
        if not torch.equal(arg, was):
            return (
                f"{name} was changed in place ({name} += ... or .add_): return "
                f"a new tensor, weight + s B @ A, and leave {name} as it was"
            )
    return tensors_close(expected.value, returned)


def _merge_case(d_in, d_out, rank, alpha, rslora, hint, seed=0, **kw) -> Case:
    weight, _, lora_a, lora_b = _tensors(d_in, d_out, rank, seed, bias=False, **kw)
    layer = _layer(weight, None, lora_a, lora_b, alpha, rslora)
    with torch.no_grad():
        value = weight + layer.delta()
    inputs = (weight, lora_a, lora_b)
    expected = _Merged(value, inputs, tuple(t.clone() for t in inputs))
    label = f"W ({d_out}, {d_in}), rank {rank}, alpha {alpha:g}, rslora {rslora}" + (
        ", B = 0" if kw.get("zero_b") else ""
    )
    return Case((weight, lora_a, lora_b, alpha, rslora), expected, hint, label)


def _merge_cases() -> list[Case]:
    cases = [
        _merge_case(4, 4, 2, 4.0, False, "B = 0: the merged weight is W", zero_b=True),
        _merge_case(4, 4, 4, 8.0, False, "LoRA's scale: alpha / rank = 2"),
        _merge_case(4, 4, 4, 8.0, True, "rsLoRA's scale: alpha / sqrt(rank) = 4"),
        _merge_case(4, 4, 1, 3.0, True, "rank 1: sqrt(1) = 1, both scales are alpha"),
        _merge_case(
            6,
            3,
            2,
            2.0,
            False,
            "W is (out, in): the change is B @ A, (out, rank) @ (rank, in)",
        ),
        _merge_case(5, 7, 3, 6.0, True, "rsLoRA on a non-square layer"),
    ]
    gen = torch.Generator().manual_seed(2)
    for seed in range(2, 8):
        d_in, d_out = (int(v) for v in torch.randint(1, 13, (2,), generator=gen))
        rank = int(torch.randint(1, 9, (1,), generator=gen))
        alpha = float(torch.randint(1, 33, (1,), generator=gen))
        rslora = bool(seed % 2)
        cases.append(
            _merge_case(d_in, d_out, rank, alpha, rslora, "random sizes", seed)
        )
    return cases


def check_merged_weight(fn) -> CheckResult:
    """Check ``fn(weight, lora_A, lora_B, alpha, rslora) -> merged weight``:
    W + s B @ A, with s = alpha / r (alpha / sqrt(r) when ``rslora``), as a
    new tensor: every case also checks that weight, lora_A and lora_B are
    unchanged after the call.
    """
    return run_check(
        "check_merged_weight",
        fn,
        _merge_cases(),
        _merge_close,
        summary="B = 0, both scales, rank 1, non-square layers, 6 random; "
        "inputs left unchanged",
        forbidden=("labkit",),
    )
