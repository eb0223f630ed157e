"""Tokenizer: round trips, special tokens, save/load, streaming, bad input."""

import json
import random
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.tokenizer import Tokenizer, train_bpe_fast
from labkit.tokenizer.merging import apply_merges, apply_merges_fast

TEXT = (
    "Hello world! Hello, tokenizer.\n\nIt's 2024; naïve café 🙂 日本語.\n"
    "    for i in range(10):\n        print(i)\n"
) * 4


def _bytes() -> dict[int, bytes]:
    return {b: bytes([b]) for b in range(256)}


@pytest.fixture(scope="module")
def tok():
    return train_bpe_fast(TEXT, 320, ["<|endoftext|>", "<|end|>"])


def test_plain_tokenizer_is_bytes():
    tok = Tokenizer()
    assert tok.vocab_size == 256
    assert tok.encode("hé") == [104, 0xC3, 0xA9]
    assert tok.decode([104, 0xC3, 0xA9]) == "hé"


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_encode_decode_roundtrip(tok, s):
    assert tok.decode(tok.encode(s)) == s


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", " ", "<|end|>", "x\n", "<|e"])).map("".join))
def test_encode_decode_roundtrip_with_special_tokens(tok, s):
    assert tok.decode(tok.encode(s)) == s


def test_special_tokens_match_longest_first(tok):
    ids = tok.encode("a<|endoftext|>b<|end|>")
    assert tok.special_tokens["<|endoftext|>"] in ids
    assert tok.special_tokens["<|end|>"] in ids
    over = Tokenizer.from_merges([], ["<|a|>", "<|a|><|a|>"])
    assert over.encode("<|a|><|a|><|a|>") == [257, 256]


def test_merges_are_applied_by_rank():
    tok = Tokenizer.from_merges([(b"b", b"c"), (b"a", b"b")], pattern=r".+")
    assert tok.encode("abc") == [97, 256]  # bc (rank 0) first, then no ab
    assert tok.encode("abd") == [257, 100]


def test_decode_split_character_gives_replacement_character():
    tok = Tokenizer()
    ids = tok.encode("€")  # three bytes
    assert tok.decode(ids[:2]) == "\ufffd"
    assert tok.decode_bytes(ids[:2]) == "€".encode()[:2]


@pytest.mark.parametrize("bad", [[1, 99999], [1, -1], [1, "a"], [1, 2.0]])
def test_decode_invalid_id_is_named(tok, bad):
    with pytest.raises(ValueError, match=f"invalid token id {bad[1]!r} at position 1"):
        tok.decode(bad)


def test_encode_bad_input_is_named(tok):
    with pytest.raises(TypeError, match="text must be a str, got list"):
        tok.encode(["a"])
    with pytest.raises(ValueError, match="lone surrogate U\\+DC80 at index 2"):
        tok.encode("ab\udc80")


def test_save_load_roundtrip(tok, tmp_path):
    path = tmp_path / "tok.json"
    tok.save(path)
    data = json.loads(path.read_text())
    assert data["format"] == "labkit.tokenizer" and data["version"] == 1
    loaded = Tokenizer.load(path)
    assert loaded == tok
    assert loaded.encode(TEXT) == tok.encode(TEXT)


def test_load_wraps_every_error_with_the_file_name(tok, tmp_path):
    """Bad files of every kind are in test_files.py; here, a real saved file."""
    path = tmp_path / "tok.json"
    tok.save(path)
    data = json.loads(path.read_text())
    data["vocab"] = data["vocab"][1:]  # byte 0 missing: the ids now have a gap
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=f"{path}: vocab.*without gaps"):
        Tokenizer.load(path)


@pytest.mark.parametrize(
    "vocab, match",
    [
        ({**_bytes(), 10**12: b"ab"}, "vocab id 1000000000000 is outside 0..256"),
        ({**_bytes(), -1: b"ab"}, "vocab id -1 is outside 0..256"),
        ({**_bytes(), 300: b"ab"}, "outside 0..256.*without gaps"),
        ({**_bytes(), 256: b""}, "vocab entry 256: b'' is not non-empty bytes"),
    ],
)
def test_vocab_ids_must_run_from_0_without_gaps(vocab, match):
    with pytest.raises((TypeError, ValueError), match=match):
        Tokenizer(vocab)


def test_invalid_pattern_is_named():
    with pytest.raises(ValueError, match="pattern '\\(' is not a valid regular exp"):
        Tokenizer(pattern="(")


def test_decode_accepts_numpy_and_torch_ids(tok):
    np = pytest.importorskip("numpy")
    ids = tok.encode("Hello world")
    assert tok.decode(np.array(ids)) == "Hello world"
    assert tok.decode([np.int64(i) for i in ids]) == "Hello world"
    assert tok.decode(np.array(ids, dtype=np.int32)) == "Hello world"
    torch = pytest.importorskip("torch")
    assert tok.decode(torch.tensor(ids)) == "Hello world"
    with pytest.raises(ValueError, match="invalid token id 1.0 at position 0"):
        tok.decode(np.array([1.0, 2.0]))  # floats are not ids


def _plain_encode(tok, text):
    """The plain loop (merging.apply_merges) on the text's bytes, no pre-split."""
    ids = [tok._byte_ids[b] for b in text.encode("utf-8")]
    return list(apply_merges(ids, tok._ranks))


@pytest.mark.parametrize("length", [17, 1000, 20_000])
def test_long_pretoken_gives_the_plain_ids(tok, length):
    """One pre-token without spaces takes the fast path; the ids are the same."""
    rng = random.Random(length)
    word = "".join(rng.choice("Helo wrd"[:4] + "tiz") for _ in range(length))
    assert tok.encode(word) == _plain_encode(tok, word)
    assert tok.decode(tok.encode(word)) == word


@settings(max_examples=150, deadline=None)
@given(
    merges=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), max_size=40),
    shuffle=st.randoms(use_true_random=False),
    text=st.text(alphabet="abc", min_size=0, max_size=300),
)
def test_fast_encoder_equals_plain_on_any_merges(merges, shuffle, text):
    """Random merges, in any order (a newer token's pair may rank lower)."""
    tokens = [b"a", b"b", b"c"]
    learned = []
    for i, j in merges:
        a, b = tokens[i % len(tokens)], tokens[j % len(tokens)]
        if a + b not in tokens:
            learned.append((a, b))
            tokens.append(a + b)
    shuffle.shuffle(learned)
    tok = Tokenizer.from_merges(learned, pattern=r".+")
    ids = [tok._byte_ids[b] for b in text.encode()]
    fast = apply_merges_fast(ids, tok._ranks, tok._by_rank)
    assert fast == apply_merges(ids, tok._ranks)
    assert tok.encode(text) == list(fast)


def test_many_special_tokens_match_longest_first():
    specials = [f"<|t{i}|>" for i in range(2000)] + ["<|t1|><|t2|>", "ab", "abc"]
    tok = Tokenizer.from_merges([], specials)
    text = "x<|t1|><|t2|>y<|t1999|>abcab<|t20|"
    ids = tok.encode(text)
    named = {i: t for t, i in tok.special_tokens.items()}
    pieces = [named.get(i, chr(i)) for i in ids]
    assert pieces == ["x", "<|t1|><|t2|>", "y", "<|t1999|>", "abc", "ab", *"<|t20|"]


def test_encode_iterable_equals_encode(tok, tmp_path):
    text = ("<|endoftext|>" + TEXT) * 50 + "\n\n\n  trailing   "
    path = tmp_path / "big.txt"
    path.write_text(text, encoding="utf-8")
    with open(path, encoding="utf-8") as f:
        assert list(tok.encode_iterable(f)) == tok.encode(text)


def test_encode_cache_stays_bounded(tok):
    small = Tokenizer(tok.vocab, tok.merges, tok.special_tokens, cache_size=10)
    words = " ".join(f"w{i}" for i in range(100))
    assert small.encode(words) == tok.encode(words)
    assert len(small._cache) <= 10


def test_long_pretokens_are_not_cached(tok):
    fresh = Tokenizer(tok.vocab, tok.merges, tok.special_tokens)
    word = "ab" * 1000  # one pre-token of 2,000 characters
    assert fresh.encode(word + " ab") == fresh.encode(word) + fresh.encode(" ab")
    assert list(fresh._cache) == [" ab"]


@pytest.mark.slow
def test_encode_iterable_memory_is_bounded(tmp_path):
    """Peak RSS grows by far less than the file while streaming 6 MB."""
    path = tmp_path / "big.txt"
    lines = (f"line {i} with word{i % 50_000} and more words\n" for i in range(150_000))
    path.write_text("".join(lines), encoding="utf-8")
    size = path.stat().st_size
    script = textwrap.dedent(
        f"""
        import resource
        from labkit.tokenizer import Tokenizer
        tok = Tokenizer(cache_size=1000)
        tok.encode("warm up the regex " * 1000)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with open({str(path)!r}, encoding="utf-8") as f:
            n = sum(1 for _ in tok.encode_iterable(f))
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(n, (after - before) * 1024)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    n_ids, grew = map(int, out.stdout.split())
    assert n_ids == size  # byte tokenizer: one id per byte
    assert grew < size / 4, f"peak RSS grew {grew} bytes on a {size}-byte file"
