"""Arithmetic coding: a model's probabilities turned into a code.

A model that gives the symbol that comes probability p can write it in about
-log2 p bits, so a text costs the model's total loss in bits, plus at most
two bits for the whole message. The coder keeps an interval [low, high] of
PRECISION-bit integers; each symbol narrows it to the symbol's share of the
model's frequencies, and every leading bit on which low and high agree is
written out (Witten, Neal and Cleary, 1987). The decoder runs the same model
on the symbols it has decoded so far, so it sees the same frequencies.

The model is a function ``freqs(history) -> (V,) positive integers`` of the
symbols before the next one; ``quantize`` turns probabilities into such
integers. Built in: notebooks/04_counting_models.ipynb.
Leaves out on purpose: adaptive models that learn while coding, range-coder
byte output, and any container format (the caller keeps the symbol count).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

PRECISION = 32  # bits of low and high
_FULL = 1 << PRECISION
_HALF = _FULL >> 1
_QUARTER = _FULL >> 2
MAX_TOTAL = _QUARTER  # frequencies may sum to at most this

Freqs = Callable[[list[int]], np.ndarray]


def quantize(probs, total_bits: int = 16) -> np.ndarray:
    """Integer frequencies >= 1 that sum to 2**total_bits, close to ``probs``.

    Shapes: probs (V,) -> (V,) int64.
    Example: quantize([0.5, 0.25, 0.25], 4) -> [8, 4, 4]
    """
    probs = np.asarray(probs, dtype=np.float64)
    total = 1 << total_bits
    if not 1 <= total_bits <= 30 or len(probs) > total // 2:
        raise ValueError(
            f"total_bits={total_bits} must be in 1..30 and leave at least two "
            f"counts per symbol for {len(probs)} symbols"
        )
    if (probs < 0).any() or not np.isclose(probs.sum(), 1.0):
        raise ValueError(f"probabilities must be >= 0 and sum to 1, got {probs.sum()}")
    freqs = np.floor(probs * (total - len(probs))).astype(np.int64) + 1
    freqs[np.argmax(freqs)] += total - freqs.sum()  # what rounding left over
    return freqs


def _interval(freqs: np.ndarray, symbol: int) -> tuple[int, int, int]:
    """The symbol's slice [start, end) of the cumulative counts, and their total."""
    freqs = np.asarray(freqs, dtype=np.int64)
    total = int(freqs.sum())
    if total > MAX_TOTAL or (freqs < 0).any():
        raise ValueError(f"frequencies must be >= 0 and sum to at most {MAX_TOTAL}")
    if not 0 <= symbol < len(freqs) or freqs[symbol] == 0:
        raise ValueError(f"symbol {symbol} has no frequency: it cannot be coded")
    end = int(freqs[: symbol + 1].sum())
    return end - int(freqs[symbol]), end, total


def _narrow(low: int, high: int, start: int, end: int, total: int):
    span = high - low + 1
    return low + span * start // total, low + span * end // total - 1


def _emit(bits: list[int], bit: int, pending: int) -> None:
    bits.append(bit)
    bits.extend([1 - bit] * pending)


def encode(symbols: Sequence[int], freqs: Freqs) -> bytes:
    """The code of ``symbols`` under the model ``freqs`` (zero bits pad the end).

    Its length is within 2 bits (plus the padding to a whole byte) of
    sum(-log2(freqs[x] / total)) over the symbols.
    """
    low, high, pending = 0, _FULL - 1, 0
    bits: list[int] = []
    history: list[int] = []
    for symbol in symbols:
        low, high = _narrow(low, high, *_interval(freqs(history), int(symbol)))
        while True:
            if high < _HALF:  # both in the lower half: the next bit is 0
                _emit(bits, 0, pending)
                pending = 0
            elif low >= _HALF:  # both in the upper half: 1
                _emit(bits, 1, pending)
                pending, low, high = 0, low - _HALF, high - _HALF
            elif low >= _QUARTER and high < 3 * _QUARTER:  # straddling the middle
                pending, low, high = pending + 1, low - _QUARTER, high - _QUARTER
            else:
                break
            low, high = 2 * low, 2 * high + 1
        history.append(int(symbol))
    _emit(bits, 0 if low < _QUARTER else 1, pending + 1)  # a point inside
    return np.packbits(np.array(bits, dtype=np.uint8)).tobytes()


def decode(code: bytes, n_symbols: int, freqs: Freqs) -> list[int]:
    """The ``n_symbols`` symbols that ``encode`` wrote into ``code``."""
    bits = np.unpackbits(np.frombuffer(code, dtype=np.uint8)).tolist()
    bits += [0] * max(0, PRECISION - len(bits))
    value = int("".join(map(str, bits[:PRECISION])), 2)
    position, low, high = PRECISION, 0, _FULL - 1
    history: list[int] = []
    for _ in range(n_symbols):
        counts = np.asarray(freqs(history), dtype=np.int64)
        total = int(counts.sum())
        target = ((value - low + 1) * total - 1) // (high - low + 1)
        symbol = int(np.searchsorted(np.cumsum(counts), target, side="right"))
        low, high = _narrow(low, high, *_interval(counts, symbol))
        while True:
            if high < _HALF:
                pass
            elif low >= _HALF:
                low, high, value = low - _HALF, high - _HALF, value - _HALF
            elif low >= _QUARTER and high < 3 * _QUARTER:
                low, high, value = low - _QUARTER, high - _QUARTER, value - _QUARTER
            else:
                break
            bit = bits[position] if position < len(bits) else 0
            low, high, value = 2 * low, 2 * high + 1, 2 * value + bit
            position += 1
        history.append(symbol)
    return history


def code_length_bits(symbols: Sequence[int], freqs: Freqs) -> float:
    """sum(-log2(freqs[x] / total)): what an ideal coder of this model writes."""
    history: list[int] = []
    bits = 0.0
    for symbol in symbols:
        counts = np.asarray(freqs(history), dtype=np.float64)
        bits -= float(np.log2(counts[int(symbol)] / counts.sum()))
        history.append(int(symbol))
    return bits
