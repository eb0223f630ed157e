"""labkit.ngram: hashed counts equal counts made by sliding over the text."""

import random
from collections import Counter

import numpy as np
import pytest

from labkit.ngram import count_ngrams, lookup_context, lookup_text, run_keys


def as_array(text: bytes) -> np.ndarray:
    return np.frombuffer(text, dtype=np.uint8)


def brute(text: bytes, k: int) -> dict:
    """Per k-run: count and continuation; per context: N, T, cont sum, cont T."""
    runs = Counter(text[i : i + k] for i in range(len(text) - k + 1))
    before = {r: {text[i - 1] for i in range(1, len(text) - k + 1)
                  if text[i : i + k] == r} for r in runs}  # fmt: skip
    cont = {r: len(b) for r, b in before.items()}
    ctx: dict[bytes, list[int]] = {}
    for r, c in runs.items():
        row = ctx.setdefault(r[:-1], [0, 0, 0, 0])
        row[0] += c
        row[1] += 1
        row[2] += cont[r]
        row[3] += cont[r] > 0
    return {"runs": runs, "cont": cont, "ctx": ctx}


def texts():
    rng = random.Random(0)
    yield b"abab"
    yield b"aaaaa"
    yield b"abracadabra"
    for _ in range(20):
        alphabet = rng.choice([b"ab", b"abc", b"xyz. "])
        yield bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 60)))


@pytest.mark.parametrize("text", list(texts()))
def test_counts_equal_brute_force_counts(text):
    n = 4
    counts = count_ngrams(as_array(text), n)
    assert counts.total == len(text)
    for k in range(1, n + 1):
        o, want = counts.order(k), brute(text, k)
        runs = sorted(want["runs"])
        keys = [run_keys(as_array(r), k)[0] for r in runs]
        assert list(o.run_keys) == sorted(keys)
        by_key = dict(zip(keys, runs, strict=True))
        for i, key in enumerate(o.run_keys):
            run = by_key[key]
            assert o.run_count[i] == want["runs"][run]
            assert o.run_cont[i] == want["cont"][run]
        ctx_keys = {run_keys(as_array(c), k - 1)[0]: c for c in want["ctx"]}
        assert sorted(ctx_keys) == list(o.ctx_keys)
        for i, key in enumerate(o.ctx_keys):
            row = [o.ctx_count[i], o.ctx_types[i], o.ctx_cont[i], o.ctx_cont_types[i]]
            assert row == want["ctx"][ctx_keys[key]]


def test_hand_counted_abab():
    o = count_ngrams(as_array(b"abab"), 2).order(2)
    assert sorted(o.run_count.tolist()) == [1, 2]  # "ba" once, "ab" twice
    ab = int(np.flatnonzero(o.run_keys == run_keys(as_array(b"ab"), 2)[0])[0])
    assert o.run_count[ab] == 2 and o.run_cont[ab] == 1  # only "b" came before
    unigram = count_ngrams(as_array(b"abab"), 1).order(1)
    assert unigram.ctx_count.tolist() == [4] and unigram.ctx_types.tolist() == [2]


def test_run_keys_grow_one_symbol_at_a_time():
    data = as_array(b"hello world")
    keys3, keys2 = run_keys(data, 3), run_keys(data, 2)
    expected = keys2[:-1] * np.uint64(1_000_003) + data[2:].astype(np.uint64) + 1
    assert np.array_equal(keys3, expected)
    assert np.array_equal(run_keys(data, 0), np.zeros(12, np.uint64))
    assert len(run_keys(data, 20)) == 0
    assert len(np.unique(run_keys(data, 1))) == len(set(b"hello world"))


def test_lookup_text_finds_each_predictions_counts():
    train = b"the cat sat on the mat"
    counts = count_ngrams(as_array(train), 3)
    text = b"the rat sat"
    looked = lookup_text(counts, as_array(text))
    assert looked.n == 3 and len(looked.run_count[0]) == len(text) - 2
    for q, t in enumerate(range(2, len(text))):
        for k in (1, 2, 3):
            run, ctx = text[t - k + 1 : t + 1], text[t - k + 1 : t]
            follow = [train[i : i + k] for i in range(len(train) - k + 1)]
            assert looked.run_count[k - 1][q] == follow.count(run)
            assert looked.ctx_count[k - 1][q] == sum(r[:-1] == ctx for r in follow)


def test_lookup_context_gives_every_candidate():
    train = b"abcabd"
    counts = count_ngrams(as_array(train), 3)
    looked = lookup_context(counts, as_array(b"zab"))  # uses the last 2 bytes
    assert looked.run_count[2][ord("c")] == 1 and looked.run_count[2][ord("d")] == 1
    assert looked.run_count[2].sum() == 2 and (looked.ctx_count[2] == 2).all()
    shorter = lookup_context(counts, as_array(b"b"), order=2)
    assert shorter.n == 2 and shorter.run_count[1][ord("c")] == 1


def test_tokens_above_255_are_counted():
    tokens = np.array([300, 5, 300, 5, 7])
    o = count_ngrams(tokens, 2, vocab_size=301).order(2)
    assert sorted(o.run_count.tolist()) == [1, 1, 2]


def test_bad_input_is_refused_with_the_problem_named():
    with pytest.raises(ValueError, match="at least 1"):
        count_ngrams(as_array(b"ab"), 0)
    with pytest.raises(ValueError, match=r"0\.\.255, found 0\.\.300"):
        count_ngrams(np.array([0, 300]), 2)
    with pytest.raises(ValueError, match="1-D"):
        count_ngrams(np.zeros((2, 2), dtype=int), 2)
    counts = count_ngrams(as_array(b"abc"), 3)
    with pytest.raises(ValueError, match="needs 2 symbols of context, got 1"):
        lookup_context(counts, as_array(b"a"))
    with pytest.raises(ValueError, match="none to predict"):
        lookup_text(counts, as_array(b"ab"))
    with pytest.raises(ValueError, match=r"order must be in 1\.\.3"):
        lookup_context(counts, as_array(b"ab"), order=4)


def test_a_text_shorter_than_the_order_has_empty_counts():
    counts = count_ngrams(as_array(b"ab"), 4)
    assert len(counts.order(3).run_keys) == 0 and len(counts.order(4).ctx_keys) == 0
    looked = lookup_context(counts, as_array(b"abc"))
    assert (looked.run_count[3] == 0).all() and (looked.ctx_count[3] == 0).all()
