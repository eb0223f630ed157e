"""labkit.chat: the template round-trips, refuses what it cannot hold."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from labkit.chat import (
    ASSISTANT,
    END,
    USER,
    ChatTooLong,
    add_chat_tokens,
    chat_tokenizer,
    encode_chat,
    format_chat,
    parse_answer,
    parse_chat,
    prompt_ids,
)
from labkit.model import GPT, GPTConfig
from labkit.tokenizer import Tokenizer

TOK = chat_tokenizer()
TALK = [
    {"role": "user", "content": "Mia is a cat.\nWho is Mia?"},
    {"role": "assistant", "content": "a cat"},
]


def test_chat_tokens_come_after_the_bytes():
    assert TOK.vocab_size == 259
    assert [TOK.special_tokens[t] for t in (USER, ASSISTANT, END)] == [256, 257, 258]
    assert TOK.encode("Hi") == Tokenizer().encode("Hi")
    assert chat_tokenizer(TOK) == TOK  # adding them twice changes nothing


def test_format_chat_writes_the_layout_by_hand():
    assert format_chat(TALK) == (
        "<|user|>Mia is a cat.\nWho is Mia?<|end|><|assistant|>a cat<|end|>"
    )
    assert format_chat(TALK[:1], add_generation_prompt=True).endswith(
        "?<|end|><|assistant|>"
    )


text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40).filter(
    lambda s: "<|" not in s
)


@given(st.lists(st.tuples(st.sampled_from(["user", "assistant"]), text), min_size=1))
def test_format_then_parse_is_the_identity(turns):
    messages = [{"role": r, "content": c} for r, c in turns]
    assert parse_chat(format_chat(messages)) == messages
    ids, mask = encode_chat(messages, TOK)
    assert TOK.decode(ids) == format_chat(messages) and len(mask) == len(ids)


def test_encode_marks_only_what_the_assistant_wrote():
    ids, mask = encode_chat(TALK, TOK)
    written = [i for i, m in zip(ids, mask, strict=True) if m]
    assert TOK.decode(written) == "a cat<|end|>"
    assert ids.count(TOK.special_tokens[END]) == 2
    assert not mask[ids.index(TOK.special_tokens[ASSISTANT])]


def test_a_conversation_longer_than_the_context_is_refused_with_its_length():
    n = len(encode_chat(TALK, TOK)[0])
    assert encode_chat(TALK, TOK, context_len=n)[0]
    with pytest.raises(ChatTooLong, match=f"{n} tokens.*context_len={n - 1}"):
        encode_chat(TALK, TOK, context_len=n - 1)
    with pytest.raises(ChatTooLong, match="1 too many"):
        prompt_ids("x" * 125, TOK, context_len=128)  # 128 + 1 answer token
    assert len(prompt_ids("x" * 124, TOK, context_len=128)) == 127


def test_bad_messages_are_named():
    with pytest.raises(ValueError, match="role 'system'"):
        format_chat([{"role": "system", "content": "x"}])
    with pytest.raises(ValueError, match="special token <\\|end\\|>"):
        format_chat([{"role": "user", "content": "a<|end|>b"}])
    with pytest.raises(ValueError, match="at least one message"):
        format_chat([])
    with pytest.raises(ValueError, match="offset 0"):
        parse_chat("hello")
    with pytest.raises(ValueError, match="offset 16"):
        parse_chat("<|user|>a<|end|><|user|>never closed")


def test_parse_answer_reads_up_to_the_first_end():
    end = TOK.special_tokens[END]
    assert parse_answer(TOK.encode("Mia") + [end, 65, end], TOK) == "Mia"
    assert parse_answer(torch.tensor(TOK.encode("Mia")), TOK) is None
    assert parse_answer([end], TOK) == ""
    user = TOK.special_tokens[USER]
    assert parse_answer(TOK.encode("Mi") + [user, end], TOK) is None


def test_new_rows_are_the_mean_and_old_logits_do_not_move():
    torch.manual_seed(0)
    for tie in (True, False):
        cfg = GPTConfig(vocab_size=256, context_len=16, n_layers=1, n_heads=2,
                        d_model=16, tie_weights=tie)  # fmt: skip
        model = GPT(cfg).eval()
        grown = add_chat_tokens(model, 259)
        assert grown.cfg.vocab_size == 259 and not grown.training
        emb = grown.tok_emb.weight
        torch.testing.assert_close(emb[256], model.tok_emb.weight.mean(0))
        torch.testing.assert_close(emb[:256], model.tok_emb.weight)
        assert (grown.lm_head.weight is grown.tok_emb.weight) == tie
        x = torch.randint(0, 256, (2, 16))
        with torch.no_grad():
            torch.testing.assert_close(grown(x)[..., :256], model(x))
    with pytest.raises(ValueError, match="below the model's 256"):
        add_chat_tokens(model, 100)
