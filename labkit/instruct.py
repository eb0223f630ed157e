"""Questions about generated stories, with answers the generator knows.

An example is a *passage* of a story from labkit.storygen, a question about
one fact the passage states (who the hero is, what kind of animal, where it
lived, what it lost, the colour, where it found it) and the exact answer.
The answer is read from the story's parse (``story_facts``), never guessed,
so every claim that a model "answers correctly" is an exact comparison.

The passage fits the small model's context. A story averages 393 bytes and
the model reads 128 tokens, so a question comes with a few whole sentences
only: the sentence that states the fact (its *anchor*), grown by one
neighbouring sentence at a time (the one before first, then the one after)
while passage, question and the longest answer of that type stay within
``max_chars`` (so a wrong answer of the same type fits too). The
default leaves room for the chat template's five tokens (labkit.chat).

Splits are by story seed: story i of split s in dataset ``seed`` comes from
``random.Random(seed_base + i)``, with disjoint seed ranges per split, so no
test story is a training story (``check_splits`` also compares the texts).
Only ``random()`` is used, whose sequence Python keeps across versions, so a
seed and a size give the same examples everywhere.

Preference pairs (``make_pairs``, ``pairs_from_answers``) put a correct answer
beside a wrong but plausible one, and say where the wrong one came from.
Built in: notebooks/16_instruction_tuning.ipynb (pairs: 17_preference_tuning).
Card: corpora/story-questions.md.
Leaves out on purpose: questions that need the whole story, several turns.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from labkit import storygen

QUESTION_TYPES = ("hero", "animal", "home", "item", "color", "found")
TEMPLATES: dict[str, tuple[str, ...]] = {
    "hero": (
        "What is the {kind}'s name?",
        "Who is the story about?",
        "What was the {kind} called?",
    ),
    "animal": ("What kind of animal is {hero}?", "What animal is {hero}?"),
    "home": ("Where did {hero} live?", "Where was {hero}'s home?"),
    "item": ("What did {hero} lose?", "What did {hero} love most?"),
    "color": ("What colour was the {item}?", "What colour was {hero}'s {item}?"),
    "found": ("Where did {hero} find the {item}?", "Where was the {item} found?"),
}
# the fact each question type asks for (a key of story_facts)
ANSWER_FACT = {
    "hero": "hero",
    "animal": "kind",
    "home": "home",
    "item": "item",
    "color": "color",
    "found": "found",
}
SPLITS = ("train", "val", "test")
PAIR_SOURCES = ("story", "grammar", "model")  # where a rejected answer came from
SEEDS_PER_SPLIT = 1_000_000
MAX_CHARS = 120  # passage + question + answer; 128 tokens less the template's 5
# and a few to spare
DATA_VERSION = 2  # changes whenever the same seed would give other examples


def _word(rule: str, index: int) -> str:
    """The text option ``index`` of a word rule writes ("brave " -> "brave")."""
    return storygen.GRAMMAR[rule][index][1][0].strip()


def _bound(rule: str, index: int, var: str) -> str:
    return storygen.GRAMMAR[rule][index][2][var]


def slot_values(fact: str) -> tuple[str, ...]:
    """Every value the grammar can give a fact: slot_values("color") -> red..."""
    rules = {"hero": ("HERO", "hero"), "kind": ("KIND", "kind"),
             "color": ("COLOR", "color"), "item": ("ITEM", "item")}  # fmt: skip
    if fact in rules:
        rule, var = rules[fact]
        return tuple(o[2][var] for o in storygen.GRAMMAR[rule])
    words = {"home": "PLACE", "found": "SPOT", "adjective": "ADJ"}
    if fact not in words:
        raise ValueError(f"unknown fact {fact!r}; known: {sorted(rules | words)}")
    rule = words[fact]
    return tuple(_word(rule, i) for i in range(len(storygen.GRAMMAR[rule])))


def answer_values(qtype: str) -> tuple[str, ...]:
    """Every answer a question type can have, and the wrong answers
    ``distractor`` may give it (for "animal", the friends' kinds too)."""
    fact = ANSWER_FACT[qtype]
    extra = ()
    if fact == "kind":  # the friends asked for help are animals too
        extra = tuple(o[2]["friend"] for o in storygen.GRAMMAR["FRIEND"])
    return slot_values(fact) + extra


def story_facts(story: str) -> dict:
    """The facts of a story, read from its parse (``storygen.parse_story``).

    Keys: hero, pronoun ("she"/"he"), kind, adjective, home, color, item,
    found (where the item was found), looked (spots searched in vain, in
    order), friends (the animals asked for help). Raises ValueError (from
    the parser, naming the offset) for text the grammar cannot produce.
    """
    choices, _ = storygen.parse_story(story)
    first = {}
    spots, friends = [], []
    for rule, i in choices:
        first.setdefault(rule, i)
        if rule == "SPOT":
            spots.append(_word("SPOT", i))
        if rule == "FRIEND":
            friends.append(_bound("FRIEND", i, "friend"))
    hero_opt = storygen.GRAMMAR["HERO"][first["HERO"]][2]
    return {
        "hero": hero_opt["hero"],
        "pronoun": hero_opt["he"],
        "kind": _bound("KIND", first["KIND"], "kind"),
        "adjective": _word("ADJ", first["ADJ"]),
        "home": _word("PLACE", first["PLACE"]),  # HOME comes before any walk
        "color": _bound("COLOR", first["COLOR"], "color"),
        "item": _bound("ITEM", first["ITEM"], "item"),
        "found": spots[-1],  # END is the story's last choice of SPOT
        "looked": spots[:-1],
        "friends": friends,
    }


def sentences(story: str) -> list[str]:
    """A story's sentences; " ".join(sentences(s)) + "\\n" == s."""
    parts = re.findall(r"[^.]*\.", story.rstrip("\n"))
    return [p.strip() for p in parts]


def anchor_sentence(qtype: str, n_sentences: int) -> int:
    """Index of the sentence that states the fact a question type asks for.

    The grammar fixes the order: opening (hero, kind), home, love, loss
    (item, colour), events, the find, the joy.
    """
    return {"hero": 0, "animal": 0, "home": 1, "item": 3, "color": 3}.get(
        qtype, n_sentences - 2
    )


def passage_around(sents: list[str], anchor: int, room: int) -> str:
    """The anchor sentence and its neighbours, within ``room`` characters.

    Grows one sentence at a time, the one before first, then the one after,
    until neither fits. Raises ValueError when the anchor alone is too long.
    """
    if len(sents[anchor]) > room:
        raise ValueError(
            f"sentence {anchor} has {len(sents[anchor])} characters, more than "
            f"the {room} left for the passage: raise max_chars"
        )
    lo = hi = anchor
    while True:
        for a, b in ((lo - 1, hi), (lo, hi + 1)):
            if a >= 0 and b < len(sents) and len(" ".join(sents[a : b + 1])) <= room:
                lo, hi = a, b
                break
        else:
            return " ".join(sents[lo : hi + 1])


@dataclass(frozen=True)
class QAExample:
    """One question: the passage, the question, the exact answer.

    ``story_seed`` regenerates the whole story (``story_for``);
    ``prompt`` is what the user says: the passage, a newline, the question.
    """

    story_seed: int
    qtype: str  # one of QUESTION_TYPES
    passage: str
    question: str
    answer: str

    @property
    def prompt(self) -> str:
        return f"{self.passage}\n{self.question}"


def story_for(story_seed: int) -> str:
    """The story that ``random.Random(story_seed)`` makes (one line)."""
    story, _ = storygen.sample_story(random.Random(story_seed))
    return story


def make_example(
    story_seed: int, qtype: str, template: int = 0, max_chars: int = MAX_CHARS
) -> QAExample:
    """The ``qtype`` question (template number ``template``) about one story."""
    if qtype not in TEMPLATES:
        raise ValueError(f"unknown question type {qtype!r}; known: {QUESTION_TYPES}")
    story = story_for(story_seed)
    facts = story_facts(story)
    question = TEMPLATES[qtype][template].format(**facts)
    answer = facts[ANSWER_FACT[qtype]]
    sents = sentences(story)
    # room for the longest answer of this type: any answer, right or wrong,
    # fits beside the passage (preference pairs swap the answer)
    room = max_chars - len(question) - max(map(len, answer_values(qtype)))
    passage = passage_around(sents, anchor_sentence(qtype, len(sents)), room)
    return QAExample(story_seed, qtype, passage, question, answer)


def split_seeds(split: str, n: int, seed: int = 0) -> range:
    """The story seeds of the first n examples of a split (disjoint ranges)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {SPLITS}")
    if not 0 <= n <= SEEDS_PER_SPLIT:
        raise ValueError(f"n={n} must be in 0..{SEEDS_PER_SPLIT:,}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer")
    base = (seed * len(SPLITS) + SPLITS.index(split)) * SEEDS_PER_SPLIT
    return range(base, base + n)


def make_examples(
    split: str,
    n: int,
    seed: int = 0,
    types: tuple[str, ...] = QUESTION_TYPES,
    max_chars: int = MAX_CHARS,
) -> list[QAExample]:
    """n examples of a split; example i asks a ``types[i % len(types)]``
    question (so the types are balanced) with a template drawn from the
    story's seed."""
    out = []
    for i, story_seed in enumerate(split_seeds(split, n, seed)):
        qtype = types[i % len(types)]
        pick = random.Random(story_seed + 7_919 * SEEDS_PER_SPLIT).random()
        template = int(pick * len(TEMPLATES[qtype]))
        out.append(make_example(story_seed, qtype, template, max_chars))
    return out


def check_splits(splits: dict[str, list[QAExample]]) -> None:
    """Raise ValueError when two splits share a story (seed or text)."""
    seen: dict[int, str] = {}
    texts: dict[str, str] = {}
    for name, examples in splits.items():
        for ex in examples:
            other = seen.get(ex.story_seed)
            if other is not None and other != name:
                raise ValueError(
                    f"splits {other!r} and {name!r} share story seed "
                    f"{ex.story_seed}: a held-out story would be seen in training"
                )
            seen[ex.story_seed] = name
            text = story_for(ex.story_seed)
            other = texts.setdefault(text, name)
            if other != name:
                raise ValueError(
                    f"splits {other!r} and {name!r} share the story {text[:50]!r}..."
                )


def make_splits(
    sizes: dict[str, int], seed: int = 0, max_chars: int = MAX_CHARS
) -> dict[str, list[QAExample]]:
    """Examples for each split named in ``sizes`` ({"train": 2000, ...}),
    checked disjoint."""
    splits = {
        s: make_examples(s, n, seed, max_chars=max_chars) for s, n in sizes.items()
    }
    check_splits(splits)
    return splits


@dataclass(frozen=True)
class PreferencePair:
    """A question with a preferred (``chosen``) and a worse (``rejected``)
    answer. ``source`` says where the rejected one came from: "story"
    (another value of the same kind that the story mentions), "grammar"
    (another value the grammar could have chosen) or "model" (a model's own
    wrong answer)."""

    example: QAExample
    chosen: str
    rejected: str
    source: str

    def __post_init__(self):
        if self.chosen == self.rejected:
            raise ValueError(
                f"chosen and rejected are the same answer {self.chosen!r} "
                f"(story seed {self.example.story_seed}): nothing to prefer"
            )
        if self.source not in PAIR_SOURCES:
            raise ValueError(f"source={self.source!r} is not one of {PAIR_SOURCES}")


def _mentions(text: str, value: str) -> bool:
    return re.search(rf"\b{re.escape(value)}\b", text) is not None


def distractor(example: QAExample, rng: random.Random) -> tuple[str, str]:
    """(wrong answer, source): a value of the same kind that the example's
    story mentions elsewhere (a spot searched in vain, a friend's kind, a
    colour in a place name), else one the grammar could have chosen."""
    values = [v for v in answer_values(example.qtype) if v != example.answer]
    story = story_for(example.story_seed)
    near = [v for v in values if _mentions(story, v)]
    pool, source = (near, "story") if near else (values, "grammar")
    return pool[int(rng.random() * len(pool))], source


def make_pairs(examples: list[QAExample], seed: int = 0) -> list[PreferencePair]:
    """One pair per example: the exact answer against a ``distractor``."""
    rng = random.Random(seed)
    pairs = []
    for ex in examples:
        wrong, source = distractor(ex, rng)
        pairs.append(PreferencePair(ex, ex.answer, wrong, source))
    return pairs


def pairs_from_answers(
    examples: list[QAExample], answers: list[str | None], max_chars: int = MAX_CHARS
) -> list[PreferencePair]:
    """Pairs from a model's answers: each wrong, finished answer is rejected
    against the exact one (source "model"). Right or unfinished (None)
    answers make no pair, nor do answers too long for the example to stay
    within ``max_chars`` (they would not fit the context), nor answers with
    characters outside ASCII (the stories have none; a stray byte decodes
    to U+FFFD, whose text would not give back the model's tokens)."""
    if len(examples) != len(answers):
        raise ValueError(f"{len(examples)} examples but {len(answers)} answers")
    return [
        PreferencePair(ex, ex.answer, got, "model")
        for ex, got in zip(examples, answers, strict=True)
        if got is not None
        and got != ex.answer
        and got.isascii()
        and len(ex.passage) + len(ex.question) + len(got) <= max_chars
    ]
