"""The fast BPE trainer: the same merges as bpe.py, without recounting.

Adds to bpe.py three things and changes no rule (the tests check that both
trainers give exactly the same merges):

* streaming: ``text`` may be a path; the file is read in chunks that are cut
  only where pre-tokenisation has a boundary anyway (pretokenize.safe_chunks),
  and only the distinct pre-tokens and their counts are kept, so memory grows
  with the vocabulary of words, not with the size of the corpus;
* incremental pair counts: a merge touches only the words that contain the
  merged pair (found through a pair -> words index) and updates the counts of
  the pairs around it, instead of recounting every pair of every word;
* a priority queue (a heap with lazy deletion) gives the most frequent pair;
  equal counts are popped together and the lexicographically greater pair of
  byte strings wins, as in bpe.py.

Built in: notebooks/02_byte_pair_encoding.ipynb (which asserts it agrees).
"""

import heapq
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from itertools import pairwise
from pathlib import Path

import regex

from labkit.tokenizer.bpe import check_vocab_size, warn_stopped
from labkit.tokenizer.pretokenize import (
    check_special_tokens,
    check_text,
    resolve_pattern,
    safe_chunks,
    special_regex,
    split_special,
)
from labkit.tokenizer.tokenizer import Tokenizer


def _read_chunks(path: Path, block_chars: int = 1 << 20) -> Iterator[str]:
    with open(path, encoding="utf-8") as f:
        yield from iter(lambda: f.read(block_chars), "")


def count_pretokens(
    text: "str | os.PathLike", special_tokens: list[str], pattern: str
) -> Counter[str]:
    """Distinct pre-tokens and their counts, streaming when ``text`` is a path."""
    if isinstance(text, os.PathLike):
        source: Iterable[str] = _read_chunks(Path(text))
    else:
        check_text(text)
        source = [text]
    compiled = regex.compile(resolve_pattern(pattern))
    special = special_regex(special_tokens)
    counts: Counter[str] = Counter()
    for chunk in safe_chunks(source, special_tokens):
        check_text(chunk)
        for piece, is_special in split_special(chunk, special):
            if not is_special:
                counts.update(compiled.findall(piece))
    return counts


class _PairIndex:
    """Pair counts, the words holding each pair, and a heap of (−count, pair)."""

    def __init__(self, words: list[list[int]], freqs: list[int]):
        self.counts: dict[tuple[int, int], int] = defaultdict(int)
        self.where: dict[tuple[int, int], set[int]] = defaultdict(set)
        for w, (word, freq) in enumerate(zip(words, freqs, strict=True)):
            for pair in pairwise(word):
                self.counts[pair] += freq
                self.where[pair].add(w)
        self.heap = [(-c, pair) for pair, c in self.counts.items()]
        heapq.heapify(self.heap)

    def pop_best(self, vocab: dict[int, bytes]) -> tuple[int, int] | None:
        """Remove and return the best pair (None when no pair is left)."""
        heap, counts = self.heap, self.counts
        while heap and counts.get(heap[0][1], 0) != -heap[0][0]:
            heapq.heappop(heap)  # stale entry: the count has changed since
        if not heap or heap[0][0] == 0:
            return None
        top = heap[0][0]
        tied = []
        while heap and heap[0][0] == top:
            neg, pair = heapq.heappop(heap)
            if counts.get(pair, 0) == -neg:
                tied.append(pair)
        best = max(tied, key=lambda p: (vocab[p[0]], vocab[p[1]]))
        for pair in tied:
            if pair != best:
                heapq.heappush(heap, (top, pair))
        return best

    def add(self, word: list[int], w: int, freq: int, changed: set) -> None:
        for pair in pairwise(word):
            self.counts[pair] += freq
            self.where[pair].add(w)
            changed.add(pair)

    def remove(self, word: list[int], freq: int, changed: set) -> None:
        for pair in pairwise(word):
            self.counts[pair] -= freq
            changed.add(pair)


def _merge_ids(word: list[int], a: int, b: int, new_id: int) -> list[int]:
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def train_bpe_fast(
    text: "str | os.PathLike",
    vocab_size: int,
    special_tokens: Iterable[str] = (),
    pattern: str = "gpt2",
) -> Tokenizer:
    """Learn exactly ``train_bpe``'s merges, fast; ``text`` may be a file path.

    Args: as ``train_bpe``; a ``pathlib.Path`` (any os.PathLike) is read as a
        UTF-8 file in chunks, a str is the text itself.
    Returns: a Tokenizer equal to ``train_bpe(text, vocab_size, ...)``.
    """
    specials = check_special_tokens(special_tokens)
    check_vocab_size(vocab_size, specials)
    counts = count_pretokens(text, specials, pattern)
    words = [list(word.encode("utf-8")) for word in counts]
    freqs = list(counts.values())
    del counts
    vocab = {i: bytes([i]) for i in range(256)}
    merges: list[tuple[bytes, bytes]] = []
    index = _PairIndex(words, freqs)
    n_merges = vocab_size - 256 - len(specials)
    while len(merges) < n_merges:
        pair = index.pop_best(vocab)
        if pair is None:
            warn_stopped(256 + len(merges) + len(specials), vocab_size)
            break
        a, b = pair
        new_id = len(vocab)
        vocab[new_id] = vocab[a] + vocab[b]
        merges.append((vocab[a], vocab[b]))
        changed: set[tuple[int, int]] = set()
        for w in index.where.pop(pair):
            word = words[w]
            if len(word) < 2:
                continue
            merged = _merge_ids(word, a, b, new_id)
            if len(merged) == len(word):
                continue  # stale index entry: the pair is no longer there
            index.remove(word, freqs[w], changed)
            index.add(merged, w, freqs[w], changed)
            words[w] = merged
        index.counts.pop(pair, None)
        changed.discard(pair)
        for p in changed:
            c = index.counts[p]
            if c > 0:
                heapq.heappush(index.heap, (-c, p))
            else:
                del index.counts[p]
    return Tokenizer.from_merges(merges, specials, pattern)
