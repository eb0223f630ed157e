"""The parallel sentences are composed Unicode, each in its own script."""

import unicodedata

import pytest

from labkit.sentences import SAME_SENTENCE, SCRIPT


@pytest.mark.parametrize("language", SAME_SENTENCE)
def test_each_sentence_is_nfc_and_written_in_its_script(language):
    text = SAME_SENTENCE[language]
    assert unicodedata.normalize("NFC", text) == text
    letters = [ch for ch in text if unicodedata.category(ch).startswith("L")]
    if language == "Emoji":
        assert not letters and all(ord(ch) > 0x2000 for ch in text)
        return
    names = [unicodedata.name(ch) for ch in letters]
    scripts = SCRIPT[language].split("|")
    assert letters and all(any(s in name for s in scripts) for name in names)
    for script in scripts:  # Japanese: kanji and hiragana both present
        assert any(script in name for name in names), (language, script)


def test_the_sentences_are_distinct_and_cover_fourteen_languages():
    assert len(set(SAME_SENTENCE.values())) == len(SAME_SENTENCE) == 14
    assert set(SCRIPT) == set(SAME_SENTENCE)
