"""The tokenizer checks accept correct answers and reject plausible wrong ones."""

import math
from collections import Counter

from labkit.exercises.tokenizers import (
    _merge_cases,
    _unique_best,
    _viterbi_cases,
    check_first_merge,
    check_viterbi,
    check_wordpiece_word,
)
from labkit.tokenizer.unigram import viterbi
from labkit.tokenizer.wordpiece import best_pair, encode_word, units


def wordpiece_word(word, vocab):
    pieces, start = [], 0
    while start < len(word):
        for end in range(len(word), start, -1):
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                pieces.append(piece)
                start = end
                break
        else:
            return ["[UNK]"]
    return pieces


def test_wordpiece_check_passes_correct_and_stub_is_not_done():
    assert check_wordpiece_word(wordpiece_word)
    assert check_wordpiece_word(lambda word, vocab: encode_word(word, vocab))
    assert check_wordpiece_word(lambda word, vocab: None).status == "not done"
    assert "labkit's own function" in check_wordpiece_word(encode_word).report


def test_wordpiece_shortest_first_is_caught():
    def shortest_first(word, vocab):
        pieces, start = [], 0
        while start < len(word):
            for end in range(start + 1, len(word) + 1):  # the bug: shortest
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in vocab:
                    pieces.append(piece)
                    start = end
                    break
            else:
                return ["[UNK]"]
        return pieces

    result = check_wordpiece_word(shortest_first)
    assert result.status == "failed" and "cat" in result.failed_case.args[0]


def test_wordpiece_partial_unk_and_missing_prefix_are_caught():
    def partial_unk(word, vocab):
        pieces, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in vocab:
                    pieces.append(piece)
                    start = end
                    break
            else:
                return [*pieces, "[UNK]"]  # the bug: keeps what it found
        return pieces

    result = check_wordpiece_word(partial_unk)
    assert result.status == "failed" and result.failed_case.expected == ["[UNK]"]
    assert "not the pieces found so far" in result.failed_case.hint

    def no_prefix(word, vocab):
        pieces, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                if word[start:end] in vocab or "##" + word[start:end] in vocab:
                    pieces.append(word[start:end])  # the bug: no "##"
                    start = end
                    break
            else:
                return ["[UNK]"]
        return pieces

    assert check_wordpiece_word(no_prefix).failed_case.args[0] == "cats"


def test_wordpiece_that_backtracks_is_caught():
    def backtracking(word, vocab, start=0):  # longest first, then goes back
        if start == len(word):
            return []
        for end in range(len(word), start, -1):
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                rest = backtracking(word, vocab, end)
                if rest != ["[UNK]"]:
                    return [piece, *rest]
        return ["[UNK]"]

    result = check_wordpiece_word(backtracking)
    assert result.status == "failed" and "never goes back" in result.failed_case.hint


def test_viterbi_check_passes_correct_and_refuses_labkit():
    assert check_viterbi(lambda word, log_probs: viterbi(word, log_probs))
    assert check_viterbi(lambda word, log_probs: None).status == "not done"
    assert "labkit's own function" in check_viterbi(viterbi).report


def test_no_viterbi_case_has_a_tie():
    for case in _viterbi_cases():
        word, log_probs = case.args
        scores = Counter()
        for cuts in range(2 ** (len(word) - 1)):
            parts, start = [], 0
            for k in range(1, len(word)):
                if cuts >> (k - 1) & 1:
                    parts.append(word[start:k])
                    start = k
            parts.append(word[start:])
            if all(p in log_probs for p in parts):
                scores[round(sum(log_probs[p] for p in parts), 9)] += 1
        if scores:
            assert scores[max(scores)] == 1, case.label


def test_viterbi_greedy_and_fewest_pieces_are_caught():
    def greedy_longest(word, log_probs):
        pieces, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                if word[start:end] in log_probs:
                    pieces.append(word[start:end])
                    start = end
                    break
            else:
                raise ValueError(f"no piece at {start}")
        return pieces

    result = check_viterbi(greedy_longest)
    assert result.status == "failed" and "longest first" in result.failed_case.hint

    def fewest_pieces(word, log_probs):
        best = [(0, 0.0, [])] + [None] * len(word)  # (pieces, -score, cut)
        for end in range(1, len(word) + 1):
            for start in range(end):
                piece = word[start:end]
                if best[start] is not None and piece in log_probs:
                    n, s, cut = best[start]
                    cand = (n + 1, s - log_probs[piece], [*cut, piece])
                    if best[end] is None or cand[:2] < best[end][:2]:
                        best[end] = cand
        if best[-1] is None:
            raise ValueError("no segmentation")
        return best[-1][2]

    result = check_viterbi(fewest_pieces)
    assert result.status == "failed" and "fewer pieces" in result.failed_case.hint


def test_viterbi_that_does_not_raise_is_caught():
    def returns_empty(word, log_probs):
        try:
            return viterbi(word, log_probs)
        except ValueError:
            return []

    result = check_viterbi(returns_empty)
    assert result.status == "failed" and "raise ValueError" in result.failed_case.hint


def first_merge(word_counts, rule="score", prefix=True, weighted=True, denom="*"):
    unit_counts, pair_counts = Counter(), Counter()
    for word, n in word_counts.items():
        split = units(word) if prefix else tuple(word)
        n = n if weighted else 1
        for unit in split:
            unit_counts[unit] += n
        for pair in zip(split, split[1:], strict=False):
            pair_counts[pair] += n
    if not pair_counts:
        return None

    def score(pair):
        a, b = unit_counts[pair[0]], unit_counts[pair[1]]
        if rule == "count":
            return pair_counts[pair]
        return pair_counts[pair] / (a * b if denom == "*" else a + b)

    return max(sorted(pair_counts), key=lambda p: (score(p), pair_counts[p]))


def test_first_merge_check_passes_correct_and_refuses_labkit():
    assert check_first_merge(first_merge)
    assert check_first_merge(lambda wc: None).status == "not done"
    assert "labkit's own function" in check_first_merge(best_pair).report


def test_every_merge_case_has_one_best_pair():
    for case in _merge_cases():
        if case.expected is not None:
            assert _unique_best(case.args[0]), case.args


def test_first_merge_by_count_is_caught():
    result = check_first_merge(lambda wc: first_merge(wc, rule="count"))
    assert result.status == "failed"
    assert "occurs most often" in result.failed_case.hint


def test_first_merge_without_weights_prefix_or_product_is_caught():
    unweighted = check_first_merge(lambda wc: first_merge(wc, weighted=False))
    assert "weights" in unweighted.failed_case.hint
    no_prefix = check_first_merge(lambda wc: first_merge(wc, prefix=False))
    assert no_prefix.status == "failed" and "prefix ##" in no_prefix.failed_case.hint
    by_sum = check_first_merge(lambda wc: first_merge(wc, denom="+"))
    assert by_sum.status == "failed"


def test_first_merge_score_is_the_wordpiece_score():
    (case,) = [c for c in _merge_cases() if c.args == ({"pot": 5, "spot": 5},)]
    assert case.expected == ("s", "##p")
    assert math.isclose(5 / (5 * 5), 0.2)


def test_wordpiece_that_tries_only_short_pieces_is_caught():
    def up_to(max_len):
        def short_pieces(word, vocab):
            pieces, start = [], 0
            while start < len(word):
                for end in range(min(len(word), start + max_len), start, -1):
                    piece = word[start:end] if start == 0 else "##" + word[start:end]
                    if piece in vocab:
                        pieces.append(piece)
                        start = end
                        break
                else:
                    return ["[UNK]"]
            return pieces

        return short_pieces

    for max_len in (3, 4, 8):
        result = check_wordpiece_word(up_to(max_len))
        assert result.status == "failed", max_len
        assert "as long as the word" in result.failed_case.hint
    assert check_wordpiece_word(up_to(30))  # longer than every case's word


def test_viterbi_that_tries_only_short_pieces_is_caught():
    for max_len in (4, 7):
        result = check_viterbi(lambda w, lp, m=max_len: viterbi(w, lp, max_len=m))
        assert result.status == "failed", max_len
        assert "as long as the whole word" in result.failed_case.hint


def test_first_merge_counting_a_pair_once_per_word_is_caught():
    def once_per_word(word_counts):  # the bug: set() of a word's pairs
        unit_counts, pair_counts = Counter(), Counter()
        for word, n in word_counts.items():
            split = units(word)
            for unit in split:
                unit_counts[unit] += n
            for pair in set(zip(split, split[1:], strict=False)):
                pair_counts[pair] += n
        if not pair_counts:
            return None
        return max(
            sorted(pair_counts),
            key=lambda p: pair_counts[p] / (unit_counts[p[0]] * unit_counts[p[1]]),
        )

    result = check_first_merge(once_per_word)
    assert result.status == "failed"
    assert result.failed_case.args == ({"xababab": 1, "x": 1},)
    assert "counts each time" in result.failed_case.hint
