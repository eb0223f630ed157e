"""The special-token check accepts a correct split and rejects wrong ones."""

import regex

from labkit.exercises.special_tokens import _split_special, check_split_special


def scan(text, special_tokens, *, order=None, keep_empty=False):
    """Split by scanning; the keywords plant one typical bug each."""
    ordered = sorted(special_tokens, key=order or (lambda t: -len(t)))
    pieces, start, i = [], 0, 0
    while i < len(text):
        found = next((t for t in ordered if text.startswith(t, i)), None)
        if found is None:
            i += 1
            continue
        pieces += [text[start:i], found]
        i = start = i + len(found)
    pieces.append(text[start:])
    return pieces if keep_empty else [p for p in pieces if p]


def split(text, special_tokens):
    return scan(text, special_tokens)


def test_split_special_passes_and_says_not_done_for_a_stub():
    assert check_split_special(split)
    assert check_split_special(lambda t, s: None).status == "not done"


def test_regular_expressions_are_refused():
    def by_regex(text, special_tokens):
        alternatives = "|".join(regex.escape(t) for t in special_tokens)
        return [p for p in regex.split(f"({alternatives})", text) if p]

    result = check_split_special(by_regex)
    assert result.status == "failed" and "uses 'regex'" in result.report

    def by_re(text, special_tokens):
        import re

        return [p for p in re.split("(" + "|".join(special_tokens) + ")", text) if p]

    assert "uses 're.split('" in check_split_special(by_re).report


def test_shortest_special_token_first_is_caught():
    result = check_split_special(lambda t, s: scan(t, s, order=len))
    assert result.status == "failed" and "longer one wins" in result.failed_case.hint


def test_empty_pieces_kept_are_caught():
    result = check_split_special(lambda t, s: scan(t, s, keep_empty=True))
    assert result.status == "failed" and "empty" in result.failed_case.hint


def test_a_partial_special_token_split_off_is_caught():
    def splits_prefixes(text, special_tokens):
        pieces = scan(text, special_tokens)
        return [q for p in pieces for q in p.replace("<|", "\0<|").split("\0") if q]

    result = check_split_special(splits_prefixes)
    assert result.status == "failed" and "only the start" in result.failed_case.hint


def test_split_special_refuses_its_own_reference():
    assert "labkit's own function" in check_split_special(_split_special).report


def test_splitting_on_each_token_longest_first_is_caught():
    """str.split on each special token in turn, longest first, passes every
    case where overlapping tokens start at one place; where they overlap
    partly ('ab' and 'bcd' in 'abcd') it takes the longer one, not the one
    that starts first."""

    def split_each(text, special_tokens):
        pieces = [text]
        for token in sorted(special_tokens, key=len, reverse=True):
            cut = []
            for piece in pieces:
                if piece in special_tokens:
                    cut.append(piece)
                    continue
                for k, part in enumerate(piece.split(token)):
                    cut += [token, part] if k else [part]
            pieces = cut
        return [p for p in pieces if p]

    assert split_each("x<|a|><|b|>y", ["<|a|>", "<|a|><|b|>"]) == [
        "x",
        "<|a|><|b|>",
        "y",
    ]
    assert split_each("abcd", ["ab", "bcd"]) == ["a", "bcd"]  # the bug
    assert _split_special("abcd", ["ab", "bcd"]) == ["ab", "cd"]  # the rule
    result = check_split_special(split_each)
    assert result.status == "failed" and "starts first" in result.failed_case.hint


def test_the_order_the_tokens_are_given_in_does_not_decide():
    def in_given_order(text, special_tokens):
        return scan(text, special_tokens, order=special_tokens.index)

    result = check_split_special(in_given_order)
    assert result.status == "failed" and "longer one wins" in result.failed_case.hint
