"""Checks for the exercises of the chapter on the MLP and the block.

The references are labkit.mlp's ``GatedMLP`` (SwiGLU, no biases), loaded with
the case's weights, ``dead_units``, and labkit.model's ``Block`` (serial and
parallel), handed to the learner's function as its parts.

Built in: notebooks/09_mlp_and_block.ipynb.
"""

from __future__ import annotations

import torch

from labkit.exercises import Case, CheckResult, Raises, run_check, tensors_close
from labkit.mlp import GatedMLP, dead_units


def _swiglu_reference(x, w_gate, w_up, w_down) -> torch.Tensor:
    d_mlp, C = w_up.shape
    mlp = GatedMLP(C, d_mlp, "swiglu", bias=False)
    with torch.no_grad():
        mlp.gate_proj.weight.copy_(w_gate)
        mlp.up_proj.weight.copy_(w_up)
        mlp.down_proj.weight.copy_(w_down)
        return mlp(x)


def _swiglu_case(x, w_gate, w_up, w_down, hint: str, label: str) -> Case:
    expected = _swiglu_reference(x, w_gate, w_up, w_down)
    return Case((x, w_gate, w_up, w_down), expected, hint, label=label)


def _random_swiglu(shape, d_mlp: int, gen: torch.Generator, hint: str) -> Case:
    C = shape[-1]
    x = torch.randn(*shape, generator=gen)
    w_gate = torch.randn(d_mlp, C, generator=gen) / C**0.5
    w_up = torch.randn(d_mlp, C, generator=gen) / C**0.5
    w_down = torch.randn(C, d_mlp, generator=gen) / d_mlp**0.5
    label = f"x {tuple(shape)}, d_mlp={d_mlp}"
    return _swiglu_case(x, w_gate, w_up, w_down, hint, label)


def _layout_case(gen: torch.Generator) -> Case:
    x = torch.randn(3, 4, generator=gen)
    w = torch.randn(6, 4, generator=gen) / 2  # the same for gate and up
    w_down = torch.randn(4, 6, generator=gen) / 6**0.5
    return _swiglu_case(
        x,
        w,
        w,
        w_down,
        "weights are stored as nn.Linear stores them, (out_features, "
        "in_features): x @ w.T, not x @ w",
        "x (3, 4), d_mlp=6, w_gate = w_up (6, 4), w_down (4, 6)",
    )


def _swiglu_cases() -> list[Case]:
    one = torch.ones(1, 1)
    gen = torch.Generator().manual_seed(0)
    cases = [
        _swiglu_case(
            torch.tensor([[2.0]]),
            one,
            one,
            one,
            "gate = up = 2: the answer is silu(2) * 2 = 2 * sigmoid(2) * 2 "
            "= 3.52; sigmoid(2) * 2 (a GLU) gives 1.76",
            "x = [[2.]], every weight 1 (C = d_mlp = 1)",
        ),
        _layout_case(gen),
        _swiglu_case(
            torch.tensor([[1.0, -1.0]]),
            torch.tensor([[1.0, 0.0]]),
            torch.tensor([[0.0, 3.0]]),
            torch.tensor([[1.0], [0.0]]),
            "SiLU goes on the gate projection only; the up projection is "
            "multiplied in as it is: silu(1) * (-3) = -2.19",
            "x = [[1., -1.]], gate row [1, 0], up row [0, 3], down [[1], [0]]",
        ),
        _random_swiglu(
            (2, 5, 8),
            12,
            gen,
            "x may have batch and time dimensions (B, T, C): work on the "
            "last one and keep the others",
        ),
        _random_swiglu(
            (1, 1, 4),
            3,
            gen,
            "one token, d_mlp < C: the hidden layer may be narrower",
        ),
    ]
    for seed in range(1, 6):
        gen = torch.Generator().manual_seed(seed)
        cases.append(_random_swiglu((2, 3, 8), 16, gen, "random inputs"))
    return cases


def check_swiglu(fn) -> CheckResult:
    """Check ``fn(x, w_gate, w_up, w_down)``: down(silu(gate(x)) * up(x)).

    No biases. w_gate and w_up are (d_mlp, C), w_down is (C, d_mlp), as
    nn.Linear stores them; x is (..., C) and so is the answer.
    """
    return run_check(
        "check_swiglu",
        fn,
        _swiglu_cases(),
        tensors_close,
        summary="hand-derived scalar, gate vs up, weight layout, (B, T, C) "
        "input, narrow hidden layer, 5 random",
        forbidden=("labkit", "GatedMLP"),
    )


def _dead_cases() -> list[Case]:
    def case(pre: torch.Tensor, hint: str, label: str | None = None) -> Case:
        shown = label or " ".join(repr(pre.tolist()).split())
        return Case((pre,), dead_units(pre), hint, label=f"pre = {shown}")

    cases = [
        case(
            torch.tensor([[1.0, -1.0], [2.0, -3.0]]),
            "a unit is dead when no token (no row) gives it a positive "
            "pre-activation; unit 0 fires on both tokens, unit 1 on none",
        ),
        case(
            torch.tensor([[0.0, 2.0], [0.0, -1.0]]),
            "ReLU(0) = 0, and torch's slope of ReLU at 0 is 0: a unit "
            "stuck at exactly 0 is dead too (use <= 0, not < 0)",
        ),
        case(
            torch.tensor([[-1.0, 2.0, 0.0]]),
            "one token: dead wherever it is <= 0",
        ),
        case(
            torch.tensor([[-5.0, 1.0], [-5.0, -9.0], [-5.0, -9.0], [0.1, -9.0]]),
            "alive if a single token switches it on, however negative its "
            "mean: look at every token, not the average",
        ),
    ]
    pre = torch.full((2, 3, 4), -1.0)  # (B, T, d_mlp)
    pre[1, 2, 0] = 0.5
    pre[0, 0, 3] = 2.0
    cases.append(
        case(
            pre,
            "pre is (B, T, d_mlp): pool over every token of every sequence; "
            "the answer has shape (d_mlp,)",
            label="(2, 3, 4) of -1, with unit 0 positive at [1, 2] and unit 3 "
            "at [0, 0]",
        )
    )
    gen = torch.Generator().manual_seed(0)
    for shape in ((16, 8), (4, 6, 10), (2, 2, 3, 5), (1, 12)):
        shift = torch.randn(shape[-1], generator=gen) * 2 - 1.5
        pre = torch.randn(*shape, generator=gen) + shift  # some units dead
        cases.append(case(pre, "random pre-activations", label=str(shape)))
    cases.append(
        Case(
            (torch.tensor([1.0, -1.0]),),
            Raises(ValueError),
            "a single vector has no token dimension: raise ValueError",
            label="pre = tensor([1., -1.]) (1-D)",
        )
    )
    return cases


def check_dead_units(fn) -> CheckResult:
    """Check ``fn(pre) -> (d_mlp,) bool``: True for each unit whose
    pre-activation is <= 0 on every token of ``pre`` (..., d_mlp); ValueError
    for a 1-D input.
    """
    return run_check(
        "check_dead_units",
        fn,
        _dead_cases(),
        tensors_close,
        summary="hand-derived, exactly zero, one token, one positive token, "
        "(B, T, d_mlp), 4 random, 1-D refused",
        forbidden=("labkit",),
        references=(dead_units,),
    )


def _toy_parts():
    """Parts simple enough to follow by hand, each visibly different."""
    return (
        lambda h: h,  # norm_1: the identity
        lambda h: 2 * h,  # attn
        lambda h: 10 * h,  # norm_2
        lambda h: h**2,  # mlp
    )


_TOY_LABEL = "x = [[[1.]]], norm_1(h) = h, attn(h) = 2h, norm_2(h) = 10h, mlp(h) = h**2"


def _labkit_block_case(parallel: bool, seed: int, hint: str) -> Case:
    import dataclasses

    from labkit.model import Block, GPTConfig

    gen = torch.Generator().manual_seed(seed)
    cfg = GPTConfig(vocab_size=16, context_len=8, n_layers=1, n_heads=2, d_model=8)
    with torch.random.fork_rng():  # leave the caller's random state alone
        block = Block(dataclasses.replace(cfg, parallel=parallel)).eval()
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0, 0.5, generator=gen)
    x = torch.randn(2, 5, 8, generator=gen)
    positions = torch.arange(5)

    def attn(h):
        with torch.no_grad():
            return block.attn(h, positions=positions)[0]

    with torch.no_grad():
        expected = block(x, positions=positions)
    parts = (block.norm_1, attn, block.norm_2, block.mlp)
    kind = "parallel" if parallel else "serial"
    label = f"x (2, 5, 8), the parts of a random labkit {kind} Block"
    return Case((x, *parts, parallel), expected, hint, label=label)


def _block_cases() -> list[Case]:
    x = torch.ones(1, 1, 1)
    cases = [
        Case(
            (x, *_toy_parts(), False),
            torch.full((1, 1, 1), 903.0),
            "serial: h = x + attn(norm_1(x)) = 1 + 2 = 3, then "
            "h + mlp(norm_2(h)) = 3 + 30**2 = 903; the MLP reads the stream "
            "after attention's write, through norm_2",
            label=_TOY_LABEL + ", parallel=False",
        ),
        Case(
            (x, *_toy_parts(), True),
            torch.full((1, 1, 1), 4.0),
            "parallel: both read norm_1(x) = 1 and norm_2 is not used: "
            "x + attn(1) + mlp(1) = 1 + 2 + 1 = 4",
            label=_TOY_LABEL + ", parallel=True",
        ),
        Case(
            (torch.full((1, 1, 1), 2.0), *_toy_parts(), True),
            torch.full((1, 1, 1), 10.0),
            "keep the residual: the stream x itself is part of the output "
            "(2 + 4 + 4 = 10)",
            label="x = [[[2.]]], the same parts, parallel=True",
        ),
    ]
    for seed in range(3):
        cases.append(_labkit_block_case(False, seed, "a real serial pre-norm block"))
        cases.append(_labkit_block_case(True, seed, "a real parallel block"))
    return cases


def check_block(fn) -> CheckResult:
    """Check ``fn(x, norm_1, attn, norm_2, mlp, parallel)``: one pre-norm
    block. Serial: h = x + attn(norm_1(x)), then h + mlp(norm_2(h)).
    Parallel: x + attn(norm_1(x)) + mlp(norm_1(x)), norm_2 unused. Each part
    is a function (B, T, C) -> (B, T, C).
    """
    return run_check(
        "check_block",
        fn,
        _block_cases(),
        tensors_close,
        summary="hand-derived serial and parallel, the residual kept, "
        "3 random labkit Blocks of each kind",
        forbidden=("labkit",),
    )
