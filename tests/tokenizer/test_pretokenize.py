"""Pre-tokenisation: the GPT-2 / GPT-4 patterns, special tokens, safe chunks."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.tokenizer.pretokenize import (
    GPT2_PATTERN,
    GPT4_PATTERN,
    check_special_tokens,
    check_text,
    pretokenize,
    resolve_pattern,
    safe_chunks,
    special_regex,
    split_special,
)


def _plain_alternation(tokens):
    """The obvious expression: every token, longest first (what the trie replaces)."""
    ordered = sorted(set(tokens), key=lambda t: (-len(t), t))
    return re.compile("|".join(re.escape(t) for t in ordered))


@pytest.mark.parametrize(
    "text, pieces",
    [
        ("Hi there!", ["Hi", " there", "!"]),
        ("it's they'll", ["it", "'s", " they", "'ll"]),
        ("a  b", ["a", " ", " b"]),  # the last space goes with the word
        ("x\n\n  y", ["x", "\n\n ", " y"]),
        ("1234567 3.14", ["1234567", " 3", ".", "14"]),
        ("DON'T", ["DON", "'", "T"]),  # contractions are lower case only
        ("naïve café", ["naïve", " café"]),
    ],
)
def test_gpt2_pattern_by_hand(text, pieces):
    assert pretokenize(text, pattern="gpt2") == pieces


@pytest.mark.parametrize(
    "text, pieces",
    [
        ("1234567", ["123", "456", "7"]),
        ("DON'T", ["DON", "'T"]),
        ("a\n\nb", ["a", "\n\n", "b"]),
        ("(x)", ["(x", ")"]),  # one non-letter may lead a word
    ],
)
def test_gpt4_pattern_by_hand(text, pieces):
    assert pretokenize(text, pattern="gpt4") == pieces


@settings(max_examples=200, deadline=None)
@given(st.text(), st.sampled_from(["gpt2", "gpt4"]))
def test_pretokens_join_to_the_text(text, pattern):
    assert "".join(pretokenize(text, pattern=pattern)) == text


def test_resolve_pattern():
    assert resolve_pattern("gpt2") == GPT2_PATTERN
    assert resolve_pattern("gpt4") == GPT4_PATTERN
    assert resolve_pattern(r"\S+") == r"\S+"
    with pytest.raises(TypeError, match="pattern must be a str, got int"):
        resolve_pattern(3)


def test_check_text_names_the_problem():
    assert check_text("ok") == "ok"
    with pytest.raises(TypeError, match="text must be a str, got bytes"):
        check_text(b"x")
    with pytest.raises(ValueError, match="chars contains a lone surrogate U\\+DFFF at"):
        check_text("ab\udfff", "chars")


def test_check_special_tokens():
    assert check_special_tokens(["<a>", "<b>", "<a>"]) == ["<a>", "<b>"]
    with pytest.raises(TypeError, match=r"write \['<a>'\]"):
        check_special_tokens("<a>")
    with pytest.raises(ValueError, match="must not be the empty string"):
        check_special_tokens(["<a>", ""])


def test_split_special_keeps_longest_and_skips_empty_pieces():
    special = special_regex(["<|a|>", "<|a|><|a|>", "<|b|>"])
    pieces = list(split_special("<|a|><|a|><|a|>x<|b|>", special))
    assert pieces == [
        ("<|a|><|a|>", True),
        ("<|a|>", True),
        ("x", False),
        ("<|b|>", True),
    ]
    assert list(split_special("", special)) == []
    assert special_regex([]) is None
    assert list(split_special("abc", None)) == [("abc", False)]


@settings(max_examples=200, deadline=None)
@given(
    tokens=st.lists(st.text(alphabet="ab<|>", min_size=1, max_size=6), min_size=1),
    text=st.text(alphabet="ab<|>c", max_size=60),
)
def test_trie_matches_like_the_plain_alternation(tokens, text):
    trie, plain = special_regex(tokens), _plain_alternation(tokens)
    assert list(split_special(text, trie)) == list(split_special(text, plain))


def test_tokens_nested_too_deep_for_a_trie_still_match_longest_first():
    tokens = ["a" * k for k in range(1, 800)]  # 799 nested optional groups
    special = special_regex(tokens)
    assert [p for p, _ in split_special("a" * 1000, special)] == ["a" * 799, "a" * 201]


def test_twenty_thousand_special_tokens_split_like_the_plain_alternation():
    tokens = [f"<|{i}|>" for i in range(20_000)] + [f"tok{i}" for i in range(0, 999)]
    text = "x<|19999|>y<|1|><|20000|>tok99tok1000 tok998<|" * 20
    trie = special_regex(tokens)
    assert list(split_special(text, trie)) == list(
        split_special(text, _plain_alternation(tokens))
    )


def test_safe_chunks_never_cut_inside_a_special_token_with_a_newline():
    specials = ["<|a\nb|>"]
    parts = ["x\ny<|a\n", "b|>z\nw"]
    chunks = list(safe_chunks(parts, specials, min_chars=1))
    assert "".join(chunks) == "".join(parts)
    pieces = [p for c in chunks for p in pretokenize(c, specials)]
    assert pieces == pretokenize("".join(parts), specials)
