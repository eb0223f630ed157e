"""One sentence in many languages, for comparing scripts at equal meaning.

Counting bytes or tokens per *character* hides what a model pays per *idea*:
the same sentence takes 8 characters in Chinese and 26 in English. So the
chapters compare one short sentence ("The cat sleeps in the sun.") as written
in thirteen languages and scripts, and once in emoji for comparison. The
translations were written for this project (plain, everyday wording; one of
several correct ones in each language), stored in Unicode's composed form
(NFC).

Used in: notebooks/01_text_as_numbers.ipynb (bytes per sentence, graphemes).
"""

# language -> the sentence, in NFC
SAME_SENTENCE: dict[str, str] = {
    "English": "The cat sleeps in the sun.",
    "French": "Le chat dort au soleil.",
    "German": "Die Katze schläft in der Sonne.",
    "Polish": "Kot śpi na słońcu.",
    "Greek": "Η γάτα κοιμάται στον ήλιο.",
    "Russian": "Кошка спит на солнце.",
    "Arabic": "القطة تنام في الشمس.",
    "Hebrew": "החתול ישן בשמש.",
    "Hindi": "बिल्ली धूप में सोती है।",
    "Thai": "แมวนอนกลางแดด",
    "Chinese": "猫在阳光下睡觉。",
    "Japanese": "猫はひなたで寝ている。",
    "Korean": "고양이가 햇볕 아래에서 잔다.",
    "Emoji": "🐈💤☀️",
}

# language -> the Unicode scripts its letters are named after (for tests)
SCRIPT = {
    "English": "LATIN",
    "French": "LATIN",
    "German": "LATIN",
    "Polish": "LATIN",
    "Greek": "GREEK",
    "Russian": "CYRILLIC",
    "Arabic": "ARABIC",
    "Hebrew": "HEBREW",
    "Hindi": "DEVANAGARI",
    "Thai": "THAI",
    "Chinese": "CJK",
    "Japanese": "CJK|HIRAGANA",
    "Korean": "HANGUL",
    "Emoji": "",
}
