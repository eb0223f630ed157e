"""Checks for the exercises of the chapter on text as numbers (UTF-8).

The reference is Python's own UTF-8 codec, which follows the standard strictly:
it refuses overlong forms, surrogates, code points past U+10FFFF and broken
continuation bytes.

Built in: notebooks/01_text_as_numbers.ipynb.
"""

from __future__ import annotations

import random

from labkit.exercises import Case, CheckResult, Raises, exact, run_check

_LENGTH_SPANS = [(0x00, 0x7F), (0x80, 0x7FF), (0x800, 0xFFFF), (0x10000, 0x10FFFF)]


def _random_code_point(rng: random.Random, n_bytes: int) -> int:
    low, high = _LENGTH_SPANS[n_bytes - 1]
    while True:
        cp = rng.randint(low, high)
        if not 0xD800 <= cp <= 0xDFFF:
            return cp


def _decode_cases() -> list[Case]:
    def valid(data: list[int], hint: str) -> Case:
        text = bytes(data).decode("utf-8")
        return Case((data,), ord(text), hint, label=f"{data} ({text!r})")

    def invalid(data: list[int], hint: str) -> Case:
        return Case((data,), Raises(ValueError), hint, label=str(data))

    cases = [
        valid([0x41], "one byte below 0x80 is the code point itself"),
        valid([0xC3, 0xA9], "two bytes: 5 bits from the lead byte, 6 from the next"),
        valid([0xE2, 0x82, 0xAC], "three bytes: 4 + 6 + 6 bits"),
        valid([0xF0, 0x9F, 0x99, 0x82], "four bytes: 3 + 6 + 6 + 6 bits"),
        valid([0x7F], "the largest one-byte code point"),
        valid([0xC2, 0x80], "the smallest two-byte code point, U+0080"),
        valid([0xDF, 0xBF], "the largest two-byte code point, U+07FF"),
        valid([0xE0, 0xA0, 0x80], "the smallest three-byte code point, U+0800"),
        valid([0xEF, 0xBF, 0xBF], "U+FFFF: keep all 4 payload bits of 0xEF"),
        valid([0xF4, 0x8F, 0xBF, 0xBF], "U+10FFFF, the last code point there is"),
    ]
    rng = random.Random(0)
    for n_bytes in (1, 2, 3, 4):
        for _ in range(25):
            data = list(chr(_random_code_point(rng, n_bytes)).encode("utf-8"))
            cases.append(valid(data, f"a random {n_bytes}-byte character"))
    cases += [
        invalid([0x80], "a continuation byte (10xxxxxx) cannot start a character"),
        invalid([0xC3], "a lead byte that announces 2 bytes, with only 1 given"),
        invalid([0xC3, 0x28], "the second byte must start with the bits 10"),
        invalid(
            [0xC0, 0xAF],
            "overlong: '/' written in 2 bytes; UTF-8 allows "
            "only the shortest form (a classic filter-bypass trick)",
        ),
        invalid([0xE0, 0x80, 0xAF], "overlong: '/' written in 3 bytes"),
        invalid([0xED, 0xA0, 0x80], "U+D800 is a surrogate, not a character"),
        invalid([0xF4, 0x90, 0x80, 0x80], "U+110000 is past U+10FFFF"),
        invalid([0xFF], "0xFF is never a valid byte in UTF-8"),
        invalid([0x41, 0x42], "two characters, not one: the lead byte says 1 byte"),
        invalid([0xC3, 0xA9, 0x41], "an extra byte after a whole character"),
        invalid([0xE2, 0x82], "a three-byte character cut short"),
        invalid([0xF0, 0x9F, 0x99], "a four-byte character cut short"),
        invalid([0xE2, 0x82, 0x2C], "the third byte must start with 10 too"),
        invalid([0xF0, 0x9F, 0x99, 0x41], "so must the fourth"),
        invalid([0xF0, 0x8F, 0xBF, 0xBF], "overlong: U+FFFF written in 4 bytes"),
        invalid([0xC1, 0xBF], "overlong: a lead byte C0 or C1 always is"),
        invalid(
            [0xF5, 0x80, 0x80, 0x80],
            "a lead byte F5 or above would start a code point past U+10FFFF",
        ),
        invalid([], "no bytes at all: raise ValueError, not IndexError"),
    ]
    return cases


def check_utf8_decode_char(fn) -> CheckResult:
    """Check ``fn(data: list[int]) -> int``: one character's UTF-8 bytes to its
    code point, raising ValueError for anything that is not exactly one valid,
    shortest-form UTF-8 character. The function may not call ``.decode``.
    """
    cases = _decode_cases()
    n_invalid = sum(isinstance(c.expected, Raises) for c in cases)
    return run_check(
        "check_utf8_decode_char",
        fn,
        cases,
        exact,
        summary=f"every length at its boundaries, 100 random characters, "
        f"{n_invalid} invalid sequences",
        forbidden=(".decode(",),
    )


def _char_starts(data: bytes) -> list[int]:
    return [i for i, byte in enumerate(data) if byte & 0b1100_0000 != 0b1000_0000]


def _starts_cases() -> list[Case]:
    def case(data: bytes, hint: str) -> Case:
        return Case((data,), _char_starts(data), hint, label=repr(data))

    cut = "🙂ab".encode()[1:]
    lost = bytearray("日本語".encode())
    del lost[4]  # a byte lost inside the second character
    cases = [
        case(b"abc", "in ASCII every byte starts a character"),
        case(b"", "no bytes, no characters"),
        case(
            "é".encode(), "a lead byte 110xxxxx starts a character; 10xxxxxx does not"
        ),
        case("naïve café".encode(), "mixed one- and two-byte characters"),
        case(
            cut,
            "the stream starts in the middle of a character: skip its "
            "continuation bytes rather than reading lengths from offset 0",
        ),
        case(
            bytes(lost),
            "a byte was lost inside a character: the next lead "
            "byte is still recognised",
        ),
    ]
    rng = random.Random(1)
    for _ in range(40):
        text = "".join(
            chr(_random_code_point(rng, rng.randint(1, 4))) for _ in range(8)
        )
        data = bytearray(text.encode())
        for _ in range(rng.randint(0, 2)):  # lose a byte or two anywhere
            del data[rng.randrange(len(data))]
        cases.append(case(bytes(data), "random characters, some bytes lost"))
    return cases


def check_char_starts(fn) -> CheckResult:
    """Check ``fn(data: bytes) -> list[int]``: the offsets in ``data`` where a
    character starts, even when ``data`` begins mid-character or lost a byte.
    """
    return run_check(
        "check_char_starts",
        fn,
        _starts_cases(),
        exact,
        summary="ASCII, mixed scripts, streams cut mid-character, lost bytes",
    )
