"""Inspection helpers: coloured tokens, compression, coverage, cost; chars."""

import html

import pytest

from labkit.tokenizer import CharTokenizer, Tokenizer
from labkit.tokenizer.show import compression, cost, coverage, render_html


@pytest.fixture(scope="module")
def tok():
    # " the" is one token; "cat" is three bytes
    return Tokenizer.from_merges([(b" ", b"t"), (b"h", b"e"), (b" t", b"he")])


def test_render_html_has_one_span_per_token(tok):
    out = render_html(tok, "a the<b>\n")
    assert out.count("<span") == len(tok.encode("a the<b>\n")) == 6
    assert "·the" in out and html.escape("<") in out and "↵<br>" in out
    assert out._repr_html_() == str(out)


def test_compression_is_bytes_per_token(tok):
    assert compression(Tokenizer(), "héllo") == 1.0
    assert compression(tok, " the the") == 8 / 2
    with pytest.raises(ValueError, match="empty text"):
        compression(tok, "")


def test_coverage_by_hand(tok):
    cov = coverage(tok, "the the the cat")
    # words: the (3x, " the" = 1 token), cat (1x, " cat" = 4 tokens)
    assert cov.n_words == 2
    assert cov.single_token == 0.5
    assert cov.single_token_weighted == 0.75
    assert cov.tokens_per_word == (3 * 1 + 1 * 4) / 4
    assert cov.bands == (("top 100", 2, 0.5, 2.5),)


def test_cost(tok):
    c = cost(tok, " the" * 500, price_per_1k=0.5)
    assert c.n_tokens == 500 and c.total == 0.25
    with pytest.raises(ValueError, match="must not be negative"):
        cost(tok, "x", -1)


def test_char_tokenizer_roundtrip_and_errors(tmp_path):
    tok = CharTokenizer.from_text("hello world")
    assert tok.vocab_size == 8
    assert tok.encode("hello") == [3, 2, 4, 4, 5]
    assert tok.decode(tok.encode("world hello")) == "world hello"
    with pytest.raises(ValueError, match="character 'z' .* at index 2"):
        tok.encode("hez")
    with pytest.raises(ValueError, match="invalid token id 8 at position 1"):
        tok.decode([0, 8])
    tok.save(tmp_path / "c.json")
    assert CharTokenizer.load(tmp_path / "c.json") == tok
    (tmp_path / "bad.json").write_text(
        '{"format": "labkit.chartokenizer", "version": 9}'
    )
    with pytest.raises(ValueError, match="version 9 is not supported"):
        CharTokenizer.load(tmp_path / "bad.json")
