"""train_bpe_fast gives exactly train_bpe's merges; it streams a file."""

import random
import warnings
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.tokenizer.bpe import train_bpe
from labkit.tokenizer.fast import _PairIndex, count_pretokens, train_bpe_fast
from labkit.tokenizer.merging import Symbols
from labkit.tokenizer.pretokenize import pretokenize, safe_chunks

SAMPLE = (
    "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox "
    "doesn't.\n\nNumbers: 1234567, 3.14159! Ünïcödé and 日本語のテキスト 🙂🙂.\n"
    "    indented code = f(x, y)  # comment\n\tdef g(): return None\n"
) * 3


def _both(text, vocab_size, specials=(), pattern="gpt2"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return (
            train_bpe(text, vocab_size, specials, pattern),
            train_bpe_fast(text, vocab_size, specials, pattern),
        )


@pytest.mark.parametrize("vocab_size", [256, 260, 300, 400])
@pytest.mark.parametrize("pattern", ["gpt2", "gpt4"])
def test_train_bpe_fast_gives_same_merges(vocab_size, pattern):
    slow, fast = _both(SAMPLE, vocab_size, pattern=pattern)
    assert fast.merges == slow.merges
    assert fast == slow


def test_train_bpe_fast_same_merges_with_special_tokens():
    text = "<|endoftext|>".join([SAMPLE[:150], SAMPLE[150:300], SAMPLE[300:]])
    slow, fast = _both(text, 320, ["<|endoftext|>", "<|pad|>"])
    assert fast == slow
    assert fast.vocab[319] == b"<|pad|>"


def test_train_bpe_fast_same_merges_on_shakespeare(shared_dir):
    text = (shared_dir / "corpora" / "tinyshakespeare.txt").read_text()[:60_000]
    slow, fast = _both(text, 400)
    assert fast.merges == slow.merges


def test_train_bpe_fast_from_path_equals_from_text(tmp_path, shared_dir):
    path = shared_dir / "fixtures" / "tinystories_sample.txt"
    text = path.read_text(encoding="utf-8")
    from_text = train_bpe_fast(text, 350, ["<|endoftext|>"])
    assert train_bpe_fast(path, 350, ["<|endoftext|>"]) == from_text
    assert train_bpe(text, 350, ["<|endoftext|>"]) == from_text


def test_train_bpe_fast_stops_with_a_warning():
    with pytest.warns(UserWarning, match="257 tokens, not the 1000"):
        tok = train_bpe_fast("ab ab", 1000, pattern=r"\S+| ")
    assert tok.vocab_size == 257


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(alphabet="ab c\n'1é<|>", max_size=80),
    extra=st.integers(0, 30),
    with_special=st.booleans(),
)
def test_train_bpe_fast_same_merges_property(text, extra, with_special):
    specials = ["<|s|>"] if with_special else []
    slow, fast = _both(text, 256 + len(specials) + extra, specials)
    assert fast == slow


@settings(max_examples=60, deadline=None)
@given(
    parts=st.lists(st.text(alphabet="ab \n.<|s>x", max_size=12), max_size=12),
    min_chars=st.integers(1, 10),
)
def test_safe_chunks_pretokenize_like_the_whole(parts, min_chars):
    specials = ["<|s|>"]
    whole = "".join(parts)
    chunks = list(safe_chunks(parts, specials, min_chars=min_chars))
    assert "".join(chunks) == whole
    pieces = [p for c in chunks for p in pretokenize(c, specials)]
    assert pieces == pretokenize(whole, specials)


def test_count_pretokens_streams_a_file_in_small_chunks(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(SAMPLE * 20, encoding="utf-8")
    counts = count_pretokens(path, [], "gpt2")
    assert sum(counts.values()) == len(pretokenize(SAMPLE * 20))


def _letters(n: int, seed: int = 0, alphabet: str = "abcdefghijklmnopqrstuvwxyz"):
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(n))


@pytest.mark.parametrize(
    "text, vocab_size",
    [
        (_letters(1500), 500),  # one pre-token, nearly every count ties at 1
        (_letters(600, alphabet="ab"), 400),  # long runs, overlapping pairs
        ("a" * 300 + " " + "ab" * 200, 300),
        (" ".join(_letters(40, seed=i) for i in range(30)), 600),
    ],
)
def test_train_bpe_fast_same_merges_on_adversarial_text(text, vocab_size):
    slow, fast = _both(text, vocab_size)
    assert fast.merges == slow.merges


def test_pair_index_keeps_one_live_entry_per_pair():
    """Each pair is pushed only when its count changes; the heap stays O(n)."""
    text = _letters(3000)
    words = [text.encode()]
    vocab = {i: bytes([i]) for i in range(256)}
    index = _PairIndex(Symbols(words), [1] * len(text), vocab)
    for _ in range(500):
        a, b = index.pop_best()
        new_id = len(vocab)
        vocab[new_id] = vocab[a] + vocab[b]
        index.merge((a, b), new_id, vocab[new_id])
        live = Counter(
            (e[3], e[4]) for e in index.heap if index.counts.get((e[3], e[4])) == -e[0]
        )
        assert max(live.values()) == 1
        assert set(live) == set(index.counts)
    assert len(index.heap) < 4 * len(text)
