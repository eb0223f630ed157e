"""Tokenizer: apply learned merges to encode text, and decode ids back.

Adds to bpe.py (which learns merges) the other half: encoding. A text is cut
on special tokens (longest first) and into pre-tokens (pretokenize.py); each
pre-token's bytes are merged by rank, the earliest-learned pair present first,
exactly as GPT-2 does. Results are cached per pre-token, because real text
repeats its words: the cache is what makes encoding fast. A long pre-token
(a text with no spaces is one) is merged rank by rank over a linked list,
touching only the places where each merge applies (merging.apply_merges_fast),
so it costs O(n log n), not O(n * merges).

Decoding joins the tokens' bytes and reads them as UTF-8. Ids that cut a
multi-byte character in two (a lone ``b"\\xe2"``) decode to U+FFFD, the
replacement character, instead of failing: ``decode_bytes`` gives the raw bytes.

Saved files are JSON (``FORMAT``, version 1)::

    {"format": "labkit.tokenizer", "version": 1,
     "pattern": "<regular expression>",
     "vocab": [[id, "hex of the token's bytes"], ...],
     "merges": [["hex a", "hex b"], ...],            # in merge order
     "special_tokens": {"<|endoftext|>": id, ...}}

``load`` checks the whole file first (files.py): the ids run 0..n-1 for n
tokens, each once; merges and special tokens are in the vocabulary; the
pattern compiles. Every error is one line naming the file and the entry.

Loading GPT-2's published files (bytes shown through a byte-to-unicode table)
lives in gpt2.py, so that quirk stays out of this class.

Built in: notebooks/02_byte_pair_encoding.ipynb.
Leaves out on purpose: truncation, padding, offsets, normalisation.
"""

import json
import operator
from collections.abc import Iterable, Iterator
from pathlib import Path

import regex

from labkit.tokenizer.files import TokenizerFileError, read_bpe
from labkit.tokenizer.merging import apply_merges, apply_merges_fast
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
SHORT_WORD = 16  # bytes; a longer pre-token is merged by apply_merges_fast
CACHED_CHARS = 256  # a longer pre-token is encoded each time, not cached


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
        self._ids = _check_vocab(self.vocab)
        self._byte_ids = [self._ids[bytes([b])] for b in range(256)]
        ids = self._ids
        self._ranks: dict[tuple[int, int], tuple[int, int]] = {}
        self._by_rank: dict[int, tuple[tuple[int, int], int]] = {}
        for rank, (a, b) in enumerate(self.merges):
            try:
                pair, new_id = (ids[a], ids[b]), ids[a + b]
            except KeyError:
                part = next(p for p in (a, b, a + b) if p not in ids)
                raise ValueError(
                    f"merges[{rank}] {(a, b)}: {part!r} not in vocab"
                ) from None
            self._ranks[pair] = (rank, new_id)
            self._by_rank[rank] = (pair, new_id)
        for token, i in self.special_tokens.items():
            if self.vocab.get(i) != token.encode("utf-8"):
                raise ValueError(f"special token {token!r} has id {i!r} not in vocab")
        self._special = special_regex(check_special_tokens(self.special_tokens))
        try:
            self._regex = regex.compile(self.pattern)
        except (regex.error, ValueError) as err:
            raise ValueError(
                f"pattern {self.pattern[:60]!r} is not a valid regular expression: "
                f"{err}"
            ) from None
        self._cache: dict[str, tuple[int, ...]] = {}

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
    def _encode_word(self, word: str) -> tuple[int, ...]:
        """One pre-token's ids: its bytes merged by rank (merging.py).

        A pre-token of up to SHORT_WORD bytes (a word) takes the plain loop,
        quickest there; a longer one (a text without spaces is one pre-token)
        the linked list, whose cost stays O(n log n). Both give the same ids.
        """
        ids = tuple(self._byte_ids[b] for b in word.encode("utf-8"))
        if len(ids) <= SHORT_WORD:
            return apply_merges(ids, self._ranks)
        return apply_merges_fast(ids, self._ranks, self._by_rank)

    def _encode_ordinary(self, text: str, out: list[int]) -> None:
        """Encode ``text`` (no special tokens) onto ``out``, word by word.

        The cache holds at most ``cache_size`` pre-tokens of at most
        CACHED_CHARS characters: a long one is rarely seen twice, and keeping
        it would let a few huge pre-tokens take all memory.
        """
        cache = self._cache
        for word in self._regex.findall(text):
            ids = cache.get(word)
            if ids is None:
                ids = self._encode_word(word)
                if len(word) <= CACHED_CHARS:
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
        """The tokens' bytes joined; raises ValueError naming an invalid id.

        Any integers are ids: Python ints, numpy integers, a numpy array or a
        torch tensor of integers.
        """
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
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
                    f"0..{len(vocab) - 1} in this vocabulary of {len(vocab)}"
                )
        return b"".join([vocab[operator.index(i)] for i in ids])

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; bytes that are not valid UTF-8 become U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

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
        """Read a file written by ``save``, checked as a whole before use.

        Raises: TokenizerFileError (a ValueError), one line naming the
            file, the entry and the problem; OSError if it cannot be read.
        """
        vocab, merges, specials, pattern = read_bpe(path, FORMAT, VERSION)
        try:
            return cls(vocab, merges, specials, pattern)
        except (TypeError, ValueError) as err:
            raise TokenizerFileError(f"{path}: {err}") from None


def _byte_vocab() -> dict[int, bytes]:
    return {b: bytes([b]) for b in range(256)}


def _check_vocab(vocab: dict[int, bytes]) -> dict[bytes, int]:
    """token -> id, once ids run 0..len(vocab)-1 over non-empty bytes tokens.

    A token listed under two ids maps to the first. Raises TypeError or
    ValueError naming the entry; ValueError if a single byte is missing.
    """
    n = len(vocab)
    keys, tokens = vocab.keys(), vocab.values()
    plain = set(map(type, keys)) == {int} and set(map(type, tokens)) == {bytes}
    if not (plain and 0 <= min(keys) and max(keys) < n and b"" not in tokens):
        for i, token in vocab.items():  # find the entry to name
            if isinstance(i, bool) or not isinstance(i, int):
                raise TypeError(f"vocab id {i!r} is a {type(i).__name__}, not an int")
            if not isinstance(token, bytes) or not token:
                raise TypeError(f"vocab entry {i}: {token!r} is not non-empty bytes")
            if not 0 <= i < n:
                raise ValueError(
                    f"vocab id {i} is outside 0..{n - 1}: the ids of a vocabulary "
                    f"of {n} tokens run 0..{n - 1} without gaps"
                )
    ids: dict[bytes, int] = {}
    for i, token in vocab.items():
        ids.setdefault(token, i)
    missing = [b for b in range(256) if bytes([b]) not in ids]
    if missing:
        raise ValueError(f"vocab lacks the single bytes {missing[:8]} (of 256)")
    return ids
