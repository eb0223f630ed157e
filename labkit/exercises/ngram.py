"""Checks for the exercises of the chapter on counting models.

The learner writes, for a training text and a context (both ``bytes``), the
distribution of the next byte: add-alpha smoothed (``check_next_byte_probs``)
and interpolated down to the uniform distribution
(``check_interpolated_probs``). The references are labkit.ngram's counts
smoothed by labkit.smoothing, wrapped to take bytes (``add_alpha_probs``,
``interpolated_probs``); they are refused if handed in.

Built in: notebooks/04_counting_models.ipynb.
"""

from __future__ import annotations

import random

import numpy as np

from labkit.exercises import Case, CheckResult, run_check
from labkit.ngram import count_ngrams, lookup_context
from labkit.smoothing import add_alpha, interpolate

V = 256  # byte values


def _looked(train: bytes, context: bytes):
    counts = count_ngrams(np.frombuffer(train, np.uint8), len(context) + 1)
    return lookup_context(counts, np.frombuffer(context, np.uint8))


def add_alpha_probs(train: bytes, context: bytes, alpha: float) -> np.ndarray:
    """(N(c, x) + alpha) / (N(c) + 256 alpha) for every byte x after c.

    Shapes: returns (256,), summing to 1.
    """
    return add_alpha(_looked(train, context), alpha)


def interpolated_probs(train: bytes, context: bytes, beta: float) -> np.ndarray:
    """(N(c, x) + beta p') / (N(c) + beta), from p' = 1/256 through every
    suffix of the context, shortest first.

    Shapes: returns (256,), summing to 1.
    """
    return interpolate(_looked(train, context), beta)


def probs_close(expected: np.ndarray, returned) -> str | None:
    """256 probabilities compared at 1e-9, naming the first byte that differs."""
    try:
        got = np.asarray(returned, dtype=np.float64)
    except (TypeError, ValueError):
        return f"expected 256 probabilities, got {type(returned).__name__}"
    if got.shape != expected.shape:
        return f"shape {got.shape}, expected {expected.shape} (one per byte value)"
    if not np.isfinite(got).all():
        return "NaN or inf in the result (a division by zero?)"
    wrong = ~np.isclose(got, expected, rtol=1e-9, atol=1e-12)
    if not wrong.any():
        return None
    i = int(np.flatnonzero(wrong)[0])
    total = "" if np.isclose(got.sum(), 1) else f"; they sum to {got.sum():.6g}, not 1"
    return (
        f"{int(wrong.sum())} of 256 differ; first at byte {i} ({bytes([i])!r}): "
        f"{got[i]:.6g}, expected {expected[i]:.6g}{total}"
    )


def _label(train: bytes, context: bytes, value: float, name: str) -> str:
    shown = repr(train) if len(train) <= 40 else repr(train[:37]) + "..."
    return f"train={shown} ({len(train)} bytes), context={context!r}, {name}={value}"


def _random_cases(reference, name: str, values, hint: str) -> list[Case]:
    rng = random.Random(0)
    cases = []
    for _ in range(20):
        alphabet = rng.choice([b"ab", b"abc", b"abcde", b"xy z."])
        train = bytes(rng.choice(alphabet) for _ in range(rng.randint(5, 80)))
        length = rng.randint(0, 3)
        if rng.random() < 0.7 and len(train) > length:  # a context from the text
            start = rng.randint(0, len(train) - length)
            context = train[start : start + length]
        else:
            context = bytes(rng.choice(alphabet) for _ in range(length))
        value = rng.choice(values)
        expected = reference(train, context, value)
        label = _label(train, context, value, name)
        cases.append(Case((train, context, value), expected, hint, label=label))
    return cases


def _case(reference, name, train, context, value, hint) -> Case:
    expected = reference(train, context, value)
    label = _label(train, context, value, name)
    return Case((train, context, value), expected, hint, label=label)


def _add_alpha_cases() -> list[Case]:
    def case(train, context, alpha, hint):
        return _case(add_alpha_probs, "alpha", train, context, alpha, hint)

    return [
        case(
            b"abab",
            b"a",
            1.0,
            "'a' is followed by 'b' twice: p(b) = (2 + 1) / "
            "(2 + 256), every other byte (0 + 1) / (2 + 256)",
        ),
        case(
            b"abab",
            b"b",
            1.0,
            "the last 'b' has no next byte: N(c) counts only "
            "the occurrences that something follows (here 1)",
        ),
        case(
            b"aaaaa",
            b"aa",
            0.5,
            "occurrences overlap: 'aa' starts at 0, 1, 2 "
            "and 3, and three of them are followed by a byte (bytes.count finds "
            "only 2)",
        ),
        case(
            b"abc",
            b"zz",
            0.1,
            "a context never seen: N(c) = 0, so every byte "
            "gets alpha / (256 alpha) = 1/256",
        ),
        case(
            b"banana",
            b"",
            0.01,
            "an empty context is the unigram model: N(c) is the length of the text",
        ),
        case(
            "café, café".encode(),
            b"\xc3",
            0.01,
            "work with byte values 0..255, not characters: 'é' is the two bytes c3 a9",
        ),
        case(
            b"the cat sat",
            b"at",
            0.001,
            "a small alpha: close to the counted frequencies",
        ),
    ] + _random_cases(add_alpha_probs, "alpha", [0.01, 0.1, 1.0], "random text")


def check_next_byte_probs(fn) -> CheckResult:
    """Check ``fn(train, context, alpha) -> (256,)``: add-alpha probabilities
    of the byte after ``context``, counted in ``train`` (both bytes).
    """
    return run_check(
        "check_next_byte_probs",
        fn,
        _add_alpha_cases(),
        probs_close,
        summary="a seen context, one at the end, overlapping runs, an unseen "
        "context, no context, non-ASCII bytes, 20 random",
        forbidden=("labkit", "NGram(", "next_counts("),
        references=(add_alpha_probs,),
    )


def _interpolated_cases() -> list[Case]:
    def case(train, context, beta, hint):
        return _case(interpolated_probs, "beta", train, context, beta, hint)

    return [
        case(
            b"abab",
            b"",
            1.0,
            "no context: (N(x) + beta / 256) / (4 + beta): "
            "start from the uniform 1/256",
        ),
        case(
            b"abab",
            b"a",
            2.0,
            "two orders: the unigram step first, then the "
            "one-byte context 'a' with the unigram as its prior",
        ),
        case(
            b"abcbdad",
            b"ab",
            1.0,
            "the shorter context is the last byte, 'b' "
            "(context[1:]), not the first, 'a'",
        ),
        case(
            b"abcabc",
            b"zc",
            1.0,
            "'zc' was never seen: an unseen context "
            "leaves the shorter model's prediction as it is",
        ),
        case(b"abcabc", b"c", 1.0, "the last 'c' has no next byte: N('c') is 1"),
        case(
            b"aaaaa",
            b"aa",
            0.5,
            "occurrences overlap: 'aa' is followed by a byte 3 times",
        ),
        case(b"the cat sat", b"at", 100.0, "a large beta trusts the shorter contexts"),
        case("café, café".encode(), b"\xc3", 1.0, "byte values, not characters"),
    ] + _random_cases(interpolated_probs, "beta", [0.5, 1.0, 10.0], "random text")


def check_interpolated_probs(fn) -> CheckResult:
    """Check ``fn(train, context, beta) -> (256,)``: interpolated probabilities
    of the byte after ``context``, from 1/256 up through its suffixes.
    """
    return run_check(
        "check_interpolated_probs",
        fn,
        _interpolated_cases(),
        probs_close,
        summary="no context, two orders, the suffix not the prefix, an unseen "
        "context, one at the end, overlaps, a large beta, non-ASCII, 20 random",
        forbidden=("labkit", "interpolated_p("),
        references=(interpolated_probs,),
    )
