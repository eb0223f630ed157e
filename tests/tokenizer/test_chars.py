"""CharTokenizer: one id per character, round trips, clear errors, checked files."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.tokenizer import CharTokenizer
from labkit.tokenizer.files import TokenizerFileError

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n"


@pytest.fixture(scope="module")
def tok():
    return CharTokenizer.from_text(TEXT)


def test_vocab_is_the_sorted_characters(tok):
    assert tok.chars == "".join(sorted(set(TEXT)))
    assert tok.vocab_size == len(set(TEXT)) == 27
    assert tok.encode("\n ") == [0, 1]  # "\n" sorts first, then " "


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_encode_decode_roundtrip(s):
    tok = CharTokenizer.from_text(s)
    ids = tok.encode(s)
    assert len(ids) == len(s)
    assert tok.decode(ids) == s


def test_unknown_character_is_named(tok):
    with pytest.raises(ValueError, match=r"'Z' \(U\+005A\) at index 3 is not in"):
        tok.encode("heaZ")


@pytest.mark.parametrize("bad", [[1, 27], [1, -1], [1, "a"], [1, 2.0], [1, True]])
def test_decode_invalid_id_is_named(tok, bad):
    with pytest.raises(ValueError, match=f"invalid token id {bad[1]!r} at position 1"):
        tok.decode(bad)


def test_decode_accepts_numpy_and_torch_ids(tok):
    np = pytest.importorskip("numpy")
    ids = tok.encode("hear me")
    assert tok.decode(np.array(ids)) == "hear me"
    assert tok.decode([np.int64(i) for i in ids]) == "hear me"
    assert tok.decode(np.array(ids, dtype=np.uint8)) == "hear me"
    torch = pytest.importorskip("torch")
    assert tok.decode(torch.tensor(ids)) == "hear me"


def test_repeated_character_is_named():
    with pytest.raises(ValueError, match="'b' is twice"):
        CharTokenizer("abcb")


def test_save_load_roundtrip(tok, tmp_path):
    path = tmp_path / "chars.json"
    tok.save(path)
    data = json.loads(path.read_text())
    assert data == {"format": "labkit.chartokenizer", "version": 1, "chars": tok.chars}
    assert CharTokenizer.load(path) == tok


def test_load_duplicate_character_names_file_and_places(tmp_path):
    path = tmp_path / "chars.json"
    path.write_text(
        json.dumps({"format": "labkit.chartokenizer", "version": 1, "chars": "abca"})
    )
    with pytest.raises(TokenizerFileError) as info:
        CharTokenizer.load(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert "'a' (U+0061) is listed twice, at 0 and 3" in message


def test_load_lone_surrogate_names_the_file(tmp_path):
    path = tmp_path / "chars.json"
    path.write_text(
        '{"format": "labkit.chartokenizer", "version": 1, "chars": "ab\\ud800"}'
    )
    with pytest.raises(TokenizerFileError, match=f"{path}: chars: .*U\\+D800"):
        CharTokenizer.load(path)
