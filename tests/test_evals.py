"""labkit.evals: a model that copies the gold answer scores 1.0, a constant
model its base rate; teacher forcing agrees with greedy decoding."""

import math

import pytest
import torch
from torch import nn

from labkit.chat import ASSISTANT, END, chat_tokenizer
from labkit.data import prepare_tokens
from labkit.evals import (
    answer_questions,
    qa_accuracy,
    score_answers,
    story_bits_per_byte,
    teacher_forced_exact,
)
from labkit.instruct import QUESTION_TYPES, make_examples
from labkit.model import GPT, GPTConfig
from labkit.recipes import CORPUS
from labkit.storygen import generate as generate_stories

TOK = chat_tokenizer()
EXAMPLES = make_examples("test", 60)


class ScriptedModel(nn.Module):
    """Writes, after the last <|assistant|>, the answer ``reply(prompt ids)``
    followed by <|end|> (or, never_end, by "x" for ever): a logit of 100 on
    that token and 0 elsewhere, at every position (V = 259)."""

    def __init__(self, reply, never_end=False):
        super().__init__()
        self.cfg = GPTConfig(vocab_size=TOK.vocab_size, context_len=128,
                             n_layers=1, n_heads=1, d_model=8)  # fmt: skip
        self.weight = nn.Parameter(torch.zeros(1))
        self.reply, self.never_end = reply, never_end

    def forward(self, idx):
        B, T = idx.shape
        out = torch.zeros(B, T, TOK.vocab_size)
        start = TOK.special_tokens[ASSISTANT]
        for b in range(B):
            row = idx[b].tolist()
            for t in range(T):
                if start not in row[: t + 1]:
                    continue
                at = max(i for i in range(t + 1) if row[i] == start)
                answer = TOK.encode(self.reply(row[: at + 1]))
                if not self.never_end:
                    answer = answer + [TOK.special_tokens[END]]
                k = t - at  # tokens written so far
                after = TOK.encode("x")[0] if self.never_end else answer[-1]
                out[b, t, answer[k] if k < len(answer) else after] = 100.0
        return out


def gold(prompt_ids):
    text = TOK.decode(prompt_ids)
    return next(e.answer for e in EXAMPLES if e.prompt in text)


def test_a_model_that_copies_the_gold_answer_scores_one():
    scores = qa_accuracy(ScriptedModel(gold), TOK, EXAMPLES, use_cache=False,
                         batch_size=16)  # fmt: skip
    assert scores.accuracy == 1.0 and scores.n == 60 and scores.n_unfinished == 0
    assert scores.by_type == dict.fromkeys(QUESTION_TYPES, 1.0)
    assert scores.answers == [e.answer for e in EXAMPLES]
    sampled = qa_accuracy(ScriptedModel(gold), TOK, EXAMPLES, use_cache=False,
                          temperature=1.0, seed=3)  # fmt: skip
    assert sampled.accuracy == 1.0  # a logit of 100: sampling is greedy


def test_a_constant_model_scores_its_base_rate():
    scores = qa_accuracy(ScriptedModel(lambda p: "Mia"), TOK, EXAMPLES, use_cache=False)
    rate = sum(e.answer == "Mia" for e in EXAMPLES) / len(EXAMPLES)
    assert 0 < rate < 1 and scores.accuracy == pytest.approx(rate)
    heroes = [e for e in EXAMPLES if e.qtype == "hero"]
    assert scores.by_type["hero"] == pytest.approx(
        sum(e.answer == "Mia" for e in heroes) / len(heroes)
    )
    assert scores.by_type["color"] == 0.0
    record = scores.as_record()
    assert record["n"] == 60 and set(record["by_type"]) == set(QUESTION_TYPES)


def test_an_answer_never_closed_is_wrong_and_counted():
    model = ScriptedModel(gold, never_end=True)
    answers = answer_questions(model, TOK, EXAMPLES[:5], use_cache=False,
                               max_new_tokens=6)  # fmt: skip
    assert answers == [None] * 5
    scores = score_answers(EXAMPLES[:5], answers)
    assert scores.accuracy == 0 and scores.n_unfinished == 5


def test_score_answers_refuses_mismatched_lists():
    with pytest.raises(ValueError, match="3 examples but 2 answers"):
        score_answers(EXAMPLES[:3], ["a", "b"])
    with pytest.raises(ValueError, match="no examples"):
        score_answers([], [])


def test_teacher_forcing_gives_the_greedy_verdict():
    for model in (ScriptedModel(gold), ScriptedModel(lambda p: "Mia")):
        greedy = score_answers(
            EXAMPLES, answer_questions(model, TOK, EXAMPLES, use_cache=False)
        ).correct
        assert teacher_forced_exact(model, TOK, EXAMPLES, batch_size=7) == greedy
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=259, context_len=128, n_layers=1, n_heads=2,
                        d_model=16))  # fmt: skip
    with torch.no_grad():  # make <|end|> likely so some answers finish
        gpt.lm_head.weight[TOK.special_tokens[END]] *= 0
    answers = answer_questions(gpt, TOK, EXAMPLES[:12], max_new_tokens=4)
    greedy = score_answers(EXAMPLES[:12], answers).correct
    assert teacher_forced_exact(gpt, TOK, EXAMPLES[:12]) == greedy


class Uniform(nn.Module):
    def __init__(self):
        super().__init__()
        self.cfg = GPTConfig(vocab_size=259, context_len=32, n_layers=1,
                             n_heads=1, d_model=8)  # fmt: skip

    def forward(self, idx):
        return torch.zeros(*idx.shape, 259)


def test_story_bits_per_byte_of_a_uniform_model_is_log2_v(tmp_path):
    text = generate_stories(20_000, seed=4)
    data = prepare_tokens(text, TOK, tmp_path / CORPUS, seed=0)
    bpb = story_bits_per_byte(Uniform(), data, n_batches=2, batch_size=4)
    assert bpb == pytest.approx(math.log2(259))
