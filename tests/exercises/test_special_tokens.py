"""The special-token check accepts a correct split and rejects wrong ones."""

import regex

from labkit.exercises.special_tokens import _split_special, check_split_special


def split(text, special_tokens):
    if not special_tokens:
        return [text] if text else []
    longest_first = sorted(special_tokens, key=len, reverse=True)
    alternatives = "|".join(regex.escape(t) for t in longest_first)
    return [p for p in regex.split(f"({alternatives})", text) if p]


def test_split_special_passes_and_says_not_done_for_a_stub():
    assert check_split_special(split)
    assert check_split_special(lambda t, s: None).status == "not done"


def test_unescaped_special_tokens_are_caught():
    def unescaped(text, special_tokens):
        if not special_tokens:
            return [text] if text else []
        pattern = "|".join(sorted(special_tokens, key=len, reverse=True))
        return [p for p in regex.split(f"({pattern})", text) if p]

    result = check_split_special(unescaped)
    assert result.status == "failed" and "escape" in result.failed_case.hint


def test_shortest_special_token_first_is_caught():
    def shortest_first(text, special_tokens):
        if not special_tokens:
            return [text] if text else []
        ordered = sorted(special_tokens, key=len)
        alternatives = "|".join(regex.escape(t) for t in ordered)
        return [p for p in regex.split(f"({alternatives})", text) if p]

    result = check_split_special(shortest_first)
    assert result.status == "failed" and "longer one wins" in result.failed_case.hint


def test_empty_pieces_kept_are_caught():
    def keeps_empty(text, special_tokens):
        if not special_tokens:
            return [text]
        alternatives = "|".join(
            regex.escape(t) for t in sorted(special_tokens, key=len, reverse=True)
        )
        return regex.split(f"({alternatives})", text)

    assert check_split_special(keeps_empty).status == "failed"


def test_split_special_refuses_its_own_reference():
    assert "labkit's own function" in check_split_special(_split_special).report
