"""The evaluation harness: how often a model answers exactly right.

``answer_questions`` asks a chat model every question of a list in batches
(prompt ``<|user|>...<|end|><|assistant|>``, decoding until ``<|end|>``),
greedy or sampled, and ``score_answers`` compares each answer with the exact
one: exact match, character for character, overall and per question type.
An answer the model never closed with ``<|end|>`` is wrong (and counted).
``qa_accuracy`` does both and returns a ``QAScores``, whose ``as_record()``
is plain data for ``labkit.experiments.record`` (so a papermill run or a
sweep collects it).

``teacher_forced_exact`` gets the greedy verdict from one forward pass per
batch: greedy decoding writes the exact answer if and only if, fed the exact
answer, the model's most likely next token is the exact next token at every
answer position (and at its <|end|>). Cheap enough to call during training.

``story_bits_per_byte`` measures what fine-tuning costs the base skill: the
loss on plain held-out stories, in bits per byte.
Built in: notebooks/16_instruction_tuning.ipynb.
Leaves out on purpose: fuzzy matching, model-graded answers.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from labkit.chat import END, encode_chat, parse_answer, prompt_ids
from labkit.data import bits_per_byte
from labkit.instruct import QAExample
from labkit.sampling import generate
from labkit.sft import IGNORE_INDEX, chat_messages, pad_rows, sft_pair

MAX_ANSWER_TOKENS = 32  # the longest exact answer is 26 bytes


@dataclass(frozen=True)
class QAScores:
    """Exact-match results on a list of questions."""

    accuracy: float  # fraction exactly right
    by_type: dict[str, float]  # per question type
    n: int
    n_unfinished: int  # answers never closed with <|end|>
    correct: list[bool] = field(repr=False)  # per question, in order
    answers: list[str | None] = field(repr=False)

    def as_record(self, digits: int = 4) -> dict:
        """The scores as plain data, rounded (for ``record``)."""
        return {
            "accuracy": round(self.accuracy, digits),
            "by_type": {k: round(v, digits) for k, v in self.by_type.items()},
            "n": self.n,
            "n_unfinished": self.n_unfinished,
        }


def score_answers(examples: list[QAExample], answers: list[str | None]) -> QAScores:
    """Exact match of each answer with its example's answer."""
    if len(examples) != len(answers):
        raise ValueError(f"{len(examples)} examples but {len(answers)} answers")
    if not examples:
        raise ValueError("no examples to score")
    correct = [a == ex.answer for ex, a in zip(examples, answers, strict=True)]
    groups: dict[str, list[bool]] = defaultdict(list)
    for ex, ok in zip(examples, correct, strict=True):
        groups[ex.qtype].append(ok)
    return QAScores(
        accuracy=sum(correct) / len(correct),
        by_type={t: sum(v) / len(v) for t, v in groups.items()},
        n=len(examples),
        n_unfinished=sum(a is None for a in answers),
        correct=correct,
        answers=list(answers),
    )


def _batches(items: list, size: int, progress: bool, desc: str):
    if size < 1:
        raise ValueError(f"batch_size={size} must be positive")
    starts = range(0, len(items), size)
    for start in tqdm(starts, desc=desc, disable=not progress, leave=False):
        yield items[start : start + size]


def answer_questions(
    model,
    tokenizer,
    examples: list[QAExample],
    *,
    temperature: float = 0.0,
    seed: int = 0,
    batch_size: int = 64,
    max_new_tokens: int = MAX_ANSWER_TOKENS,
    progress: bool = False,
    use_cache: bool = True,
) -> list[str | None]:
    """The model's answer to each example (None: no <|end|> in time).

    temperature=0 is greedy; otherwise batch k is sampled with seed + k.
    Questions are batched in order of prompt length (rows of one batch then
    start their answers close together); answers come back in input order.
    Shapes: B prompts of different lengths per call of ``generate``.
    """
    end_id = tokenizer.special_tokens[END]
    context_len = model.cfg.context_len
    prompts = [prompt_ids(ex.prompt, tokenizer, context_len) for ex in examples]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[str | None] = [None] * len(prompts)
    for k, chunk in enumerate(_batches(order, batch_size, progress, "answers")):
        new = generate(
            model,
            [prompts[i] for i in chunk],
            max_new_tokens,
            temperature=temperature,
            seed=seed + k,
            eos_id=end_id,
            use_cache=use_cache,
        )
        for i, ids in zip(chunk, new, strict=True):
            out[i] = parse_answer(ids, tokenizer)
    return out


def qa_accuracy(model, tokenizer, examples: list[QAExample], **kwargs) -> QAScores:
    """``answer_questions`` then ``score_answers`` (same keyword arguments)."""
    return score_answers(
        examples, answer_questions(model, tokenizer, examples, **kwargs)
    )


@torch.no_grad()
def teacher_forced_exact(
    model, tokenizer, examples: list[QAExample], batch_size: int = 64
) -> list[bool]:
    """Per example: is every answer token (and <|end|>) the model's argmax
    when it is fed the exact answer? Equals greedy exact match, without
    decoding. Shapes: one (B, T) forward per batch."""
    was_training = model.training
    model.eval()
    out = []
    for chunk in _batches(examples, batch_size, False, ""):
        rows = [
            sft_pair(*encode_chat(chat_messages(ex), tokenizer, None)) for ex in chunk
        ]
        x, y = pad_rows(rows, tokenizer.special_tokens[END])
        hits = (model(x).argmax(-1) == y) | (y == IGNORE_INDEX)  # (B, T)
        out += hits.all(-1).tolist()
    model.train(was_training)
    return out


@torch.no_grad()
def story_bits_per_byte(
    model, data, n_batches: int = 8, batch_size: int = 16, seed: int = 0
) -> float:
    """Mean loss on fixed batches of ``data``'s val split (a TokenData of
    plain stories), in bits per byte. Shapes: (batch_size, context_len)."""
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    T = model.cfg.context_len
    total = 0.0
    for _ in range(n_batches):
        x, y = data.get_batch("val", batch_size, T, gen)
        total += F.cross_entropy(model(x).flatten(0, 1).float(), y.flatten()).item()
    model.train(was_training)
    return bits_per_byte(total / n_batches, data.bytes_per_token("val"))
