"""Tokenizer files are checked as a whole on load: one line naming file and entry."""

import json
import pickle
import zipfile

import pytest

from labkit.tokenizer import CharTokenizer, Tokenizer
from labkit.tokenizer.files import TokenizerFileError, tokenizer_format

MERGES = [(b"a", b"b"), (b"ab", b"c")]
N = 256 + len(MERGES) + 1  # bytes, merges, one special token


def _bpe() -> dict:
    """The JSON of a small valid Tokenizer file (ids 0..258)."""
    tok = Tokenizer.from_merges(MERGES, ["<|end|>"])
    return {
        "format": "labkit.tokenizer",
        "version": 1,
        "pattern": tok.pattern,
        "vocab": [[i, t.hex()] for i, t in sorted(tok.vocab.items())],
        "merges": [[a.hex(), b.hex()] for a, b in tok.merges],
        "special_tokens": tok.special_tokens,
    }


def _chars() -> dict:
    return {"format": "labkit.chartokenizer", "version": 1, "chars": "abc"}


def _load_error(load, path, match: str) -> str:
    """The message of the error ``load(path)`` raises: one line, with the file."""
    with pytest.raises(TokenizerFileError, match=match) as info:
        load(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    return message


def _zip_bytes(tmp_path) -> bytes:
    """A zip laid out like torch.save's (archive/data.pkl)."""
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"w": [1.0]}))
    return path.read_bytes()


def _bad_contents(tmp_path, good: dict) -> dict[str, tuple[bytes, str]]:
    """name -> (file contents, what the message must say)."""
    text = json.dumps(good).encode()
    return {
        "empty": (b"", "the file is empty"),
        "blank": (b"  \n\n", "the file is empty"),
        "truncated": (text[: len(text) // 2], "not valid JSON"),
        "garbage": (b"\x8f\xfe\xfd garbage \xc3", "not UTF-8 text at byte 0"),
        "binary": (b"\x01\x00\x02\x00" * 8, "binary data"),
        "pickle": (pickle.dumps(good), "a Python pickle"),
        "torch zip": (_zip_bytes(tmp_path), "a zip archive"),
        "list": (b"[1, 2, 3]", "holds a JSON list"),
        "string": (b'"hello"', "holds a JSON str"),
        "null": (b"null", "holds a JSON NoneType"),
        "other format": (b'{"format": "other"}', "not a labkit"),
        "no format": (b'{"vocab": []}', "'format' is None"),
        "version 2": (text.replace(b'"version": 1', b'"version": 2'), "version 2"),
    }


@pytest.mark.parametrize("kind", ["bpe", "char"])
@pytest.mark.parametrize(
    "name",
    [
        "empty",
        "blank",
        "truncated",
        "garbage",
        "binary",
        "pickle",
        "torch zip",
        "list",
        "string",
        "null",
        "other format",
        "no format",
        "version 2",
    ],
)
def test_bad_file_is_one_line_naming_the_file(tmp_path, kind, name):
    good = _bpe() if kind == "bpe" else _chars()
    content, match = _bad_contents(tmp_path, good)[name]
    path = tmp_path / "tok.json"
    path.write_bytes(content)
    load = Tokenizer.load if kind == "bpe" else CharTokenizer.load
    _load_error(load, path, match)


def test_error_is_a_value_error():
    assert issubclass(TokenizerFileError, ValueError)


def test_file_of_the_other_class_is_named(tmp_path):
    path = tmp_path / "chars.json"
    path.write_text(json.dumps(_chars()))
    _load_error(Tokenizer.load, path, "a labkit.chartokenizer file")
    path.write_text(json.dumps(_bpe()))
    _load_error(CharTokenizer.load, path, "a labkit.tokenizer file")


@pytest.mark.parametrize(
    "key", ["vocab", "merges", "special_tokens", "pattern", "chars"]
)
def test_missing_field_is_named(tmp_path, key):
    good = _chars() if key == "chars" else _bpe()
    del good[key]
    path = tmp_path / "tok.json"
    path.write_text(json.dumps(good))
    load = CharTokenizer.load if key == "chars" else Tokenizer.load
    _load_error(load, path, f"missing field '{key}'")


@pytest.mark.parametrize(
    "key, value, kind",
    [
        ("vocab", {"0": "00"}, "dict"),
        ("merges", "6162", "str"),
        ("special_tokens", [["<|end|>", 258]], "list"),
        ("pattern", 3, "int"),
        ("chars", ["a", "b"], "list"),
    ],
)
def test_field_of_the_wrong_type_is_named(tmp_path, key, value, kind):
    good = _chars() if key == "chars" else _bpe()
    good[key] = value
    path = tmp_path / "tok.json"
    path.write_text(json.dumps(good))
    load = CharTokenizer.load if key == "chars" else Tokenizer.load
    _load_error(load, path, f"field '{key}' is a {kind}")


def _edit(entry_edit):
    data = _bpe()
    entry_edit(data)
    return data


def _set(data, key, index, value):
    data[key][index] = value


@pytest.mark.parametrize(
    "edit, match",
    [
        (
            lambda d: _set(d, "vocab", -1, [10**12, "ff"]),
            r"vocab\[258\]: id 1000000000000 is outside 0\.\.258",
        ),
        (
            lambda d: _set(d, "vocab", 3, [-1, "03"]),
            r"vocab\[3\]: id -1 is outside 0\.\.258",
        ),
        (
            lambda d: d["vocab"].pop(100),
            r"vocab\[257\]: id 258 is outside 0\.\.257 .*without gaps",
        ),
        (
            lambda d: _set(d, "vocab", 5, [4, "05"]),
            r"vocab\[5\]: id 4 is listed twice \(also vocab\[4\]\)",
        ),
        (
            lambda d: _set(d, "vocab", 7, [7.0, "07"]),
            r"vocab\[7\]: id 7\.0 is a float, not an int",
        ),
        (lambda d: _set(d, "vocab", 7, ["7", "07"]), r"vocab\[7\]: id '7' is a str"),
        (lambda d: _set(d, "vocab", 1, [True, "01"]), r"vocab\[1\]: id True is a bool"),
        (
            lambda d: _set(d, "vocab", 2, [2]),
            r"vocab\[2\] is \[2\], expected \[id, hex\]",
        ),
        (lambda d: _set(d, "vocab", 2, "0202"), r"vocab\[2\] is '0202', expected"),
        (
            lambda d: _set(d, "vocab", 9, [9, "zz"]),
            r"vocab\[9\]: 'zz' is not a hex string",
        ),
        (
            lambda d: _set(d, "vocab", 9, [9, ""]),
            r"vocab\[9\]: a token must not be empty",
        ),
        (
            lambda d: _set(d, "vocab", 0, [0, "ff00"]),
            r"vocab lacks the single bytes \[0\]",
        ),
        (
            lambda d: _set(d, "merges", 1, ["6162"]),
            r"merges\[1\] is \['6162'\], expected \[hex, hex\]",
        ),
        (lambda d: _set(d, "merges", 0, ["61", 62]), r"merges\[0\]\[1\]: 62 is a int"),
        (
            lambda d: _set(d, "merges", 0, ["61", "7a7a"]),
            r"merges\[0\] .*b'zz' not in vocab",
        ),
        (
            lambda d: d["special_tokens"].update({"<|end|>": 3}),
            r"special token '<\|end\|>' has id 3",
        ),
        (
            lambda d: d["special_tokens"].update({"<|end|>": "258"}),
            r"special_tokens\['<\|end\|>'\]: id '258' is a str",
        ),
        (
            lambda d: d.update(pattern="(unclosed"),
            r"pattern '\(unclosed' is not a valid regular expression",
        ),
    ],
)
def test_bad_entry_is_named(tmp_path, edit, match):
    path = tmp_path / "tok.json"
    path.write_text(json.dumps(_edit(edit)))
    _load_error(Tokenizer.load, path, match)


def test_valid_file_still_loads(tmp_path):
    path = tmp_path / "tok.json"
    path.write_text(json.dumps(_bpe()))
    tok = Tokenizer.load(path)
    assert tok.vocab_size == N and tok.encode("abc<|end|>") == [257, 258]


def test_tokenizer_format_picks_the_loader(tmp_path):
    path = tmp_path / "tok.json"
    path.write_text(json.dumps(_chars()))
    assert tokenizer_format(path) == "labkit.chartokenizer"
    path.write_text(json.dumps(_bpe()))
    assert tokenizer_format(path) == "labkit.tokenizer"
    path.write_bytes(b"")
    _load_error(tokenizer_format, path, "the file is empty")
    path.write_text('{"vocab": []}')
    _load_error(tokenizer_format, path, "'format' is None")
