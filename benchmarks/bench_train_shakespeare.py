"""Character-level Tiny Shakespeare: labkit's loop vs a nanoGPT loop, one run.

Data: ../shared/corpora/tinyshakespeare.txt, split as nanoGPT splits it (first
90% train, last 10% val). Three runs:

1. "bare-loop": nanoGPT's model and training loop written out bare here (no
   run folder, no logging, nothing but batch, forward, backward, clip, AdamW,
   cosine rate), in nanoGPT's CPU configuration: 4 layers, 4 heads, width 128,
   context 64, batch 12, 2000 steps, lr 1e-3 -> 1e-4 cosine, 100 warmup steps,
   beta2 0.99, dropout 0, no biases, weight decay 0.1, clip 1.0, exact GELU.
   nanoGPT itself is not installed here (no internet), so this loop stands in
   for it; its figures recorded on this machine (about 22,000 tokens/s, 79 s,
   val loss 1.886) are printed too.
2. "labkit": ``labkit.train`` on ``labkit.GPT`` with the same configuration.
   The two are *interleaved* step by step: before each labkit step, the bare
   loop takes its next step. This machine's speed drifts by 10-25% within
   seconds and by more over minutes; interleaving puts both loops on the same
   machine speed, so their ratio holds even when the absolute figures move.
3. "labkit recipe": labkit's recommended small recipe (RoPE, SwiGLU, batch 16,
   a higher peak rate, 600 steps), aiming at val loss <= 1.88 in at most half
   of the bare loop's wall time. It is interleaved with a second run of the
   bare loop (10 bare steps for every 3 recipe steps), so "half" is measured
   at one machine speed too. The bare loop's second run
   must repeat its first exactly (CPU training here is deterministic).

Tokens/s is training tokens over training time (evaluation excluded); wall
time includes evaluation, as nanoGPT's does. Val loss is reported twice: as
nanoGPT estimates it (mean of 20 random batches) and exactly, over every
64-token window of the val split (111,540 tokens). ``--seeds N`` repeats all
runs over N seeds, since one seed's val loss moves by about 0.01.
Peak memory is the process's max RSS. "machine GFLOP/s" (a fixed matmul,
before and after) shows how fast the machine was during the run.

    .venv/bin/python benchmarks/bench_train_shakespeare.py [--seeds N] [--only X]
"""

import argparse
import dataclasses
import math
import resource
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from labkit.model import GPT, GPTConfig
from labkit.tokenizer import CharTokenizer
from labkit.train import TrainConfig, read_run, train

REFERENCE = {"tokens_per_s": 22_000, "wall_s": 79.0, "val_loss": 1.886}
CORPUS = Path(__file__).resolve().parents[1].parent / "shared/corpora"

NANOGPT_MODEL = dict(
    context_len=64, n_layers=4, n_heads=4, d_model=128, bias=False, mlp="gelu"
)  # nanoGPT: exact GELU, no biases
NANOGPT_TRAIN = TrainConfig(
    steps=2000, batch_size=12, lr=1e-3, min_lr=1e-4, warmup_steps=100,
    beta2=0.99, weight_decay=0.1, grad_clip=1.0, eval_every=250,
    eval_batches=20, device="cpu", progress=False, seed=1337,
)  # fmt: skip
# RoPE and SwiGLU (d_mlp 352: as many weights as GELU's 4x MLP), LayerNorm
RECIPE_MODEL = dict(NANOGPT_MODEL, pos="rope", mlp="swiglu", d_mlp=352)
RECIPE_TRAIN = dataclasses.replace(
    NANOGPT_TRAIN, steps=600, batch_size=16, lr=3e-3, min_lr=3e-4,
    warmup_steps=50, eval_every=200,
)  # fmt: skip


class ContiguousSplit:
    """nanoGPT's split: the first 90% of the tokens train, the rest validate."""

    def __init__(self, ids: list[int]):
        data = torch.tensor(ids, dtype=torch.long)
        n = int(0.9 * len(data))
        self.splits = {"train": data[:n], "val": data[n:]}

    def get_batch(self, split, batch_size, context_len, generator):
        data = self.splits[split]
        starts = torch.randint(len(data) - context_len, (batch_size,),
                               generator=generator)  # fmt: skip
        x = torch.stack([data[s : s + context_len] for s in starts.tolist()])
        y = torch.stack([data[s + 1 : s + 1 + context_len] for s in starts.tolist()])
        return x, y  # (B, T) each


@torch.no_grad()
def exact_val_loss(model, val: torch.Tensor, T: int) -> float:
    """Mean loss over every non-overlapping T-token window of the val split."""
    was_training = model.training
    model.eval()
    n = (len(val) - 1) // T
    x, y = val[: n * T].view(n, T), val[1 : n * T + 1].view(n, T)  # (n, T)
    total = 0.0
    for i in range(0, n, 256):
        logits = model(x[i : i + 256])  # (b, T, V)
        total += F.cross_entropy(
            logits.flatten(0, 1), y[i : i + 256].flatten(), reduction="sum"
        ).item()
    model.train(was_training)
    return total / (n * T)


def machine_gflops() -> float:
    """Median speed of one matmul shaped like the model's MLP (768x128x512)."""
    a, b = torch.randn(768, 128), torch.randn(128, 512)
    times = []
    for _ in range(300):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * 768 * 128 * 512 / statistics.median(times) / 1e9


class PlainBlock(torch.nn.Module):
    """Pre-norm block, no biases: what nanoGPT's CPU configuration builds."""

    def __init__(self, d: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.ln1 = torch.nn.LayerNorm(d, bias=False)
        self.qkv = torch.nn.Linear(d, 3 * d, bias=False)
        self.proj = torch.nn.Linear(d, d, bias=False)
        self.ln2 = torch.nn.LayerNorm(d, bias=False)
        self.up = torch.nn.Linear(d, 4 * d, bias=False)
        self.down = torch.nn.Linear(4 * d, d, bias=False)

    def forward(self, x):  # (B, T, C)
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=-1)
        q, k, v = (t.view(B, T, self.n_heads, -1).transpose(1, 2) for t in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(B, T, C))
        return x + self.down(F.gelu(self.up(self.ln2(x))))


class PlainGPT(torch.nn.Module):
    def __init__(self, vocab_size, context_len, n_layers, n_heads, d_model, **_):
        super().__init__()
        self.tok = torch.nn.Embedding(vocab_size, d_model)
        self.pos = torch.nn.Embedding(context_len, d_model)
        self.blocks = torch.nn.ModuleList(
            PlainBlock(d_model, n_heads) for _ in range(n_layers)
        )
        self.ln_f = torch.nn.LayerNorm(d_model, bias=False)
        self.head = torch.nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.tok.weight  # tied, as GPT-2
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / (2 * n_layers) ** 0.5 if name.endswith(
                    ("proj.weight", "down.weight")) else 0.02  # fmt: skip
                torch.nn.init.normal_(p, 0.0, std)

    def forward(self, idx):  # (B, T) -> (B, T, V)
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


class BareLoop:
    """nanoGPT's loop on PlainGPT, run ``advance(until)`` steps at a time.

    As nanoGPT on CPU: AdamW (not fused) decaying every matrix, embeddings
    included; every ``eval_every`` steps a 20-batch loss estimate on both
    splits and, when val improved, a checkpoint (torch.save of model and
    optimizer) to ``ckpt_path``. The batches come from their own generator
    seeded like labkit's, so both loops see the same batches.
    """

    def __init__(self, cfg, model_kw, data, vocab_size, ckpt_path: Path):
        torch.manual_seed(cfg.seed)
        self.cfg, self.data, self.T = cfg, data, model_kw["context_len"]
        self.ckpt_path, self.best_val = ckpt_path, float("inf")
        self.model = PlainGPT(vocab_size, **model_kw)
        params = list(self.model.parameters())
        self.opt = torch.optim.AdamW(
            [{"params": [p for p in params if p.dim() >= 2],
              "weight_decay": cfg.weight_decay},
             {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
            lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
        )  # fmt: skip
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.step, self.step_seconds, self.wall_s = 0, [], 0.0
        self.val_loss = None

    def lr_at(self, step: int) -> float:
        cfg = self.cfg
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / cfg.warmup_steps
        done = (step - cfg.warmup_steps) / (cfg.steps - cfg.warmup_steps)
        return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * done))

    def loss_on(self, x, y):
        logits = self.model(x)  # (B, T, V)
        return F.cross_entropy(logits.flatten(0, 1), y.flatten())

    @torch.no_grad()
    def estimate_losses(self) -> dict[str, float]:
        self.model.eval()
        out = {}
        for split in ("train", "val"):
            gen = torch.Generator().manual_seed(self.cfg.seed + 1)
            batches = (self.data.get_batch(split, self.cfg.batch_size, self.T, gen)
                       for _ in range(self.cfg.eval_batches))  # fmt: skip
            out[split] = sum(float(self.loss_on(x, y)) for x, y in batches)
            out[split] /= self.cfg.eval_batches
        self.model.train()
        return out

    def evaluate_and_checkpoint(self) -> None:
        self.val_loss = self.estimate_losses()["val"]
        if self.val_loss < self.best_val:
            self.best_val = self.val_loss
            model, opt = self.model.state_dict(), self.opt.state_dict()
            torch.save({"model": model, "optimizer": opt, "step": self.step},
                       self.ckpt_path)  # fmt: skip

    def advance(self, until: int) -> None:
        start, cfg = time.perf_counter(), self.cfg
        while self.step < until:
            t0 = time.perf_counter()
            for group in self.opt.param_groups:
                group["lr"] = self.lr_at(self.step)
            x, y = self.data.get_batch("train", cfg.batch_size, self.T, self.gen)
            loss = self.loss_on(x, y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
            loss.item()
            self.step += 1
            self.step_seconds.append(time.perf_counter() - t0)
            if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                self.evaluate_and_checkpoint()
        self.wall_s += time.perf_counter() - start


class RunBareAlong:
    """labkit's data source, which runs the bare loop on before each step.

    labkit's train() asks for one training batch per step, always with the
    same generator (evaluation brings fresh ones). Before handing that batch
    over, this runs the bare loop to the same fraction of its own run, so the
    two loops alternate step by step and share the machine's speed, which
    here drifts by 10-25% within seconds. The time spent in the bare loop is
    kept per labkit step, to be taken out of labkit's step times.
    """

    def __init__(self, data, bare: BareLoop, labkit_steps: int):
        self.data, self.bare, self.labkit_steps = data, bare, labkit_steps
        self.train_gen, self.calls, self.bare_s = None, 0, {}

    def get_batch(self, split, batch_size, context_len, generator):
        if self.train_gen is None:  # the first call is the first step's
            self.train_gen = generator
        if generator is self.train_gen:
            self.calls += 1
            t0 = time.perf_counter()
            self.bare.advance(
                round(self.bare.cfg.steps * self.calls / self.labkit_steps)
            )
            self.bare_s[self.calls] = time.perf_counter() - t0
        return self.data.get_batch(split, batch_size, context_len, generator)


def interleaved(model_kw, cfg, seed, data, vocab_size, out_dir: Path) -> dict:
    """labkit's train() on (model_kw, cfg), interleaved with a bare nanoGPT loop.

    Step by step (see RunBareAlong). labkit's step times come from its own
    metrics.jsonl, less the bare loop's time inside each; the steps right
    after an evaluation are left out (their interval holds the evaluation).
    Returns {"bare": ..., "labkit": ..., and for equal step counts
    "chunk_ratios": labkit / bare tokens/s per 250 steps}.
    """
    cfg = dataclasses.replace(cfg, seed=seed, out_dir=str(out_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    bare = BareLoop(dataclasses.replace(NANOGPT_TRAIN, seed=seed), NANOGPT_MODEL,
                    data, vocab_size, out_dir / "bare-loop-ckpt.pt")  # fmt: skip
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=vocab_size, **model_kw))
    along = RunBareAlong(data, bare, cfg.steps)
    result = train(model, along, cfg)
    tokens = cfg.batch_size * model_kw["context_len"]  # per step
    lab_s = {
        m["step"]: tokens / m["tokens_per_s"] - along.bare_s[m["step"]]
        for m in read_run(out_dir)["metrics"]
        if "tokens_per_s" in m and (m["step"] - 1) % cfg.eval_every != 0
    }
    bare_tokens = NANOGPT_TRAIN.batch_size * NANOGPT_MODEL["context_len"]
    bare_s = dict(enumerate(bare.step_seconds, start=1))
    del bare_s[1]  # the first step warms up, as labkit's is left out
    chunk_ratios = []
    if cfg.steps == NANOGPT_TRAIN.steps and tokens == bare_tokens:
        for k in range(cfg.steps // 250):
            steps = range(k * 250 + 2, (k + 1) * 250 + 1)
            lab = statistics.mean(lab_s[i] for i in steps if i in lab_s)
            chunk_ratios.append(statistics.mean(bare_s[i] for i in steps) / lab)
    val = data.splits["val"]
    return {
        "seed": seed,
        "bare": {
            "tokens_per_s": bare_tokens * len(bare_s) / sum(bare_s.values()),
            "wall_s": bare.wall_s,
            "val_loss": bare.val_loss,
            "exact_val_loss": exact_val_loss(bare.model, val, bare.T),
        },
        "labkit": {
            "tokens_per_s": tokens * len(lab_s) / sum(lab_s.values()),
            "wall_s": result.wall_s - sum(along.bare_s.values()),
            "val_loss": result.evals[-1]["val_loss"],
            "exact_val_loss": exact_val_loss(model, val, model_kw["context_len"]),
        },
        "chunk_ratios": chunk_ratios,
    }


def row(label, steps, r) -> str:
    exact = r.get("exact_val_loss")
    exact = f"{exact:>10.4f}" if exact is not None else f"{'-':>10}"
    return (f"{label:<34}{steps:>6}{r['tokens_per_s']:>10,.0f}{r['wall_s']:>8.1f}"
            f"{r['val_loss']:>10.4f}{exact}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=1, help="seeds 1337, 1338, ...")
    ap.add_argument("--only", choices=["pair", "recipe"], help="one comparison")
    ap.add_argument("--out", default="/tmp/labkit-bench-train")
    args = ap.parse_args()
    path = CORPUS / "tinyshakespeare.txt"
    if not path.exists():
        raise SystemExit(f"needs {path} (../shared beside the repo)")
    text = path.read_text()
    tok = CharTokenizer.from_text(text)
    data = ContiguousSplit(tok.encode(text))
    out = Path(args.out) / time.strftime("%Y%m%d-%H%M%S")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"vocab {tok.vocab_size}, runs in {out}")  # fmt: skip
    gflops_before = machine_gflops()
    seeds = [NANOGPT_TRAIN.seed + i for i in range(args.seeds)]
    pairs, recipes = [], []
    for seed in seeds:
        if args.only in (None, "pair"):
            pairs.append(interleaved(NANOGPT_MODEL, NANOGPT_TRAIN, seed, data,
                                     tok.vocab_size, out / f"pair-{seed}"))  # fmt: skip
            p = pairs[-1]
            ratios = [round(r, 3) for r in p["chunk_ratios"]]
            print(f"seed {seed}: bare {p['bare']}\n  labkit {p['labkit']}\n"
                  f"  labkit/bare speed by chunk {ratios}", flush=True)  # fmt: skip
        if args.only in (None, "recipe"):
            run_dir = out / f"recipe-{seed}"
            recipes.append(interleaved(RECIPE_MODEL, RECIPE_TRAIN, seed, data,
                                       tok.vocab_size, run_dir))  # fmt: skip
            print(f"seed {seed}: recipe {recipes[-1]['labkit']}\n  bare "
                  f"{recipes[-1]['bare']}", flush=True)  # fmt: skip
    gflops_after = machine_gflops()

    print(f"\n{'run':<34}{'steps':>6}{'tokens/s':>10}{'wall s':>8}"
          f"{'val (20b)':>10}{'val exact':>10}")  # fmt: skip
    print(row("nanoGPT (recorded here earlier)", 2000, REFERENCE))
    for p in pairs:
        print(row(f"bare nanoGPT loop, seed {p['seed']}", 2000, p["bare"]))
        print(row(f"labkit, seed {p['seed']}", 2000, p["labkit"]))
    for r in recipes:
        print(row(f"bare nanoGPT loop, seed {r['seed']}", 2000, r["bare"]))
        print(row(f"labkit recipe, seed {r['seed']}", RECIPE_TRAIN.steps, r["labkit"]))
    if pairs:
        ratios = [r for p in pairs for r in p["chunk_ratios"]]
        speed = [p["labkit"]["tokens_per_s"] / p["bare"]["tokens_per_s"] for p in pairs]
        print(f"\nlabkit / bare loop tokens/s: {statistics.mean(speed):.3f} overall; "
              f"by 250-step chunk: median {statistics.median(ratios):.3f}, "
              f"min {min(ratios):.3f}, max {max(ratios):.3f}")  # fmt: skip
        for key in ("val_loss", "exact_val_loss"):
            lab = statistics.mean(p["labkit"][key] for p in pairs)
            bare = statistics.mean(p["bare"][key] for p in pairs)
            print(f"{key} at step {NANOGPT_TRAIN.steps}, mean of {len(pairs)} "
                  f"seed(s): labkit {lab:.4f}, bare loop {bare:.4f}")  # fmt: skip
    for r in recipes:
        ratio = r["labkit"]["wall_s"] / r["bare"]["wall_s"]
        print(f"recipe seed {r['seed']}: wall {r['labkit']['wall_s']:.1f} s = "
              f"{ratio:.3f} of the bare loop's {r['bare']['wall_s']:.1f} s beside it "
              f"(target <= 0.5); val loss {r['labkit']['val_loss']:.4f} (20 "
              f"batches), {r['labkit']['exact_val_loss']:.4f} exact "
              f"(target <= 1.88)")  # fmt: skip
    for p, r in zip(pairs, recipes, strict=False):
        same = p["bare"]["exact_val_loss"] == r["bare"]["exact_val_loss"]
        print(f"bare loop, seed {p['seed']}, run twice: same val loss: {same}")
    print(f"machine GFLOP/s (768x128x512 matmul): {gflops_before:.0f} before, "
          f"{gflops_after:.0f} after")  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS): {peak:.0f} MB")


if __name__ == "__main__":
    main()
