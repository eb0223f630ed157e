"""The training loop: one readable function, ``train(model, data, cfg)``.

Each step: set the scheduled learning rate, run ``grad_accum`` micro-batches
(forward, cross-entropy, backward), clip the gradient norm, take an AdamW step.
Every ``eval_every`` steps: the mean loss on fixed held-out batches (in nats
per token and bits per byte), samples from fixed prompts, a checkpoint, and
the optional ``on_eval(step, record)`` hook (the only hook: live plots use it).
On CUDA the forward runs under bf16 autocast and may be ``torch.compile``d.
What stays fixed for the run (device, context length, batch generator, run
folder, DDP rank) is chosen and checked once, in run.py; the other pieces
live beside this file: config, schedule, optim, checkpoint, runlog, ddp.
Built in: notebooks/11_training_loop.ipynb.
Left out on purpose: mixed precision on CPU, fp16 loss scaling, FSDP.
"""

import contextlib
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from labkit.data import bits_per_byte, tokenizer_hash
from labkit.sampling import generate
from labkit.train import checkpoint as ckpt_mod
from labkit.train import ddp, runlog
from labkit.train.config import TrainConfig
from labkit.train.files import read_json, write_json_atomic
from labkit.train.optim import make_optimizer
from labkit.train.run import RunSetup, pick_device, prepare_run
from labkit.train.schedule import lr_at

__all__ = ["TrainResult", "evaluate", "lm_loss", "pick_device", "train"]


@dataclass
class TrainResult:
    """What ``train`` returns: the run folder, losses, last eval, wall time."""

    run_dir: Path | None
    step: int  # steps completed in total (after a resume: counted from 0)
    losses: dict[int, float]  # training loss at each logged step of this call
    evals: list[dict]  # one record per evaluation of this call
    best_val_loss: float | None
    wall_s: float


def model_config(model) -> dict | None:
    """The model's config as run.json and checkpoints record it.

    Derived sizes (n_kv_heads, d_mlp) are written out, so a run recorded
    before GPTConfig resolved them when read compares equal to one after.
    """
    cfg = getattr(model, "cfg", None)
    if not dataclasses.is_dataclass(cfg):
        return None
    resolved = getattr(cfg, "resolved", None)
    return dataclasses.asdict(resolved() if callable(resolved) else cfg)


def lm_loss(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over the targets that are not -100
    (F.cross_entropy's ignore_index; labkit.sft masks prompts and padding
    with it). Shapes: x, y (B, T) -> scalar."""
    logits = model(x)  # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())


@torch.no_grad()
def evaluate(model, data, setup: RunSetup, loss_fn=lm_loss) -> dict:
    """Mean loss over ``eval_batches`` fixed batches of each split.

    The batches are drawn from a generator seeded afresh each time, so every
    evaluation of a run scores the same text. Adds bits per byte when the
    data knows its bytes per token. ``loss_fn(model, x, y)`` is the loss
    the run trains on (default ``lm_loss``).
    """
    cfg = setup.cfg
    model.eval()
    out = {}
    for split in ("train", "val"):
        gen = torch.Generator().manual_seed(cfg.seed + 1)
        total = 0.0
        for _ in range(cfg.eval_batches):
            x, y = data.get_batch(split, cfg.micro_batch, setup.T, gen)
            with setup.autocast:
                x, y = x.to(setup.device), y.to(setup.device)
                total += loss_fn(model, x, y).item()
        out[f"{split}_loss"] = total / cfg.eval_batches
        if hasattr(data, "bytes_per_token"):
            bpt = data.bytes_per_token(split)
            out[f"{split}_bpb"] = bits_per_byte(out[f"{split}_loss"], bpt)
    model.train()
    return out


def samples(model, tokenizer, cfg: TrainConfig) -> dict[str, str]:
    """Text continuing each of ``cfg.sample_prompts`` (seeded, temperature 0.8).

    The model is a labkit GPT (prepare_run checks), sampled with its KV cache.
    """
    out = {}
    for prompt in cfg.sample_prompts:
        try:
            ids = tokenizer.encode(prompt)
        except (ValueError, KeyError) as e:  # e.g. a character-level vocabulary
            out[prompt] = f"(the tokenizer cannot encode this prompt: {e})"
            continue
        new = generate(model, [ids], cfg.sample_tokens, temperature=0.8, seed=cfg.seed)
        out[prompt] = tokenizer.decode(ids + new[0])
    return out


def _resume_point(setup: RunSetup, model, optimizer) -> tuple[int, float | None]:
    """Load the newest checkpoint when resuming; (step, best val loss)."""
    found = ckpt_mod.list_checkpoints(setup.run_dir / "checkpoints")
    if not (setup.cfg.resume and found):
        return 0, None
    step = ckpt_mod.read_info(found[-1])["step"]
    if step > setup.stop:
        raise ValueError(
            f"cannot resume from {found[-1]}: its step {step} is past the end of "
            f"this run (steps={setup.cfg.steps}, stop_at={setup.cfg.stop_at})"
        )
    record = ckpt_mod.load_checkpoint(
        found[-1], model, optimizer, setup.gen, model_config=model_config(model)
    )
    return record["step"], record.get("best_val_loss")


def _start_run(setup: RunSetup, model, data, optimizer, tokenizer):
    """Check and open the run folder; resume if asked. Returns (step, best).

    Without ``resume`` a folder holding a run starts over: the old run's
    checkpoints and logs are removed first (so the two never mix).
    """
    run_dir, cfg = setup.run_dir, setup.cfg
    n_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    if setup.info.is_main:
        runlog.check_run_dir(run_dir, need_bytes=3 * n_bytes * (cfg.keep_last + 2))
    start, best = _resume_point(setup, model, optimizer)
    if not setup.info.is_main:
        return start, best
    if not cfg.resume:
        ckpt_mod.remove_all(run_dir / "checkpoints")
    for name in runlog.LOGS:
        runlog.MetricsLog(run_dir, name).truncate_after(start)
    write_json_atomic(
        run_dir / "run.json",
        {
            "train_config": dataclasses.asdict(cfg),
            "model_config": model_config(model),
            "n_params": sum(p.numel() for p in model.parameters()),
            "data_manifest": getattr(data, "manifest", None),
            "tokenizer_sha256": tokenizer_hash(tokenizer) if tokenizer else None,
            "git_commit": runlog.git_commit(),
            "versions": runlog.versions(),
            "device": str(setup.device),
            "world_size": setup.info.world_size,
            "seed": cfg.seed,
            "resumed_from_step": start,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
    return start, best


def train_step(setup: RunSetup, fwd, model, optimizer, data, loss_fn=lm_loss):
    """One optimizer step: grad_accum micro-batches, clipping, AdamW update.

    ``fwd`` is the model as called (maybe compiled or DDP-wrapped); ``model``
    the plain module; ``loss_fn(fwd, x, y)`` the loss (default ``lm_loss``).
    Returns (mean loss as a tensor, gradient norm).
    Shapes: each micro-batch x, y is (batch_size / grad_accum / N, T).
    """
    cfg, info, device = setup.cfg, setup.info, setup.device
    loss_sum = torch.zeros((), device=device)
    for micro in range(cfg.grad_accum):
        x, y = data.get_batch("train", cfg.micro_batch, setup.T, setup.gen)
        x, y = ddp.rank_slice(x, info), ddp.rank_slice(y, info)
        last = micro == cfg.grad_accum - 1
        # DDP averages gradients across processes only on the last micro-batch
        sync = contextlib.nullcontext() if last or not info.enabled else fwd.no_sync()
        with sync:
            with setup.autocast:
                loss = loss_fn(fwd, x.to(device), y.to(device)) / cfg.grad_accum
            loss.backward()
        loss_sum += loss.detach()
    clip = cfg.grad_clip if cfg.grad_clip > 0 else float("inf")
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_sum, grad_norm


def train(model, data, cfg: TrainConfig, on_eval=None, *, tokenizer=None, loss_fn=None):
    """Train ``model`` on ``data`` as ``cfg`` says; return a TrainResult.

    ``data`` needs ``get_batch(split, batch_size, context_len, generator)``;
    ``tokenizer`` (optional) turns the sample prompts into ids and back.
    ``loss_fn(model, x, y) -> scalar`` replaces the next-token cross-entropy
    ``lm_loss`` for training and evaluation alike (labkit.dpo's objective);
    targets equal to -100 are left out of ``lm_loss`` (labkit.sft's masks).
    ``on_eval(step, record)`` is called after each evaluation. Everything is
    checked (run.py, and the checkpoint when resuming) before the first step.
    Without ``cfg.resume`` a run folder that holds a run starts over: the old
    run's checkpoints and logs are removed first, so the two never mix
    (``labkit train`` refuses such a folder instead).
    Shapes: data batches (B, T) long; model(x) -> logits (B, T, V).
    """
    setup = prepare_run(model, data, cfg, tokenizer)
    torch.manual_seed(cfg.seed)  # dropout
    model.to(setup.device)
    optimizer = make_optimizer(model, cfg, setup.device.type)
    start, best = 0, None
    if setup.run_dir is not None:
        start, best = _start_run(setup, model, data, optimizer, tokenizer)
    fwd = torch.compile(model) if cfg.compile and setup.device.type == "cuda" else model
    fwd = ddp.wrap(fwd, setup.info, setup.device)
    result = TrainResult(setup.run_dir, start, {}, [], best, 0.0)
    steps = _Steps(setup, start)
    model.train()
    for step in steps.bar:
        lr = lr_at(step, cfg.lr, cfg.min_lr, cfg.warmup_steps, cfg.steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss_sum, grad_norm = train_step(
            setup, fwd, model, optimizer, data, loss_fn or lm_loss
        )
        done = result.step = step + 1
        record = {"step": done}
        if done % cfg.log_every == 0 or done == setup.stop:
            record.update(steps.stats(done, loss_sum, lr, grad_norm))
            result.losses[done] = record["loss"]
        if done % cfg.eval_every == 0 or done == setup.stop:  # stop: a checkpoint
            scores = evaluate(model, data, setup, loss_fn or lm_loss)
            record.update(scores, elapsed_s=steps.elapsed())
            _after_eval(
                setup, steps, record, result, model, optimizer, tokenizer, on_eval
            )
        elif len(record) > 1:
            steps.log(record)
    steps.bar.close()
    result.wall_s = steps.elapsed()
    if setup.writes:
        _finish_run(setup.run_dir / "run.json", result)
    return result


def _finish_run(path: Path, result: TrainResult) -> None:
    """Add the wall time, last step and best loss to run.json."""
    run = read_json(path, "a run record")
    run.update(
        wall_s=result.wall_s,
        final_step=result.step,
        best_val_loss=result.best_val_loss,
    )
    write_json_atomic(path, run)


class _Steps:
    """The loop's bookkeeping: progress bar, clock, throughput, metrics log."""

    def __init__(self, setup: RunSetup, start: int):
        self.setup, self.start = setup, start
        self.t_start = self.t_last = time.perf_counter()
        self.metrics = runlog.MetricsLog(setup.run_dir) if setup.writes else None
        self.bar = tqdm(
            range(start, setup.stop),
            initial=start,
            total=setup.cfg.steps,
            disable=not (setup.cfg.progress and setup.info.is_main),
            leave=False,
        )

    def elapsed(self) -> float:
        return time.perf_counter() - self.t_start

    def stats(self, done: int, loss_sum, lr: float, grad_norm) -> dict:
        """Loss (mean over ranks), lr, grad norm and tokens/s since the last."""
        cfg = self.setup.cfg
        loss = ddp.mean_over_ranks(loss_sum, self.setup.info).item()
        now = time.perf_counter()
        n_steps = (done - self.start) % cfg.log_every or cfg.log_every
        seconds = max(now - self.t_last, 1e-9)
        tokens_s = n_steps * cfg.batch_size * self.setup.T / seconds
        self.t_last = now
        self.bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}")
        return dict(loss=loss, lr=lr, grad_norm=float(grad_norm), tokens_per_s=tokens_s)

    def log(self, record: dict) -> None:
        if self.metrics is not None:
            self.metrics.write({k: v for k, v in record.items() if k != "samples"})


def _after_eval(setup, steps, record, result, model, optimizer, tokenizer, on_eval):
    """Best loss and samples, then the logs *before* the checkpoint (a kill
    after the checkpoint cannot lose its lines), the checkpoint, the hook."""
    step = record["step"]
    if result.best_val_loss is None or record["val_loss"] < result.best_val_loss:
        result.best_val_loss = record["val_loss"]
    result.evals.append(record)
    if tokenizer is not None and setup.info.is_main:
        record["samples"] = samples(model, tokenizer, setup.cfg)
    steps.log(record)
    if setup.writes:
        samples_log = runlog.MetricsLog(setup.run_dir, "samples.jsonl")
        for prompt, text in record.get("samples", {}).items():
            samples_log.write({"step": step, "prompt": prompt, "text": text})
        ckpt_dir = setup.run_dir / "checkpoints"
        scores = {k: v for k, v in record.items() if k.startswith(("train_", "val_"))}
        info = {
            "model_config": model_config(model),
            "train_config": dataclasses.asdict(setup.cfg),
            "best_val_loss": result.best_val_loss,
            **scores,
        }
        ckpt_mod.save_checkpoint(ckpt_dir, step, model, optimizer, setup.gen, info)
        ckpt_mod.prune(ckpt_dir, setup.cfg.keep_last)
    if on_eval is not None and setup.info.is_main:
        on_eval(step, record)
