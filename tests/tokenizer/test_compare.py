"""HF tokenizers' BPE / WordPiece / Unigram beside ours, on the same text."""

import json

import pytest

from labkit.tokenizer import train_bpe_fast

pytest.importorskip("tokenizers")
from labkit.tokenizer.compare import compare, train_hf  # noqa: E402

TEXT = (
    "the cat sat on the mat. the dog sat on the log. a cat and a dog met.\n"
    "tokenizers split text into pieces; pieces become ids.\n"
) * 30


@pytest.mark.needs_hf
def test_hf_bpe_learns_the_same_first_merges_as_ours():
    ours = train_bpe_fast(TEXT, 270)
    hf = train_hf(TEXT, "bpe", 256 + 14)
    # "at" is the most frequent pair: both agree. HF breaks ties toward the
    # smaller pair ("h e" before "t h"), we toward the greater, so later
    # merges differ in order but reach the same " the".
    hf_merges = json.loads(hf.hf.to_str())["model"]["merges"]
    assert ours.merges[0] == (b"a", b"t") and hf_merges[0] == ["a", "t"]
    assert ["h", "e"] in hf_merges and (b"t", b"h") in ours.merges
    assert (b" ", b"the") in ours.merges and ["\u0120", "the"] in hf_merges


@pytest.mark.needs_hf
def test_compare_rows():
    ours = train_bpe_fast(TEXT, 300)
    rows = compare(TEXT, 300, ours=ours, sample="the cat 🙂")
    assert [r.name for r in rows] == ["labkit bpe", "bpe", "wordpiece", "unigram"]
    by_name = {r.name: r for r in rows}
    assert by_name["labkit bpe"].roundtrip and by_name["bpe"].roundtrip
    assert by_name["labkit bpe"].n_tokens == len(ours.encode(TEXT))
    assert all(r.bytes_per_token > 1 for r in rows)
    assert not by_name["wordpiece"].roundtrip  # it drops spaces
    # the emoji's four bytes are four tokens, each alone an incomplete character
    assert by_name["labkit bpe"].sample[-4:] == ("\ufffd",) * 4
    assert "[UNK]" in by_name["wordpiece"].sample  # emoji never seen
    with pytest.raises(ValueError, match="kind='bogus' is not one of"):
        train_hf(TEXT, "bogus", 300)


@pytest.mark.needs_hf
def test_shown_pieces_leave_no_token_invisible():
    from labkit.tokenizer import Tokenizer
    from labkit.tokenizer.compare import shown_pieces

    assert shown_pieces(Tokenizer(), "a é\n") == ["a", "·", "<c3>", "<a9>", "↵"]
    hf_bpe = train_hf(TEXT, "bpe", 300)  # bytes, not GPT-2's "Ġ" alphabet
    shown = shown_pieces(hf_bpe, "the cat\n  sat")
    assert "".join(shown) == "the·cat↵··sat" and len(shown) > 1
    assert shown_pieces(hf_bpe, "🙂")[-1] == "<82>"
    unigram = train_hf(TEXT, "unigram", 120)
    code = "def f(x):\n    return x"
    shown = shown_pieces(unigram, code)
    assert unigram.decode([unigram.hf.token_to_id("▁")]) == ""  # invisible alone
    assert shown.count("▁") >= 3 and all(shown)  # one per indentation space
    assert "↵" in "".join(shown)
    assert shown_pieces(unigram, "東京")[-1] == "<unk>"  # HF's tokens say "東京"
    assert unigram.pieces("東京")[-1] == "東京"
    wordpiece = train_hf(TEXT, "wordpiece", 200)
    assert any(p.startswith("##") for p in shown_pieces(wordpiece, "cats"))
