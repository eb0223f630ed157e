"""Checks for the exercises of the chapter on byte-pair encoding.

Three functions a learner writes, each checked against labkit's tokenizer:

* ``learn_merges(word_counts, n_merges)``: the training loop on pre-token
  counts (reference: bpe.py's ``pair_counts``, ``best_pair`` and ``merge``);
* ``encode_word(word, merges)``: one pre-token's tokens, merges replayed by
  rank (reference: ``Tokenizer`` with a pattern that keeps the word whole);
* ``pair_count_changes(word, freq, pair)``: how merging one pair in one word
  changes the pair counts, the update inside the fast trainer (reference:
  the counts of the word before and after ``merge``).

The check for special tokens is in special_tokens.py.

Built in: notebooks/02_byte_pair_encoding.ipynb.
"""

from __future__ import annotations

import random
from collections import Counter
from itertools import pairwise

from labkit.exercises import Case, CheckResult, run_check, short
from labkit.tokenizer import Tokenizer, train_bpe
from labkit.tokenizer.bpe import best_pair, pair_counts
from labkit.tokenizer.merging import apply_merges, merge

Pair = tuple[bytes, bytes]


def _bytes_word(word: str) -> tuple[bytes, ...]:
    data = word.encode("utf-8")
    return tuple(data[i : i + 1] for i in range(len(data)))


def _as_list(returned, what: str) -> tuple[list | None, str | None]:
    if not isinstance(returned, list | tuple):
        return None, f"expected a list of {what}, got {type(returned).__name__}"
    return list(returned), None


def _same_sequence(expected: list, returned, what: str) -> str | None:
    """None if equal; else the first item (or the length) that differs."""
    got, why = _as_list(returned, what)
    if why:
        return why
    for i, (e, r) in enumerate(zip(expected, got, strict=False)):
        if r != e or type(r) is not type(e):
            return f"{what.rstrip('s')} {i} is {short(r)}, expected {short(e)}"
    if len(got) != len(expected):
        return f"{len(got)} {what}, expected {len(expected)}"
    return None


# --- learn_merges ---------------------------------------------------------
def _learn_merges(word_counts: dict[str, int], n_merges: int) -> list[Pair]:
    words = Counter({_bytes_word(w): n for w, n in word_counts.items()})
    merges: list[Pair] = []
    while len(merges) < n_merges:
        counts = pair_counts(words)
        if not counts:
            break
        pair = best_pair(counts)
        merges.append(pair)
        words = Counter({merge(w, pair): n for w, n in words.items()})
    return merges


def _compare_merges(expected: list[Pair], returned) -> str | None:
    got, why = _as_list(returned, "merges")
    if why:
        return why
    for i, item in enumerate(got):
        ok = isinstance(item, tuple) and len(item) == 2
        if not ok or not all(isinstance(x, bytes) for x in item):
            return f"merge {i} is {short(item)}: each merge is a (bytes, bytes) tuple"
    return _same_sequence(expected, got, "merges")


def _merge_cases() -> list[Case]:
    def case(counts: dict[str, int], n: int, hint: str) -> Case:
        label = f"word_counts={counts!r}, n_merges={n}"
        return Case((counts, n), _learn_merges(counts, n), hint, label=label)

    cases = [
        case(
            {"aaabdaaabac": 1},
            3,
            "count every adjacent pair, merge the most frequent everywhere, "
            "left to right ('aaab' becomes (aa, a, b)), repeat (minbpe's "
            "example)",
        ),
        case({"ab": 1}, 0, "n_merges=0: no merges"),
        case({}, 4, "no words, no pairs: no merges"),
        case(
            {"ab": 1, "cd": 1},
            1,
            "a tie: the lexicographically greater pair wins, (b'c', b'd'), "
            "not the first one seen (max over (count, pair))",
        ),
        case(
            {"ab": 3, "cdcd": 1},
            1,
            "weight each pair by its word's count: (a, b) occurs 3 times, (c, d) twice",
        ),
        case(
            {"aaa": 1},
            2,
            "merge left to right: 'aaa' becomes (aa, a), not (a, aa)",
        ),
        case(
            {"ab": 2},
            5,
            "once every word is one token no pair is left: stop and return "
            "the merges so far",
        ),
        case({"é": 1}, 1, "work on UTF-8 bytes: 'é' is the two bytes c3 a9"),
        case(
            {" the": 4, " then": 2, " they": 1},
            4,
            "the space before a word is a byte like any other",
        ),
    ]
    rng = random.Random(0)
    for _ in range(12):
        counts = {
            "".join(rng.choice("ab c") for _ in range(rng.randint(1, 8))): (
                rng.randint(1, 5)
            )
            for _ in range(rng.randint(1, 6))
        }
        cases.append(case(counts, rng.randint(1, 12), "random words and counts"))
    return cases


def check_learn_merges(fn) -> CheckResult:
    """Check ``fn(word_counts: dict[str, int], n_merges) -> list[(bytes, bytes)]``:
    the merges BPE learns from pre-token counts, in order, with labkit's tie
    rule, stopping early when no pair is left.
    """
    return run_check(
        "check_learn_merges",
        fn,
        _merge_cases(),
        _compare_merges,
        summary="minbpe's example, ties, weights, overlaps, bytes, an early "
        "stop, 12 random",
        forbidden=("labkit", "train_bpe"),
        references=(_learn_merges, train_bpe),
    )


# --- encode_word ----------------------------------------------------------
def _encode_word(word: bytes, merges: list[Pair]) -> list[bytes]:
    tok = Tokenizer.from_merges(merges, pattern=r"(?s).+")  # the word is whole
    return [tok.vocab[i] for i in tok.encode(word.decode("utf-8"))]


def _compare_tokens(expected: list[bytes], returned) -> str | None:
    got, why = _as_list(returned, "tokens")
    if why:
        return why
    if not all(isinstance(t, bytes) for t in got):
        return "each token must be bytes"
    if b"".join(got) != b"".join(expected):
        return "the tokens do not spell the word: every byte must be kept, in order"
    return _same_sequence(expected, got, "tokens")


def _encode_cases() -> list[Case]:
    def case(word: bytes, merges: list[Pair], hint: str) -> Case:
        label = f"word={word!r}, merges={merges!r}"
        return Case((word, merges), _encode_word(word, merges), hint, label=label)

    ab, bc = (b"a", b"b"), (b"b", b"c")
    cases = [
        case(b"abc", [], "no merges: one token per byte"),
        case(b"", [ab], "an empty word has no tokens"),
        case(b"abc", [ab], "merge the pair where it occurs"),
        case(
            b"abc",
            [bc, ab],
            "replay merges by rank, the earliest learned first: (b, c) has "
            "rank 0, so 'abc' is (a, bc), even though (a, b) comes first in "
            "the word",
        ),
        case(b"abab", [ab], "merge every occurrence of the pair, not only the first"),
        case(b"aaa", [(b"a", b"a")], "left to right: (aa, a), not (a, aa)"),
        case(
            b"aaaa",
            [(b"a", b"a"), (b"aa", b"aa")],
            "a merge can join two tokens that earlier merges made",
        ),
        case(
            b" the",
            [(b" ", b"t"), (b"h", b"e"), (b" t", b"he")],
            "merges build on earlier ones: ' t' + 'he' -> ' the'",
        ),
        case("é".encode(), [], "a two-byte character starts as two tokens"),
        case("é".encode(), [(b"\xc3", b"\xa9")], "and a merge can join them"),
        case(b"xyz", [ab, bc], "merges whose pairs do not occur change nothing"),
    ]
    rng = random.Random(1)
    for _ in range(15):
        text = "".join(rng.choice("abc ") for _ in range(200))
        tok = train_bpe(text, 256 + rng.randint(1, 20), pattern=r"(?s).+")
        word = "".join(rng.choice("abc ") for _ in range(rng.randint(1, 12)))
        cases.append(case(word.encode(), tok.merges, "random merges and word"))
    return cases


def check_encode_word(fn) -> CheckResult:
    """Check ``fn(word: bytes, merges: list[(bytes, bytes)]) -> list[bytes]``:
    one pre-token's tokens, its merges replayed in the order learned.
    """
    return run_check(
        "check_encode_word",
        fn,
        _encode_cases(),
        _compare_tokens,
        summary="no merges, rank order, every occurrence, overlaps, chains, "
        "two-byte characters, 15 random",
        forbidden=("labkit", "my_encode"),
        references=(_encode_word, apply_merges),
    )


# --- pair_count_changes ---------------------------------------------------
def _pair_count_changes(word: tuple, freq: int, pair: Pair) -> dict[Pair, int]:
    before = Counter(pairwise(word))
    after = Counter(pairwise(merge(word, pair)))
    keys = before.keys() | after.keys()
    changes = {p: freq * (after[p] - before[p]) for p in keys}
    return {p: c for p, c in changes.items() if c}


def _compare_changes(expected: dict, returned) -> str | None:
    if not isinstance(returned, dict):
        return f"expected a dict (pair -> change), got {type(returned).__name__}"
    for p, c in returned.items():
        if isinstance(c, bool) or not isinstance(c, int):
            return f"the change for {short(p)} is {short(c)}, not an int"
    got = {p: c for p, c in returned.items() if c != 0}  # a 0 is no change
    for p in sorted(expected.keys() | got.keys(), key=repr):
        if got.get(p, 0) != expected.get(p, 0):
            return (
                f"pair {short(p)}: change {got.get(p, 0):+d}, "
                f"expected {expected.get(p, 0):+d}"
            )
    return None


def _changes_cases() -> list[Case]:
    def case(word: tuple, freq: int, pair: Pair, hint: str) -> Case:
        label = f"word={word!r}, freq={freq}, pair={pair!r}"
        expected = _pair_count_changes(word, freq, pair)
        return Case((word, freq, pair), expected, hint, label=label)

    a, b, c, x, y = b"a", b"b", b"c", b"x", b"y"
    cases = [
        case(
            (a, b, c),
            1,
            (b, c),
            "the pair disappears, and the pair on its left, (a, b), becomes (a, bc)",
        ),
        case((a, b, c), 5, (a, b), "the word occurs 5 times: each change is 5"),
        case((a, b, c), 2, (x, y), "a word without the pair: nothing changes"),
        case((a, b), 1, (a, b), "the word becomes one token: no pair is left"),
        case(
            (a, b, a, b),
            1,
            (a, b),
            "two occurrences side by side: (b, a) is lost once, and (ab, ab) is new",
        ),
        case(
            (a, a, a),
            1,
            (a, a),
            "the word holds (a, a) twice, but only one merge fits: (aa, a)",
        ),
        case((a, a, a, a), 3, (a, a), "(a, a) three times, two merges: (aa, aa)"),
        case(
            (x, y, a, b),
            1,
            (a, b),
            "(x, y) is still there once: leave it out (or give 0)",
        ),
        case((b" t", b"he"), 2, (b" t", b"he"), "tokens of several bytes"),
    ]
    rng = random.Random(3)
    for _ in range(15):
        word = tuple(rng.choice([a, b, c]) for _ in range(rng.randint(2, 10)))
        pair = rng.choice(list(pairwise(word)))
        cases.append(case(word, rng.randint(1, 9), pair, "random word and pair"))
    return cases


def check_pair_count_changes(fn) -> CheckResult:
    """Check ``fn(word: tuple[bytes, ...], freq, pair) -> dict[pair, int]``: how
    the pair counts change when ``pair`` is merged in ``word``, a pre-token that
    occurs ``freq`` times. Pairs whose count does not change may be left out.
    """
    return run_check(
        "check_pair_count_changes",
        fn,
        _changes_cases(),
        _compare_changes,
        summary="neighbours, counts, absent pair, adjacent and overlapping "
        "occurrences, 15 random",
        forbidden=("labkit",),
        references=(_pair_count_changes,),
    )
