"""A character-level tokenizer: one id per distinct character of a text.

The simplest tokenizer a language model can use, and a baseline for BPE: the
vocabulary is the sorted set of characters of the training text, so it is
small (65 for Tiny Shakespeare) and every text is as many tokens as it has
characters. It has the same encode / decode / vocab_size / save / load API as
``Tokenizer``; a character it has never seen is an error that names it.

Saved files are JSON: {"format": "labkit.chartokenizer", "version": 1,
"chars": "<the characters in id order>"}.

Built in: notebooks/01_text_as_numbers.ipynb.
"""

import json
import operator
from pathlib import Path

from labkit.tokenizer.files import TokenizerFileError, read_chars
from labkit.tokenizer.pretokenize import check_text

FORMAT = "labkit.chartokenizer"
VERSION = 1


class CharTokenizer:
    """Characters <-> ids, ids in sorted order of the characters.

    Shapes: encode(str) -> list[int] with one id per character.
    """

    def __init__(self, chars: str):
        check_text(chars, "chars")
        if len(set(chars)) != len(chars):
            twice = next(ch for k, ch in enumerate(chars) if ch in chars[:k])
            raise ValueError(f"chars must not repeat a character: {twice!r} is twice")
        self.chars = chars
        self._ids = {ch: i for i, ch in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        """The tokenizer whose vocabulary is every character of ``text``."""
        check_text(text)
        return cls("".join(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CharTokenizer):
            return NotImplemented
        return self.chars == other.chars

    __hash__ = None

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"

    def encode(self, text: str) -> list[int]:
        """One id per character; raises ValueError naming an unknown character."""
        check_text(text)
        ids = self._ids
        try:
            return [ids[ch] for ch in text]
        except KeyError as err:
            ch = err.args[0]
            raise ValueError(
                f"character {ch!r} (U+{ord(ch):04X}) at index {text.index(ch)} "
                f"is not in this tokenizer's {self.vocab_size} characters"
            ) from None

    def decode(self, ids: list[int]) -> str:
        """The characters of ``ids``; raises ValueError naming an invalid id.

        Any integers are ids: Python ints, numpy integers, a numpy array or a
        torch tensor of integers.
        """
        chars = self.chars
        ids = ids.tolist() if hasattr(ids, "tolist") else ids
        out = []
        for position, i in enumerate(ids):
            try:
                ok = not isinstance(i, bool) and 0 <= operator.index(i) < len(chars)
            except TypeError:
                ok = False
            if not ok:
                raise ValueError(
                    f"invalid token id {i!r} at position {position}: ids run "
                    f"0..{len(chars) - 1}"
                )
            out.append(chars[i])
        return "".join(out)

    def save(self, path: str | Path) -> None:
        data = {"format": FORMAT, "version": VERSION, "chars": self.chars}
        Path(path).write_text(json.dumps(data), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "CharTokenizer":
        """Read a file written by ``save``, checked as a whole before use.

        Raises: files.TokenizerFileError (a ValueError), one line naming the
            file and the problem (a character listed twice names it and both
            places); OSError if the file cannot be read.
        """
        chars = read_chars(path, FORMAT, VERSION)
        try:
            return cls(chars)
        except ValueError as err:
            raise TokenizerFileError(f"{path}: chars: {err}") from None
