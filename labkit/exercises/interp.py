"""Checks for the exercises of the chapter that looks inside a trained model.

The references are ``labkit.interp.head_scores``'s induction score and
``labkit.circuits.direct_logit_attribution`` (with a LayerNorm).

Built in: notebooks/13_inside_a_trained_model.ipynb.
"""

from __future__ import annotations

import torch

from labkit.circuits import direct_logit_attribution
from labkit.exercises import Case, CheckResult, run_check, tensors_close
from labkit.interp import head_scores
from labkit.norms import LayerNorm


def _rows(T: int, H: int, gen: torch.Generator, sharp: float = 1.0) -> torch.Tensor:
    """Random causal attention: (H, T, T), rows sum to 1 over keys 0..t."""
    scores = torch.randn(H, T, T, generator=gen) * sharp
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
    return scores.masked_fill(future, float("-inf")).softmax(-1)


def _induction_case(weights, tokens, hint: str, label: str) -> Case:
    tokens = torch.as_tensor(tokens)
    expected = head_scores(weights[None], tokens)["induction"][0]  # (H,)
    return Case((weights, tokens), expected, hint, label=label)


def _hand_weights(T: int, links: dict[int, int]) -> torch.Tensor:
    """One head: query t puts all its weight on key links[t], else on itself."""
    w = torch.eye(T)
    for t, s in links.items():
        w[t] = 0.0
        w[t, s] = 1.0
    return w[None]  # (1, T, T)


def _induction_cases() -> list[Case]:
    cases = [
        _induction_case(
            _hand_weights(4, {2: 1, 3: 2}),
            [5, 6, 5, 6],
            "5 6 5 6: query 2 (a 5) should look at key 1, the token after "
            "the earlier 5, not at key 0 (the 5 itself): a perfect head scores 1",
            "tokens 5 6 5 6, query 2 -> key 1, query 3 -> key 2",
        ),
        _induction_case(
            _hand_weights(4, {2: 0, 3: 1}),
            [5, 6, 5, 6],
            "this head looks at the earlier copy itself, one key too early: "
            "its induction score is 0",
            "tokens 5 6 5 6, query 2 -> key 0, query 3 -> key 1",
        ),
        _induction_case(
            _hand_weights(5, {4: 3}),
            [1, 2, 3, 4, 5],
            "no token repeats: no query has a key to score, and the score is 0 "
            "(not NaN)",
            "tokens 1 2 3 4 5, no repeats",
        ),
        _induction_case(
            _hand_weights(6, {1: 0, 5: 1}),
            [7, 7, 7, 8, 9, 7],
            "7 7 7 8 9 7: query 5 has three earlier 7s, so keys 1, 2 and 3 all "
            "count (sum them); query 2 has key 1; query 1's only key after a 7 "
            "is itself, which does not count: average over queries 2 and 5",
            "tokens 7 7 7 8 9 7, query 1 -> key 0, query 5 -> key 1",
        ),
    ]
    gen = torch.Generator().manual_seed(0)
    for i in range(6):
        T, H = int(torch.randint(6, 20, (), generator=gen)), 1 + i % 3
        tokens = torch.randint(0, 4 + i, (T,), generator=gen)
        cases.append(
            _induction_case(
                _rows(T, H, gen, sharp=1.0 + i),
                tokens,
                "random heads and tokens with repeats; query 0 sees only itself "
                "and is left out",
                f"random: T={T}, H={H}, tokens {tokens.tolist()}",
            )
        )
    return cases


def check_induction_score(fn) -> CheckResult:
    """Check ``fn(weights, tokens) -> (H,)``: per head, the mean over queries
    t that have an earlier copy of their token of the attention weight on the
    keys right after those copies (keys 1 <= s < t with tokens[s-1] ==
    tokens[t]);
    0 for a head when no query has one.
    Shapes: weights (H, T, T), tokens (T,)
    """
    return run_check(
        "check_induction_score",
        fn,
        _induction_cases(),
        tensors_close,
        summary="a perfect head, one off by one, no repeats, several copies, 6 random",
        forbidden=("labkit", "head_scores", "label_heads"),
        references=(head_scores,),
    )


def _dla_case(parts, final, norm, unembed, targets, hint, label) -> Case:
    expected = direct_logit_attribution(parts, final, norm, unembed, targets)
    args = (parts, final, norm.weight.detach(), norm.eps, unembed, targets)
    return Case(args, expected.detach(), hint, label=label)


def _dla_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(1)
    cases = []
    for i, (N, T, C, V) in enumerate([(1, 1, 4, 3), (2, 3, 4, 5), (3, 4, 8, 6)]):
        norm = LayerNorm(C)
        with torch.no_grad():
            norm.weight.copy_(1 + 0.5 * torch.randn(C, generator=gen))
        parts = torch.randn(N, T, C, generator=gen) * (1 + 3 * i)
        parts = parts + torch.randn(1, T, 1, generator=gen) * 2  # a shared offset
        targets = torch.randint(0, V, (T,), generator=gen)
        unembed = torch.randn(V, C, generator=gen)
        hint = [
            "one part that is the whole stream: centre it, divide by the "
            "stream's std (sqrt(var + eps), var with unbiased=False), multiply "
            "by the norm's weight, then dot with the target's unembedding row",
            "two parts: divide both by the std of their sum, the final stream, "
            "not each by its own (the norm is frozen at the run's scale)",
            "each part is centred over C (LayerNorm subtracts the mean), but "
            "scaled by the stream's std, shared by the parts",
        ][i]
        final = parts.sum(0) if i < 2 else parts.sum(0) + 0.3
        cases.append(
            _dla_case(
                parts, final, norm, unembed, targets, hint, f"N={N}, T={T}, C={C}"
            )
        )
    for seed in range(4):
        N, T, C, V = 4, 5, 16, 7
        norm = LayerNorm(C, eps=1e-5 * 10**seed)
        parts = torch.randn(N, T, C, generator=gen)
        final = parts.sum(0) + torch.randn(T, C, generator=gen)
        targets = torch.randint(0, V, (T,), generator=gen)
        unembed = torch.randn(V, C, generator=gen)
        cases.append(
            _dla_case(
                parts,
                final,
                norm,
                unembed,
                targets,
                "random parts; the stream also holds what no part wrote",
                f"random: N={N}, T={T}, C={C}, eps={norm.eps:g}",
            )
        )
    return cases


def check_direct_logit_attribution(fn) -> CheckResult:
    """Check ``fn(parts, final, weight, eps, unembed, targets) -> (N, T)``:
    each part's direct effect on the target's logit through a LayerNorm frozen
    at the final stream's scale (no bias) and the unembedding.
    Shapes: parts (N, T, C), final (T, C), weight (C,), unembed (V, C),
    targets (T,)
    """
    return run_check(
        "check_direct_logit_attribution",
        fn,
        _dla_cases(),
        lambda e, r: tensors_close(e, r, rtol=1e-4, atol=1e-5),
        summary="one part, parts sharing a scale, centring, 4 random",
        forbidden=("labkit", "circuits"),
        references=(direct_logit_attribution,),
    )
