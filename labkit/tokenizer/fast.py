"""The fast BPE trainer: the same merges as bpe.py, without recounting.

Adds to bpe.py three things and changes no rule (the tests check that both
trainers give exactly the same merges):

* streaming: ``text`` may be a path; the file is read in chunks that are cut
  only where pre-tokenisation has a boundary anyway (pretokenize.safe_chunks),
  and only the distinct pre-tokens and their counts are kept, so memory grows
  with the vocabulary of words, not with the size of the corpus;
* incremental pair counts: the distinct pre-tokens are one linked list of
  nodes (merging.Symbols); a pair -> nodes index says where a pair occurs,
  so a merge touches just those nodes and the two pairs around each, instead
  of recounting every pair of every word. One long pre-token (a file with no
  spaces) costs what many short ones cost: about O(n log n) in all;
* a priority queue (a heap with lazy deletion) gives the most frequent pair;
  its entries sort equal counts by the pair's byte strings, so the top is the
  lexicographically greater pair, as in bpe.py, and each pair is pushed only
  when its count changes.

Built in: notebooks/02_byte_pair_encoding.ipynb (which asserts it agrees).
"""

import heapq
import os
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

import regex

from labkit.tokenizer.bpe import check_vocab_size, warn_stopped
from labkit.tokenizer.merging import Symbols
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


def _nodes() -> array:
    """A list of node numbers, as C ints (a fifth of a list's memory)."""
    return array("i")


def _order_key(token: bytes) -> tuple[int, ...]:
    """A key that sorts byte strings backwards: greater strings come first.

    The bytes negated, then a 1 that sorts a string after every longer string
    it begins (b"ab" > b"a", so key(b"ab") < key(b"a")).
    """
    return (*(-x for x in token), 1)


class _PairIndex:
    """Pair counts, the nodes where each pair starts, and a heap of the best.

    ``counts[(a, b)]``: occurrences of the pair, weighted by word frequency;
    ``where[(a, b)]``: nodes of ``symbols`` where it starts (a node that no
    longer does is skipped by ``Symbols.merge``); ``heap``: one entry
    ``(-count, key a, key b, a, b)`` per pair and count it has had, so the top
    is the most frequent pair, ties to the lexicographically greater pair of
    byte strings (``_order_key``), as in bpe.py. An entry whose count is no
    longer the pair's is stale and dropped when it reaches the top.

    A pair's count rises only in the merge that makes its newer token, and
    falls after that, so each pair has at most one live entry, and the heap
    holds at most the number of count changes: O(n) for n nodes.
    """

    def __init__(self, symbols: Symbols, weight: list[int], vocab: dict[int, bytes]):
        self.symbols, self.weight = symbols, weight
        self.keys = {i: _order_key(token) for i, token in vocab.items()}
        self.counts: dict[tuple[int, int], int] = defaultdict(int)
        self.where: dict[tuple[int, int], array] = defaultdict(_nodes)
        for p, pair in symbols.pairs():
            self.counts[pair] += weight[p]
            self.where[pair].append(p)
        self.heap = [self._entry(pair, c) for pair, c in self.counts.items()]
        heapq.heapify(self.heap)

    def _entry(self, pair: tuple[int, int], count: int) -> tuple:
        a, b = pair
        return (-count, self.keys[a], self.keys[b], a, b)

    def pop_best(self) -> tuple[int, int] | None:
        """Remove and return the best pair (None when no pair is left)."""
        heap, counts = self.heap, self.counts
        while heap:
            neg, _, _, a, b = heapq.heappop(heap)
            if counts.get((a, b)) == -neg:
                return a, b
        return None

    def merge(self, pair: tuple[int, int], new_id: int, token: bytes) -> None:
        """Merge ``pair`` everywhere into ``new_id``; update counts and heap.

        Costs O(k log n) for k occurrences: each merged node changes the two
        pairs around it, (left, a) -> (left, new) and (b, right) -> (new, right).
        """
        self.keys[new_id] = _order_key(token)
        counts, where, weight = self.counts, self.where, self.weight
        ids, nxt, prv = self.symbols.ids, self.symbols.nxt, self.symbols.prv
        a, b = pair
        changed = set()
        for p in self.symbols.merge(sorted(where.pop(pair)), pair, new_id):
            f = weight[p]
            o, r = prv[p], nxt[p]
            if o >= 0:
                left = ids[o]
                counts[left, a] -= f
                counts[left, new_id] += f
                where[left, new_id].append(o)
                changed.update([(left, a), (left, new_id)])
            if r >= 0:
                right = ids[r]
                counts[b, right] -= f
                counts[new_id, right] += f
                where[new_id, right].append(p)
                changed.update([(b, right), (new_id, right)])
        del counts[pair]
        changed.discard(pair)
        for p in changed:
            if counts[p] > 0:
                heapq.heappush(self.heap, self._entry(p, counts[p]))
            else:
                del counts[p]
                where.pop(p, None)


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
    words = [word.encode("utf-8") for word in counts]
    weight = [f for word, f in zip(words, counts.values(), strict=True) for _ in word]
    del counts
    vocab = {i: bytes([i]) for i in range(256)}
    index = _PairIndex(Symbols(words), weight, vocab)
    merges: list[tuple[bytes, bytes]] = []
    n_merges = vocab_size - 256 - len(specials)
    while len(merges) < n_merges:
        pair = index.pop_best()
        if pair is None:
            warn_stopped(256 + len(merges) + len(specials), vocab_size)
            break
        a, b = pair
        new_id = len(vocab)
        vocab[new_id] = vocab[a] + vocab[b]
        merges.append((vocab[a], vocab[b]))
        index.merge(pair, new_id, vocab[new_id])
    return Tokenizer.from_merges(merges, specials, pattern)
