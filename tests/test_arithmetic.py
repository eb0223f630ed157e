"""labkit.arithmetic: decoding gives back what was encoded, in about
-log2 p bits; frequencies are checked."""

import math
import random

import numpy as np
import pytest

from labkit.arithmetic import code_length_bits, decode, encode, quantize


def fixed(freqs):
    freqs = np.asarray(freqs, dtype=np.int64)
    return lambda history: freqs


def order1(table: np.ndarray):
    """A model whose frequencies depend on the previous symbol."""
    return lambda history: table[history[-1] if history else 0]


@pytest.mark.parametrize("seed", range(8))
def test_round_trip_and_length_near_the_ideal(seed):
    rng = np.random.default_rng(seed)
    V = int(rng.integers(2, 40))
    table = np.stack([quantize(rng.dirichlet(np.full(V, 0.3)), 16) for _ in range(V)])
    model = order1(table)
    symbols = [0]
    for _ in range(int(rng.integers(1, 3000))):  # a text drawn from the model
        row = table[symbols[-1]]
        symbols.append(int(rng.choice(V, p=row / row.sum())))
    code = encode(symbols, model)
    assert decode(code, len(symbols), model) == symbols
    ideal = code_length_bits(symbols, model)
    assert ideal - 1 <= 8 * len(code) <= ideal + 2 + 7  # 7: padding to a byte


def test_hand_derived_lengths():
    half = fixed([1, 1])  # one bit per symbol
    code = encode([0, 1, 1, 0, 1, 0, 0, 1], half)
    assert code_length_bits([0, 1, 1, 0, 1, 0, 0, 1], half) == 8
    assert len(code) in (1, 2)  # 8 bits, plus at most 2 to end
    assert decode(code, 8, half) == [0, 1, 1, 0, 1, 0, 0, 1]
    sure = fixed([1, 2**20 - 1])  # the second symbol costs almost nothing
    code = encode([1] * 10_000, sure)
    assert len(code) <= 2 and decode(code, 10_000, sure) == [1] * 10_000


def test_empty_message_and_a_long_run_of_one_symbol():
    model = fixed([3, 1, 1])
    assert decode(encode([], model), 0, model) == []
    rare = [1] * 200  # each costs log2(5) bits: pending bits pile up and resolve
    code = encode(rare, model)
    assert decode(code, 200, model) == rare
    assert 8 * len(code) <= 200 * math.log2(5) + 2 + 7


def test_quantize_keeps_every_symbol_codable():
    freqs = quantize([0.5, 0.25, 0.25], 4)
    assert freqs.tolist() == [8, 4, 4]
    probs = np.array([1 - 1e-12] + [1e-12 / 255] * 255)
    freqs = quantize(probs, 16)
    assert freqs.sum() == 2**16 and freqs.min() >= 1
    random.seed(0)
    for _ in range(20):
        p = np.random.default_rng(random.randrange(99)).dirichlet(np.ones(256))
        f = quantize(p, 24)
        assert f.sum() == 2**24 and (f >= 1).all()
        assert np.abs(f / 2**24 - p).max() < 1e-5


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="symbol 1 has no frequency"):
        encode([0, 1], fixed([5, 0, 3]))
    with pytest.raises(ValueError, match="sum to at most"):
        encode([0], fixed([2**31, 1]))
    with pytest.raises(ValueError, match="sum to 1"):
        quantize([0.5, 0.4])
    with pytest.raises(ValueError, match="total_bits=40"):
        quantize([0.5, 0.5], 40)
