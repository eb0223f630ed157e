"""Checks for the special-token exercise of the chapter on byte-pair encoding.

``split_special(text, special_tokens)``: text cut into pieces, each special
token (``<|endoftext|>``) a piece of its own, written by scanning the text
from left to right (no regular expressions: the chapter builds the
regular-expression version): where special tokens start at the current
place, the longest of them is a piece; otherwise the scan moves on by one
character. So ``<|a|><|b|>`` beats ``<|a|>`` (both start at one place), but
``abcd`` with ``ab`` and ``bcd`` is ``ab``, ``cd`` (``ab`` starts first).
The reference is pretokenize.py's ``split_special``, which the trainers and
the Tokenizer use before any pre-tokenisation.

Built in: notebooks/02_byte_pair_encoding.ipynb.
"""

from __future__ import annotations

import random

from labkit.exercises import Case, CheckResult, run_check, short
from labkit.tokenizer.pretokenize import special_regex
from labkit.tokenizer.pretokenize import split_special as _lib_split_special

_RE_CALLS = tuple(
    f"re.{name}(" for name in ("split", "finditer", "compile", "search", "match")
) + ("re.findall(", "re.sub(", "re.fullmatch(")


def _split_special(text: str, special_tokens: list[str]) -> list[str]:
    special = special_regex(special_tokens)
    return [piece for piece, _ in _lib_split_special(text, special)]


def _compare_pieces(expected: list[str], returned) -> str | None:
    if not isinstance(returned, list | tuple):
        return f"expected a list of pieces, got {type(returned).__name__}"
    got = list(returned)
    if not all(isinstance(piece, str) for piece in got):
        return "each piece must be a str"
    if "".join(got) != "".join(expected):
        return "the pieces do not join back to the text"
    for i, (e, r) in enumerate(zip(expected, got, strict=False)):
        if r != e:
            return f"piece {i} is {short(r)}, expected {short(e)}"
    if len(got) != len(expected):
        return f"{len(got)} pieces, expected {len(expected)}"
    return None


def _split_cases() -> list[Case]:
    eot = "<|endoftext|>"

    def case(text: str, specials: list[str], hint: str) -> Case:
        label = f"text={text!r}, special_tokens={specials!r}"
        expected = _split_special(text, specials)
        return Case((text, specials), expected, hint, label=label)

    cases = [
        case(
            f"a{eot}b",
            [eot],
            "the special token is one piece, the text on each side of it another",
        ),
        case("plain text", [eot], "no special token in the text: one piece"),
        case("", [eot], "no text, no pieces: an empty string is not a piece"),
        case("a<b", [], "no special tokens: the text is one piece"),
        case(
            f"{eot}{eot}x",
            [eot],
            "two special tokens in a row are two pieces; drop empty pieces",
        ),
        case(
            "one <|two",
            [eot],
            "'<|' is only the start of a special token: text that merely "
            "looks like part of one stays ordinary text",
        ),
        case(
            "x<|a|><|b|>y",
            ["<|a|>", "<|a|><|b|>"],
            "where two special tokens overlap, the longer one wins",
        ),
        case(
            "abcd",
            ["ab", "bcd"],
            "scan from the left: 'ab' starts first, so it is taken although "
            "'bcd' is longer, and the rest, 'cd', is ordinary text (longest "
            "first decides only between tokens that start at one place)",
        ),
        case(
            "xabcdy",
            ["bcd", "ab"],
            "'ab' starts at 'a', one place before 'bcd' would: it is taken, "
            "and the rest is 'cd', then 'y'",
        ),
        case(
            "1+1=2<|fim|>",
            ["+", "<|fim|>"],
            "'+' is a special token here; the text between two special "
            "tokens is one piece",
        ),
        case(f"café {eot}\nnaïve", [eot], "any characters around them"),
    ]
    rng = random.Random(2)
    specials = [eot, "<|pad|>", "<|pad|><|pad|>", "[x]"]
    for _ in range(12):
        parts = [
            rng.choice([*specials, "ab", " c", "|", "<", "x]", "\n"])
            for _ in range(rng.randint(1, 8))
        ]
        chosen = rng.sample(specials, rng.randint(1, len(specials)))
        cases.append(case("".join(parts), chosen, "random text and tokens"))
    return cases


def check_split_special(fn) -> CheckResult:
    """Check ``fn(text, special_tokens: list[str]) -> list[str]``: ``text`` cut
    into pieces, each special token a piece of its own, the text between them
    in between, no empty pieces. Scanning from the left, the longest special
    token that starts at a place is taken there. The function may not use
    regular expressions (``regex``, ``re.split``, ...).
    """
    return run_check(
        "check_split_special",
        fn,
        _split_cases(),
        _compare_pieces,
        summary="one token, none, empty text, tokens in a row, regex "
        "characters, overlaps from one place and from two, 12 random",
        forbidden=("labkit", "my_split_special", "regex", *_RE_CALLS),
        references=(_split_special, _lib_split_special),
    )
