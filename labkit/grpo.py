"""Learning from a reward: a GRPO-style loop, written to be read.

GRPO (Shao et al., 2024, "DeepSeekMath") trains a policy pi on rewards
that need no learned value function. Each step:

1. take P prompts; sample a *group* of k answers to each from the current
   policy (at ``temperature``, 1 by default), the policy that sampled
   being pi_old; every log-prob below is taken at that same temperature
   (``answer_logprobs``), so pi_old *is* the sampler's distribution;
2. reward each answer (labkit.rewards: code checks it);
3. the advantage of answer i of a group is its reward against the group's:
   A_i = (r_i - mean(r)) / std(r) (std over the k answers, population
   form). A group whose answers all got the same reward teaches nothing:
   its advantages are 0 (not 0/0). A group of one has no baseline, so
   group_size >= 2;
4. per answer token t, with rho_t = pi(t) / pi_old(t), minimise
       -[min(rho_t A, clip(rho_t, 1 - eps, 1 + eps) A) - beta * k3_t]
   averaged over each answer's tokens, then over the P * k answers. k3 is
   Schulman's (2020, "Approximating KL Divergence") estimator of
   KL(pi || pi_ref) from tokens sampled from pi: with d = log pi_ref(t) -
   log pi(t), k3 = exp(d) - d - 1. It is never negative, and its mean over
   samples from pi is the KL (tested on a toy distribution).

With ``updates_per_batch=1`` the ratio is exactly 1 and the clip never
acts: the gradient is REINFORCE with the group mean as baseline, scaled by
1/std (tested). With several updates on one batch the policy moves away
from pi_old and the clip stops any token's ratio from pushing further.

``train_grpo`` runs the loop with labkit.train's conventions: the device by
``pick_device``, AdamW by ``make_optimizer``, seeded prompt order and
sampling, and with ``out_dir`` a run folder holding run.json and one
metrics.jsonl line per step (written atomically / appended).
Built in: notebooks/18_learning_from_rewards.ipynb.
Leaves out on purpose: a value model (PPO), resuming a stopped run,
length-normalisation variants (Dr. GRPO), several turns.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from labkit.dpo import check_reference, token_logprobs
from labkit.rewards import call_reward
from labkit.sampling import generate
from labkit.sft import IGNORE_INDEX, pad_rows, sft_pair
from labkit.train import runlog
from labkit.train.files import write_json_atomic
from labkit.train.loop import model_config
from labkit.train.optim import make_optimizer
from labkit.train.run import pick_device


@dataclass(frozen=True)
class GRPOConfig:
    """The loop's settings. Frozen: change one with dataclasses.replace."""

    steps: int = 20  # sampling steps (each: P prompts x k answers)
    prompts_per_step: int = 8  # P
    group_size: int = 8  # k answers per prompt; >= 2 (the baseline)
    updates_per_batch: int = 1  # optimizer steps on one sampled batch
    lr: float = 1e-5  # AdamW learning rate (constant)
    beta: float = 0.04  # weight of the KL penalty to the reference
    clip_eps: float = 0.2  # the ratio is clipped to [1 - eps, 1 + eps]
    temperature: float = 1.0  # sampling temperature of the group
    max_new_tokens: int = 32  # answer tokens sampled at most
    grad_clip: float = 1.0  # clip the global grad norm; 0 turns it off
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.99
    eps: float = 1e-8
    seed: int = 0  # prompt order and sampling
    device: str = "cpu"  # "auto", "cpu", "cuda", ... (labkit.train)
    out_dir: str | None = None  # run folder; None: no files are written

    def __post_init__(self):
        if self.group_size < 2:
            raise ValueError(
                f"group_size={self.group_size}: a group of one answer has no "
                f"baseline (its advantage would be 0/0); use group_size >= 2"
            )
        for name in ("steps", "prompts_per_step", "updates_per_batch",
                     "max_new_tokens"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if not (self.lr > 0 and self.beta >= 0 and 0 < self.clip_eps < 1):
            raise ValueError(
                f"need lr > 0, beta >= 0 and 0 < clip_eps < 1; got lr={self.lr}, "
                f"beta={self.beta}, clip_eps={self.clip_eps}"
            )
        if not self.temperature > 0:
            raise ValueError(f"temperature={self.temperature} must be > 0")


@dataclass(frozen=True)
class Task:
    """What the loop needs to know about the prompts: their items, the
    token ids of each (``prompt``), how to read an answer out of the
    sampled ids (``decode``), its reward (``reward(item, answer)``) and the
    end-of-answer token (None: answers run to max_new_tokens)."""

    items: list
    prompt: Callable[[object], list[int]]
    decode: Callable[[list[int]], object]
    reward: Callable[[object, object], float]
    eos_id: int | None = None


def qa_task(examples, tokenizer, context_len: int, reward) -> Task:
    """A Task of story questions (labkit.instruct) asked in the chat
    template (labkit.chat), answers read with ``parse_answer``."""
    from labkit.chat import END, parse_answer, prompt_ids

    return Task(
        items=list(examples),
        prompt=lambda ex: prompt_ids(ex.prompt, tokenizer, context_len),
        decode=lambda ids: parse_answer(ids, tokenizer),
        reward=reward,
        eos_id=tokenizer.special_tokens[END],
    )


def group_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """(r - group mean) / group std, 0 for a group whose rewards are equal.

    Shapes: rewards (P, k) -> (P, k)
    """
    if rewards.ndim != 2 or rewards.shape[1] < 2:
        raise ValueError(
            f"rewards of shape {tuple(rewards.shape)}: need (P, k) with k >= 2 "
            f"(a group of one has no baseline)"
        )
    centred = rewards - rewards.mean(-1, keepdim=True)  # (P, k)
    std = rewards.std(-1, unbiased=False, keepdim=True)  # (P, 1)
    return torch.where(std > 0, centred / std.clamp(min=1e-12), 0.0)


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 estimate of KL(pi || pi_ref) at each sampled token:
    exp(d) - d - 1 with d = ref_logp - logp. Shapes: any, elementwise."""
    d = ref_logp - logp
    return torch.exp(d) - d - 1


def clipped_objective(logp, old_logp, ref_logp, advantages, mask, clip_eps, beta):
    """The GRPO loss (module docstring, step 4) to minimise.

    Shapes: logp, old_logp, ref_logp, mask (N, T); advantages (N,) -> scalar
    """
    ratio = torch.exp(logp - old_logp)  # (N, T)
    A = advantages[:, None]  # (N, 1)
    surrogate = torch.minimum(ratio * A, ratio.clamp(1 - clip_eps, 1 + clip_eps) * A)
    per_token = -(surrogate - beta * k3_kl(logp, ref_logp)) * mask  # (N, T)
    return (per_token.sum(-1) / mask.sum(-1).clamp(min=1)).mean()


@dataclass
class Rollouts:
    """One step's sampled groups: rows (prompt + answer) whose targets are
    the answer tokens only, the decoded answers and their rewards.
    Shapes: x, y (P * k, T'); rewards (P, k); lengths (P * k,)."""

    x: torch.Tensor
    y: torch.Tensor
    answers: list
    rewards: torch.Tensor
    lengths: torch.Tensor


def sample_groups(policy, task: Task, items: list, cfg: GRPOConfig, seed: int):
    """k answers per item from ``policy``, rewarded (a Rollouts).

    Answers of a group are rows k * i .. k * i + k - 1, sampled in one call
    per group (its k prompts have one length: one forward reads them), the
    group i with seed ``seed + i``. A row is cut to context_len + 1 tokens
    (x holds context_len).
    """
    k = cfg.group_size
    prompts, new = [], []
    for i, item in enumerate(items):
        prompts += [task.prompt(item)] * k
        new += generate(policy, prompts[-k:], cfg.max_new_tokens,
                        temperature=cfg.temperature, seed=seed + i,
                        eos_id=task.eos_id)  # fmt: skip
    T = policy.cfg.context_len
    rows, answers, rewards = [], [], []
    for j, (p, ids) in enumerate(zip(prompts, new, strict=True)):
        seq = (p + ids)[: T + 1]
        rows.append(sft_pair(seq, [False] * len(p) + [True] * (len(seq) - len(p))))
        answers.append(task.decode(ids))
        rewards.append(
            call_reward(task.reward, items[j // cfg.group_size], answers[-1])
        )
    x, y = pad_rows(rows, task.eos_id if task.eos_id is not None else 0)
    shape = (len(items), cfg.group_size)
    lengths = torch.tensor([len(ids) for ids in new])
    return Rollouts(x, y, answers, torch.tensor(rewards).view(shape), lengths)


def answer_logprobs(model, x, y, temperature: float = 1.0) -> torch.Tensor:
    """log p of each target token under ``model`` sampling at
    ``temperature`` (its logits divided by it, as the sampler does), 0
    where the target is ignored. Scoring at another temperature than the
    group was sampled at would make pi_old differ from the sampler, and the
    ratio 1 of the first update a lie. Shapes: x, y (N, T) -> (N, T)
    """
    return token_logprobs(model(x) / temperature, y)


def grpo_update(policy, reference, optimizer, batch: Rollouts, cfg: GRPOConfig):
    """``updates_per_batch`` optimizer steps on one sampled batch; returns
    the step's metrics (KL and clipping measured on the first update)."""
    device = next(policy.parameters()).device
    x, y = batch.x.to(device), batch.y.to(device)  # (N, T)
    mask = (y != IGNORE_INDEX).float()  # (N, T)
    adv = group_advantages(batch.rewards).flatten().to(device)  # (N,)
    with torch.no_grad():
        ref_logp = answer_logprobs(reference, x, y, cfg.temperature)  # (N, T)
    policy.train()
    old_logp, out = None, {}
    for _ in range(cfg.updates_per_batch):
        logp = answer_logprobs(policy, x, y, cfg.temperature)  # (N, T)
        if old_logp is None:
            old_logp = logp.detach()  # pi_old: the policy that sampled
        loss = clipped_objective(logp, old_logp, ref_logp, adv, mask,
                                 cfg.clip_eps, cfg.beta)  # fmt: skip
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        max_norm = cfg.grad_clip if cfg.grad_clip > 0 else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), max_norm)
        optimizer.step()
        with torch.no_grad():
            ratio = torch.exp(logp - old_logp)
            clipped = ((ratio - 1).abs() > cfg.clip_eps).float()
            out.setdefault("kl", _token_mean(k3_kl(logp, ref_logp), mask))
            out["clip_frac"] = _token_mean(clipped, mask)  # the last update's
        out.setdefault("loss", loss.item())
        out["grad_norm"] = float(norm)
    return out


def _token_mean(values: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean over each answer's tokens, then over answers."""
    return ((values * mask).sum(-1) / mask.sum(-1).clamp(min=1)).mean().item()


def batch_metrics(batch: Rollouts) -> dict:
    """Mean reward, mean within-group reward std, share of groups whose
    rewards are all equal (no signal), mean answer length in tokens."""
    std = batch.rewards.std(-1, unbiased=False)  # (P,)
    return {
        "reward": batch.rewards.mean().item(),
        "reward_std": std.mean().item(),
        "zero_var_frac": (std == 0).float().mean().item(),
        "answer_len": batch.lengths.float().mean().item(),
    }


@dataclass
class GRPOResult:
    """What ``train_grpo`` returns: one metrics dict per step, the run
    folder (None when nothing was written) and the wall time."""

    history: list[dict]
    run_dir: Path | None
    wall_s: float


def _open_run(cfg: GRPOConfig, policy, device) -> Path | None:
    if cfg.out_dir is None:
        return None
    run_dir = Path(cfg.out_dir)
    runlog.check_run_dir(run_dir, need_bytes=0)
    (run_dir / "metrics.jsonl").unlink(missing_ok=True)  # a new run starts over
    write_json_atomic(run_dir / "run.json", {
        "grpo_config": dataclasses.asdict(cfg),
        "model_config": model_config(policy),
        "git_commit": runlog.git_commit(),
        "versions": runlog.versions(),
        "device": str(device),
        "seed": cfg.seed,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })  # fmt: skip
    return run_dir


def train_grpo(policy, reference, task: Task, cfg: GRPOConfig, on_step=None):
    """Train ``policy`` in place on ``task``'s rewards, ``reference`` frozen.

    ``on_step(step, record)`` is called after every step (the only hook).
    Raises ValueError when policy and reference differ in shape, when the
    policy has nothing to train (the reference frozen by an earlier call is
    frozen in its copies too), or when there are fewer items than
    prompts_per_step.
    """
    check_reference(policy, reference)
    if policy is reference or not any(p.requires_grad for p in policy.parameters()):
        raise ValueError(
            "the policy has no parameter that requires grad (the reference "
            "itself, or a copy of the frozen reference?): pass "
            "copy.deepcopy(reference).requires_grad_(True)"
        )
    if len(task.items) < cfg.prompts_per_step:
        raise ValueError(
            f"{len(task.items)} prompts, fewer than prompts_per_step="
            f"{cfg.prompts_per_step}"
        )
    device = pick_device(cfg.device)
    policy.to(device)
    reference.to(device).requires_grad_(False).eval()
    optimizer = make_optimizer(policy, cfg, device.type)
    run_dir, start = _open_run(cfg, policy, device), time.perf_counter()
    log = runlog.MetricsLog(run_dir) if run_dir else None
    gen = torch.Generator().manual_seed(cfg.seed)
    order: list[int] = []
    history = []
    for step in range(1, cfg.steps + 1):
        while len(order) < cfg.prompts_per_step:  # a new pass over the prompts
            order += torch.randperm(len(task.items), generator=gen).tolist()
        picks, order = order[: cfg.prompts_per_step], order[cfg.prompts_per_step :]
        items = [task.items[i] for i in picks]
        batch = sample_groups(
            policy, task, items, cfg, seed=(cfg.seed * 1000 + step) * 1000
        )
        record = {"step": step, **batch_metrics(batch)}
        record.update(grpo_update(policy, reference, optimizer, batch, cfg))
        history.append(record)
        if log is not None:
            log.write(record)
        if on_step is not None:
            on_step(step, record)
    policy.eval()
    return GRPOResult(history, run_dir, time.perf_counter() - start)
