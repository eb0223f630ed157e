"""Checks for the exercises of the chapter that compares tokenizers.

The references are labkit.tokenizer.wordpiece's ``encode_word`` (greedy
longest match) and ``best_pair`` (the WordPiece score rule), and
labkit.tokenizer.unigram's ``viterbi`` (the most probable segmentation).

Built in: notebooks/03_tokenizers_compared.ipynb.
"""

from __future__ import annotations

import random

from labkit.exercises import Case, CheckResult, Raises, exact, run_check
from labkit.tokenizer.unigram import viterbi
from labkit.tokenizer.wordpiece import UNK, best_pair, encode_word, units

_NOTEBOOK_NAMES = ("labkit", "my_wordpiece", "my_best_pair", "my_viterbi")
N_LONG = 10  # random cases with long pieces, in the first two checks


def _wordpiece_cases() -> list[Case]:
    def case(word: str, vocab: set[str], hint: str) -> Case:
        label = f"word={word!r}, vocab={sorted(vocab)}"
        return Case((word, vocab), encode_word(word, vocab), hint, label=label)

    cases = [
        case("cats", {"cat", "c", "##a", "##t", "##s"}, "a piece after the first "
             "carries the prefix ##: 'cat', then '##s'"),
        case("cat", {"cat", "c", "##a", "##t"}, "a word in the vocabulary is "
             "one piece"),
        case("a", {"a"}, "a one-character word"),
        case("abcd", {"a", "ab", "abc", "##b", "##c", "##d", "##cd"},
             "take the longest entry that fits first: 'abc', not 'ab'"),
        case("xyz", {"a", "##y", "##z"}, "no entry starts the word: the whole "
             "word is [UNK]"),
        case("cab", {"c", "ca", "##t"}, "after 'ca' nothing continues the "
             "word: the answer is ['[UNK]'] alone, not the pieces found so far "
             "followed by '[UNK]'"),
        case("abc", {"a", "ab", "c"}, "'c' is in the vocabulary, but inside a "
             "word only '##c' may continue it, so nothing continues 'ab' and "
             "the whole word is ['[UNK]']"),
        case("internationalization", {"i", "in", "inter", "international",
             "##n", "##ation", "##iz", "##ization", "##national"},
             "a piece can be as long as the word: 'international' (13 "
             "characters), then '##ization'; try every end, from the word's "
             "end down, not only the next few characters"),
        case("abcde", {"ab", "abc", "##cde", "##d"}, "greedy never goes back: "
             "after 'abc' and '##d' nothing fits 'e', so the whole word is "
             "[UNK] (even though 'ab' + '##cde' would spell it)"),
        case("naïve", {"na", "##ï", "##ve", "n", "##a"}, "pieces are characters, "
             "not bytes: 'ï' is one character"),
        case("", {"a"}, "an empty word has no pieces"),
    ]  # fmt: skip
    rng = random.Random(0)
    for _ in range(40):
        alphabet = "abcd"
        vocab = {rng.choice(alphabet) for _ in range(3)}
        for _ in range(12):
            piece = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 3)))
            vocab.add(piece if rng.random() < 0.4 else "##" + piece)
        word = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 7)))
        cases.append(case(word, vocab, "a random word and vocabulary"))
    for _ in range(N_LONG):  # pieces up to 8 characters long
        long = [
            "".join(rng.choice("ab") for _ in range(rng.randint(4, 8)))
            for _ in range(6)
        ]
        vocab = {"a", "b", "##a", "##b", long[0], *("##" + p for p in long[1:])}
        word = long[0] + rng.choice(long[1:]) + rng.choice("ab" * 3 + "c")
        cases.append(
            case(
                word,
                vocab,
                "a random word and vocabulary with long pieces (4 to 8 characters)",
            )
        )
    return cases


def check_wordpiece_word(fn) -> CheckResult:
    """Check ``fn(word, vocab) -> list[str]``: greedy longest-match WordPiece,
    "##" for pieces inside the word, ["[UNK]"] for a word it cannot spell."""
    cases = _wordpiece_cases()
    n_unk = sum(c.expected == [UNK] for c in cases)
    return run_check(
        "check_wordpiece_word",
        fn,
        cases,
        exact,
        summary=f"whole words, ## pieces, longest first, dead ends, a 13-character "
        f"piece; {n_unk} words that are [UNK]; {40 + N_LONG} random",
        forbidden=_NOTEBOOK_NAMES,
        references=(encode_word,),
    )


def _viterbi_cases() -> list[Case]:
    def case(word: str, log_probs: dict[str, float], hint: str) -> Case:
        label = f"word={word!r}, log_probs={log_probs}"
        try:
            expected = viterbi(word, log_probs)
        except ValueError:
            expected = Raises(ValueError)
        return Case((word, log_probs), expected, hint, label=label)

    cases = [
        case("▁the", {"▁the": -2.0, "▁": -3.0, "t": -4.0, "h": -4.0, "e": -4.0},
             "one likely piece beats four unlikely ones: add log-probabilities"),
        case("▁abc", {"▁ab": -2.0, "▁a": -1.0, "bc": -1.5, "c": -3.0, "b": -4.0},
             "the longest first piece is not the best: '▁a' + 'bc' (-2.5) beats "
             "'▁ab' + 'c' (-5.0)"),
        case("abc", {"abc": -9.0, "a": -2.0, "b": -2.0, "c": -2.0},
             "fewer pieces is not the aim: three likely pieces (-6) beat one "
             "unlikely piece (-9)"),
        case("x", {"x": -1.0}, "a one-character word"),
        case("ab", {"a": -1.0, "c": -1.0}, "no piece covers 'b': raise ValueError"),
        case("abc", {"a": -0.1, "ab": -1.0, "b": -6.0, "bc": -5.0, "c": -0.5},
             "the most probable first piece is not the best start either: "
             "'ab' + 'c' (-1.5) beats 'a' + 'bc' (-5.1); the best cut is found "
             "for the whole word at once (dynamic programming)"),
        case("▁tokenization", {"▁tokenization": -6.0, "▁token": -3.5,
             "ization": -3.5, **{ch: -4.0 for ch in "▁tokenization"}},
             "a piece can be as long as the whole word: '▁tokenization' (13 "
             "characters, -6.0) beats '▁token' + 'ization' (-7.0); try every "
             "start of the last piece, not only the last few"),
    ]  # fmt: skip
    rng = random.Random(1)
    for _ in range(40):
        alphabet = "abcde"
        log_probs = {ch: round(rng.uniform(-9.0, -3.0), 3) for ch in alphabet}
        for _ in range(10):
            piece = "".join(rng.choice(alphabet) for _ in range(rng.randint(2, 4)))
            log_probs[piece] = round(rng.uniform(-9.0, -0.5), 3)
        word = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 9)))
        cases.append(case(word, log_probs, "a random word and vocabulary"))
    for _ in range(N_LONG):  # pieces up to 8 characters long
        log_probs = {ch: round(rng.uniform(-9.0, -6.0), 3) for ch in "abc"}
        for _ in range(8):
            piece = "".join(rng.choice("abc") for _ in range(rng.randint(5, 8)))
            log_probs[piece] = round(rng.uniform(-6.0, -1.0), 3)
        word = "".join(rng.choice("abc") for _ in range(rng.randint(6, 10)))
        word = max(log_probs, key=len) + word[: rng.randint(0, 4)]
        cases.append(
            case(
                word,
                log_probs,
                "a random word and vocabulary with long pieces (5 to 8 characters)",
            )
        )
    return cases


def check_viterbi(fn) -> CheckResult:
    """Check ``fn(word, log_probs) -> list[str]``: the segmentation of ``word``
    whose pieces' log-probabilities have the highest sum; ValueError when no
    segmentation exists. (No case has two equally good segmentations.)"""
    return run_check(
        "check_viterbi",
        fn,
        _viterbi_cases(),
        exact,
        summary="likely pieces vs long or few pieces, a 13-character piece, no "
        f"segmentation refused, {40 + N_LONG} random",
        forbidden=_NOTEBOOK_NAMES,
        references=(viterbi,),
    )


def _first_merge(word_counts: dict[str, int]) -> tuple[str, str] | None:
    return best_pair({units(w): n for w, n in word_counts.items()}, "score")


def _unique_best(word_counts: dict[str, int]) -> bool:
    """True when one pair has the best score by a clear margin."""
    splits = {units(w): n for w, n in word_counts.items()}
    unit_counts, pair_counts = {}, {}
    for split, n in splits.items():
        for unit in split:
            unit_counts[unit] = unit_counts.get(unit, 0) + n
        for pair in zip(split, split[1:], strict=False):
            pair_counts[pair] = pair_counts.get(pair, 0) + n
    scores = sorted(
        (c / (unit_counts[a] * unit_counts[b]) for (a, b), c in pair_counts.items()),
        reverse=True,
    )
    return len(scores) == 1 or (len(scores) > 1 and scores[0] > 1.01 * scores[1])


def _merge_cases() -> list[Case]:
    def case(word_counts: dict[str, int], hint: str) -> Case:
        return Case((word_counts,), _first_merge(word_counts), hint)

    cases = [
        case({"ab": 1}, "one word, one pair: ('a', '##b'); a unit inside a "
             "word carries the prefix ##"),
        case({"pot": 5, "spot": 5}, "score = count(ab) / (count(a) count(b)), "
             "where 'p' at a word's start and '##p' inside are different units: "
             "('s', '##p') scores 5 / (5 x 5) = 0.2; ('##o', '##t') occurs most "
             "often (10 times) but scores 10 / (10 x 10) = 0.1"),
        case({"aaa": 2}, "'a' at a word's start and '##a' inside it are two "
             "different units: count them apart"),
        case({"spot": 8, "tips": 3, "tip": 1}, "count each unit and pair as many "
             "times as its word occurs (the counts are weights)"),
        case({"cat": 7, "pan": 2, "pit": 4}, "divide by the product of the two "
             "units' counts, not by their sum"),
        case({"xababab": 1, "x": 1}, "a pair that occurs several times in one "
             "word counts each time: ('##a', '##b') occurs 3 times in 'xababab' "
             "and scores 3 / (3 x 3), above ('x', '##a') at 1 / (2 x 3)"),
        case({"a": 3, "b": 2}, "one-character words have no pair: return None"),
    ]  # fmt: skip
    rng = random.Random(2)
    while len(cases) < 37:
        words = {
            "".join(rng.choice("abcde") for _ in range(rng.randint(1, 6))): rng.randint(
                1, 9
            )
            for _ in range(rng.randint(2, 6))
        }
        if _first_merge(words) is not None and _unique_best(words):
            cases.append(case(words, "random words and counts"))
    return cases


def check_first_merge(fn) -> CheckResult:
    """Check ``fn(word_counts) -> (a, b)``: the pair WordPiece's score rule
    merges first, count(ab) / (count(a) count(b)) over the units "c", "##a",
    "##t" of each word, weighted by the word's count; None when no word has
    two characters. (Every case has one best pair.)"""
    return run_check(
        "check_first_merge",
        fn,
        _merge_cases(),
        exact,
        summary="score vs count, ## units, weighted counts, no pair; 30 random",
        forbidden=_NOTEBOOK_NAMES,
        references=(_first_merge, best_pair),
    )
