"""Direct preference optimisation (DPO): learn from "this answer, not that one".

DPO (Rafailov et al., 2023, "Direct Preference Optimization: Your Language
Model is Secretly a Reward Model") trains a policy pi from pairs (x, y_w,
y_l), y_w preferred, against a frozen reference pi_ref (the SFT model):

    loss = -log sigmoid(beta * [(log pi(y_w|x) - log pi_ref(y_w|x))
                               - (log pi(y_l|x) - log pi_ref(y_l|x))])

Each log-probability is a *sequence* log-probability: the sum of the answer
tokens' log-probabilities (its <|end|> included; the prompt's tokens are not
part of y). beta * (log pi - log pi_ref) is the policy's implicit reward; the
loss pushes the chosen answer's reward above the rejected one's, and beta
says how much a given gap is worth: a small beta lets the policy move far
from the reference before the loss is satisfied.

A batch (``DPOData.get_batch``) holds each pair as two neighbouring rows,
chosen then rejected, so labkit.train's loop runs DPO unchanged with
``train(..., loss_fn=dpo_objective(reference, beta))``. ``dpo_metrics`` gives
the numbers to watch: rewards, their margin, how often the implicit reward
ranks the pair right. The KL to the reference is measured on the policy's
own samples (``labkit.evals`` asks; ``sampled_kl`` here).
Built in: notebooks/17_preference_tuning.ipynb.
Leaves out on purpose: IPO / KTO variants, label smoothing, precomputed
reference log-probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from labkit.chat import END, encode_chat, prompt_ids
from labkit.instruct import PreferencePair, check_splits
from labkit.sampling import generate
from labkit.sft import IGNORE_INDEX, chat_messages, pad_rows, sft_pair


def token_logprobs(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """log p(target) at every position, 0 where the target is ignored.

    Per token, for losses that weigh tokens one by one (labkit.grpo).
    Shapes: logits (B, T, V), y (B, T) -> (B, T)
    """
    logp = logits.float().log_softmax(-1)  # (B, T, V)
    picked = logp.gather(-1, y.clamp(min=0)[..., None])[..., 0]  # (B, T)
    return picked * (y != IGNORE_INDEX)


def sequence_logprobs(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sum of log p(target) over each row's targets that are not ignored.

    Shapes: logits (B, T, V), y (B, T) -> (B,)
    """
    return token_logprobs(logits, y).sum(-1)


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """The DPO loss, averaged over pairs (see the module docstring).

    Raises ValueError for beta <= 0. Shapes: four (B,) -> scalar
    """
    if not beta > 0:
        raise ValueError(f"beta={beta} must be positive")
    chosen_ratio = policy_chosen - ref_chosen  # log pi/pi_ref of y_w, (B,)
    rejected_ratio = policy_rejected - ref_rejected  # (B,)
    return -F.logsigmoid(beta * (chosen_ratio - rejected_ratio)).mean()


def check_reference(policy, reference) -> None:
    """Raise ValueError unless the two models have the same parameters
    (names and shapes): a reference of another shape scores other tokens."""
    p = {n: tuple(t.shape) for n, t in policy.state_dict().items()}
    r = {n: tuple(t.shape) for n, t in reference.state_dict().items()}
    if p.keys() != r.keys():
        odd = sorted(p.keys() ^ r.keys())[:3]
        raise ValueError(f"policy and reference differ in parameters {odd}")
    wrong = [f"{n} {p[n]} vs {r[n]}" for n in p if p[n] != r[n]]
    if wrong:
        raise ValueError(
            f"the reference has another shape than the policy: {wrong[0]} "
            f"(policy vs reference); the reference must score the policy's tokens"
        )


def pair_logprobs(model, x: torch.Tensor, y: torch.Tensor):
    """(chosen, rejected) sequence log-probs of a DPOData batch.

    Shapes: x, y (2B, T) -> two (B,)
    """
    lp = sequence_logprobs(model(x), y)  # (2B,)
    return lp[0::2], lp[1::2]


def dpo_objective(reference, beta: float):
    """The loss function for ``labkit.train.train(..., loss_fn=...)``:
    ``loss(model, x, y)`` on a DPOData batch, with ``reference`` frozen."""
    if not beta > 0:
        raise ValueError(f"beta={beta} must be positive")
    reference.requires_grad_(False).eval()
    checked = []  # the policy is checked against the reference once

    def loss(model, x, y):
        if not checked:
            check_reference(model, reference)
            checked.append(True)
        pi_w, pi_l = pair_logprobs(model, x, y)
        with torch.no_grad():
            ref_w, ref_l = pair_logprobs(reference, x, y)
        return dpo_loss(pi_w, pi_l, ref_w, ref_l, beta)

    return loss


@dataclass(frozen=True)
class DPOMetrics:
    """What a DPO run watches, averaged over pairs (rewards in nats)."""

    loss: float
    chosen_reward: float  # beta * (log pi - log pi_ref) of the chosen answers
    rejected_reward: float
    margin: float  # chosen_reward - rejected_reward
    reward_accuracy: float  # share of pairs with a positive margin
    chosen_logp: float  # log pi of the chosen answers (sum over tokens)
    rejected_logp: float


@torch.no_grad()
def dpo_metrics(policy, reference, x, y, beta: float) -> DPOMetrics:
    """DPOMetrics of one DPOData batch. Shapes: x, y (2B, T)."""
    pi_w, pi_l = pair_logprobs(policy, x, y)
    ref_w, ref_l = pair_logprobs(reference, x, y)
    chosen, rejected = beta * (pi_w - ref_w), beta * (pi_l - ref_l)  # (B,)
    return DPOMetrics(
        loss=dpo_loss(pi_w, pi_l, ref_w, ref_l, beta).item(),
        chosen_reward=chosen.mean().item(),
        rejected_reward=rejected.mean().item(),
        margin=(chosen - rejected).mean().item(),
        reward_accuracy=(chosen > rejected).float().mean().item(),
        chosen_logp=pi_w.mean().item(),
        rejected_logp=pi_l.mean().item(),
    )


def encode_pair(pair: PreferencePair, tokenizer, context_len: int | None):
    """The two conversations of a pair as (x, y) rows: chosen, then rejected.

    Raises labkit.chat.ChatTooLong when either has more than context_len + 1
    tokens (x holds context_len)."""
    limit = None if context_len is None else context_len + 1
    return [
        sft_pair(*encode_chat(chat_messages(pair.example, a), tokenizer, limit))
        for a in (pair.chosen, pair.rejected)
    ]


class DPOData:
    """Preference pairs for ``labkit.train.train``: ``get_batch`` draws
    batch_size pairs of a split and returns 2 * batch_size rows (chosen,
    rejected, chosen, ...), right-padded, targets only on the answers.

    Splits that share a story raise ValueError; a pair that does not fit
    ``context_len`` raises ChatTooLong.
    Shapes: get_batch -> x, y (2B, T') long, T' <= context_len.
    """

    def __init__(self, splits: dict[str, list[PreferencePair]], tokenizer, context_len):
        check_splits({s: [p.example for p in pairs] for s, pairs in splits.items()})
        missing = {"train", "val"} - set(splits)
        if missing:
            raise ValueError(f"DPOData needs a train and a val split; no {missing}")
        self.vocab_size = tokenizer.vocab_size
        self.pad_id = tokenizer.special_tokens[END]
        self.context_len = context_len
        self.rows = {}
        for name, pairs in splits.items():
            if not pairs:
                raise ValueError(f"split {name!r} has no pairs")
            self.rows[name] = [encode_pair(p, tokenizer, context_len) for p in pairs]

    def batch(self, split: str, indices: list[int]):
        """The pairs at ``indices`` of a split as one batch (fixed batches)."""
        rows = [row for i in indices for row in self.rows[split][i]]
        return pad_rows(rows, self.pad_id)

    def get_batch(
        self, split: str, batch_size: int, context_len: int, generator: torch.Generator
    ):
        """batch_size random pairs of a split (the loop's batch size counts
        pairs; the model sees twice as many rows)."""
        if split not in self.rows:
            raise ValueError(f"unknown split {split!r}; known: {list(self.rows)}")
        if context_len < self.context_len:
            raise ValueError(
                f"context_len={context_len} is shorter than the data's "
                f"{self.context_len}: the pairs were checked against it"
            )
        picks = torch.randint(len(self.rows[split]), (batch_size,), generator=generator)
        return self.batch(split, picks.tolist())


@torch.no_grad()
def sampled_kl(
    policy,
    reference,
    tokenizer,
    examples,
    n_samples: int = 4,
    seed: int = 0,
    max_new_tokens: int = 32,
) -> float:
    """KL(pi || pi_ref) of the answer, in nats per question, estimated on
    ``n_samples`` answers sampled (temperature 1) from the policy per
    question: the mean of log pi(y|x) - log pi_ref(y|x) over the samples.

    A sampled answer runs to its <|end|> or to ``max_new_tokens``; its
    log-probs are summed over the tokens it wrote. Shapes: B = len(examples) prompts.
    """
    end_id = tokenizer.special_tokens[END]
    T = policy.cfg.context_len
    total, count = 0.0, 0
    for k in range(n_samples):
        prompts = [prompt_ids(ex.prompt, tokenizer, T) for ex in examples]
        new = generate(
            policy, prompts, max_new_tokens, temperature=1.0, seed=seed + k,
            eos_id=end_id,
        )  # fmt: skip
        rows = []
        for p, ids in zip(prompts, new, strict=True):
            seq = (p + ids)[: T + 1]
            answer_mask = [False] * len(p) + [True] * (len(seq) - len(p))
            rows.append(sft_pair(seq, answer_mask))
        x, y = pad_rows(rows, end_id)
        diff = sequence_logprobs(policy(x), y) - sequence_logprobs(reference(x), y)
        total += diff.sum().item()
        count += len(rows)
    return total / count
