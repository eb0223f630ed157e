"""Checks for the exercises of the chapter on learning from a reward (GRPO).

The references are labkit.grpo's ``group_advantages`` (the reward against
the group's mean, over the group's population std; 0 for a group of equal
rewards), the clipped surrogate inside ``clipped_objective`` and ``k3_kl``
(Schulman's k3 estimator of KL(pi || pi_ref)).

Built in: notebooks/18_learning_from_rewards.ipynb.
"""

from __future__ import annotations

import math

import torch

from labkit.exercises import Case, CheckResult, Raises, run_check, tensors_close
from labkit.grpo import group_advantages, k3_kl


def _close(expected, returned) -> str | None:
    if isinstance(returned, torch.Tensor):
        returned = returned.float()
    return tensors_close(expected, returned, rtol=1e-4, atol=1e-5)


def _adv_case(rows, hint, label) -> Case:
    rewards = torch.tensor(rows, dtype=torch.float32)
    return Case((rewards,), group_advantages(rewards), hint, label=label)


def _advantage_cases() -> list[Case]:
    r3 = 3**0.5
    cases = [
        _adv_case(
            [[1.0, 0.0, 0.0, 0.0]],
            f"by hand: mean 1/4, std sqrt(3)/4, so A = [{r3:.3f}, then "
            f"-{1 / r3:.3f} three times]: subtract the mean, divide by the "
            "population std (unbiased=False)",
            "one group: rewards 1, 0, 0, 0",
        ),
        _adv_case(
            [[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]],
            "a group whose rewards are all equal has std 0: its advantages "
            "are 0, not 0/0 = nan",
            "two groups of equal rewards",
        ),
        _adv_case(
            [[1.0, 0.0], [3.0, 1.0]],
            "the population std (torch.std(..., unbiased=False)): for two "
            "rewards the advantages are +1 and -1",
            "two groups of two",
        ),
        _adv_case(
            [[1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]],
            "each group against its own mean and std (dim=-1, keepdim=True), "
            "not against the whole batch",
            "three groups of four",
        ),
        _adv_case(
            [[10.0, 12.0, 14.0]],
            "divide by the std: rewards 10, 12, 14 give the same advantages as 0, 1, 2",
            "one group: rewards 10, 12, 14",
        ),
    ]
    gen = torch.Generator().manual_seed(0)
    for k in range(3):
        rows = (torch.rand(4, 6, generator=gen) > 0.5).float() * (k + 1)
        cases.append(_adv_case(rows.tolist(), "random 0/1 rewards", f"random {k}"))
    cases.append(
        Case(
            (torch.tensor([[1.0], [0.0]]),),
            Raises(ValueError),
            "a group of one answer has no baseline: raise ValueError",
            label="groups of one (shape (2, 1))",
        )
    )
    return cases


def check_group_advantages(fn) -> CheckResult:
    """Check ``fn(rewards (P, k)) -> (P, k)``: group-normalised advantages."""
    return run_check(
        "check_group_advantages",
        fn,
        _advantage_cases(),
        _close,
        summary="by hand, equal rewards, population std, per group, scale, "
        "3 random, a group of one refused",
        forbidden=("labkit",),
        references=(group_advantages,),
    )


def clipped_surrogate(ratio, advantages, clip_eps):
    """min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A), A per row.

    Shapes: ratio (N, T), advantages (N,) -> (N, T)
    """
    A = advantages[:, None]
    return torch.minimum(ratio * A, ratio.clamp(1 - clip_eps, 1 + clip_eps) * A)


def _clip_case(ratio, adv, eps, hint, label) -> Case:
    ratio = torch.tensor(ratio, dtype=torch.float32)
    adv = torch.tensor(adv, dtype=torch.float32)
    return Case((ratio, adv, eps), clipped_surrogate(ratio, adv, eps), hint, label)


def _clip_cases() -> list[Case]:
    cases = [
        _clip_case([[1.0, 1.1]], [2.0], 0.2,
                   "inside [1 - eps, 1 + eps] nothing is clipped: ratio * A",
                   "ratios 1.0, 1.1; A = 2"),
        _clip_case([[1.5]], [1.0], 0.2,
                   "A > 0 and ratio above 1 + eps: the gain stops at "
                   "(1 + eps) * A = 1.2",
                   "ratio 1.5, A = 1"),
        _clip_case([[0.5]], [1.0], 0.2,
                   "A > 0 and ratio below 1 - eps: the min keeps 0.5 * A (the "
                   "worse of the two); clipping only ever limits a gain",
                   "ratio 0.5, A = 1"),
        _clip_case([[0.5]], [-1.0], 0.2,
                   "A < 0 and ratio below 1 - eps: the gain stops at "
                   "(1 - eps) * A = -0.8",
                   "ratio 0.5, A = -1"),
        _clip_case([[1.5]], [-1.0], 0.2,
                   "A < 0 and ratio above 1 + eps: the min keeps 1.5 * A = -1.5, "
                   "unclipped (a step that made a bad answer likelier is undone "
                   "in full)",
                   "ratio 1.5, A = -1"),
        _clip_case([[1.3, 0.6], [1.3, 0.6]], [1.0, -1.0], 0.1,
                   "the advantage is one number per row (answer), broadcast "
                   "over its tokens; eps = 0.1 here",
                   "two rows, eps 0.1"),
    ]  # fmt: skip
    gen = torch.Generator().manual_seed(1)
    for k in range(3):
        ratio = torch.exp(torch.randn(5, 7, generator=gen) * 0.4)
        adv = torch.randn(5, generator=gen)
        cases.append(_clip_case(ratio.tolist(), adv.tolist(), 0.2, "random ratios",
                                f"random (5, 7) {k}"))  # fmt: skip
    return cases


def check_clipped_surrogate(fn) -> CheckResult:
    """Check ``fn(ratio (N, T), advantages (N,), clip_eps) -> (N, T)``."""
    return run_check(
        "check_clipped_surrogate",
        fn,
        _clip_cases(),
        _close,
        summary="inside the clip, both sides for A > 0 and A < 0, rows, 3 random",
        forbidden=("labkit",),
        references=(clipped_surrogate,),
    )


def _kl_case(logp, ref, hint, label) -> Case:
    logp = torch.tensor(logp, dtype=torch.float32)
    ref = torch.tensor(ref, dtype=torch.float32)
    return Case((logp, ref), k3_kl(logp, ref), hint, label=label)


def _kl_cases() -> list[Case]:
    lg = math.log
    cases = [
        _kl_case([lg(0.5)], [lg(0.5)], "policy == reference: the estimate is 0",
                 "p = q = 0.5"),
        _kl_case([lg(0.5)], [lg(0.25)],
                 "by hand: d = log(q/p) = -log 2, exp(d) - d - 1 = 0.5 + log 2 "
                 "- 1 = 0.193; d is log pi_ref - log pi (the reference first)",
                 "p = 0.5, q = 0.25"),
        _kl_case([lg(0.25)], [lg(0.5)],
                 "by hand: d = log 2, exp(d) - d - 1 = 1 - log 2 = 0.307; an "
                 "inverted ratio gives 0.193 here",
                 "p = 0.25, q = 0.5"),
        _kl_case([lg(0.9), lg(0.05)], [lg(0.1), lg(0.6)],
                 "k3 is never negative, even where the policy's token is less "
                 "likely than the reference's (k1 = log p - log q is not)",
                 "two tokens, one each way"),
    ]  # fmt: skip
    gen = torch.Generator().manual_seed(2)
    for k in range(3):
        logp = torch.randn(3, 5, generator=gen).log_softmax(-1)
        ref = torch.randn(3, 5, generator=gen).log_softmax(-1)
        cases.append(_kl_case(logp.tolist(), ref.tolist(), "random log-probs",
                              f"random (3, 5) {k}"))  # fmt: skip
    return cases


def check_k3_kl(fn) -> CheckResult:
    """Check ``fn(logp, ref_logp) -> same shape``: k3 at each token."""
    return run_check(
        "check_k3_kl",
        fn,
        _kl_cases(),
        _close,
        summary="equal, both directions by hand, never negative, 3 random",
        forbidden=("labkit",),
        references=(k3_kl,),
    )
