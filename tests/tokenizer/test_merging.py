"""merging.py: the plain merge, its linked-list sibling, and encoding by rank."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.tokenizer.merging import (
    DEAD,
    Symbols,
    apply_merges,
    apply_merges_fast,
    merge,
)


def test_merge_by_hand():
    assert merge((b"a", b"a", b"a"), (b"a", b"a")) == (b"aa", b"a")
    assert merge((b"a", b"a", b"a", b"a"), (b"a", b"a")) == (b"aa", b"aa")
    assert merge([97, 98, 97, 98, 99], (97, 98), 256) == (256, 256, 99)
    assert merge([], (1, 2), 3) == ()


def test_symbols_merge_by_hand():
    symbols = Symbols([[1, 1, 1], [], [1, 1]])
    assert symbols.starts == [0, 3]  # the empty word has no node
    merged = list(symbols.merge([0, 1, 3], (1, 1), 9))
    assert merged == [0, 3]  # node 1 overlaps the merge at 0: skipped
    assert list(symbols.ids) == [9, DEAD, 1, 9, DEAD]
    assert symbols.word(0) == [9, 1] and symbols.word(3) == [9]
    assert list(symbols.pairs()) == [(0, (9, 1))]  # words never touch


def _merge_everywhere(words, pair, new_id):
    """Symbols.merge given every node, as the trainer's index would."""
    symbols = Symbols(words)
    list(symbols.merge(range(len(symbols.ids)), pair, new_id))
    return [symbols.word(start) for start in symbols.starts]


@settings(max_examples=300, deadline=None)
@given(
    words=st.lists(st.lists(st.integers(0, 2), min_size=1, max_size=30), max_size=5),
    pair=st.tuples(st.integers(0, 2), st.integers(0, 2)),
)
def test_symbols_merge_equals_merge(words, pair):
    expected = [list(merge(word, pair, 7)) for word in words]
    assert _merge_everywhere(words, pair, 7) == expected


def test_apply_merges_by_hand():
    ranks = {(97, 98): (0, 256), (256, 99): (1, 257), (98, 99): (2, 258)}
    by_rank = {r: (pair, new) for pair, (r, new) in ranks.items()}
    for ids, expected in [
        ([97, 98, 99], (257,)),  # ab first (rank 0), then ab+c
        ([98, 99, 97, 98], (258, 256)),
        ([99], (99,)),
        ([], ()),
    ]:
        assert apply_merges(ids, ranks) == expected
        assert apply_merges_fast(ids, ranks, by_rank) == expected


@pytest.mark.parametrize("n", [2, 17, 5000])
def test_apply_merges_fast_on_one_letter_repeated(n):
    """ "aaaa...": every merge overlaps the next one; the worst case for ties."""
    ranks = {(97, 97): (0, 256), (256, 256): (1, 257), (257, 97): (2, 258)}
    by_rank = {r: (pair, new) for pair, (r, new) in ranks.items()}
    ids = [97] * n
    assert apply_merges_fast(ids, ranks, by_rank) == apply_merges(ids, ranks)


@settings(max_examples=200, deadline=None)
@given(
    pairs=st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), max_size=12),
    ids=st.lists(st.integers(0, 3), max_size=200),
)
def test_apply_merges_fast_equals_apply_merges(pairs, ids):
    """Any ranks at all: ids 0..3 are bytes, merge k makes id 4 + k."""
    ranks = {}
    for k, pair in enumerate(pairs):
        ranks.setdefault(pair, (k, 4 + k))
    by_rank = {r: (pair, new) for pair, (r, new) in ranks.items()}
    assert apply_merges_fast(ids, ranks, by_rank) == apply_merges(ids, ranks)
