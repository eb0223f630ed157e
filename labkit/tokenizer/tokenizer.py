"""Tokenizer: apply learned merges to encode text, and decode ids back.

Adds to bpe.py (which learns merges) the other half: encoding. A text is cut
on special tokens (longest first) and into pre-tokens (pretokenize.py); each
pre-token's bytes are merged by rank, the earliest-learned pair present first,
exactly as GPT-2 does. Results are cached per pre-token, because real text
repeats its words: the cache is what makes encoding fast.

Decoding joins the tokens' bytes and reads them as UTF-8. Ids that cut a
multi-byte character in two (a lone ``b"\\xe2"``) decode to U+FFFD, the
replacement character, instead of failing: ``decode_bytes`` gives the raw bytes.

Saved files are JSON (``FORMAT``, version 1)::

    {"format": "labkit.tokenizer", "version": 1,
     "pattern": "<regular expression>",
     "vocab": [[id, "hex of the token's bytes"], ...],
     "merges": [["hex a", "hex b"], ...],            # in merge order
     "special_tokens": {"<|endoftext|>": id, ...}}

Loading GPT-2's published files (bytes shown through a byte-to-unicode table)
lives in gpt2.py, so that quirk stays out of this class.

Built in: notebooks/02_byte_pair_encoding.ipynb.
Leaves out on purpose: truncation, padding, offsets, normalisation.
"""

import json
import operator
from collections.abc import Iterable, Iterator
from itertools import pairwise
from pathlib import Path

import regex

from labkit.tokenizer.pretokenize import (
    check_special_tokens,
    check_text,
    resolve_pattern,
    safe_chunks,
    special_regex,
    split_special,
)

FORMAT = "labkit.tokenizer"
VERSION = 1


class Tokenizer:
    """Byte-level BPE: ``vocab`` (id -> bytes), ``merges`` (in order), specials.

    ``Tokenizer()`` with no merges is the plain byte tokenizer (vocab_size 256).
    Shapes: encode(str) -> list[int] of length n_tokens; decode is its inverse.
    """

    def __init__(
        self,
        vocab: dict[int, bytes] | None = None,
        merges: Iterable[tuple[bytes, bytes]] = (),
        special_tokens: dict[str, int] | None = None,
        pattern: str = "gpt2",
        cache_size: int = 1 << 16,
    ):
        self.vocab = dict(vocab) if vocab is not None else _byte_vocab()
        self.merges = [(bytes(a), bytes(b)) for a, b in merges]
        self.special_tokens = dict(special_tokens or {})
        self.pattern = resolve_pattern(pattern)
        self.cache_size = cache_size
        self._check_and_index()

    @classmethod
    def from_merges(
        cls,
        merges: Iterable[tuple[bytes, bytes]],
        special_tokens: Iterable[str] = (),
        pattern: str = "gpt2",
    ) -> "Tokenizer":
        """Ids 0..255 are bytes, then one id per merge, then the special tokens."""
        vocab = _byte_vocab()
        merges = list(merges)
        for a, b in merges:
            vocab[len(vocab)] = a + b
        specials = {}
        for token in check_special_tokens(special_tokens):
            specials[token] = len(vocab)
            vocab[len(vocab)] = token.encode("utf-8")
        return cls(vocab, merges, specials, pattern)

    def _check_and_index(self) -> None:
        """Check the parts fit together; build the lookup tables encode uses."""
        self._ids = {}
        for i, token in self.vocab.items():
            if not isinstance(i, int) or not isinstance(token, bytes):
                raise TypeError(f"vocab entry {i!r}: {token!r} is not int -> bytes")
            self._ids.setdefault(token, i)
        missing = [b for b in range(256) if bytes([b]) not in self._ids]
        if missing:
            raise ValueError(f"vocab lacks the single bytes {missing[:8]} (of 256)")
        self._byte_ids = [self._ids[bytes([b])] for b in range(256)]
        self._ranks: dict[tuple[int, int], tuple[int, int]] = {}
        for rank, (a, b) in enumerate(self.merges):
            for part in (a, b, a + b):
                if part not in self._ids:
                    raise ValueError(f"merge {rank} {(a, b)}: {part!r} not in vocab")
            self._ranks[self._ids[a], self._ids[b]] = (rank, self._ids[a + b])
        for token, i in self.special_tokens.items():
            if self.vocab.get(i) != token.encode("utf-8"):
                raise ValueError(f"special token {token!r} has id {i} not in vocab")
        self._special = special_regex(check_special_tokens(self.special_tokens))
        self._regex = regex.compile(self.pattern)
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def from_gpt2_files(
        cls, vocab_json: str | Path, merges_txt: str | Path
    ) -> "Tokenizer":
        """GPT-2 from its published encoder.json and vocab.bpe (see gpt2.py)."""
        from labkit.tokenizer.gpt2 import load_gpt2_files

        return load_gpt2_files(vocab_json, merges_txt)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tokenizer):
            return NotImplemented
        return (self.vocab, self.merges, self.special_tokens, self.pattern) == (
            other.vocab,
            other.merges,
            other.special_tokens,
            other.pattern,
        )

    __hash__ = None  # mutable, like a dict

    def __repr__(self) -> str:
        return (
            f"Tokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, "
            f"special_tokens={list(self.special_tokens)})"
        )

    # --- encoding ---------------------------------------------------------
    def _encode_word(self, word: str) -> list[int]:
        """Merge one pre-token's bytes, lowest merge rank first."""
        ids = [self._byte_ids[b] for b in word.encode("utf-8")]
        ranks = self._ranks
        while len(ids) > 1:
            best = None
            for pair in pairwise(ids):
                found = ranks.get(pair)
                if found is not None and (best is None or found[0] < best[0]):
                    best, best_pair = found, pair
            if best is None:
                break
            a, b = best_pair
            new_id, out, i = best[1], [], 0
            while i < len(ids):
                if i + 1 < len(ids) and ids[i] == a and ids[i + 1] == b:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(ids[i])
                    i += 1
            ids = out
        return ids

    def _encode_ordinary(self, text: str, out: list[int]) -> None:
        cache = self._cache
        for word in self._regex.findall(text):
            ids = cache.get(word)
            if ids is None:
                ids = self._encode_word(word)
                if len(cache) >= self.cache_size:
                    cache.clear()  # bounded memory: start over
                cache[word] = ids
            out.extend(ids)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; registered special tokens become their ids.

        Raises TypeError for a non-str, ValueError for a lone surrogate.
        """
        check_text(text)
        out: list[int] = []
        for piece, is_special in split_special(text, self._special):
            if is_special:
                out.append(self.special_tokens[piece])
            else:
                self._encode_ordinary(piece, out)
        return out

    def encode_iterable(self, lines: Iterable[str]) -> Iterator[int]:
        """Lazily encode a stream of text (an open file), id by id.

        The stream is regrouped at safe places (pretokenize.safe_chunks), so
        the ids are exactly those of ``encode("".join(lines))`` while memory
        stays bounded by the chunk size and the cache.
        """
        for chunk in safe_chunks(lines, self.special_tokens, min_chars=1 << 16):
            yield from self.encode(chunk)

    # --- decoding ---------------------------------------------------------
    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The tokens' bytes joined; raises ValueError naming an invalid id."""
        ids = list(ids)
        vocab = self.vocab
        if set(map(type, ids)) <= {int}:
            try:
                return b"".join([vocab[i] for i in ids])
            except KeyError:
                pass
        for position, i in enumerate(ids):
            try:
                ok = not isinstance(i, bool) and operator.index(i) in vocab
            except TypeError:
                ok = False
            if not ok:
                raise ValueError(
                    f"invalid token id {i!r} at position {position}: ids run "
                    f"0..{max(vocab)} in this vocabulary of {len(vocab)}"
                )
        return b"".join([vocab[operator.index(i)] for i in ids])

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; bytes that are not valid UTF-8 become U+FFFD."""
        return self.decode_bytes(list(ids)).decode("utf-8", errors="replace")

    # --- saving -----------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the versioned JSON format described in the module docstring."""
        data = {
            "format": FORMAT,
            "version": VERSION,
            "pattern": self.pattern,
            "vocab": [[i, t.hex()] for i, t in sorted(self.vocab.items())],
            "merges": [[a.hex(), b.hex()] for a, b in self.merges],
            "special_tokens": self.special_tokens,
        }
        Path(path).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "Tokenizer":
        """Read a file written by ``save``; errors name the file and the problem."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: not a tokenizer JSON file ({err})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} file (no 'format': '{FORMAT}')")
        if data.get("version") != VERSION:
            raise ValueError(
                f"{path}: format version {data.get('version')!r} is not supported "
                f"(this labkit reads version {VERSION})"
            )
        try:
            vocab = {int(i): bytes.fromhex(t) for i, t in data["vocab"]}
            merges = [(bytes.fromhex(a), bytes.fromhex(b)) for a, b in data["merges"]]
            return cls(vocab, merges, data["special_tokens"], data["pattern"])
        except KeyError as err:
            raise ValueError(f"{path}: missing field {err}") from None
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: corrupt tokenizer file: {err}") from None


def _byte_vocab() -> dict[int, bytes]:
    return {b: bytes([b]) for b in range(256)}
