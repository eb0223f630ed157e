"""Reading tokenizer files: the whole file is checked before anything is built.

Both labkit formats (``Tokenizer``'s and ``CharTokenizer``'s) are one JSON
object with a "format" and a "version". A file that is not such an object, for
whatever reason (empty, cut short, binary, a pickle or a ``torch.save`` zip,
JSON of another shape, a field missing or of the wrong type), raises one
``TokenizerFileError`` whose one-line message names the file and the problem,
and, inside the file, the entry (``vocab[12]``, ``merges[3][1]``).

The checks that need the parts together (ids 0..vocab_size-1 without gaps,
merges made of tokens in the vocabulary) are the classes' own; their loaders
add the file's name to those errors too.
"""

import json
from pathlib import Path


class TokenizerFileError(ValueError):
    """A tokenizer file that cannot be loaded; the message names file and entry."""


def _binary_kind(raw: bytes) -> str | None:
    """What a binary file looks like, for the message (None: looks like text)."""
    if raw.startswith(b"PK\x03\x04"):
        return "a zip archive (torch.save writes these), not JSON"
    if raw[:1] == b"\x80" and raw[1:2] in {bytes([v]) for v in range(2, 6)}:
        return "a Python pickle, not JSON (pickles are never loaded)"
    if b"\x00" in raw[:1024]:
        return "binary data, not JSON"
    return None


def _read_object(path: str | Path, what: str) -> dict:
    """The JSON object in ``path``; TokenizerFileError if it holds none."""
    raw = Path(path).read_bytes()
    if not raw.strip():
        raise TokenizerFileError(f"{path}: the file is empty, not a {what} file")
    kind = _binary_kind(raw)
    if kind:
        raise TokenizerFileError(f"{path}: the file is {kind}")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        msg = f"{path}: not UTF-8 text at byte {err.start}, not a {what} file"
        raise TokenizerFileError(msg) from None
    except json.JSONDecodeError as err:
        msg = f"{path}: not valid JSON (cut short or corrupt?): {err}"
        raise TokenizerFileError(msg) from None
    if not isinstance(data, dict):
        raise TokenizerFileError(
            f"{path}: holds a JSON {type(data).__name__}, not a {what} object"
        )
    return data


def tokenizer_format(path: str | Path) -> str:
    """The "format" of a labkit tokenizer file, to pick the class that loads it.

    Example: tokenizer_format("run/tokenizer.json") -> "labkit.chartokenizer"
    Raises: TokenizerFileError as ``read_json`` does, also for no "format".
    """
    found = _read_object(path, "labkit tokenizer").get("format")
    if not isinstance(found, str):
        raise TokenizerFileError(
            f"{path}: not a labkit tokenizer file: 'format' is {found!r}"
        )
    return found


def read_json(path: str | Path, fmt: str, version: int) -> dict:
    """The JSON object of a ``fmt`` file, version ``version``, or a clear error.

    Raises: TokenizerFileError naming ``path`` and the problem; OSError (its
        message names the file) when the file cannot be read at all.
    """
    data = _read_object(path, fmt)
    found = data.get("format")
    if found != fmt:
        hint = f" (a {found} file?)" if isinstance(found, str) else ""
        msg = f"{path}: not a {fmt} file: 'format' is {found!r}, not {fmt!r}{hint}"
        raise TokenizerFileError(msg)
    if data.get("version") != version:
        raise TokenizerFileError(
            f"{path}: format version {data.get('version')!r} is not supported "
            f"(this labkit reads version {version})"
        )
    return data


def field(data: dict, path: str | Path, key: str, kind: type) -> object:
    """``data[key]``, which must be present and an instance of ``kind``."""
    if key not in data:
        raise TokenizerFileError(f"{path}: missing field {key!r}")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TokenizerFileError(
            f"{path}: field {key!r} is a {type(value).__name__}, "
            f"expected a {kind.__name__}"
        )
    return value


def entry_id(value: object, path: str | Path, where: str) -> int:
    """A token id read from a file: an int (not a bool, not a float)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TokenizerFileError(
            f"{path}: {where}: id {value!r} is a {type(value).__name__}, not an int"
        )
    return value


def entry_hex(value: object, path: str | Path, where: str) -> bytes:
    """A token's bytes read from a file, written as a non-empty hex string."""
    if not isinstance(value, str):
        raise TokenizerFileError(
            f"{path}: {where}: {value!r} is a {type(value).__name__}, "
            "expected a hex string"
        )
    try:
        token = bytes.fromhex(value)
    except ValueError:
        raise TokenizerFileError(
            f"{path}: {where}: {value[:40]!r} is not a hex string"
        ) from None
    if not token:
        raise TokenizerFileError(f"{path}: {where}: a token must not be empty")
    return token


def _pair(entry: object, path: str | Path, where: str, expected: str) -> list:
    if not isinstance(entry, list) or len(entry) != 2:
        shown = repr(entry)[:60]
        raise TokenizerFileError(f"{path}: {where} is {shown}, expected {expected}")
    return entry


def read_bpe(path: str | Path, fmt: str, version: int) -> tuple:
    """(vocab, merges, special_tokens, pattern) of a ``Tokenizer`` file.

    Every entry is checked: ``vocab`` is a list of [id, hex] whose ids run
    0..n-1 for n entries, each once (so there is no gap); ``merges`` a list
    of [hex, hex]; ``special_tokens`` maps str to int; ``pattern`` is a str.
    """
    data = read_json(path, fmt, version)
    entries = field(data, path, "vocab", list)
    n = len(entries)
    vocab: dict[int, bytes] = {}
    first: dict[int, int] = {}  # id -> the vocab entry that gave it
    for k, entry in enumerate(entries):
        where = f"vocab[{k}]"
        i = entry_id(_pair(entry, path, where, "[id, hex]")[0], path, where)
        if not 0 <= i < n:
            raise TokenizerFileError(
                f"{path}: {where}: id {i} is outside 0..{n - 1} (the file lists "
                f"{n} tokens, so ids must run 0..{n - 1} without gaps)"
            )
        if i in vocab:
            raise TokenizerFileError(
                f"{path}: {where}: id {i} is listed twice (also vocab[{first[i]}])"
            )
        vocab[i], first[i] = entry_hex(entry[1], path, where), k
    merges = []
    for k, entry in enumerate(field(data, path, "merges", list)):
        where = f"merges[{k}]"
        a, b = _pair(entry, path, where, "[hex, hex]")
        merges.append(
            (entry_hex(a, path, f"{where}[0]"), entry_hex(b, path, f"{where}[1]"))
        )
    specials = field(data, path, "special_tokens", dict)
    for token, i in specials.items():
        entry_id(i, path, f"special_tokens[{token!r}]")
    return vocab, merges, specials, field(data, path, "pattern", str)


def read_chars(path: str | Path, fmt: str, version: int) -> str:
    """The "chars" of a ``CharTokenizer`` file: a str, no character twice."""
    chars = field(read_json(path, fmt, version), path, "chars", str)
    seen: dict[str, int] = {}
    for k, ch in enumerate(chars):
        if ch in seen:
            raise TokenizerFileError(
                f"{path}: chars: character {ch!r} (U+{ord(ch):04X}) is listed "
                f"twice, at {seen[ch]} and {k} (each character must have one id)"
            )
        seen[ch] = k
    return chars
