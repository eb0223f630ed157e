"""The UTF-8 checks accept correct answers and reject plausible wrong ones."""

from labkit.exercises.utf8 import check_char_starts, check_utf8_decode_char


def decode_char(data):
    if not data:
        raise ValueError("no bytes")
    n = len(data)
    lead = data[0]
    expected_n = (
        1
        if lead < 0x80
        else 2
        if lead >> 5 == 6
        else 3
        if lead >> 4 == 14
        else 4
        if lead >> 3 == 30
        else 0
    )
    if expected_n != n or any(b >> 6 != 2 for b in data[1:]):
        raise ValueError("not one well-formed character")
    cp = lead if n == 1 else lead & (0xFF >> (n + 1))
    for byte in data[1:]:
        cp = cp << 6 | byte & 0x3F
    shortest = 1 if cp < 0x80 else 2 if cp < 0x800 else 3 if cp < 0x10000 else 4
    if shortest != n or 0xD800 <= cp <= 0xDFFF or cp > 0x10FFFF:
        raise ValueError("overlong, surrogate or out of range")
    return cp


def test_a_correct_decoder_passes():
    assert check_utf8_decode_char(decode_char)


def test_python_itself_agrees_but_calling_decode_is_refused():
    def by_python(data):
        text = bytes(data).decode("utf-8")
        if len(text) != 1:
            raise ValueError("not one character")
        return ord(text)

    result = check_utf8_decode_char(by_python)
    assert result.status == "failed" and "uses '.decode('" in result.report
    from labkit.exercises.utf8 import _decode_cases

    for case in _decode_cases():  # the cases themselves are Python's verdicts
        try:
            got = by_python(*case.args)
        except ValueError:
            got = "raises"
        assert got == ("raises" if hasattr(case.expected, "error") else case.expected)


def test_a_decoder_that_checks_only_the_second_byte_is_caught():
    def second_only(data):
        if not data or data[0] >> 6 == 2 or data[0] > 0xF4:
            raise ValueError("bad lead")
        n = 1 if data[0] < 0x80 else 2 if data[0] < 0xE0 else 3 if data[0] < 0xF0 else 4
        if len(data) < n or (n > 1 and data[1] >> 6 != 2) or len(data) == 2 == n + 1:
            raise ValueError("bad")
        cp = data[0] & (0xFF >> (n + 1)) if n > 1 else data[0]
        for byte in data[1:n]:
            cp = cp << 6 | byte & 0x3F
        if n == 2 and cp < 0x80 or n == 3 and cp < 0x800:
            raise ValueError("overlong")
        if 0xD800 <= cp <= 0xDFFF or cp > 0x10FFFF:
            raise ValueError("range")
        return cp

    result = check_utf8_decode_char(second_only)
    assert result.status == "failed"
    assert result.failed_case.args in (([0xC3, 0xA9, 0x41],), ([0xE2, 0x82, 0x2C],))


def test_continuation_bytes_left_unmasked_are_caught():
    def unmasked(data):
        cp = data[0] & (0xFF >> (len(data) + 1)) if len(data) > 1 else data[0]
        for byte in data[1:]:
            cp = cp << 6 | byte  # forgot & 0x3F
        return cp

    result = check_utf8_decode_char(unmasked)
    # 2- and 3-byte characters can survive by luck (the stray 10 bits land on
    # bits that are already set); a 4-byte one cannot
    assert result.status == "failed"
    assert result.failed_case.args == ([0xF0, 0x9F, 0x99, 0x82],)


def test_a_decoder_that_accepts_overlong_forms_is_caught():
    def lenient(data):
        cp = data[0] & (0xFF >> (len(data) + 1)) if len(data) > 1 else data[0]
        if len(data) > 1 and any(b >> 6 != 2 for b in data[1:]):
            raise ValueError("bad continuation")
        if data[0] >> 6 == 2 or data[0] == 0xFF or (data[0] >= 0xC0 and len(data) == 1):
            raise ValueError("bad lead")
        for byte in data[1:]:
            cp = cp << 6 | byte & 0x3F
        if len(data) == 2 and data[0] < 0x80:
            raise ValueError("two characters")
        return cp

    result = check_utf8_decode_char(lenient)
    assert result.status == "failed"
    assert "overlong" in result.failed_case.hint


def test_char_starts_accepts_the_bit_test_and_rejects_length_hopping():
    assert check_char_starts(lambda d: [i for i, b in enumerate(d) if b >> 6 != 2])

    def hop_by_length(data):
        starts, i = [], 0
        while i < len(data):
            starts.append(i)
            b = data[i]
            i += 1 if b < 0x80 else 2 if b < 0xE0 else 3 if b < 0xF0 else 4
        return starts

    result = check_char_starts(hop_by_length)
    assert result.status == "failed"
    assert "middle of a character" in result.failed_case.hint


def test_char_starts_rejects_ascii_only_starts():
    result = check_char_starts(lambda d: [i for i, b in enumerate(d) if b < 0x80])
    assert result.status == "failed" and result.failed_case.args == ("é".encode(),)
