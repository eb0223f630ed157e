"""Checks for the exercises of the chapter on preference tuning (DPO).

The references are labkit.dpo's ``dpo_loss`` (the loss of Rafailov et al.,
2023, averaged over pairs) and ``sequence_logprobs`` (an answer's
log-probability: the sum over its tokens, the prompt left out).

Built in: notebooks/17_preference_tuning.ipynb.
"""

from __future__ import annotations

import math

import torch

from labkit.dpo import dpo_loss, sequence_logprobs
from labkit.exercises import Case, CheckResult, Raises, run_check, tensors_close
from labkit.sft import IGNORE_INDEX


def _scalar(expected, returned) -> str | None:
    if not isinstance(returned, torch.Tensor):
        return f"expected a tensor, got {type(returned).__name__}"
    if returned.shape != ():
        return f"shape {tuple(returned.shape)}, expected a scalar (shape ())"
    return tensors_close(expected, returned.float(), rtol=1e-4, atol=1e-6)


def _loss_case(values, beta: float, hint: str, label: str) -> Case:
    tensors = tuple(torch.tensor(v, dtype=torch.float32) for v in values)
    return Case((*tensors, beta), dpo_loss(*tensors, beta), hint, label=label)


def _loss_cases() -> list[Case]:
    lg = math.log
    cases = [
        _loss_case(
            ([lg(0.3)], [lg(0.1)], [lg(0.2)], [lg(0.2)]),
            0.5,
            "by hand: margin = beta * (log(0.3/0.2) - log(0.1/0.2)) = 0.5 log 3; "
            "loss = -log sigmoid(margin) = log(1 + 3**-0.5)",
            "one pair: pi 0.3 / 0.1, ref 0.2 / 0.2, beta 0.5",
        ),
        _loss_case(
            ([-2.0, -1.0], [-3.0, -0.5], [-2.0, -1.0], [-3.0, -0.5]),
            0.1,
            "policy == reference: every margin is 0 and the loss is log 2",
            "policy equal to the reference",
        ),
        _loss_case(
            ([-1.0], [-4.0], [-2.0], [-2.0]),
            2.0,
            "beta multiplies the difference of the two log-ratios before the "
            "log-sigmoid",
            "one pair, beta 2",
        ),
        _loss_case(
            ([-5.0], [-1.0], [-2.0], [-2.0]),
            0.5,
            "the chosen answer's log-ratio comes first: here the rejected one "
            "gained, so the loss is above log 2",
            "the policy prefers the rejected answer",
        ),
        _loss_case(
            ([-1.0, -2.0, -3.0], [-2.0, -2.0, -1.0], [-1.5] * 3, [-1.5] * 3),
            0.3,
            "average the per-pair losses (a mean, not a sum)",
            "three pairs",
        ),
        _loss_case(
            ([0.0], [-400.0], [-200.0], [-200.0]),
            1.0,
            "a huge margin: the pair is settled and its loss is about 0",
            "margin 400",
        ),
        _loss_case(
            ([-400.0], [0.0], [-200.0], [-200.0]),
            1.0,
            "a huge negative margin: log(sigmoid(-400)) is -inf; "
            "F.logsigmoid stays finite (the loss is about 400)",
            "margin -400",
        ),
    ]
    gen = torch.Generator().manual_seed(0)
    for k in range(4):
        values = [(torch.randn(6, generator=gen) * 3 - 5).tolist() for _ in range(4)]
        cases.append(_loss_case(values, 0.05 * (k + 1), "random pairs", f"random {k}"))
    one = torch.tensor([-1.0])
    for beta, hint, label in [
        (0.0, "beta must be positive: with beta = 0 nothing is learned", "beta = 0"),
        (
            -0.5,
            "beta must be positive: a negative beta would reward the rejected "
            "answers (refuse everything that is not > 0, not only 0)",
            "beta = -0.5",
        ),
        (
            float("nan"),
            "beta = nan is not > 0 either: test `not beta > 0`",
            "beta = nan",
        ),
    ]:
        cases.append(
            Case((one, one, one, one, beta), Raises(ValueError), hint, label=label)
        )
    return cases


def check_dpo_loss(fn) -> CheckResult:
    """Check ``fn(policy_chosen, policy_rejected, ref_chosen, ref_rejected,
    beta) -> scalar``: the DPO loss averaged over pairs; ValueError for
    beta <= 0."""
    return run_check(
        "check_dpo_loss",
        fn,
        _loss_cases(),
        _scalar,
        summary="by hand, policy = reference, beta, sign, mean, huge margins, "
        "4 random, beta = 0, < 0 and nan refused",
        forbidden=("labkit",),
        references=(dpo_loss,),
    )


def _logp_case(logits, y, hint, label) -> Case:
    return Case((logits, y), sequence_logprobs(logits, y), hint, label=label)


def _logp_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(1)
    toy = torch.log(torch.tensor([[[0.5, 0.5], [0.2, 0.8]]]))
    cases = [
        _logp_case(
            toy,
            torch.tensor([[IGNORE_INDEX, 1]]),
            "only the answer counts: log 0.8 (the prompt position is -100)",
            "2 positions, the second an answer token with p = 0.8",
        ),
        _logp_case(
            toy,
            torch.tensor([[0, 1]]),
            "a sum over the answer's tokens, not a mean: log 0.5 + log 0.8",
            "2 answer tokens, p = 0.5 and 0.8",
        ),
    ]
    logits = torch.randn(2, 5, 6, generator=gen)
    y = torch.tensor([[IGNORE_INDEX] * 4 + [2], [IGNORE_INDEX, 1, 2, 3, 4]])
    cases.append(
        _logp_case(
            logits,
            y,
            "one number per row: row 0 has 1 answer token, row 1 has 4",
            "2 rows of different answer lengths",
        )
    )
    for k in range(4):
        logits = torch.randn(4, 7, 9, generator=gen) * 3
        y = torch.randint(0, 9, (4, 7), generator=gen)
        y[:, :3] = IGNORE_INDEX
        y[torch.rand(4, 7, generator=gen) < 0.2] = IGNORE_INDEX
        y[:, -1] = k
        cases.append(_logp_case(logits, y, "random rows", f"random (4, 7, 9) {k}"))
    big = torch.randn(1, 3, 5, generator=gen) * 100
    cases.append(
        _logp_case(
            big,
            torch.tensor([[IGNORE_INDEX, 0, 4]]),
            "large logits: log_softmax, not log(softmax)",
            "logits of size about 100",
        )
    )
    return cases


def check_sequence_logprobs(fn) -> CheckResult:
    """Check ``fn(logits, y) -> (B,)``: per row, the sum of log p(target) over
    the targets that are not -100."""
    return run_check(
        "check_sequence_logprobs",
        fn,
        _logp_cases(),
        lambda e, r: tensors_close(e, r, rtol=1e-4, atol=1e-4),
        summary="prompt ignored, sum not mean, uneven rows, 4 random, large logits",
        forbidden=("labkit",),
        references=(sequence_logprobs,),
    )
