"""Checks for the exercises of the chapter on instruction tuning.

The references are labkit.sft's ``sft_pair`` (inputs and masked targets of
one conversation) and ``masked_lm_loss`` (the mean cross-entropy over the
answer tokens only).

Built in: notebooks/16_instruction_tuning.ipynb.
"""

from __future__ import annotations

import torch

from labkit.exercises import Case, CheckResult, Raises, run_check, tensors_close
from labkit.sft import IGNORE_INDEX, masked_lm_loss, sft_pair


def _pair_case(ids, mask, hint, label=None) -> Case:
    x, y = sft_pair(list(ids), list(mask))
    label = label or f"ids={list(ids)}, mask={[int(m) for m in mask]}"
    return Case((list(ids), list(mask)), (x, y), hint, label=label)


def _target_cases() -> list[Case]:
    cases = [
        _pair_case(
            [256, 72, 105, 258, 257, 89, 258],
            [False, False, False, False, False, True, True],
            "x is ids[:-1] and y is ids[1:]; a target keeps its id only where "
            "the mask of *that target token* (mask[1:]) is True",
        ),
        _pair_case(
            [5, 6, 7],
            [False, True, True],
            "the first token is never a target: y[0] predicts ids[1]",
        ),
        _pair_case(
            [1, 2, 3, 4],
            [False, False, False, True],
            "only the last token is the assistant's: one target survives",
        ),
        _pair_case(
            [1, 2, 3, 4, 5],
            [False, True, False, True, False],
            "two assistant stretches: each keeps its own targets",
        ),
    ]
    gen = torch.Generator().manual_seed(0)
    for _ in range(6):
        n = int(torch.randint(3, 20, (1,), generator=gen))
        ids = torch.randint(0, 259, (n,), generator=gen).tolist()
        mask = (torch.rand(n, generator=gen) < 0.4).tolist()
        mask[-1] = True
        cases.append(_pair_case(ids, mask, "random conversations"))
    cases.append(
        Case(
            ([7], [True]),
            Raises(ValueError),
            "one token has no next token to predict: raise ValueError",
            label="ids=[7], mask=[1]",
        )
    )
    return cases


def check_sft_targets(fn) -> CheckResult:
    """Check ``fn(ids, mask) -> (x, y)``: x = ids[:-1], y = ids[1:] with every
    target the assistant did not write set to -100; ValueError for fewer
    than two tokens."""
    return run_check(
        "check_sft_targets",
        fn,
        _target_cases(),
        tensors_close,
        summary="one answer, first token, last token only, two answers, "
        "6 random, too short refused",
        forbidden=("labkit",),
        references=(sft_pair,),
    )


def _loss_case(logits, y, hint, label) -> Case:
    return Case((logits, y), masked_lm_loss(logits, y), hint, label=label)


def _loss_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(1)

    def rand(B, T, V):
        return torch.randn(B, T, V, generator=gen) * 2

    cases = []
    logits = torch.log(torch.tensor([[[0.5, 0.5], [0.2, 0.8], [0.9, 0.1]]]))
    y = torch.tensor([[IGNORE_INDEX, 1, IGNORE_INDEX]])
    hint = "one answer token with p = 0.8: the loss is -log 0.8, nothing else"
    cases.append(_loss_case(logits, y, hint, "3 positions, one answer (p=0.8)"))
    y_all = torch.tensor([[0, 1, 0]])
    hint = "no target ignored: the plain mean cross-entropy"
    cases.append(_loss_case(logits, y_all, hint, "3 positions, none ignored"))
    logits = rand(2, 6, 5)
    y = torch.randint(0, 5, (2, 6), generator=gen)
    y[0, :5] = IGNORE_INDEX  # row 0: one answer token, row 1: six
    cases.append(
        _loss_case(
            logits,
            y,
            "divide by the number of answer tokens in the whole batch, not by "
            "every position and not row by row (row 0 has 1, row 1 has 6)",
            "2 rows: 1 answer token and 6 answer tokens",
        )
    )
    for k in range(5):
        logits = rand(3, 8, 7)
        y = torch.randint(0, 7, (3, 8), generator=gen)
        y[torch.rand(3, 8, generator=gen) < 0.6] = IGNORE_INDEX
        y[:, -1] = k % 7
        label = f"random (3, 8, 7) batch {k + 1}"
        cases.append(_loss_case(logits, y, "random batches with padding", label))
    big = rand(1, 4, 6) * 50
    y = torch.tensor([[IGNORE_INDEX, 2, 3, IGNORE_INDEX]])
    hint = "large logits: use log_softmax, not log(softmax), which gives -inf"
    cases.append(_loss_case(big, y, hint, "logits up to about 300"))
    cases.append(
        Case(
            (rand(1, 3, 4), torch.full((1, 3), IGNORE_INDEX)),
            Raises(ValueError),
            "no answer token at all: a mean over nothing is undefined; raise "
            "ValueError instead of returning nan",
            label="every target -100",
        )
    )
    return cases


def _close_scalar(expected, returned) -> str | None:
    if not isinstance(returned, torch.Tensor):
        return f"expected a tensor, got {type(returned).__name__}"
    if returned.shape != ():
        return f"shape {tuple(returned.shape)}, expected a scalar (shape ())"
    return tensors_close(expected, returned.float(), rtol=1e-4, atol=1e-5)


def check_masked_loss(fn) -> CheckResult:
    """Check ``fn(logits, y) -> scalar``: the mean cross-entropy over the
    targets that are not -100 (in the whole batch); ValueError when every
    target is -100. Written out: F.cross_entropy is refused."""
    return run_check(
        "check_masked_loss",
        fn,
        _loss_cases(),
        _close_scalar,
        summary="by-hand toy, nothing ignored, uneven rows, 5 random, large "
        "logits, all ignored refused",
        forbidden=("labkit", "cross_entropy"),
        references=(masked_lm_loss,),
    )
