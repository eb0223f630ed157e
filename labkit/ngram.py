"""Counting (n-gram) models: every run of symbols in a text, counted.

An order-n model predicts the next symbol (a byte, or a token id below
``vocab_size``) from the n - 1 symbols before it, by how often each run of
symbols occurred in a training text. A table of V**(n-1) rows is out of the
question, so each run of k symbols is hashed to one 64-bit key (``run_keys``)
and only the keys that occur are counted (``count_ngrams``). Keys grow one
symbol at a time, key(run + x) = key(run) * 1_000_003 + x + 1 modulo 2**64,
so the keys of every candidate after a context follow from the context's.

Besides how often each run occurs, N(c, x), the counts keep what smoothing
needs (labkit.smoothing): per context c, N(c) and the number of distinct
symbols seen after it, T(c); per run, after how many distinct symbols it was
seen (its continuation count, for Kneser-Ney). What a model needs about each
prediction is looked up once: ``lookup_text`` for the symbols a text has,
``lookup_context`` for every candidate after one context.
Built in: notebooks/04_counting_models.ipynb.
Leaves out on purpose: pruning, and hash collisions (two runs that share a
key, improbable at these sizes, are counted as one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MULTIPLIER = np.uint64(1_000_003)  # a prime above any vocabulary size used here


def _checked(data, vocab_size: int) -> np.ndarray:
    data = np.asarray(data)
    if data.ndim != 1:
        raise ValueError(f"expected a 1-D sequence of symbols, got shape {data.shape}")
    if data.size and (data.min() < 0 or data.max() >= vocab_size):
        raise ValueError(
            f"symbols must lie in 0..{vocab_size - 1}, found "
            f"{int(data.min())}..{int(data.max())}"
        )
    return data.astype(np.uint64)


def _extend(keys: np.ndarray, data: np.ndarray, k: int) -> np.ndarray:
    """Keys of the k-runs from the keys of the (k-1)-runs at the same starts."""
    m = max(len(data) - k + 1, 0)
    return keys[:m] * MULTIPLIER + data[k - 1 : k - 1 + m] + np.uint64(1)


def run_keys(data, k: int, vocab_size: int = 256) -> np.ndarray:
    """One 64-bit key per run of k symbols: key[i] identifies data[i:i+k].

    k = 0 gives the empty run's key, 0, at each of the len(data) + 1 starts.
    Shapes: data (N,) -> (N - k + 1,) uint64 (empty when k > N).
    """
    if k < 0:
        raise ValueError(f"k must be 0 or more, got {k}")
    data = _checked(data, vocab_size)
    keys = np.zeros(len(data) + 1, dtype=np.uint64)
    for j in range(1, k + 1):
        keys = _extend(keys, data, j)
    return keys


@dataclass(frozen=True)
class OrderCounts:
    """Counts of one order k: each distinct k-run, and its (k-1)-symbol context.

    Shapes: run arrays (R,) over the distinct runs, context arrays (C,) over
    the distinct contexts that some symbol followed; both sorted by key.
    """

    k: int
    run_keys: np.ndarray  # (R,) uint64
    run_count: np.ndarray  # (R,) N(c, x): how often the run occurs
    run_cont: np.ndarray  # (R,) after how many distinct symbols it occurs
    ctx_keys: np.ndarray  # (C,) uint64
    ctx_count: np.ndarray  # (C,) N(c): sum of N(c, x) over x
    ctx_types: np.ndarray  # (C,) T(c): distinct x with N(c, x) > 0
    ctx_cont: np.ndarray  # (C,) sum of run_cont over x
    ctx_cont_types: np.ndarray  # (C,) distinct x with run_cont > 0


@dataclass(frozen=True)
class NGramCounts:
    """Counts of every order 1..n of one training text (``count_ngrams``)."""

    n: int
    vocab_size: int
    total: int  # symbols in the training text
    orders: tuple[OrderCounts, ...]  # orders[k - 1] has order k

    def order(self, k: int) -> OrderCounts:
        return self.orders[k - 1]


def _group(keys: np.ndarray, weights: np.ndarray, *more: np.ndarray) -> list:
    """Distinct keys, then the sum of each weights array over each key."""
    distinct, inverse = np.unique(keys, return_inverse=True)
    size = len(distinct)
    sums = [np.bincount(inverse, w, size).astype(np.int64) for w in (weights, *more)]
    return [distinct, *sums]


def _order(k: int, runs, prefix_keys: np.ndarray, suffix_keys: np.ndarray):
    """OrderCounts from the distinct k-runs (keys, first start, counts)."""
    keys, first, count = runs
    cont = np.zeros(len(keys), dtype=np.int64)
    if len(suffix_keys):  # each distinct (k+1)-run adds one to its last k symbols
        np.add.at(cont, np.searchsorted(keys, suffix_keys), 1)
    ctx = _group(prefix_keys[first], count, np.ones_like(count), cont, cont > 0)
    return OrderCounts(k, keys, count, cont, *ctx)


def count_ngrams(data, n: int, vocab_size: int = 256) -> NGramCounts:
    """Count every run of 1..n symbols of ``data``, with continuations.

    Shapes: data (N,) of ints in 0..vocab_size-1.
    Example: count_ngrams(np.frombuffer(b"abab", np.uint8), 2).order(2)
    has the runs "ab" (counted twice) and "ba" (once).
    """
    if n < 1:
        raise ValueError(f"the order n must be at least 1, got {n}")
    data = _checked(data, vocab_size)
    before = np.zeros(len(data) + 1, dtype=np.uint64)  # the (k-1)-runs
    keys = _extend(before, data, 1)  # the k-runs
    runs = np.unique(keys, return_index=True, return_counts=True)
    orders = []
    for k in range(1, n + 1):
        longer = _extend(keys, data, k + 1)
        longer_runs = np.unique(longer, return_index=True, return_counts=True)
        suffixes = keys[longer_runs[1] + 1]  # the last k of each (k+1)-run
        orders.append(_order(k, runs, before, suffixes))
        before, keys, runs = keys, longer, longer_runs
    return NGramCounts(n, vocab_size, len(data), tuple(orders))


@dataclass(frozen=True)
class Lookups:
    """What the counts say about Q predictions, order by order.

    Each field holds one (Q,) array per order k = 1..n (index k - 1): the
    counts of the predicted run and of its context, as in OrderCounts.
    """

    vocab_size: int
    run_count: tuple[np.ndarray, ...]
    run_cont: tuple[np.ndarray, ...]
    ctx_count: tuple[np.ndarray, ...]
    ctx_types: tuple[np.ndarray, ...]
    ctx_cont: tuple[np.ndarray, ...]
    ctx_cont_types: tuple[np.ndarray, ...]

    @property
    def n(self) -> int:
        return len(self.run_count)


def _get(keys: np.ndarray, queries: np.ndarray, *values: np.ndarray) -> list:
    """values[i] where keys[i] == query, else 0, for each values array."""
    if len(keys) == 0:
        return [np.zeros(queries.shape, dtype=np.int64) for _ in values]
    i = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    found = keys[i] == queries
    return [np.where(found, v[i], 0) for v in values]


def _lookup(counts: NGramCounts, targets: list, contexts: list) -> Lookups:
    fields: list[list] = [[] for _ in range(6)]
    orders = counts.orders[: len(targets)]
    for o, target, context in zip(orders, targets, contexts, strict=True):
        got = _get(o.run_keys, target, o.run_count, o.run_cont)
        got += _get(
            o.ctx_keys, context, o.ctx_count, o.ctx_types, o.ctx_cont, o.ctx_cont_types
        )
        for field, value in zip(fields, got, strict=True):
            field.append(value)
    return Lookups(counts.vocab_size, *map(tuple, fields))


def lookup_text(counts: NGramCounts, data) -> Lookups:
    """Counts for predicting each symbol of ``data`` that has n - 1 before it.

    Shapes: data (M,) -> Lookups of Q = M - n + 1 predictions, of data[n-1:].
    """
    data = _checked(data, counts.vocab_size)
    n, m = counts.n, len(data) - counts.n + 1
    if m < 1:
        raise ValueError(
            f"a text of {len(data)} symbols has none to predict "
            f"with {n - 1} symbols of context"
        )
    keys = np.zeros(len(data) + 1, dtype=np.uint64)
    targets, contexts = [], []
    for k in range(1, n + 1):
        keys, previous = _extend(keys, data, k), keys
        targets.append(keys[n - k :])  # the k-run that ends at each target
        contexts.append(previous[n - k : n - k + m])  # its first k - 1
    return _lookup(counts, targets, contexts)


def _key(run: list[int]) -> np.ndarray:
    """The key of one run, as run_keys computes it (Python ints, mod 2**64)."""
    key = 0
    for symbol in run:
        key = (key * int(MULTIPLIER) + symbol + 1) % (1 << 64)
    return np.uint64(key)


def lookup_context(counts: NGramCounts, context, order: int | None = None) -> Lookups:
    """Counts for each of the V candidates after ``context``, at orders
    1..order (default n), so from the last order - 1 symbols of the context.

    Shapes: context (L,) with L >= order - 1 -> Lookups of Q = V predictions.
    """
    context = _checked(context, counts.vocab_size).tolist()
    n = counts.n if order is None else order
    if not 1 <= n <= counts.n:
        raise ValueError(f"order must be in 1..{counts.n}, got {order}")
    if len(context) < n - 1:
        raise ValueError(
            f"an order-{n} model needs {n - 1} symbols of context, got {len(context)}"
        )
    V = counts.vocab_size
    candidates = np.arange(V, dtype=np.uint64) + np.uint64(1)
    targets, contexts = [], []
    for k in range(1, n + 1):
        key = np.full(V, _key(context[len(context) - k + 1 :] if k > 1 else []))
        targets.append(key * MULTIPLIER + candidates)  # key(context + x)
        contexts.append(key)
    return _lookup(counts, targets, contexts)
