"""The chat template: a conversation as one token sequence, and back.

A base model continues text. To make it answer, every training conversation
is written in one fixed layout with three special tokens the text never
contains::

    <|user|>{the user's text}<|end|><|assistant|>{the answer}<|end|>

Each special token is one id, added after the 256 byte ids of the small
model's tokenizer (``chat_tokenizer``), so the model needs three more rows
in its embedding table (``add_chat_tokens``; the new rows start at the mean
of the old ones, so a new token starts as "an average byte"). To ask a
question, the prompt ends with ``<|assistant|>`` (``prompt_ids``) and the
model writes until it emits ``<|end|>``; ``parse_answer`` reads the answer
back out of what it wrote.

``encode_chat`` also returns which tokens the assistant wrote (its answers
and their ``<|end|>``): the tokens a fine-tuning loss is taken on
(labkit.sft). A conversation that does not fit the model's context is an
error that says by how much, never a silent cut.
Built in: notebooks/16_instruction_tuning.ipynb.
Leaves out on purpose: system prompts, tool calls, several templates.
"""

from __future__ import annotations

import dataclasses
import re

import torch

from labkit.model import GPT
from labkit.tokenizer import Tokenizer

USER, ASSISTANT, END = "<|user|>", "<|assistant|>", "<|end|>"
CHAT_TOKENS = (USER, ASSISTANT, END)
ROLES = {"user": USER, "assistant": ASSISTANT}


class ChatTooLong(ValueError):
    """A conversation has more tokens than the model's context."""


def chat_tokenizer(base: Tokenizer | None = None) -> Tokenizer:
    """``base`` (default: the byte tokenizer) with the three chat tokens added
    after its vocabulary: ids 256, 257, 258 for the byte tokenizer."""
    base = base if base is not None else Tokenizer()
    vocab = dict(base.vocab)
    specials = dict(base.special_tokens)
    for token in CHAT_TOKENS:
        if token not in specials:
            specials[token] = len(vocab)
            vocab[len(vocab)] = token.encode("utf-8")
    return Tokenizer(vocab, base.merges, specials, base.pattern)


def _check_messages(messages) -> None:
    if not messages:
        raise ValueError("a conversation needs at least one message")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or set(m) != {"role", "content"}:
            raise ValueError(
                f"message {i} must be a dict with 'role' and 'content', got {m!r}"
            )
        if m["role"] not in ROLES:
            raise ValueError(
                f"message {i} has role {m['role']!r}; roles: {list(ROLES)}"
            )
        found = [t for t in CHAT_TOKENS if t in m["content"]]
        if found:
            raise ValueError(
                f"message {i} contains the special token {found[0]}: the "
                f"template could not be read back"
            )


def format_chat(messages: list[dict], add_generation_prompt: bool = False) -> str:
    """The conversation as template text.

    Example: format_chat([{"role": "user", "content": "Hi?"},
    {"role": "assistant", "content": "Yes"}]) ->
    "<|user|>Hi?<|end|><|assistant|>Yes<|end|>". With add_generation_prompt
    the text ends in "<|assistant|>", where the model's answer begins.
    """
    _check_messages(messages)
    text = "".join(ROLES[m["role"]] + m["content"] + END for m in messages)
    return text + (ASSISTANT if add_generation_prompt else "")


_TURN = re.compile(
    "(" + "|".join(re.escape(t) for t in ROLES.values()) + ")(.*?)" + re.escape(END),
    re.DOTALL,
)


def parse_chat(text: str) -> list[dict]:
    """The messages of a template text: the inverse of ``format_chat``.

    Raises ValueError naming the offset where the text leaves the template.
    """
    messages, pos = [], 0
    role_of = {token: role for role, token in ROLES.items()}
    while pos < len(text):
        match = _TURN.match(text, pos)
        if match is None:
            raise ValueError(
                f"offset {pos}: expected a turn (<|user|>... or "
                f"<|assistant|>... ending in <|end|>), found {text[pos : pos + 30]!r}"
            )
        messages.append({"role": role_of[match[1]], "content": match[2]})
        pos = match.end()
    return messages


def encode_chat(
    messages: list[dict], tokenizer: Tokenizer, context_len: int | None = None
) -> tuple[list[int], list[bool]]:
    """Token ids of the conversation and, per token, whether the assistant
    wrote it (its content and its closing <|end|>; not <|assistant|>).

    Raises ChatTooLong when there are more than ``context_len`` ids.
    Shapes: two lists of the same length n_tokens.
    """
    _check_messages(messages)
    ids: list[int] = []
    mask: list[bool] = []
    for m in messages:
        head = [tokenizer.special_tokens[ROLES[m["role"]]]]
        body = tokenizer.encode(m["content"]) + [tokenizer.special_tokens[END]]
        ids += head + body
        mask += [False] + [m["role"] == "assistant"] * len(body)
    _check_fits(len(ids), context_len, "the conversation")
    return ids, mask


def _check_fits(n: int, context_len: int | None, what: str) -> None:
    if context_len is not None and n > context_len:
        raise ChatTooLong(
            f"{what} has {n} tokens, more than the model's context_len="
            f"{context_len} ({n - context_len} too many): shorten it"
        )


def prompt_ids(user: str, tokenizer: Tokenizer, context_len: int | None = None):
    """Ids that ask the model one question: "<|user|>{user}<|end|><|assistant|>".

    Raises ChatTooLong when they leave no room in ``context_len`` for even
    one answer token.
    """
    ids, _ = encode_chat([{"role": "user", "content": user}], tokenizer)
    ids.append(tokenizer.special_tokens[ASSISTANT])
    if context_len is not None:
        _check_fits(len(ids) + 1, context_len, "the prompt with one answer token")
    return ids


def parse_answer(generated, tokenizer: Tokenizer) -> str | None:
    """The answer in what the model wrote after <|assistant|>: the text
    before its first <|end|>; None if it never closed its answer, or wrote
    another chat token inside it (<|user|>, <|assistant|>: not an answer).

    ``generated``: token ids (a list or a tensor).
    """
    ids = generated.tolist() if torch.is_tensor(generated) else list(generated)
    end = tokenizer.special_tokens[END]
    if end not in ids:
        return None
    answer = ids[: ids.index(end)]
    if any(tokenizer.special_tokens[t] in answer for t in (USER, ASSISTANT)):
        return None
    return tokenizer.decode(answer)


def add_chat_tokens(model: GPT, vocab_size: int) -> GPT:
    """A copy of ``model`` whose embedding table has ``vocab_size`` rows.

    Old rows (and, with tied weights, the output head) are copied; each new
    row is the mean of the old rows. Every logit of an old token is
    unchanged. Raises ValueError if vocab_size is smaller than the model's.
    """
    old = model.cfg.vocab_size
    if vocab_size < old:
        raise ValueError(f"vocab_size={vocab_size} is below the model's {old}")
    grown = GPT(dataclasses.replace(model.cfg, vocab_size=vocab_size))
    state = model.state_dict()
    with torch.no_grad():
        for name in ("tok_emb.weight", "lm_head.weight"):
            table = state[name]  # (V_old, C)
            extra = table.mean(0, keepdim=True).expand(vocab_size - old, -1)
            state[name] = torch.cat([table, extra])  # (V, C)
    grown.load_state_dict(state)
    return grown.train(model.training)
