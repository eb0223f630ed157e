"""WordPiece: BERT's pre-tokens, greedy longest match and both training rules,
against HF tokenizers where it has them and against cases worked by hand."""

import inspect
import textwrap
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.tokenizer.wordpiece import (
    WordPiece,
    bert_words,
    best_pair,
    encode_word,
    join,
    merge_pair,
    train_wordpiece,
    unit_and_pair_counts,
    units,
)

TEXT = (
    "The cat sat on the mat. The dog sat on the log; a cat and a dog met.\n"
    "def area(r):\n    return 3.14159 * r ** 2  # circle, naïve_function(x)\n"
) * 20 + "Unusual words: unaffable, zyzzyva, 12345, hoopla!"

SOURCE = inspect.getsource(textwrap)  # varied text, on every machine

tokenizers = pytest.importorskip("tokenizers")


def hf_words(text: str) -> list[str]:
    pre = tokenizers.pre_tokenizers.BertPreTokenizer()
    return [w for w, _ in pre.pre_tokenize_str(text)]


@pytest.mark.needs_hf
@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab c.,_(\n\t-é€😀!", max_size=40))
def test_bert_words_match_hf_bert_pre_tokenizer(text):
    assert bert_words(text) == hf_words(text)


@pytest.mark.needs_hf
def test_bert_words_match_hf_on_prose_and_code():
    assert bert_words(TEXT) == hf_words(TEXT)
    assert bert_words("f(x) = 2") == ["f", "(", "x", ")", "=", "2"]


def test_units_and_join():
    assert units("cat") == ("c", "##a", "##t")
    assert units("a") == ("a",)
    assert join("c", "##at") == "cat" and join("##c", "##at") == "##cat"
    assert merge_pair(("a", "##a", "##a", "##a"), ("##a", "##a")) == (
        "a",
        "##aa",
        "##a",
    )


def test_encode_word_is_greedy_longest_match_by_hand():
    vocab = {"un", "##aff", "##able", "u", "##n", "##a", "##f", "##b", "##l", "##e"}
    assert encode_word("unaffable", vocab) == ["un", "##aff", "##able"]
    assert encode_word("abcd", {"a", "ab", "abc", "##d", "##cd"}) == ["abc", "##d"]
    # no backtracking: "ab" + "##cde" would spell it, greedy takes "abc" first
    assert encode_word("abcde", {"ab", "abc", "##cde", "##d"}) == ["[UNK]"]
    assert encode_word("abc", {"ab", "c"}) == ["[UNK]"]  # "c" cannot continue
    assert encode_word("", {"a"}) == []


def wordpiece_from(vocab: list[str]):
    hf = tokenizers.Tokenizer(
        tokenizers.models.WordPiece(
            {t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"
        )
    )
    hf.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    return hf


@pytest.mark.needs_hf
@pytest.mark.parametrize("rule", ["score", "count"])
def test_encoding_matches_hf_wordpiece_model_with_the_same_vocab(rule):
    ours = train_wordpiece(TEXT, 120, rule)
    hf = wordpiece_from(ours.vocab)
    for text in (TEXT, "A zebra quietly met 999 naïve owls 😀 (here)."):
        expected = hf.encode(text, add_special_tokens=False)
        assert ours.pieces(text) == expected.tokens
        assert ours.encode(text) == expected.ids


def replay_is_most_frequent(text: str, vocab_in_order: list[str]) -> bool:
    """Is each learned token, in id order, the join of a most frequent pair?
    (vocab_in_order[0] is "[UNK]".)"""
    splits = Counter({units(w): n for w, n in Counter(bert_words(text)).items()})
    learned = [t for t in vocab_in_order[1:] if len(t.removeprefix("##")) > 1]
    for token in learned:
        _, pairs = unit_and_pair_counts(splits)
        top = max(pairs.values())
        found = [p for p, n in pairs.items() if n == top and join(*p) == token]
        if not found:
            return False
        splits = Counter({merge_pair(s, found[0]): n for s, n in splits.items()})
    return True


@pytest.mark.needs_hf
def test_hf_wordpiece_trainer_merges_the_most_frequent_pair():
    trainer = tokenizers.trainers.WordPieceTrainer(
        vocab_size=300, special_tokens=["[UNK]"], show_progress=False
    )
    hf = wordpiece_from(["[UNK]"])
    hf.train_from_iterator([SOURCE], trainer=trainer)
    vocab = hf.get_vocab()
    order = sorted(vocab, key=vocab.get)
    assert replay_is_most_frequent(SOURCE, order)  # HF runs the count rule
    count_rule = train_wordpiece(SOURCE, 300, "count").vocab
    assert replay_is_most_frequent(SOURCE, count_rule)
    assert not replay_is_most_frequent(SOURCE, train_wordpiece(SOURCE, 300).vocab)
    shared = set(order) & set(count_rule)
    assert len(shared) >= 0.95 * 300  # the rest: ties broken in another order


def test_score_rule_by_hand():
    # units: p 5, ##o 10, ##t 10, s 5, ##p 5; ("s", "##p") scores 5 / (5 * 5)
    splits = {units("pot"): 5, units("spot"): 5}
    assert best_pair(splits, "score") == ("s", "##p")
    assert best_pair(splits, "count") == ("##o", "##t")  # 10 times, 10/(10*10)
    assert best_pair({units("a"): 3}) is None
    # a tie in count goes to the pair that sorts first, or first in `order`
    tied = {units("ab"): 1, units("cd"): 1}
    assert best_pair(tied, "count") == ("a", "##b")
    assert best_pair(tied, "count", {"c": 0, "##d": 1, "a": 2, "##b": 3}) == (
        "c",
        "##d",
    )


def test_training_grows_the_vocabulary_from_the_characters():
    wp = train_wordpiece("low lower lowest", 14, "count")
    base = ["[UNK]", "e", "l", "o", "r", "s", "t", "w", "##e", "##o", "##r"]
    assert wp.vocab[: len(base) + 2] == [*base, "##s", "##t"]
    assert wp.vocab[13] == "##w"  # "##w" is a unit, not a merge
    wp = train_wordpiece("low lower lowest", 16, "count")
    assert wp.vocab[14:] == ["lo", "low"]  # "l"+"##o" 3 times, then "lo"+"##w"
    assert wp.pieces("lowest") == ["low", "##e", "##s", "##t"]


def test_decode_glues_hash_pieces_and_drops_whitespace():
    wp = train_wordpiece(TEXT, 120, "count")
    assert wp.decode(wp.encode("def area(r):\n    return r")) == (
        "def area ( r ) : return r"
    )
    assert repr(wp) == "WordPiece(vocab_size=120)" and wp.vocab_size == 120


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="rule='bpe' is not one of"):
        train_wordpiece(TEXT, 200, "bpe")
    with pytest.raises(ValueError, match="rule='bpe' is not one of"):
        best_pair({units("ab"): 1}, "bpe")
    with pytest.raises(ValueError, match="vocab_size=5 is below the"):
        train_wordpiece(TEXT, 5)
    with pytest.raises(ValueError, match="at least one word"):
        train_wordpiece("   \n", 50)
    with pytest.raises(ValueError, match="'\\[UNK\\]' is not in the vocabulary"):
        WordPiece(["a", "b"])
    with pytest.raises(ValueError, match="lists 'a' twice"):
        WordPiece(["[UNK]", "a", "a"])


def _train_by_recounting(text: str, vocab_size: int, rule: str) -> list[str]:
    """The trainer written plainly: every step recounts every word."""
    words = Counter(bert_words(text))
    splits = {units(w): n for w, n in words.items()}
    vocab = ["[UNK]", *sorted({ch for w in words for ch in w})]
    vocab += sorted({u for s in splits for u in s[1:]} - set(vocab))
    order = {token: i for i, token in enumerate(vocab)}
    while len(vocab) < vocab_size:
        pair = best_pair(splits, rule, order)
        if pair is None:
            break
        if join(*pair) not in order:
            order[join(*pair)] = len(vocab)
            vocab.append(join(*pair))
        splits = {merge_pair(s, pair): n for s, n in splits.items()}
    return vocab


@pytest.mark.parametrize("rule", ["score", "count"])
@pytest.mark.parametrize(
    "text, size",
    [
        ("aaaa aaa aa a abab ababab abcabc", 30),  # repeated pairs in a word
        ("abc ab bc abc bcab", 20),  # "abc" made by two merges
        (TEXT, 200),
        (SOURCE[:6000], 300),
    ],
)
def test_incremental_counts_train_what_recounting_trains(text, size, rule):
    assert train_wordpiece(text, size, rule).vocab == _train_by_recounting(
        text, size, rule
    )
