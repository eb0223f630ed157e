"""Rewards that code checks: is the answer the one the story's parse gives?

Reinforcement learning needs a number for every answer the model samples.
For the story questions of labkit.instruct that number needs no judge and
no learned reward model: the exact answer is known, so a program checks it.

* ``exact_match``: 1.0 when the answer is the exact answer, character for
  character, else 0.0 (an answer never closed with ``<|end|>`` is None: 0.0).
  The same verdict as labkit.evals' accuracy, so "reward" and "accuracy"
  mean one thing on the training questions.
* ``well_formed``: the format reward. 1.0 when the answer is closed and is
  an answer the grammar has for that question type (a colour for a colour
  question), right or wrong; it says nothing about correctness.
* ``exact_with_format(weight)``: exact match plus ``weight`` times the
  format reward (a small bonus for answering in the right form).

``exact_answer_probs`` (with greedy exact match from the same forward
pass: ``answer_scores``) is the exact-match reward's *expected* value when a
model samples at temperature t: the probability that it writes the exact
answer and then ``<|end|>``, read off one teacher-forced forward pass. Its
mean over questions is the accuracy of sampled answers with no sampling
noise (tested against the sampler's own step-by-step probabilities).

``call_reward`` is how the loop (labkit.grpo) calls any reward function:
one that raises, or returns something that is not a finite number, is an
error naming the reward function, the prompt and the answer, never a silent
0 or a NaN in the gradient.
Built in: notebooks/18_learning_from_rewards.ipynb (with a badly written
reward, on purpose, to show reward hacking).
Leaves out on purpose: learned reward models, partial credit by similarity.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch

from labkit.instruct import QAExample, answer_values

Reward = Callable[[object, object], float]  # reward(item, answer) -> number


class RewardError(ValueError):
    """A reward function raised, or gave back something that is not a
    finite number; the message names the prompt."""


def exact_match(example: QAExample, answer: str | None) -> float:
    """1.0 when ``answer`` is exactly ``example.answer``, else 0.0."""
    return 1.0 if answer == example.answer else 0.0


def well_formed(example: QAExample, answer: str | None) -> float:
    """1.0 when the answer is closed and is one the grammar has for the
    question's type (``instruct.answer_values``), else 0.0."""
    return 1.0 if answer in answer_values(example.qtype) else 0.0


def exact_with_format(weight: float = 0.1) -> Reward:
    """exact_match + weight * well_formed: a right answer scores 1 + weight,
    a wrong one in the right form weight, anything else 0."""
    if not (isinstance(weight, numbers.Real) and 0 <= weight <= 1):
        raise ValueError(f"weight={weight!r} must be a number in [0, 1]")

    def reward(example: QAExample, answer: str | None) -> float:
        return exact_match(example, answer) + weight * well_formed(example, answer)

    reward.__name__ = f"exact_with_format({weight:g})"
    return reward


def describe(item) -> str:
    """How an error names an item: a story question by its story seed and
    the start of its prompt; anything else by its repr."""
    prompt = getattr(item, "prompt", None)
    if isinstance(prompt, str):
        text = " ".join(prompt.split())
        text = text if len(text) <= 60 else text[:57] + "..."
        seed = getattr(item, "story_seed", "?")
        return f"story seed {seed}, prompt {text!r}"
    text = repr(item)
    return f"prompt {text if len(text) <= 60 else text[:57] + '...'}"


def call_reward(reward_fn: Reward, item, answer) -> float:
    """``reward_fn(item, answer)`` as a float, checked.

    Raises RewardError naming the reward function, the prompt and the
    answer when the function raises, or returns a value that is not a real
    number (None, a string, a tensor) or is NaN or infinite. True and False
    count as 1.0 and 0.0.
    """
    name = getattr(reward_fn, "__name__", type(reward_fn).__name__)
    where = f"on {describe(item)} (answer {answer!r})"
    try:
        value = reward_fn(item, answer)
    except Exception as err:
        raise RewardError(
            f"the reward function {name} raised {type(err).__name__}: {err} {where}"
        ) from err
    if not isinstance(value, numbers.Real):
        raise RewardError(
            f"the reward function {name} returned {value!r} (a "
            f"{type(value).__name__}), not a number, {where}: return a float"
        )
    value = float(value)
    if not math.isfinite(value):
        raise RewardError(
            f"the reward function {name} returned {value} {where}: a reward "
            f"must be finite"
        )
    return value


@torch.no_grad()
def answer_scores(
    model, tokenizer, examples: list[QAExample], temperature: float = 1.0,
    batch_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Two scores per example from one teacher-forced forward pass over its
    exact answer: the probability that sampling at ``temperature`` gives
    exactly that answer (P(answer tokens, then <|end|> | prompt), the
    product of the sampler's next-token probabilities along it), and
    whether greedy decoding gives it (every answer token, <|end|> included,
    is the argmax: labkit.evals.teacher_forced_exact).

    The first is the expected ``exact_match`` reward of one sampled answer
    (the byte-level chat tokenizer spells a text one way only), so its mean
    over questions is sampled accuracy without the noise of sampling.
    Shapes: len(examples) questions -> two (len(examples),): probabilities
    in [0, 1], greedy right as 0.0 / 1.0.
    """
    from labkit.chat import END, encode_chat
    from labkit.dpo import sequence_logprobs
    from labkit.sft import IGNORE_INDEX, chat_messages, pad_rows, sft_pair

    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature={temperature} must be a finite number > 0")
    was_training = model.training
    model.eval()
    probs, greedy = [torch.zeros(0)], [torch.zeros(0)]
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        rows = [
            sft_pair(*encode_chat(chat_messages(e), tokenizer, None)) for e in chunk
        ]
        x, y = pad_rows(rows, tokenizer.special_tokens[END])
        logits = model(x)  # (B, T, V)
        probs.append(sequence_logprobs(logits / temperature, y).exp())
        hits = (logits.argmax(-1) == y) | (y == IGNORE_INDEX)  # (B, T)
        greedy.append(hits.all(-1).float())
    model.train(was_training)
    return torch.cat(probs), torch.cat(greedy)


def exact_answer_probs(
    model, tokenizer, examples: list[QAExample], temperature: float = 1.0,
    batch_size: int = 64,
) -> torch.Tensor:  # fmt: skip
    """Per example, the probability that sampling at ``temperature`` gives
    exactly its answer: the expected ``exact_match`` reward of one sampled
    answer (``answer_scores``' first score). Shapes: -> (len(examples),)
    """
    return answer_scores(model, tokenizer, examples, temperature, batch_size)[0]
