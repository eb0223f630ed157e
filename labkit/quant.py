"""Quantization: store a weight matrix in 8 or 4 bits and read it back.

Every scheme here is *absmax* quantization: split the weight into groups,
divide each group by its largest absolute value (its scale, kept in float32)
so it lies in [-1, 1], and replace each number by the nearest of a few
levels, stored as a small integer code. Dequantizing multiplies the level
back by the scale. What differs is the grouping and the levels:

- ``int8-tensor``: one scale for the whole matrix, levels k / 127 for k in
  -127..127 (Dettmers et al., 2022, "LLM.int8()", absmax quantization);
- ``int8-channel``: one scale per output channel (row of the (out, in)
  weight), so one large row no longer coarsens every other row;
- ``int4``: groups of ``group_size`` numbers along a row, levels k / 7 for k
  in -7..7, stored as k + 8, a 4-bit code;
- ``nf4``: the same groups, but the 16 levels are quantiles of a normal
  distribution (NormalFloat4; Dettmers et al., 2023, "QLoRA", section 3 and
  Appendix E): trained weights are close to normal, and levels that are
  dense near 0 where most weights are make the error smaller on average.

Two 4-bit codes share one byte (``pack_int4``). A group's scale costs 32 bits,
0.5 extra bits per weight at a group of 64; *double quantization* (QLoRA)
stores the scales themselves in 8 bits, with one float32 scale per block of
256 scales and their mean subtracted first: 8/64 + 32/(64 * 256), about
0.127 bits per weight. QLoRA stores those second-level codes as 8-bit floats;
here they are absmax int8, the scheme above, so the whole module has one idea.

Rounding error: a number quantized to the nearest level is off by at most
half the gap to its neighbour, times the scale: half a step (scale / 127 or
scale / 7) for int8 and int4, half the widest NF4 gap for NF4.
Built in: notebooks/19_quantization_and_qlora.ipynb.
Left out on purpose: zero points (asymmetric ranges), outlier columns kept in
16 bits (LLM.int8()'s mixed decomposition), GPTQ/AWQ-style error correction,
quantized activations and fused low-bit matmul kernels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SCHEMES = ("int8-tensor", "int8-channel", "int4", "nf4")
BITS = {"int8-tensor": 8, "int8-channel": 8, "int4": 4, "nf4": 4}
DQ_BLOCK = 256  # scales per float32 scale in double quantization (QLoRA's)

# The NF4 levels as printed in the QLoRA paper, Appendix E.
NF4_TABLE = (
    -1.0,
    -0.6961928009986877,
    -0.5250730514526367,
    -0.39491748809814453,
    -0.28444138169288635,
    -0.18477343022823334,
    -0.09105003625154495,
    0.0,
    0.07958029955625534,
    0.16093020141124725,
    0.24611230194568634,
    0.33791524171829224,
    0.44070982933044434,
    0.5626170039176941,
    0.7229568362236023,
    1.0,
)


def nf4_levels() -> torch.Tensor:
    """The 16 NF4 levels, built from normal quantiles (QLoRA, section 3).

    An exact 0 is wanted (padding and zero weights stay exact), so the two
    halves are built apart: 8 quantiles of N(0, 1) for the positive side and
    7 for the negative side, at probabilities evenly spaced from 1/2 up to
    1 - delta, delta = (1/32 + 1/30) / 2 (the infinite tails are cut off),
    0 itself dropped from each half and added once, all divided by the
    largest so the levels span [-1, 1].
    Shapes: returns (16,) float32, ascending.
    """
    delta = (1 / 32 + 1 / 30) / 2
    pos_p = torch.linspace(1 - delta, 0.5, 9, dtype=torch.float64)[:-1]  # 8
    neg_p = torch.linspace(1 - delta, 0.5, 8, dtype=torch.float64)[:-1]  # 7
    pos = torch.special.ndtri(pos_p)
    neg = -torch.special.ndtri(neg_p)
    levels = torch.cat([pos, torch.zeros(1, dtype=torch.float64), neg])
    levels = levels / pos.max()  # both halves end at the same quantile: +-1
    return levels.sort().values.float()


def _groups(w: torch.Tensor, group_size: int) -> torch.Tensor:
    """View a (R, N) weight as (R, N / group_size, group_size) groups.

    Raises ValueError naming the row length when group_size does not divide it.
    """
    if w.dim() != 2:
        raise ValueError(f"expected a 2-d weight (out, in), got shape {tuple(w.shape)}")
    R, N = w.shape
    if not isinstance(group_size, int) or group_size < 1 or N % group_size:
        raise ValueError(
            f"group_size={group_size!r} does not divide the row length {N}: "
            f"each row of the (out={R}, in={N}) weight must split into whole "
            f"groups (choose a divisor of {N}, e.g. {math.gcd(N, 64)})"
        )
    return w.reshape(R, N // group_size, group_size)  # (R, G, g)


def _absmax(groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, divisor) of each group: its largest |value|, and the same with
    0 replaced by 1 so an all-zero group divides by 1 (and stays 0)."""
    scale = groups.abs().amax(-1, keepdim=True).float()  # (..., 1)
    return scale, torch.where(scale > 0, scale, torch.ones_like(scale))


def absmax_int8(w: torch.Tensor, per: str = "channel") -> tuple[torch.Tensor, ...]:
    """(codes, step) with w ~= codes * step: codes int8 in -127..127, step =
    absmax / 127 for the whole tensor (per="tensor") or each row ("channel").

    Shapes: w (R, N) -> codes (R, N) int8, step (1, 1) or (R, 1) float32
    """
    if per not in ("tensor", "channel"):
        raise ValueError(f"per={per!r}; choose 'tensor' or 'channel'")
    groups = w.reshape(1, -1) if per == "tensor" else w  # rows are the groups
    absmax, divisor = _absmax(groups)
    codes = torch.round(groups.float() / divisor * 127).clamp(-127, 127)
    return codes.to(torch.int8).reshape(w.shape), absmax / 127


def dequantize_int8(codes: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """codes * step. Shapes: codes (R, N), step (1, 1) or (R, 1) -> (R, N)"""
    return codes.float() * step


def int4_groups(w: torch.Tensor, group_size: int) -> tuple[torch.Tensor, ...]:
    """(codes, step): symmetric 4-bit absmax per group of ``group_size``.

    Levels k * step, k in -7..7, step = absmax / 7; the code is k + 8 (1..15,
    a 4-bit unsigned number; 0 is unused, so the levels stay symmetric).
    Shapes: w (R, N) -> codes (R, N) uint8, step (R, N / group_size) float32
    """
    groups = _groups(w, group_size)  # (R, G, g)
    absmax, divisor = _absmax(groups)
    k = torch.round(groups.float() / divisor * 7).clamp(-7, 7)
    codes = (k + 8).to(torch.uint8).reshape(w.shape)
    return codes, (absmax / 7)[..., 0]


def dequantize_int4(codes: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """(code - 8) * step, groups as in int4_groups.
    Shapes: codes (R, N), step (R, G) -> (R, N)"""
    R, G = step.shape
    k = codes.reshape(R, G, -1).float() - 8  # (R, G, g)
    return (k * step[..., None]).reshape(codes.shape)


def nf4_groups(w: torch.Tensor, group_size: int) -> tuple[torch.Tensor, ...]:
    """(codes, absmax): each number / its group's absmax, rounded to the
    nearest NF4 level; the code is that level's index 0..15.

    Nearest level = how many midpoints between neighbouring levels lie below
    the number (``torch.bucketize``): one comparison per midpoint, no search.
    Shapes: w (R, N) -> codes (R, N) uint8, absmax (R, N / group_size)
    """
    groups = _groups(w, group_size)  # (R, G, g)
    absmax, divisor = _absmax(groups)
    levels = nf4_levels()
    midpoints = (levels[1:] + levels[:-1]) / 2  # (15,)
    codes = torch.bucketize(groups.float() / divisor, midpoints)
    return codes.to(torch.uint8).reshape(w.shape), absmax[..., 0]


def dequantize_nf4(codes: torch.Tensor, absmax: torch.Tensor) -> torch.Tensor:
    """levels[code] * absmax. Shapes: codes (R, N), absmax (R, G) -> (R, N)"""
    R, G = absmax.shape
    values = nf4_levels()[codes.long()].reshape(R, G, -1)  # (R, G, g)
    return (values * absmax[..., None]).reshape(codes.shape)


def pack_int4(codes: torch.Tensor) -> torch.Tensor:
    """Two 4-bit codes per byte: element 2i in the low nibble, 2i + 1 in the
    high nibble. Raises ValueError for codes outside 0..15 or an odd count.
    Shapes: (..., N) uint8 -> (..., N / 2) uint8
    """
    if codes.shape[-1] % 2:
        raise ValueError(f"pack_int4 needs an even last dimension, got {codes.shape}")
    if codes.numel() and int(codes.max()) > 15:
        raise ValueError(f"codes must be 0..15 to fit 4 bits; max is {codes.max()}")
    low, high = codes[..., 0::2], codes[..., 1::2]
    return (low | (high << 4)).to(torch.uint8)


def unpack_int4(packed: torch.Tensor) -> torch.Tensor:
    """Undo pack_int4. Shapes: (..., M) uint8 -> (..., 2 M) uint8"""
    low, high = packed & 0x0F, packed >> 4
    return torch.stack([low, high], -1).flatten(-2)


def double_quantize(scales: torch.Tensor, block: int = DQ_BLOCK):
    """Store float32 scales in 8 bits: subtract their mean, then absmax int8
    per block of ``block`` scales (the last block may be shorter).
    Returns (codes int8, block steps float32, mean float32 scalar).
    Shapes: scales (R, G) -> codes (R, G), steps (ceil(R G / block),), mean ()
    """
    flat = scales.flatten().float()
    mean = flat.mean()
    n_blocks = -(-flat.numel() // block)
    padded = torch.zeros(n_blocks * block)
    padded[: flat.numel()] = flat - mean
    codes, steps = absmax_int8(padded.reshape(n_blocks, block), per="channel")
    return codes.flatten()[: flat.numel()].reshape(scales.shape), steps[:, 0], mean


def dequantize_scales(
    codes: torch.Tensor, steps: torch.Tensor, mean: torch.Tensor, block: int = DQ_BLOCK
) -> torch.Tensor:
    """Undo double_quantize. Shapes: codes (R, G), steps (n_blocks,) -> (R, G)"""
    padded = torch.zeros(steps.numel() * block)
    padded[: codes.numel()] = codes.flatten().float()
    values = padded.reshape(steps.numel(), block) * steps[:, None] + mean
    return values.flatten()[: codes.numel()].reshape(codes.shape)


@dataclass(frozen=True)
class QuantizedWeight:
    """A quantized (out, in) weight: its codes and the scales to read them.

    4-bit codes are packed two per byte; ``scales`` is None when the scales
    are double-quantized (then ``scale_codes``, ``scale_steps``, ``scale_mean``
    hold them). ``tensors()`` is what is stored, so ``nbytes`` counts it.
    """

    scheme: str
    shape: tuple[int, int]
    group_size: int  # weights per scale (the whole tensor or row for int8)
    codes: torch.Tensor
    scales: torch.Tensor | None = None
    scale_codes: torch.Tensor | None = None
    scale_steps: torch.Tensor | None = None
    scale_mean: torch.Tensor | None = None

    def tensors(self) -> dict[str, torch.Tensor]:
        names = ("codes", "scales", "scale_codes", "scale_steps", "scale_mean")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    @property
    def nbytes(self) -> int:
        """Bytes of every stored tensor, counted from the tensors."""
        return sum(t.numel() * t.element_size() for t in self.tensors().values())

    @property
    def bits_per_weight(self) -> float:
        return 8 * self.nbytes / (self.shape[0] * self.shape[1])


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme={scheme!r}; choose one of {SCHEMES}")


def quantize_weight(
    w: torch.Tensor, scheme: str, group_size: int = 64, double_quant: bool = False
) -> QuantizedWeight:
    """Quantize an (out, in) weight with one of SCHEMES (group_size is used by
    int4 and nf4 only), optionally double-quantizing the scales.
    Shapes: w (R, N) -> codes (R, N) int8 or (R, N / 2) packed uint8
    """
    _check_scheme(scheme)
    w = w.detach()
    if scheme.startswith("int8"):
        per = scheme.split("-")[1]
        codes, scales = absmax_int8(w, per)
        group_size = w.numel() if per == "tensor" else w.shape[1]
    else:
        quant = int4_groups if scheme == "int4" else nf4_groups
        codes, scales = quant(w, group_size)
        codes = pack_int4(codes)
    shape = (int(w.shape[0]), int(w.shape[1]))
    if not double_quant:
        return QuantizedWeight(scheme, shape, group_size, codes, scales)
    sc, steps, mean = double_quantize(scales)
    return QuantizedWeight(scheme, shape, group_size, codes, None, sc, steps, mean)


def weight_scales(q: QuantizedWeight) -> torch.Tensor:
    """The float32 scales of ``q`` (read back from 8 bits if double-quantized)."""
    if q.scales is not None:
        return q.scales
    return dequantize_scales(q.scale_codes, q.scale_steps, q.scale_mean)


def dequantize_weight(q: QuantizedWeight) -> torch.Tensor:
    """The float32 (out, in) weight that ``q`` stands for."""
    scales = weight_scales(q)
    if q.scheme.startswith("int8"):
        return dequantize_int8(q.codes, scales)
    codes = unpack_int4(q.codes)
    if q.scheme == "int4":
        return dequantize_int4(codes, scales)
    return dequantize_nf4(codes, scales)
