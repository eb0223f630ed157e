"""GPT-2's published tokenizer files: read them, and fetch them with a checksum.

Adds to tokenizer.py a loader for one published tokenizer. OpenAI released
GPT-2's vocabulary as ``encoder.json`` (token -> id) and its merges as
``vocab.bpe`` (one "a b" pair per line, in merge order, after a "#version"
line that some copies drop). Both write each byte as a printable character
through a byte-to-unicode table (a space is "Ġ", a newline "Ċ"), so the files
are plain text; this module undoes that table, and nothing else in labkit
needs to know about it. A vocabulary entry that is neither a single byte nor
the result of a merge (``<|endoftext|>``, id 50256) is a special token.

``download_gpt2_files`` fetches the two files by URL, checks their sha256 and
only then moves them into place; offline, its error says where to put them.

Built in: notebooks/03_tokenizers_compared.ipynb.
"""

import json
import os
from pathlib import Path

from labkit.corpora import download, sha256_file
from labkit.tokenizer.pretokenize import GPT2_PATTERN
from labkit.tokenizer.tokenizer import Tokenizer

GPT2_BASE_URL = "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/"
# file name -> sha256 of the published file (the same pins as tiktoken's)
GPT2_FILES = {
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
}


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table: each byte -> a printable character standing for it.

    Printable Latin-1 bytes stand for themselves; the other 68 (control
    characters, space, ...) are given the characters from U+0100 on, in order.
    Example: bytes_to_unicode()[ord(" ")] -> "Ġ"
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1)]
    keep += range(0xAE, 0xFF + 1)
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _to_bytes(token: str, decoder: dict[str, int], where: str) -> bytes:
    try:
        return bytes(decoder[ch] for ch in token)
    except KeyError as err:
        msg = f"{where}: character {err} is not in GPT-2's byte table"
        raise ValueError(msg) from None


def load_gpt2_files(vocab_json: str | Path, merges_txt: str | Path) -> Tokenizer:
    """A Tokenizer with GPT-2's ids, merges and ``<|endoftext|>``.

    Args:
        vocab_json: encoder.json (token -> id).
        merges_txt: vocab.bpe (merges in order; a "#version" line is skipped).
    """
    decoder = {ch: b for b, ch in bytes_to_unicode().items()}
    try:
        encoder = json.loads(Path(vocab_json).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{vocab_json}: not a JSON vocabulary ({err})") from None
    merges = []
    lines = Path(merges_txt).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#version"):
            continue
        parts = line.split(" ")
        if len(parts) != 2:
            raise ValueError(f"{merges_txt}:{number}: expected 'a b', got {line!r}")
        where = f"{merges_txt}:{number}"
        merges.append(tuple(_to_bytes(p, decoder, where) for p in parts))
    merged = {a + b for a, b in merges}
    vocab, specials = {}, {}
    for token, i in encoder.items():
        if all(ch in decoder for ch in token):
            vocab[i] = _to_bytes(token, decoder, str(vocab_json))
        if len(token) > 1 and vocab.get(i) not in merged:
            specials[token] = i
            vocab[i] = token.encode("utf-8")
    return Tokenizer(vocab, merges, specials, GPT2_PATTERN)


def find_gpt2_files() -> tuple[Path, Path] | None:
    """(encoder.json, vocab.bpe) already on this machine, or None.

    Looks in ``$LABKIT_CACHE/gpt2`` (default ``~/.cache/labkit/gpt2``), where
    ``download_gpt2_files`` puts them; offline, copy them there by hand.
    """
    cache = Path(os.environ.get("LABKIT_CACHE", Path.home() / ".cache" / "labkit"))
    vocab, merges = cache / "gpt2" / "encoder.json", cache / "gpt2" / "vocab.bpe"
    if vocab.is_file() and merges.is_file():
        return vocab, merges
    return None


def download_gpt2_files(
    dest_dir: str | Path,
    base_url: str = GPT2_BASE_URL,
    files: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> dict[str, Path]:
    """Fetch GPT-2's encoder.json and vocab.bpe into ``dest_dir``, sha256 checked.

    A file already there with the right sha256 is not fetched again (one with
    another sha256 is fetched again). Each download goes through
    ``labkit.corpora.download``: a temporary file, renamed only once every
    byte arrived and the sha256 matches, so no partial or wrong file is left.
    Returns: {file name: path}; pass them to ``load_gpt2_files``.
    Raises: labkit.corpora.DownloadFailed, a ConnectionError (offline or cut
        off; says where to put the file by hand), and ChecksumMismatch, a
        ValueError naming both digests.
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, sha256 in (files or GPT2_FILES).items():
        target = dest / name
        if not (target.exists() and sha256_file(target) == sha256):
            url = base_url.rstrip("/") + "/" + name
            download(url, target, sha256, progress=False, timeout=timeout)
        out[name] = target
    return out
