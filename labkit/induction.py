"""Induction heads, reproduced: a 2-layer attention-only GPT learns to copy.

Sequences of random tokens that repeat (the first half random, the second half
the same tokens again) can only be predicted in the second half, by finding
the earlier copy of the current token and predicting the token that followed
it. Two heads in two layers do it (Elhage et al., 2021; Olsson et al., 2022):
a previous-token head in layer 0 writes "my previous token was A" into each
position, and an induction head in layer 1 matches the current token A with
that note and copies what it finds there. Training shows a phase change: the
loss on the repeated half sits at the random level, then drops sharply at the
same step as the best head's induction score (``labkit.interp.head_scores``)
jumps.

Two choices keep the model from cheating. With one fixed half length h, it
can find the earlier copy by position alone (look a fixed distance back)
instead of by matching tokens, so each training step draws its own half
length. And RoPE positions make "attend one back" the same rule at every
position, so the previous-token head is quick to learn.

Built in: notebooks/13_inside_a_trained_model.ipynb.
Ablations, patching and attribution of single heads: ``labkit.circuits``.
Left out on purpose: MLPs (the circuit needs none), the composition scores
of the original paper.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from labkit.interp import head_scores
from labkit.model import GPT, GPTConfig, trace


@dataclass(frozen=True)
class InductionConfig:
    """The experiment: data, model and training. Defaults run in seconds on CPU."""

    vocab_size: int = 32  # random tokens are drawn from 0..vocab_size-1
    half_len: int = 16  # longest half; the probe's sequences are 2 * half_len
    min_half_len: int = 8  # each step draws its half length from min..half_len
    n_layers: int = 2
    n_heads: int = 4
    d_model: int = 64
    pos: str = "rope"  # relative positions make a previous-token head easy
    steps: int = 300
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.0
    seed: int = 0
    distinct: bool = True  # no repeats inside the first half
    probe_size: int = 8  # sequences the induction score is averaged over
    snapshots: tuple[int, ...] = ()  # steps whose weights the run keeps

    def __post_init__(self):
        if self.half_len < 2 or self.steps < 1:
            raise ValueError(
                f"half_len={self.half_len} must be >= 2 and steps={self.steps} >= 1"
            )

    def model_config(self) -> GPTConfig:
        """An attention-only GPT (mlp="none") sized for the sequences."""
        return GPTConfig(
            vocab_size=self.vocab_size,
            context_len=2 * self.half_len,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            d_model=self.d_model,
            pos=self.pos,
            mlp="none",
            tie_weights=False,
        )


def repeated_tokens(
    batch_size: int,
    half_len: int,
    vocab_size: int,
    generator: torch.Generator,
    distinct: bool = True,
) -> torch.Tensor:
    """Random tokens, then the same tokens again.

    distinct=True draws the first half without replacement (needs half_len <=
    vocab_size), so the only repeats are the second half's.
    Shapes: -> (B, 2 * half_len) long
    """
    if distinct:
        order = torch.rand(batch_size, vocab_size, generator=generator).argsort(-1)
        half = order[:, :half_len]  # (B, h): a random permutation's start
    else:
        shape = (batch_size, half_len)
        half = torch.randint(0, vocab_size, shape, generator=generator)
    return torch.cat([half, half], dim=1)  # (B, 2h)


def half_losses(logits: torch.Tensor, tokens: torch.Tensor) -> tuple[float, float]:
    """Mean next-token loss predicting tokens 1..h-1 (the first, random half)
    and tokens h+1..2h-1 (the repeated half, copyable from the first).

    Token h, the first repeated one, is in neither: its predecessor is the end
    of the random half, so an induction head has nothing to match yet.
    Shapes: logits (B, 2h, V), tokens (B, 2h)
    """
    h = tokens.shape[1] // 2
    loss = F.cross_entropy(
        logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none"
    )  # (B, 2h-1): loss[:, t] is predicting token t + 1
    return float(loss[:, : h - 1].mean()), float(loss[:, h:].mean())


def induction_score(weights: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Each head's induction score, averaged over a batch of sequences.

    Per sequence it is ``labkit.interp.head_scores(...)["induction"]``: the mean
    attention from a query to the keys right after earlier copies of the
    query's token, over the queries that have an earlier copy.
    Shapes: weights (B, L, H, T, T), tokens (B, T) -> (L, H)
    """
    per_seq = [
        head_scores(w, seq)["induction"] for w, seq in zip(weights, tokens, strict=True)
    ]
    return torch.stack(per_seq).mean(0)


@torch.no_grad()
def attention_weights(model: GPT, tokens: torch.Tensor) -> torch.Tensor:
    """Every layer's attention weights for a batch, through ``trace``.

    Shapes: tokens (B, T) -> (B, L, H, T, T)
    """
    with trace(model) as acts:
        model(tokens, need_weights=True)
    L = len(model.blocks)
    return torch.stack([acts[f"blocks.{i}.attn.weights"] for i in range(L)], 1)


@dataclass
class InductionRun:
    """A trained model and what was logged at every step (before its update).

    history: step, loss_first, loss_repeat (the training batch's losses on
    each half) and score (the best head's induction score on the probe set).
    snapshots: the model's state_dict before the update of each step in
    ``cfg.snapshots`` (load it into ``GPT(cfg.model_config())``).
    """

    model: GPT
    cfg: InductionConfig
    probe: torch.Tensor
    history: dict[str, list] = field(default_factory=dict)
    snapshots: dict[int, dict] = field(default_factory=dict)


def train_induction(cfg: InductionConfig = InductionConfig()) -> InductionRun:
    """Train the attention-only GPT on repeated random tokens with AdamW.

    Seeded: the same cfg gives the same run on the same machine.
    """
    torch.manual_seed(cfg.seed)
    model = GPT(cfg.model_config())
    gen = torch.Generator().manual_seed(cfg.seed)
    probe_gen = torch.Generator().manual_seed(cfg.seed + 1)
    probe = repeated_tokens(
        cfg.probe_size, cfg.half_len, cfg.vocab_size, probe_gen, cfg.distinct
    )
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
    )
    keys = ("step", "loss_first", "loss_repeat", "score")
    history = {k: [] for k in keys}
    snapshots = {}
    for step in range(cfg.steps + 1):
        if step in cfg.snapshots:
            snapshots[step] = {k: v.clone() for k, v in model.state_dict().items()}
        h = int(torch.randint(cfg.min_half_len, cfg.half_len + 1, (), generator=gen))
        tokens = repeated_tokens(cfg.batch_size, h, cfg.vocab_size, gen, cfg.distinct)
        logits = model(tokens)  # (B, T, V)
        first, repeat = half_losses(logits.detach(), tokens)
        weights = attention_weights(model, probe)  # (P, L, H, T, T)
        score = float(induction_score(weights, probe).max())
        for k, v in zip(keys, (step, first, repeat, score), strict=True):
            history[k].append(v)
        if step == cfg.steps:
            break
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return InductionRun(model.eval(), cfg, probe, history, snapshots)


def phase_change_step(values: list[float], rising: bool) -> int:
    """The step at which ``values`` first cross halfway from their start to
    their end (the mean of the first and last 5% of steps).

    rising=True for a score that jumps up, False for a loss that drops.
    """
    n = max(1, len(values) // 20)
    start, end = sum(values[:n]) / n, sum(values[-n:]) / n
    mid = (start + end) / 2
    for step, v in enumerate(values):
        if (v >= mid) if rising else (v <= mid):
            return step
    raise ValueError("values never cross halfway: no phase change")
