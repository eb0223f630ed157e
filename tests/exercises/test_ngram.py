"""The counting-model checks accept correct answers and reject plausible wrong ones."""

from collections import Counter

import numpy as np

from labkit.exercises.ngram import (
    add_alpha_probs,
    check_interpolated_probs,
    check_next_byte_probs,
    interpolated_probs,
)


def counted(train: bytes, context: bytes) -> tuple[np.ndarray, int]:
    """N(c, x) for every byte x, and N(c), by sliding over the text."""
    k = len(context)
    follow = np.zeros(256)
    for i in range(len(train) - k):
        if train[i : i + k] == context:
            follow[train[i + k]] += 1
    return follow, int(follow.sum())


def next_byte_probs(train, context, alpha):
    follow, total = counted(train, context)
    return (follow + alpha) / (total + 256 * alpha)


def interpolated(train, context, beta):
    p = np.full(256, 1 / 256)
    for k in range(len(context) + 1):
        follow, total = counted(train, context[len(context) - k :])
        p = (follow + beta * p) / (total + beta)
    return p


def test_correct_answers_pass_and_stubs_are_not_done():
    assert check_next_byte_probs(next_byte_probs)
    assert check_interpolated_probs(interpolated)
    assert check_next_byte_probs(lambda t, c, a: None).status == "not done"

    def stub(train, context, beta):
        raise NotImplementedError

    assert check_interpolated_probs(stub).status == "not done"


def test_labkit_references_are_refused_and_labkit_calls_forbidden():
    assert "labkit's own function" in check_next_byte_probs(add_alpha_probs).report
    assert (
        "labkit's own function" in check_interpolated_probs(interpolated_probs).report
    )

    def via_labkit(train, context, alpha):
        from labkit.exercises.ngram import add_alpha_probs as reference

        return reference(train, context, alpha)

    result = check_next_byte_probs(via_labkit)
    assert result.status == "failed" and "uses 'labkit'" in result.report


def failed_hint(result) -> str:
    assert result.status == "failed", result.report
    return result.failed_case.hint


def test_denominator_without_256_alpha_is_caught():
    def half_smoothed(train, context, alpha):
        follow, total = counted(train, context)
        return (follow + alpha) / (total + alpha)

    assert "p(b) = (2 + 1)" in failed_hint(check_next_byte_probs(half_smoothed))


def test_counting_the_last_occurrence_is_caught():
    def counts_every_occurrence(train, context, alpha):
        follow, _ = counted(train, context)
        k = len(context)
        total = sum(train[i : i + k] == context for i in range(len(train) - k + 1))
        return (follow + alpha) / (total + 256 * alpha)

    hint = failed_hint(check_next_byte_probs(counts_every_occurrence))
    assert "no next byte" in hint


def test_non_overlapping_counts_are_caught():
    def with_bytes_count(train, context, alpha):
        follow = np.zeros(256)
        pieces = Counter(
            train[i + len(context)]
            for i in range(len(train) - len(context))
            if train[i : i + len(context)] == context
        )
        for x, c in pieces.items():
            follow[x] = c
        total = train[:-1].count(context) if context else len(train)  # no overlaps
        return (follow + alpha) / (total + 256 * alpha)

    assert "overlap" in failed_hint(check_next_byte_probs(with_bytes_count))


def test_characters_instead_of_bytes_are_caught():
    def by_characters(train, context, alpha):
        text, ctx = train.decode("utf-8", "replace"), context.decode("utf-8", "replace")
        follow = np.zeros(256)
        for i in range(len(text) - len(ctx)):
            if text[i : i + len(ctx)] == ctx and ord(text[i + len(ctx)]) < 256:
                follow[ord(text[i + len(ctx)])] += 1
        return (follow + alpha) / (follow.sum() + 256 * alpha)

    assert "byte values" in failed_hint(check_next_byte_probs(by_characters))


def test_backing_off_on_an_unseen_context_is_caught():
    def backs_off(train, context, alpha):
        follow, total = counted(train, context)
        if total == 0:  # not add-alpha any more: the unigram instead
            follow, total = counted(train, b"")
        return (follow + alpha) / (total + 256 * alpha)

    assert "never seen" in failed_hint(check_next_byte_probs(backs_off))


def test_interpolating_through_prefixes_is_caught():
    def prefixes(train, context, beta):
        p = np.full(256, 1 / 256)
        for k in range(len(context) + 1):
            follow, total = counted(train, context[:k])  # the oldest bytes
            p = (follow + beta * p) / (total + beta)
        return p

    assert "context[1:]" in failed_hint(check_interpolated_probs(prefixes))


def test_interpolation_without_the_uniform_base_is_caught():
    def from_unigram(train, context, beta):
        follow, total = counted(train, b"")
        p = follow / total  # zero for every byte the text lacks
        for k in range(1, len(context) + 1):
            follow, total = counted(train, context[len(context) - k :])
            p = (follow + beta * p) / (total + beta)
        return p

    assert "uniform" in failed_hint(check_interpolated_probs(from_unigram))


def test_add_beta_at_one_order_is_not_interpolation():
    def add_alpha_only(train, context, beta):
        follow, total = counted(train, context)
        return (follow + beta / 256) / (total + beta)

    assert check_interpolated_probs(add_alpha_only).status == "failed"


def test_longest_context_first_is_caught():
    def reversed_order(train, context, beta):
        p = np.full(256, 1 / 256)
        for k in range(len(context), -1, -1):
            follow, total = counted(train, context[len(context) - k :])
            p = (follow + beta * p) / (total + beta)
        return p

    assert check_interpolated_probs(reversed_order).status == "failed"
