"""Unigram: Metaspace pre-tokens, Viterbi, the E-step against brute force, and
training, against HF tokenizers where it has them and cases worked by hand."""

import inspect
import itertools
import math
import random
import textwrap
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.tokenizer.unigram import (
    UNK,
    Unigram,
    expected_counts,
    m_step,
    metaspace_words,
    prune,
    seed_pieces,
    train_unigram,
    viterbi,
)

SOURCE = inspect.getsource(textwrap)  # varied text, on every machine
tokenizers = pytest.importorskip("tokenizers")


@pytest.mark.needs_hf
@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab c\n\t.▁é", max_size=30))
def test_metaspace_words_match_hf_metaspace(text):
    pre = tokenizers.pre_tokenizers.Metaspace()
    assert metaspace_words(text) == [w for w, _ in pre.pre_tokenize_str(text)]


def test_metaspace_words_by_hand():
    assert metaspace_words("def f():\n  x") == ["▁def", "▁f():\n", "▁", "▁x"]
    assert metaspace_words(" a") == ["▁a"]  # no second "▁" in front


def segmentations(word: str, pieces) -> list[list[str]]:
    """Every way to cut ``word`` into ``pieces`` (brute force)."""
    found = []
    for cuts in itertools.product([False, True], repeat=len(word) - 1):
        parts, start = [], 0
        for k, cut in enumerate(cuts, start=1):
            if cut:
                parts.append(word[start:k])
                start = k
        parts.append(word[start:])
        if all(p in pieces for p in parts):
            found.append(parts)
    return found


def random_model(rng: random.Random, alphabet: str = "abc") -> dict[str, float]:
    log_probs = {ch: rng.uniform(-6, -2) for ch in alphabet}
    for _ in range(8):
        piece = "".join(rng.choice(alphabet) for _ in range(rng.randint(2, 4)))
        log_probs[piece] = rng.uniform(-8, -1)
    return log_probs


def test_viterbi_is_the_best_of_every_segmentation():
    rng = random.Random(0)
    for _ in range(200):
        log_probs = random_model(rng)
        word = "".join(rng.choice("abc") for _ in range(rng.randint(1, 8)))
        best = max(sum(log_probs[p] for p in s) for s in segmentations(word, log_probs))
        found = viterbi(word, log_probs)
        assert "".join(found) == word and all(p in log_probs for p in found)
        assert sum(log_probs[p] for p in found) == pytest.approx(best)


def test_viterbi_by_hand_and_its_errors():
    lp = {"▁a": -1.0, "bc": -1.0, "▁ab": -3.0, "c": -3.0}
    assert viterbi("▁abc", lp) == ["▁a", "bc"]  # greedy would take "▁ab"
    assert viterbi("▁abc", lp, skip="bc") == ["▁ab", "c"]
    assert viterbi("", lp) == []
    with pytest.raises(ValueError, match="no piece starts at 'bc'"):
        viterbi("▁abc", {"▁a": -1.0, "c": -1.0})


def test_expected_counts_equal_brute_force():
    rng = random.Random(1)
    for _ in range(50):
        log_probs = random_model(rng)
        words = Counter(
            {"".join(rng.choice("abc") for _ in range(rng.randint(1, 7))): 3}
        )
        expected, loglik = expected_counts(words, log_probs)
        want, total = Counter(), 0.0
        for word, count in words.items():
            segs = segmentations(word, log_probs)
            weights = [math.exp(sum(log_probs[p] for p in s)) for s in segs]
            z = sum(weights)
            total += count * math.log(z)
            for seg, w in zip(segs, weights, strict=True):
                for piece in seg:
                    want[piece] += count * w / z
        assert loglik == pytest.approx(total)
        assert set(want) <= set(expected)
        for piece, value in expected.items():
            assert value == pytest.approx(want[piece], abs=1e-12)


def test_m_step_normalises_and_drops_rare_pieces_but_not_characters():
    out = m_step(Counter({"a": 0.1, "b": 3.0, "ab": 0.4, "abc": 6.0}))
    assert set(out) == {"a", "b", "abc"}
    assert sum(math.exp(v) for v in out.values()) == pytest.approx(1.0)


def test_seed_counts_occurrences_or_distinct_pre_tokens():
    words = Counter({"▁She": 50, "▁he": 2, "▁here": 1})
    by_use = seed_pieces(words, max_len=4)
    by_word = seed_pieces(words, max_len=4, seed_count="distinct")
    assert "▁She" in by_use  # 50 times in the text
    assert "▁She" not in by_word and "▁he" in by_word  # once per distinct word
    assert {"▁", "S", "h", "e", "r"} <= set(by_word)  # every character
    assert sum(math.exp(v) for v in by_use.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="seed_count='all' is not one of"):
        seed_pieces(words, seed_count="all")


def test_prune_keeps_characters_and_the_costliest_pieces():
    words = Counter({"▁the": 10, "▁then": 4, "▁cat": 1})
    log_probs = m_step(expected_counts(words, seed_pieces(words))[0])
    chars = {ch for w in words for ch in w}
    used = {p for w in words for p in viterbi(w, log_probs)}
    kept = prune(words, log_probs, keep=40)
    assert set(kept) == chars | used  # unused pieces go, whatever keep is
    assert prune(words, log_probs, keep=len(chars) + 1).keys() == chars | {"▁the"}


def test_training_on_real_text():
    model = train_unigram(SOURCE, 300)
    assert model.vocab_size <= 300 and model.vocab[0] == UNK
    assert set(SOURCE) - {" "} <= set(model.vocab) | {"▁"}
    assert model.decode(model.encode(SOURCE)) == SOURCE
    assert len(model.encode(SOURCE)) < len(SOURCE) / 1.5


@pytest.mark.needs_hf
def test_viterbi_matches_hf_unigram_model_with_the_same_scores():
    model = train_unigram(SOURCE, 300)
    pieces = [(UNK, 0.0)] + [(p, model.log_probs[p]) for p in model.vocab[1:]]
    hf = tokenizers.Tokenizer(tokenizers.models.Unigram(pieces, unk_id=0))
    hf.pre_tokenizer = tokenizers.pre_tokenizers.Metaspace()
    text = SOURCE[:4000]
    assert model.pieces(text) == hf.encode(text).tokens


@pytest.mark.needs_hf
def test_distinct_seed_counts_come_close_to_hf_unigram_trainer():
    hf = tokenizers.Tokenizer(tokenizers.models.Unigram())
    hf.pre_tokenizer = tokenizers.pre_tokenizers.Metaspace()
    trainer = tokenizers.trainers.UnigramTrainer(
        vocab_size=300, special_tokens=[UNK], unk_token=UNK, show_progress=False
    )
    hf.train_from_iterator([SOURCE], trainer=trainer)
    ours = train_unigram(SOURCE, 300, seed_count="distinct")
    shared = set(ours.vocab) & set(hf.get_vocab())
    assert len(shared) >= 0.7 * 300


def test_unknown_characters_become_one_unk_per_run():
    model = Unigram({"▁": -1.0, "a": -1.0, "b": -1.0})
    assert model.pieces("a 東京b") == ["▁", "a", "▁", UNK, "b"]
    assert model.decode(model.encode("ab a")) == "ab a"
    assert repr(model) == "Unigram(vocab_size=4)"


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="vocab_size=10 leaves no room"):
        train_unigram(SOURCE, 10)
    with pytest.raises(ValueError, match="shrink=1.5 must be between 0 and 1"):
        train_unigram(SOURCE, 300, shrink=1.5)
    with pytest.raises(ValueError, match="leave it out of log_probs"):
        Unigram({UNK: -1.0, "a": -1.0})
