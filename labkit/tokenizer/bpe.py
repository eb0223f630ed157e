"""Byte-pair encoding, the teaching trainer: count pairs, merge the best, repeat.

Sennrich et al. (2016) learn a subword vocabulary by merging the most frequent
adjacent pair again and again; GPT-2 (Radford et al., 2019) runs the same loop
on UTF-8 bytes, so any text can be encoded. The rules of this trainer, shared
with ``train_bpe_fast`` (fast.py), which gives exactly the same merges:

* the base vocabulary is the 256 byte values, ids 0..255;
* the text is split on special tokens first; they never take part in a pair,
  and each is added to the vocabulary after the merges;
* the rest is cut into pre-tokens (``pattern``: "gpt2", "gpt4" or a regular
  expression, see pretokenize.py); no merge crosses a pre-token;
* each step merges the most frequent pair; a tie goes to the lexicographically
  greater pair of byte strings, so ``(b"t", b"h")`` beats ``(b"e", b"r")``;
* the new token gets the next id (256, 257, ...);
* ``vocab_size`` counts the 256 bytes, the merges and the special tokens;
  when no pair is left before it is reached, training stops with a warning
  that gives the size reached (it never merges across pre-tokens to go on).

Every step recounts all pairs of all distinct pre-tokens and rewrites every
word with ``merge`` (merging.py, shared with the encoder): simple to read, and
slow on a large corpus. fast.py keeps the counts up to date instead.

Built in: notebooks/02_byte_pair_encoding.ipynb.
Leaves out on purpose: dropout, merge frequency thresholds, Unicode
normalisation.
"""

import warnings
from collections import Counter
from collections.abc import Iterable
from itertools import pairwise

from labkit.tokenizer.merging import merge  # the step this trainer repeats
from labkit.tokenizer.pretokenize import (
    check_special_tokens,
    check_text,
    pretokenize,
)
from labkit.tokenizer.tokenizer import Tokenizer

Word = tuple[bytes, ...]  # one pre-token as its current tokens
Pair = tuple[bytes, bytes]


def check_vocab_size(vocab_size: object, special_tokens: list[str]) -> int:
    """``vocab_size`` as an int, at least 256 + the number of special tokens."""
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise TypeError(f"vocab_size must be an int, got {type(vocab_size).__name__}")
    smallest = 256 + len(special_tokens)
    if vocab_size < smallest:
        raise ValueError(
            f"vocab_size={vocab_size} is below 256 bytes + {len(special_tokens)} "
            f"special tokens = {smallest}"
        )
    return vocab_size


def word_counts(
    text: str, special_tokens: Iterable[str] = (), pattern: str = "gpt2"
) -> Counter[Word]:
    """How often each pre-token occurs, as a tuple of single bytes.

    Special tokens are dropped: they are never part of a pair.
    Example: word_counts("aa aa") -> {(b"a", b"a"): 1, (b" ", b"a", b"a"): 1}
    """
    specials = set(special_tokens)
    counts: Counter[Word] = Counter()
    for piece in pretokenize(text, specials, pattern):
        if piece not in specials:
            data = piece.encode("utf-8")
            counts[tuple(data[i : i + 1] for i in range(len(data)))] += 1
    return counts


def pair_counts(words: Counter[Word]) -> Counter[Pair]:
    """How often each adjacent pair occurs, weighted by word frequency.

    Example: pair_counts({(b"a", b"a", b"a"): 2}) -> {(b"a", b"a"): 4}
    """
    counts: Counter[Pair] = Counter()
    for word, freq in words.items():
        for pair in pairwise(word):
            counts[pair] += freq
    return counts


def best_pair(counts: Counter[Pair]) -> Pair:
    """The most frequent pair; ties go to the lexicographically greater pair."""
    return max(counts, key=lambda pair: (counts[pair], pair))


def warn_stopped(reached: int, vocab_size: int) -> None:
    warnings.warn(
        f"BPE training stopped early: no pair left to merge; the vocabulary "
        f"has {reached} tokens, not the {vocab_size} asked for",
        stacklevel=3,
    )


def train_bpe(
    text: str,
    vocab_size: int,
    special_tokens: Iterable[str] = (),
    pattern: str = "gpt2",
) -> Tokenizer:
    """Learn byte-level BPE merges from ``text`` (the rules are in the module doc).

    Args:
        text: the training text.
        vocab_size: 256 bytes + merges + special tokens.
        special_tokens: strings kept whole, e.g. ["<|endoftext|>"].
        pattern: "gpt2", "gpt4" or a regular expression for pre-tokens.
    Returns: a Tokenizer whose ``.merges`` are in merge order and ``.vocab``
        maps 0..255 to bytes, then the merged tokens, then the special tokens.
    Example: train_bpe("aaabdaaabac", 259, pattern=r".+").merges
        -> [(b"a", b"a"), (b"aa", b"a"), (b"aaa", b"b")]
    """
    check_text(text)
    specials = check_special_tokens(special_tokens)
    check_vocab_size(vocab_size, specials)
    words = word_counts(text, specials, pattern)
    merges: list[Pair] = []
    while 256 + len(merges) + len(specials) < vocab_size:
        counts = pair_counts(words)
        if not counts:
            warn_stopped(256 + len(merges) + len(specials), vocab_size)
            break
        pair = best_pair(counts)
        merges.append(pair)
        words = Counter({merge(w, pair): f for w, f in words.items()})
    return Tokenizer.from_merges(merges, specials, pattern)
