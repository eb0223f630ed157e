"""labkit.instruct: questions whose answers the story's parse gives back."""

import random
import re

import pytest

from labkit import instruct, storygen
from labkit.instruct import (
    QUESTION_TYPES,
    PreferencePair,
    check_splits,
    make_example,
    make_examples,
    make_pairs,
    make_splits,
    pairs_from_answers,
    sentences,
    split_seeds,
    story_facts,
    story_for,
)


def test_examples_are_the_same_for_the_same_seed_and_differ_for_another():
    assert make_examples("train", 60) == make_examples("train", 60)
    assert make_examples("train", 60, seed=1) != make_examples("train", 60)
    # the first examples do not depend on how many are asked for
    assert make_examples("val", 200)[:30] == make_examples("val", 30)


def test_a_known_story_gives_known_examples():
    story = story_for(5)
    assert story == (
        "One day there was a kind mouse named Ella. She lived in a nest on a "
        "green hill. She loved her pink ball more than anything. One day, Ella "
        "the mouse lost her pink ball. After that, Ella walked to a cottage near "
        "the woods to look. At last, Ella found her pink ball under the bed. She "
        "danced around the room.\n"
    )
    ex = make_example(5, "found")
    assert ex.answer == "under the bed"
    assert ex.question == "Where did Ella find the ball?"
    # neither neighbour of the find fits beside the longest spot answer
    assert ex.passage == "At last, Ella found her pink ball under the bed."
    assert make_example(5, "found", max_chars=140).passage == (
        "At last, Ella found her pink ball under the bed. She danced around the room."
    )
    home = make_example(5, "home")
    assert (home.passage, home.answer) == (
        "She lived in a nest on a green hill.",
        "a nest on a green hill",
    )
    assert make_example(5, "color", template=1).question == (
        "What colour was Ella's ball?"
    )


def test_facts_read_from_the_parse_are_stated_in_the_text():
    rng = random.Random(3)
    for _ in range(300):
        story, _ = storygen.sample_story(rng)
        f = story_facts(story)
        his = "her" if f["pronoun"] == "she" else "his"
        thing = f"{his} {f['color']} {f['item']}"
        for said in (
            f"{f['adjective']} {f['kind']} named {f['hero']}.",
            f"lived in {f['home']}.",
            f"loved {thing} more than anything.",
            f"{f['hero']} the {f['kind']} lost {thing}.",
            f"{f['hero']} found {thing} {f['found']}.",
            *(f"looked {spot}, but" for spot in f["looked"]),
            *(f" {friend} for help" for friend in f["friends"]),
        ):
            assert said in story, (said, story)
        assert story.count(" looked ") == len(f["looked"])


def test_text_outside_the_grammar_is_refused_with_its_offset():
    with pytest.raises(ValueError, match="offset 0"):
        story_facts("Hello there.\n")


def test_every_answer_is_checkable_by_parsing_its_story():
    for ex in make_examples("test", 300):
        story = story_for(ex.story_seed)
        facts = story_facts(story)
        assert ex.answer == facts[instruct.ANSWER_FACT[ex.qtype]]
        assert ex.answer in ex.passage  # the passage states it
        assert ex.passage in story
        assert not re.search(rf"\b{ex.answer}\b", ex.question)
        longest = max(map(len, instruct.answer_values(ex.qtype)))
        assert len(ex.passage) + len(ex.question) + longest <= 120


def test_sentences_join_back_into_the_story():
    for seed in range(50):
        story = story_for(seed)
        assert " ".join(sentences(story)) + "\n" == story


def test_question_types_are_balanced_and_every_template_is_used():
    examples = make_examples("train", 600)
    counts = {t: sum(e.qtype == t for e in examples) for t in QUESTION_TYPES}
    assert set(counts.values()) == {100}
    used = set()
    for e in examples:
        facts = story_facts(story_for(e.story_seed))
        forms = [t.format(**facts) for t in instruct.TEMPLATES[e.qtype]]
        assert e.question in forms
        used.add((e.qtype, forms.index(e.question)))
    assert used == {(q, i) for q, ts in instruct.TEMPLATES.items()
                    for i in range(len(ts))}  # fmt: skip


def test_splits_are_disjoint_by_seed_and_by_story():
    splits = make_splits({"train": 500, "val": 100, "test": 200})
    seeds = {name: {e.story_seed for e in exs} for name, exs in splits.items()}
    assert not seeds["train"] & seeds["test"] and not seeds["train"] & seeds["val"]
    assert not seeds["val"] & seeds["test"]
    stories = {name: {story_for(s) for s in ss} for name, ss in seeds.items()}
    assert not stories["train"] & stories["test"]
    assert split_seeds("test", 3, seed=1) != split_seeds("test", 3, seed=0)


def test_overlapping_splits_are_refused_naming_the_seed(monkeypatch):
    train = make_examples("train", 50)
    with pytest.raises(ValueError, match="share story seed 7"):
        check_splits({"train": train, "test": train[7:9]})
    # another seed that happens to tell the same story is refused by its text
    twin = instruct.QAExample(10**9, "hero", "p", "q", "a")
    same = story_for(train[0].story_seed)
    real = instruct.story_for
    monkeypatch.setattr(
        instruct, "story_for", lambda s: same if s == 10**9 else real(s)
    )
    with pytest.raises(ValueError, match="share the story"):
        check_splits({"train": train, "test": [twin]})


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        split_seeds("dev", 3)
    with pytest.raises(ValueError, match="unknown question type 'why'"):
        make_example(0, "why")
    with pytest.raises(ValueError, match="raise max_chars"):
        make_example(0, "hero", max_chars=40)


def test_pairs_have_a_correct_chosen_and_a_wrong_rejected_answer():
    examples = make_examples("train", 300)
    pairs = make_pairs(examples)
    assert len(pairs) == len(examples)
    sources = {p.source for p in pairs}
    assert sources == {"story", "grammar"}
    for p in pairs:
        assert p.chosen == p.example.answer != p.rejected
        fact = instruct.ANSWER_FACT[p.example.qtype]
        friends = [o[2]["friend"] for o in storygen.GRAMMAR["FRIEND"]]
        assert p.rejected in instruct.slot_values(fact) + tuple(friends)
        if p.source == "story":
            assert p.rejected in story_for(p.example.story_seed)
    assert make_pairs(examples, seed=1) != pairs


def test_a_pair_with_identical_answers_is_refused():
    ex = make_example(5, "hero")
    with pytest.raises(ValueError, match="same answer 'Ben'"):
        PreferencePair(ex, "Ben", "Ben", "grammar")
    with pytest.raises(ValueError, match="source='mine'"):
        PreferencePair(ex, "Ben", "Tom", "mine")


def test_pairs_from_answers_keep_only_wrong_finished_answers():
    examples = make_examples("val", 4)
    answers = [examples[0].answer, "Zoe", None, examples[3].answer + "x"]
    pairs = pairs_from_answers(examples, answers)
    rejected = [p.rejected for p in pairs]
    assert rejected == (["Zoe"] if answers[1] != examples[1].answer else []) + [
        examples[3].answer + "x"
    ]
    assert all(p.source == "model" for p in pairs)
    long = pairs_from_answers(examples[:1], ["x" * 120])
    assert long == []  # it would not fit the context
    assert pairs_from_answers(examples[:1], ["Mi\ufffd"]) == []
    with pytest.raises(ValueError, match="4 examples but 3 answers"):
        pairs_from_answers(examples, answers[:3])
