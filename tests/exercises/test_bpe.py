"""The BPE checks accept correct answers and reject plausible wrong ones."""

from collections import Counter
from itertools import pairwise

from labkit.exercises.bpe import (
    _encode_word,
    _learn_merges,
    check_encode_word,
    check_learn_merges,
    check_pair_count_changes,
)
from labkit.tokenizer import train_bpe


# --- learn_merges ---------------------------------------------------------
def merge_left_to_right(word, pair):
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(word[i] + word[i + 1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def merge_right_to_left(word, pair):
    flipped = merge_left_to_right(word[::-1], pair[::-1])
    return flipped[::-1]


def learn(
    word_counts, n_merges, *, pick=None, weighted=True, as_bytes=True, merge=None
):
    """A learner's trainer; the keywords plant one typical bug each."""
    words = Counter()
    for w, n in word_counts.items():
        data = w.encode() if as_bytes else w
        units = [data[i : i + 1] for i in range(len(data))]
        words[tuple(units)] += n if weighted else 1
    merges = []
    while len(merges) < n_merges:
        counts = Counter()
        for word, n in words.items():
            for pair in pairwise(word):
                counts[pair] += n
        if not counts:
            break
        best = pick(counts) if pick else max(counts, key=lambda p: (counts[p], p))
        merges.append(best)
        merge_word = merge or merge_left_to_right
        words = Counter({merge_word(w, best): n for w, n in words.items()})
    return merges


def test_learn_merges_passes_a_correct_trainer_and_says_not_done_for_a_stub():
    assert check_learn_merges(learn)
    assert check_learn_merges(lambda counts, n: None).status == "not done"


def test_learn_merges_refuses_labkit_and_its_own_reference():
    assert "labkit's own function" in check_learn_merges(_learn_merges).report
    assert "labkit's own function" in check_learn_merges(train_bpe).report


def test_ties_broken_by_first_seen_are_caught():
    def first_seen(counts, n):
        return learn(counts, n, pick=lambda c: c.most_common(1)[0][0])

    result = check_learn_merges(first_seen)
    assert result.status == "failed" and "tie" in result.failed_case.hint


def test_pairs_not_weighted_by_word_count_are_caught():
    result = check_learn_merges(lambda c, n: learn(c, n, weighted=False))
    assert result.status == "failed" and "weight" in result.failed_case.hint


def test_characters_instead_of_bytes_are_caught():
    def by_characters(counts, n):
        merges = learn(counts, n, as_bytes=False)
        return [(a.encode(), b.encode()) for a, b in merges]

    result = check_learn_merges(by_characters)
    assert result.status == "failed" and "UTF-8 bytes" in result.failed_case.hint


def test_merging_right_to_left_is_caught():
    result = check_learn_merges(lambda c, n: learn(c, n, merge=merge_right_to_left))
    assert result.status == "failed" and "left to right" in result.failed_case.hint


def test_a_trainer_that_fails_when_no_pair_is_left_is_caught():
    def raises_when_done(counts, n):
        merges = learn(counts, n)
        if len(merges) < n and counts:
            raise ValueError("ran out of pairs")
        return merges

    result = check_learn_merges(raises_when_done)
    assert result.status == "failed" and "stop" in result.failed_case.hint


def test_merges_as_lists_are_named():
    result = check_learn_merges(lambda c, n: [list(p) for p in learn(c, n)])
    assert result.status == "failed" and "(bytes, bytes) tuple" in result.report


# --- encode_word ----------------------------------------------------------
def encode(word, merges):
    rank = {pair: r for r, pair in enumerate(merges)}
    tokens = tuple(word[i : i + 1] for i in range(len(word)))
    while len(tokens) > 1:
        present = [p for p in pairwise(tokens) if p in rank]
        if not present:
            break
        tokens = merge_left_to_right(tokens, min(present, key=rank.get))
    return list(tokens)


def test_encode_word_passes_rank_order_and_says_not_done_for_a_stub():
    assert check_encode_word(encode)
    assert check_encode_word(lambda w, m: None).status == "not done"
    assert "labkit's own function" in check_encode_word(_encode_word).report


def test_encode_word_equals_merges_applied_in_list_order():
    """Replaying each merge once, in order, is the same as lowest rank first."""

    def in_order(word, merges):
        tokens = tuple(word[i : i + 1] for i in range(len(word)))
        for pair in merges:
            tokens = merge_left_to_right(tokens, pair)
        return list(tokens)

    assert check_encode_word(in_order)


def test_first_mergeable_pair_left_to_right_is_caught():
    def leftmost(word, merges):
        rank = {pair: r for r, pair in enumerate(merges)}
        tokens = tuple(word[i : i + 1] for i in range(len(word)))
        while True:
            found = next((p for p in pairwise(tokens) if p in rank), None)
            if found is None:
                return list(tokens)
            tokens = merge_left_to_right(tokens, found)

    result = check_encode_word(leftmost)
    assert result.status == "failed" and "by rank" in result.failed_case.hint


def test_greedy_longest_match_is_caught():
    def longest_match(word, merges):
        vocab = {bytes([b]) for b in range(256)} | {a + b for a, b in merges}
        out, i = [], 0
        while i < len(word):
            j = max(j for j in range(i + 1, len(word) + 1) if word[i:j] in vocab)
            out.append(word[i:j])
            i = j
        return out

    result = check_encode_word(longest_match)
    assert result.status == "failed" and "by rank" in result.failed_case.hint


def test_merging_only_the_first_occurrence_is_caught():
    def first_only(word, merges):
        tokens = [word[i : i + 1] for i in range(len(word))]
        for a, b in merges:
            for i in range(len(tokens) - 1):
                if (tokens[i], tokens[i + 1]) == (a, b):
                    tokens[i : i + 2] = [a + b]
                    break
        return tokens

    result = check_encode_word(first_only)
    assert result.status == "failed" and "every occurrence" in result.failed_case.hint


def test_tokens_that_lose_bytes_are_named():
    result = check_encode_word(lambda w, m: encode(w, m)[:-1] if w else [])
    assert result.status == "failed" and "do not spell the word" in result.report


# --- pair_count_changes ---------------------------------------------------
def changes(word, freq, pair):
    before = Counter(pairwise(word))
    after = Counter(pairwise(merge_left_to_right(word, pair)))
    return {p: freq * (after[p] - before[p]) for p in before | after}


def test_pair_count_changes_passes_a_recount_and_says_not_done_for_a_stub():
    assert check_pair_count_changes(changes)
    assert check_pair_count_changes(lambda w, f, p: None).status == "not done"


def test_neighbours_read_from_the_old_word_are_caught():
    """The classic incremental bug: each occurrence's neighbours taken from the
    word before the merge, so two occurrences side by side count wrongly."""

    def old_neighbours(word, freq, pair):
        a, b = pair
        delta = Counter()
        i = 0
        while i < len(word) - 1:
            if (word[i], word[i + 1]) == pair:
                delta[pair] -= freq
                if i > 0:
                    delta[word[i - 1], a] -= freq
                    delta[word[i - 1], a + b] += freq
                if i + 2 < len(word):
                    delta[b, word[i + 2]] -= freq
                    delta[a + b, word[i + 2]] += freq
                i += 2
            else:
                i += 1
        return dict(delta)

    result = check_pair_count_changes(old_neighbours)
    assert result.status == "failed" and "side by side" in result.failed_case.hint


def test_changes_not_weighted_by_freq_are_caught():
    result = check_pair_count_changes(lambda w, f, p: changes(w, 1, p))
    assert result.status == "failed" and "5 times" in result.failed_case.hint


def test_one_lost_pair_per_merge_is_caught():
    """'aaa' holds (a, a) twice but takes one merge: both counts must go."""

    def per_merge(word, freq, pair):
        delta = changes(word, freq, pair)
        n_merged = len(word) - len(merge_left_to_right(word, pair))
        delta[pair] = -freq * n_merged
        return delta

    result = check_pair_count_changes(per_merge)
    assert result.status == "failed" and "twice" in result.failed_case.hint


def test_non_int_changes_are_named():
    result = check_pair_count_changes(
        lambda w, f, p: {k: float(v) for k, v in changes(w, f, p).items()}
    )
    assert result.status == "failed" and "not an int" in result.report
