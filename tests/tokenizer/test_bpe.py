"""train_bpe: the teaching trainer's rules, hand-derived cases, the CS336 merges."""

import warnings

import pytest

from labkit.tokenizer.bpe import merge, pair_counts, train_bpe, word_counts
from labkit.tokenizer.gpt2 import bytes_to_unicode
from labkit.tokenizer.pretokenize import pretokenize


def test_minbpe_hand_derived_case():
    # "aaabdaaabac": aa (4x) -> Z=aa; ZabdZabac: Za (2x) ties with ab (2x)...
    tok = train_bpe("aaabdaaabac", 259, pattern=r".+")
    assert tok.merges == [(b"a", b"a"), (b"aa", b"a"), (b"aaa", b"b")]
    assert tok.vocab[256] == b"aa" and tok.vocab[258] == b"aaab"
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 97, 99]


def test_pair_counts_and_merge_by_hand():
    words = {(b"a", b"a", b"a"): 2, (b"a", b"b"): 1}
    assert pair_counts(words) == {(b"a", b"a"): 4, (b"a", b"b"): 1}
    assert merge((b"a", b"a", b"a"), (b"a", b"a")) == (b"aa", b"a")
    assert merge((b"x", b"a", b"b", b"a", b"b"), (b"a", b"b")) == (b"x", b"ab", b"ab")


def test_ties_go_to_the_lexicographically_greater_pair():
    # ("a","b") and ("c","d") both occur once: ("c","d") is greater
    tok = train_bpe("ab cd", 257, pattern=r"\S+| ")
    assert tok.merges == [(b"c", b"d")]


def test_no_merge_crosses_a_pretoken():
    with pytest.warns(UserWarning, match="no pair left"):
        tok = train_bpe("a a a a a a", 300)
    assert all(b" " not in a + b or (a + b).startswith(b" ") for a, b in tok.merges)
    assert tok.merges == [(b" ", b"a")]  # then nothing is left


def test_stops_with_a_warning_when_no_pair_is_left():
    with pytest.warns(UserWarning, match="257 tokens, not the 300"):
        tok = train_bpe("ab ab ab", 300, pattern=r"\S+| ")
    assert tok.vocab_size == 257


def test_special_tokens_are_kept_whole_and_counted_in_vocab_size():
    text = "hello<|endoftext|>hello<|endoftext|>"
    tok = train_bpe(text, 256 + 4 + 1, ["<|endoftext|>"])
    assert tok.vocab_size == 261
    assert tok.vocab[260] == b"<|endoftext|>"
    assert all(b"<" not in a + b and b"|" not in a + b for a, b in tok.merges)
    assert tok.encode("<|endoftext|>") == [260]


def test_word_counts_drop_special_tokens():
    counts = word_counts("ab<|s|>ab", ["<|s|>"])
    assert counts == {(b"a", b"b"): 2}


def test_gpt2_and_gpt4_patterns_differ_on_numbers_and_case():
    assert pretokenize("12345 DON'T", pattern="gpt2") == ["12345", " DON", "'", "T"]
    assert pretokenize("12345 DON'T", pattern="gpt4") == ["123", "45", " DON", "'T"]


def test_pretokenize_keeps_overlapping_special_tokens_longest_first():
    specials = ["<|a|>", "<|a|><|a|>"]
    pieces = pretokenize("x<|a|><|a|><|a|>", specials)
    assert pieces == ["x", "<|a|><|a|>", "<|a|>"]


@pytest.mark.parametrize(
    "vocab_size, specials, error, match",
    [
        (255, [], ValueError, "vocab_size=255 is below 256"),
        (256, ["<s>"], ValueError, r"256 bytes \+ 1 special"),
        ("300", [], TypeError, "vocab_size must be an int"),
    ],
)
def test_bad_vocab_size_is_named(vocab_size, specials, error, match):
    with pytest.raises(error, match=match):
        train_bpe("abc", vocab_size, specials)


def test_bad_text_is_named():
    with pytest.raises(TypeError, match="text must be a str, got bytes"):
        train_bpe(b"abc", 300)
    with pytest.raises(ValueError, match="lone surrogate U\\+D800 at index 1"):
        train_bpe("a\ud800", 300)
    with pytest.raises(TypeError, match="special_tokens must be a list"):
        train_bpe("abc", 300, "<s>")


def _reference(shared_dir, name):
    decoder = {ch: b for b, ch in bytes_to_unicode().items()}
    path = shared_dir / "fixtures" / name
    return [
        tuple(bytes(decoder[ch] for ch in part) for part in line.split(" "))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


@pytest.mark.slow
def test_train_bpe_matches_cs336_reference_merges(shared_dir):
    text = (shared_dir / "fixtures" / "corpus.en").read_text(encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tok = train_bpe(text, 500, ["<|endoftext|>"])
    assert tok.merges == _reference(shared_dir, "train-bpe-reference-merges.txt")
    import json

    ref_vocab = json.loads(
        (shared_dir / "fixtures" / "train-bpe-reference-vocab.json").read_text()
    )
    decoder = {ch: b for b, ch in bytes_to_unicode().items()}
    ref_tokens = {
        t.encode() if t == "<|endoftext|>" else bytes(decoder[c] for c in t)
        for t in ref_vocab
    }
    assert set(tok.vocab.values()) == ref_tokens
