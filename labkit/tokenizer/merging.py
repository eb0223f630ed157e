"""Merging one pair: the step that BPE training and encoding share.

Two siblings, which give exactly the same result (the tests check it):

* ``merge``, the plain version chapter 2 teaches: rewrite a whole word,
  replacing every occurrence of one pair, left to right. The teaching trainer
  (bpe.py) merges words of bytes with it, the encoder short pre-tokens of ids;
* ``Symbols.merge``, the fast one, for long sequences. ``merge`` costs the
  length of the word, so on one pre-token of a million bytes (a file with no
  spaces) every merge costs a million steps, and thousands of merges cost
  hours. ``Symbols`` keeps the words as one doubly linked list over a flat
  array of nodes instead; whoever knows *where* a pair occurs (the fast
  trainer keeps a pair -> nodes index, the encoder a bucket of nodes per
  merge rank) merges just those nodes, each in O(1).

Both take occurrences left to right and skip one that overlaps an occurrence
merged just before it (the second "aa" of "aaa"). ``Symbols.merge`` keeps the
left node, which takes the new id, and unlinks the right one, whose id becomes
``DEAD`` (a node is never reused). Words never touch: the first node of a word
has no ``prv`` and the last no ``nxt`` (both -1).

Encoding replays merges by rank: ``apply_merges`` with ``merge`` (quickest on
a word) and its sibling ``apply_merges_fast`` over ``Symbols`` (for a long
pre-token); the Tokenizer picks one by length, and both give the same ids.

Built in: notebooks/02_byte_pair_encoding.ipynb (``merge``).
"""

import heapq
from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import pairwise

DEAD = -1  # the id of a node that has been merged into its left neighbour
Ranks = dict[tuple[int, int], tuple[int, int]]  # (a, b) -> (rank, merged id)


def merge(word: Sequence, pair: tuple, new: object = None) -> tuple:
    """Replace every occurrence of ``pair`` in ``word`` by ``new``, left to right.

    ``new`` defaults to the pair joined (``a + b``), as for words of bytes;
    the encoder passes the merged token's id. Costs O(len(word)).
    Example: merge((b"a", b"a", b"a"), (b"a", b"a")) -> (b"aa", b"a")
             merge([97, 98, 99], (98, 99), 256) -> (97, 256)
    """
    if new is None:
        new = pair[0] + pair[1]
    a, b = pair
    out, i, n = [], 0, len(word)
    while i < n:
        if word[i] == a and i + 1 < n and word[i + 1] == b:
            out.append(new)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


class Symbols:
    """Token ids of one or more words, as a linked list over node numbers.

    ``ids[p]`` is the token at node p (``DEAD`` once merged away), ``nxt[p]``
    and ``prv[p]`` the neighbouring nodes of the same word (-1 past an end).
    ``starts`` holds the first node of each word, in the order given.
    Shapes: n nodes in all = the total length of the words given.
    """

    __slots__ = ("ids", "nxt", "prv", "starts")

    def __init__(self, words: Iterable[Sequence[int]]):
        # arrays of C ints, not lists: 12 bytes a node instead of about 80,
        # so a long text stays in the processor's cache far longer
        ids, nxt, prv = array("i"), array("i"), array("i")
        starts: list[int] = []
        for word in words:
            start, n = len(ids), len(word)
            if n == 0:
                continue
            starts.append(start)
            ids.extend(word)
            nxt.extend(range(start + 1, start + n))
            nxt.append(-1)
            prv.append(-1)
            prv.extend(range(start, start + n - 1))
        self.ids, self.nxt, self.prv, self.starts = ids, nxt, prv, starts

    def pairs(self) -> Iterator[tuple[int, tuple[int, int]]]:
        """(node, (id at node, id at the next node)) for every adjacent pair."""
        ids = self.ids
        for p, q in enumerate(self.nxt):
            if q >= 0 and ids[p] != DEAD:
                yield p, (ids[p], ids[q])

    def merge(
        self, nodes: Iterable[int], pair: tuple[int, int], new_id: int
    ) -> Iterator[int]:
        """Merge ``pair`` into ``new_id`` at each of ``nodes`` that still holds it.

        ``nodes`` must be ascending within a word (left to right). A node that
        no longer starts the pair (merged before, or its neighbour changed) is
        skipped, so an index may hold stale nodes. Yields each merged node p,
        after the merge: its neighbours are ``prv[p]`` and ``nxt[p]``.
        Example: ids [a, a, a], nodes [0, 1], pair (a, a) -> ids [Z, DEAD, a]
        """
        ids, nxt, prv = self.ids, self.nxt, self.prv
        a, b = pair
        for p in nodes:
            if ids[p] != a:
                continue
            q = nxt[p]
            if q < 0 or ids[q] != b:
                continue
            r = nxt[q]
            ids[p] = new_id
            ids[q] = DEAD
            nxt[p] = r
            if r >= 0:
                prv[r] = p
            yield p

    def word(self, start: int) -> list[int]:
        """The ids of the word whose first node is ``start``, in order."""
        ids, nxt = self.ids, self.nxt
        out = []
        p = start
        while p >= 0:
            out.append(ids[p])
            p = nxt[p]
        return out


def apply_merges(ids: Sequence[int], ranks: Ranks) -> tuple[int, ...]:
    """Encode one pre-token: merge its ids by rank, exactly as GPT-2 does.

    Each step merges every occurrence of the pair of lowest rank present,
    left to right (``merge``), until no pair has a merge. O(n * steps) for n
    ids: the quickest for a word, hours for a million bytes without a space.
    Example: ranks {(97, 98): (0, 256)}: apply_merges([97, 98, 97], ranks)
        -> (256, 97)
    """
    ids = tuple(ids)
    while len(ids) > 1:
        best = None
        for pair in pairwise(ids):
            found = ranks.get(pair)
            if found is not None and (best is None or found[0] < best[0]):
                best, best_pair = found, pair
        if best is None:
            break
        ids = merge(ids, best_pair, best[1])
    return ids


def apply_merges_fast(
    ids: Sequence[int], ranks: Ranks, by_rank: dict[int, tuple[tuple, int]]
) -> tuple[int, ...]:
    """``apply_merges`` in O(n log n): the nodes of each rank kept in a bucket.

    ``by_rank`` inverts ``ranks``: rank -> ((a, b), merged id). ``buckets``
    maps a rank to the nodes where its pair starts, and a heap holds the
    ranks that have a bucket. The lowest rank's bucket is taken whole and
    merged by ``Symbols.merge`` (which skips stale and overlapping nodes);
    then the pairs on both sides of each merged node go into their buckets.
    Only a pair of two equal ids can overlap itself, so only its bucket is
    sorted left to right; occurrences of any other pair are disjoint and
    give the same result in any order (the stale entries an unsorted order
    adds are skipped, and the right pair is added by the later merge).
    Taking a whole rank before adding keeps ``apply_merges``'s order exactly,
    even where a pair of a newer token has a lower rank. Each merge costs
    O(1) plus a heap push for a new rank; sorting the self-overlapping
    ranks' buckets is the only n log n part.
    """
    symbols = Symbols([ids])
    at, nxt, prv = symbols.ids, symbols.nxt, symbols.prv
    buckets: dict[int, array] = {}  # rank -> nodes, as C ints (compact)

    def add(node: int, found: tuple[int, int] | None) -> None:
        if found is not None:
            bucket = buckets.get(found[0])
            if bucket is None:
                buckets[found[0]] = array("i", (node,))
                heapq.heappush(heap, found[0])
            else:
                bucket.append(node)

    heap: list[int] = []
    for p, found in enumerate(map(ranks.get, pairwise(at))):
        add(p, found)
    while heap:
        rank = heapq.heappop(heap)
        pair, new_id = by_rank[rank]
        nodes = buckets.pop(rank)
        if pair[0] == pair[1]:  # only then can occurrences overlap ("aaa")
            nodes = sorted(nodes)
        for p in symbols.merge(nodes, pair, new_id):
            if prv[p] >= 0:
                add(prv[p], ranks.get((at[prv[p]], new_id)))
            if nxt[p] >= 0:
                add(p, ranks.get((new_id, at[nxt[p]])))
    return tuple(symbols.word(0)) if symbols.starts else ()
