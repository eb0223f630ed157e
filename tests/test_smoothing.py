"""labkit.smoothing: each smoothing equals its formula written with dicts,
sums to 1 over the next symbol, and refuses bad knobs."""

import math
import random
from collections import Counter

import numpy as np
import pytest

from labkit.ngram import count_ngrams, lookup_context, lookup_text
from labkit.smoothing import (
    SMOOTHINGS,
    absolute_discounting,
    add_alpha,
    backoff,
    bits_by_order,
    cross_entropy_bits,
    interpolate,
    kneser_ney,
    next_probs,
)

V = 256


class DictModel:
    """The counts as dicts of byte strings, for formulas written out."""

    def __init__(self, text: bytes, n: int):
        self.n = n
        self.N = {k: Counter(text[i : i + k] for i in range(len(text) - k + 1))
                  for k in range(1, n + 2)}  # fmt: skip
        self.cont = {k: Counter(r[1:] for r in self.N[k + 1]) for k in range(1, n + 1)}

    def ctx(self, table: Counter, c: bytes) -> tuple[int, int]:
        rows = [v for r, v in table.items() if r[:-1] == c and v > 0]
        return sum(rows), len(rows)

    def add_alpha(self, x, c, alpha, k):
        total, _ = self.ctx(self.N[k], c)
        return (self.N[k][c + bytes([x])] + alpha) / (total + alpha * V)

    def backoff(self, x, context, alpha):
        for k in range(self.n, 0, -1):
            c = context[len(context) - k + 1 :] if k > 1 else b""
            if k == 1 or self.ctx(self.N[k], c)[0] > 0:
                return self.add_alpha(x, c, alpha, k)

    def interpolate(self, x, context, beta):
        p = 1 / V
        for k in range(1, self.n + 1):
            c = context[len(context) - k + 1 :] if k > 1 else b""
            p = (self.N[k][c + bytes([x])] + beta * p) / (
                self.ctx(self.N[k], c)[0] + beta
            )
        return p

    def kneser_ney(self, x, context, d, continuations=True):
        p = 1 / V
        for k in range(1, self.n + 1):
            c = context[len(context) - k + 1 :] if k > 1 else b""
            top = k == self.n or not continuations
            table = self.N[k] if top else self.cont[k]
            total, types = self.ctx(table, c)
            if total:
                p = (max(table[c + bytes([x])] - d, 0) + d * types * p) / total
        return p


def cases():
    rng = random.Random(1)
    for _ in range(12):
        alphabet = rng.choice([b"ab", b"abc", b"the cat"])
        text = bytes(rng.choice(alphabet) for _ in range(rng.randint(3, 50)))
        context = bytes(rng.choice(alphabet + b"z") for _ in range(2))
        yield text, context


@pytest.mark.parametrize(("text", "context"), list(cases()))
def test_every_smoothing_equals_its_dict_formula_and_sums_to_one(text, context):
    n = 3
    counts = count_ngrams(np.frombuffer(text, np.uint8), n)
    model = DictModel(text, n)
    looked = lookup_context(counts, np.frombuffer(context, np.uint8))
    got = {
        "add_alpha": add_alpha(looked, 0.1),
        "backoff": backoff(looked, 0.1),
        "interpolate": interpolate(looked, 2.0),
        "absolute_discounting": absolute_discounting(looked, 0.75),
        "kneser_ney": kneser_ney(looked, 0.75),
    }
    want = {
        "add_alpha": [model.add_alpha(x, context, 0.1, n) for x in range(V)],
        "backoff": [model.backoff(x, context, 0.1) for x in range(V)],
        "interpolate": [model.interpolate(x, context, 2.0) for x in range(V)],
        "absolute_discounting": [
            model.kneser_ney(x, context, 0.75, continuations=False) for x in range(V)
        ],
        "kneser_ney": [model.kneser_ney(x, context, 0.75) for x in range(V)],
    }
    for name in SMOOTHINGS:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-12, err_msg=name)
        assert math.isclose(got[name].sum(), 1.0, rel_tol=1e-12), name


def test_lower_orders_from_the_same_counts_equal_a_smaller_model():
    text = np.frombuffer(b"she sells sea shells by the sea shore", np.uint8)
    big = lookup_text(count_ngrams(text, 4), text)
    small = lookup_text(count_ngrams(text, 2), text)
    for fn, value in ((add_alpha, 0.1), (interpolate, 1.0), (backoff, 0.5)):
        np.testing.assert_allclose(fn(big, value, order=2), fn(small, value)[2:])
    # Kneser-Ney's top order counts occurrences, its lower ones continuations
    np.testing.assert_allclose(kneser_ney(big, 0.75, 2), kneser_ney(small, 0.75)[2:])


def test_hand_derived_add_alpha_and_interpolation():
    counts = count_ngrams(np.frombuffer(b"abab", np.uint8), 2)
    after_a = next_probs(counts, np.frombuffer(b"a", np.uint8), "add_alpha", 1.0)
    assert after_a[ord("b")] == pytest.approx(3 / 258)
    assert after_a[ord("a")] == pytest.approx(1 / 258)
    interp = next_probs(counts, np.frombuffer(b"a", np.uint8), "interpolate", 1.0)
    unigram_b = (2 + 1 / 256) / (4 + 1)
    assert interp[ord("b")] == pytest.approx((2 + unigram_b) / (2 + 1))


def test_backoff_uses_the_longest_seen_context():
    counts = count_ngrams(np.frombuffer(b"abcabd", np.uint8), 3)
    seen = next_probs(counts, np.frombuffer(b"ab", np.uint8), "backoff", 0.01)
    assert seen[ord("c")] == pytest.approx((1 + 0.01) / (2 + 2.56))
    unseen = next_probs(counts, np.frombuffer(b"zb", np.uint8), "backoff", 0.01)
    after_b = next_probs(counts, np.frombuffer(b"b", np.uint8), "add_alpha", 0.01, 2)
    np.testing.assert_allclose(unseen, after_b)


def test_kneser_ney_lower_order_counts_continuations():
    # "\n" is common but follows only ".": as a continuation it counts once
    text = np.frombuffer(b"a.\nb.\nc.\nd.\nab", np.uint8)
    counts = count_ngrams(text, 2)
    unseen = next_probs(counts, np.frombuffer(b"z", np.uint8), "kneser_ney", 0.75)
    after = {ch: unseen[ord(ch)] for ch in "\n.b"}
    assert after["\n"] < after["b"]  # "\n" after 1 byte, "b" after 2
    counted = next_probs(counts, np.frombuffer(b"", np.uint8), "add_alpha", 0.01, 1)
    assert counted[ord("\n")] > counted[ord("b")]  # by occurrences, the reverse
    plain = next_probs(
        counts, np.frombuffer(b"z", np.uint8), "absolute_discounting", 0.75
    )
    assert plain[ord("\n")] > plain[ord("b")]  # absolute discounting: occurrences


def test_absolute_discounting_hand_derived_and_equal_to_kneser_ney_at_order_1():
    # "abab": unigram counts a 2, b 2 (T = 2, N = 4); after "a": b 2 (T = 1)
    counts = count_ngrams(np.frombuffer(b"abab", np.uint8), 2)
    after_a = next_probs(
        counts, np.frombuffer(b"a", np.uint8), "absolute_discounting", 0.75
    )
    unigram_b = (2 - 0.75 + 0.75 * 2 / 256) / 4
    assert after_a[ord("b")] == pytest.approx((2 - 0.75 + 0.75 * unigram_b) / 2)
    assert after_a[ord("a")] == pytest.approx(0.75 * unigram_b / 2)
    text = np.frombuffer(b"she sells sea shells by the sea shore", np.uint8)
    looked = lookup_text(count_ngrams(text, 1), text)
    np.testing.assert_allclose(absolute_discounting(looked), kneser_ney(looked))
    looked = lookup_text(count_ngrams(text, 3), text)
    assert not np.allclose(absolute_discounting(looked), kneser_ney(looked))


def test_cross_entropy_bits():
    assert cross_entropy_bits([0.5, 0.25]) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="in \\(0, 1\\]"):
        cross_entropy_bits([0.5, 0.0])


def test_bad_knobs_and_names_are_refused():
    counts = count_ngrams(np.frombuffer(b"abab", np.uint8), 2)
    ctx = np.frombuffer(b"a", np.uint8)
    with pytest.raises(ValueError, match="unknown smoothing 'laplace'; choose one"):
        next_probs(counts, ctx, "laplace", 1.0)
    with pytest.raises(ValueError, match="alpha must be positive"):
        next_probs(counts, ctx, "add_alpha", 0.0)
    with pytest.raises(ValueError, match="beta must be positive"):
        next_probs(counts, ctx, "interpolate", -1.0)
    with pytest.raises(ValueError, match=r"discount must be in \(0, 1\]"):
        next_probs(counts, ctx, "kneser_ney", 1.5)
    with pytest.raises(ValueError, match=r"discount must be in \(0, 1\]"):
        next_probs(counts, ctx, "absolute_discounting", 0.0)
    with pytest.raises(ValueError, match=r"order must be in 1\.\.2"):
        add_alpha(lookup_context(counts, ctx), 0.1, order=3)


def test_bits_by_order_equals_each_order_scored_alone():
    text = np.frombuffer(b"she sells sea shells by the sea shore " * 3, np.uint8)
    looked = lookup_text(count_ngrams(text[:60], 5), text)
    functions = {
        "add_alpha": add_alpha,
        "backoff": backoff,
        "interpolate": interpolate,
        "absolute_discounting": absolute_discounting,
        "kneser_ney": kneser_ney,
    }
    for name, fn in functions.items():
        value = 0.5
        want = [cross_entropy_bits(fn(looked, value, k)) for k in range(1, 6)]
        assert bits_by_order(looked, name, value) == want, name
        assert bits_by_order(looked, name, value, [4, 2]) == [want[3], want[1]]
    with pytest.raises(ValueError, match=r"order must be in 1\.\.5"):
        bits_by_order(looked, "kneser_ney", 0.75, [6])
    with pytest.raises(ValueError, match="unknown smoothing 'laplace'"):
        bits_by_order(looked, "laplace", 0.75)
    with pytest.raises(ValueError, match="beta must be positive"):
        bits_by_order(looked, "interpolate", 0.0)
