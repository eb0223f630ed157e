"""The training loop: one readable function, ``train(model, data, cfg)``.

Each step: set the scheduled learning rate, run ``grad_accum`` micro-batches
(forward, cross-entropy, backward), clip the gradient norm, take an AdamW step.
Every ``eval_every`` steps: the mean loss on fixed held-out batches (in nats
per token and bits per byte), samples from fixed prompts, a checkpoint, and
the optional ``on_eval(step, record)`` hook (the only hook: live plots use it).
On CUDA the forward runs under bf16 autocast and may be ``torch.compile``d.
The pieces live beside this file: config, schedule, optim, checkpoint,
runlog, ddp. Built in: notebooks/11_training_loop.ipynb.
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

from labkit.train import checkpoint as ckpt_mod
from labkit.train import ddp, runlog
from labkit.train.config import TrainConfig
from labkit.train.optim import make_optimizer
from labkit.train.schedule import lr_at


@dataclass
class TrainResult:
    """What ``train`` returns: the run folder, losses, last eval, wall time."""

    run_dir: Path | None
    step: int  # steps completed in total (after a resume: counted from 0)
    losses: dict[int, float]  # training loss at each logged step of this call
    evals: list[dict]  # one record per evaluation of this call
    best_val_loss: float | None
    wall_s: float


def pick_device(name: str = "auto") -> torch.device:
    """ "auto" -> cuda if available, else mps, else cpu; otherwise as given."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def model_config(model) -> dict | None:
    cfg = getattr(model, "cfg", None)
    return dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else None


def lm_loss(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy. Shapes: x, y (B, T) -> scalar."""
    logits = model(x)  # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())


@torch.no_grad()
def evaluate(model, data, cfg: TrainConfig, T: int, device, autocast) -> dict:
    """Mean loss over ``eval_batches`` fixed batches of each split.

    The batches are drawn from a generator seeded afresh each time, so every
    evaluation of a run scores the same text. Adds bits per byte when the
    data knows its bytes per token.
    """
    model.eval()
    out = {}
    for split in ("train", "val"):
        gen = torch.Generator().manual_seed(cfg.seed + 1)
        total = 0.0
        for _ in range(cfg.eval_batches):
            x, y = data.get_batch(split, cfg.micro_batch, T, gen)
            with autocast:
                total += lm_loss(model, x.to(device), y.to(device)).item()
        out[f"{split}_loss"] = total / cfg.eval_batches
        if hasattr(data, "bytes_per_token"):
            bpt = data.bytes_per_token(split)
            out[f"{split}_bpb"] = out[f"{split}_loss"] / 0.6931471805599453 / bpt
    model.train()
    return out


def samples(model, tokenizer, cfg: TrainConfig, device) -> dict[str, str]:
    """Text continuing each of ``cfg.sample_prompts`` (seeded, temperature 0.8)."""
    from labkit.sampling import generate

    out = {}
    use_cache = hasattr(model, "cfg")
    for prompt in cfg.sample_prompts:
        try:
            ids = tokenizer.encode(prompt)
        except (ValueError, KeyError) as e:  # e.g. a character-level vocabulary
            out[prompt] = f"(the tokenizer cannot encode this prompt: {e})"
            continue
        new = generate(
            model,
            [ids],
            cfg.sample_tokens,
            temperature=0.8,
            seed=cfg.seed,
            use_cache=use_cache,
        )[0]
        out[prompt] = tokenizer.decode(ids + new)
    return out


def _start_run(model, data, cfg, tokenizer, device, info, optimizer, gen):
    """Check and open the run folder; resume if asked. Returns (step, best)."""
    run_dir = Path(cfg.out_dir)
    n_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    if info.is_main:
        runlog.check_run_dir(run_dir, need_bytes=3 * n_bytes * (cfg.keep_last + 2))
    start, best = 0, None
    found = ckpt_mod.list_checkpoints(run_dir / "checkpoints") if cfg.resume else []
    if found:
        record = ckpt_mod.load_checkpoint(
            found[-1], model, optimizer, gen, model_config=model_config(model)
        )
        start, best = record["step"], record.get("best_val_loss")
    if info.is_main:
        manifest = getattr(data, "manifest", None)
        runlog.MetricsLog(run_dir).truncate_after(start)
        runlog.MetricsLog(run_dir, "samples.jsonl").truncate_after(start)
        runlog.write_json_atomic(
            run_dir / "run.json",
            {
                "train_config": dataclasses.asdict(cfg),
                "model_config": model_config(model),
                "n_params": sum(p.numel() for p in model.parameters()),
                "data_manifest": manifest,
                "tokenizer_sha256": _tokenizer_hash(tokenizer),
                "git_commit": runlog.git_commit(),
                "versions": runlog.versions(),
                "device": str(device),
                "world_size": info.world_size,
                "seed": cfg.seed,
                "resumed_from_step": start,
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )
    return start, best


def _tokenizer_hash(tokenizer) -> str | None:
    if tokenizer is None:
        return None
    from labkit.data import tokenizer_hash

    return tokenizer_hash(tokenizer)


def train_step(fwd, model, optimizer, data, cfg, T, gen, info, device, autocast):
    """One optimizer step: grad_accum micro-batches, clipping, AdamW update.

    ``fwd`` is the model as called (maybe compiled or DDP-wrapped); ``model``
    the plain module. Returns (mean loss as a tensor, gradient norm).
    Shapes: each micro-batch x, y is (batch_size / grad_accum / N, T).
    """
    loss_sum = torch.zeros((), device=device)
    for micro in range(cfg.grad_accum):
        x, y = data.get_batch("train", cfg.micro_batch, T, gen)
        x, y = ddp.rank_slice(x, info), ddp.rank_slice(y, info)
        last = micro == cfg.grad_accum - 1
        # DDP averages gradients across processes only on the last micro-batch
        sync = contextlib.nullcontext() if last or not info.enabled else fwd.no_sync()
        with sync:
            with autocast:
                loss = lm_loss(fwd, x.to(device), y.to(device)) / cfg.grad_accum
            loss.backward()
        loss_sum += loss.detach()
    clip = cfg.grad_clip if cfg.grad_clip > 0 else float("inf")
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_sum, grad_norm


def train(model, data, cfg: TrainConfig, on_eval=None, *, tokenizer=None):
    """Train ``model`` on ``data`` as ``cfg`` says; return a TrainResult.

    ``data`` needs ``get_batch(split, batch_size, context_len, generator)``;
    ``tokenizer`` (optional) turns the sample prompts into ids and back.
    ``on_eval(step, record)`` is called after each evaluation.
    Shapes: data batches (B, T) long; model(x) -> logits (B, T, V).
    """
    info = ddp.setup(pick_device(cfg.device).type)
    device = pick_device(cfg.device)
    if device.type == "cuda" and info.enabled:
        device = torch.device("cuda", info.local_rank)
    if cfg.micro_batch % info.world_size:
        raise ValueError(
            f"batch_size={cfg.batch_size} / grad_accum={cfg.grad_accum} = "
            f"{cfg.micro_batch} rows do not split over {info.world_size} processes"
        )
    T = cfg.context_len or model.cfg.context_len
    torch.manual_seed(cfg.seed)  # dropout
    gen = torch.Generator().manual_seed(cfg.seed)  # the batches
    model.to(device)
    optimizer = make_optimizer(model, cfg, device.type)
    run_dir = Path(cfg.out_dir) if cfg.out_dir else None
    start, best = 0, None
    if run_dir is not None:
        start, best = _start_run(
            model, data, cfg, tokenizer, device, info, optimizer, gen
        )
    log = runlog.MetricsLog(run_dir) if run_dir and info.is_main else None
    fwd = torch.compile(model) if cfg.compile and device.type == "cuda" else model
    fwd = ddp.wrap(fwd, info, device)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else contextlib.nullcontext()
    )
    stop = min(cfg.steps, cfg.stop_at or cfg.steps)
    result = TrainResult(run_dir, start, {}, [], best, 0.0)
    t_start = t_last = time.perf_counter()
    bar = tqdm(
        range(start, stop),
        initial=start,
        total=cfg.steps,
        disable=not (cfg.progress and info.is_main),
        leave=False,
    )
    model.train()
    for step in bar:
        lr = lr_at(step, cfg.lr, cfg.min_lr, cfg.warmup_steps, cfg.steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss_sum, grad_norm = train_step(
            fwd, model, optimizer, data, cfg, T, gen, info, device, autocast
        )
        done = step + 1
        result.step = done
        record = {"step": done}
        if done % cfg.log_every == 0 or done == stop:
            loss_val = ddp.mean_over_ranks(loss_sum, info).item()
            now = time.perf_counter()
            n_steps = (done - start) % cfg.log_every or cfg.log_every
            tokens_s = n_steps * cfg.batch_size * T / max(now - t_last, 1e-9)
            t_last = now
            result.losses[done] = loss_val
            record.update(
                loss=loss_val, lr=lr, grad_norm=float(grad_norm), tokens_per_s=tokens_s
            )
            bar.set_postfix(loss=f"{loss_val:.3f}", lr=f"{lr:.2e}")
        if done % cfg.eval_every == 0 or done == stop:  # stop: a checkpoint
            scores = evaluate(model, data, cfg, T, device, autocast)
            record.update(scores, elapsed_s=time.perf_counter() - t_start)
            if (
                result.best_val_loss is None
                or scores["val_loss"] < result.best_val_loss
            ):
                result.best_val_loss = scores["val_loss"]
            result.evals.append(record)
            texts = None
            if tokenizer is not None and info.is_main:
                texts = samples(model, tokenizer, cfg, device)
                record["samples"] = texts
            if run_dir is not None:
                _checkpoint(
                    run_dir,
                    done,
                    model,
                    optimizer,
                    gen,
                    cfg,
                    scores,
                    result.best_val_loss,
                    info,
                    texts,
                )
            if on_eval is not None and info.is_main:
                on_eval(done, record)
        if log is not None and len(record) > 1:
            log.write({k: v for k, v in record.items() if k != "samples"})
    bar.close()
    result.wall_s = time.perf_counter() - t_start
    if run_dir is not None and info.is_main:
        run = runlog.read_run(run_dir)["run"]
        run.update(
            wall_s=result.wall_s,
            final_step=result.step,
            best_val_loss=result.best_val_loss,
        )
        runlog.write_json_atomic(run_dir / "run.json", run)
    return result


def _checkpoint(run_dir, step, model, optimizer, gen, cfg, scores, best, info, texts):
    if not info.is_main:
        return
    if texts:
        samples_log = runlog.MetricsLog(run_dir, "samples.jsonl")
        for prompt, text in texts.items():
            samples_log.write({"step": step, "prompt": prompt, "text": text})
    ckpt_dir = run_dir / "checkpoints"
    ckpt_mod.save_checkpoint(
        ckpt_dir,
        step,
        model,
        optimizer,
        gen,
        {
            "model_config": model_config(model),
            "train_config": dataclasses.asdict(cfg),
            "val_loss": scores["val_loss"],
            "best_val_loss": best,
            **scores,
        },
    )
    ckpt_mod.prune(ckpt_dir, cfg.keep_last)
