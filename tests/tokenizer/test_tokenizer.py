"""Tokenizer: round trips, special tokens, save/load, streaming, bad input."""

import json
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.tokenizer import Tokenizer, train_bpe_fast

TEXT = (
    "Hello world! Hello, tokenizer.\n\nIt's 2024; naïve café 🙂 日本語.\n"
    "    for i in range(10):\n        print(i)\n"
) * 4


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


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "not a tokenizer JSON file"),
        ('{"format": "other"}', "not a labkit.tokenizer file"),
        ('{"format": "labkit.tokenizer", "version": 2}', "version 2 is not supp"),
        ('{"format": "labkit.tokenizer", "version": 1}', "missing field"),
    ],
)
def test_load_bad_file_is_named(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=match):
        Tokenizer.load(path)


def test_load_corrupt_vocab_is_named(tok, tmp_path):
    path = tmp_path / "tok.json"
    tok.save(path)
    data = json.loads(path.read_text())
    data["vocab"] = data["vocab"][1:]  # byte 0 missing
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="corrupt tokenizer file: vocab lacks"):
        Tokenizer.load(path)


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
