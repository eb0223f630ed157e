"""Character-level Tiny Shakespeare: labkit's loop vs nanoGPT's CPU figures.

Two runs on ../shared/corpora/tinyshakespeare.txt, split as nanoGPT splits it
(first 90% train, last 10% val), 20 eval batches per evaluation:

1. "nanogpt-config": the nanoGPT CPU configuration (4 layers, 4 heads, width
   128, context 64, batch 12, 2000 steps, lr 1e-3 -> 1e-4 cosine, 100 warmup,
   beta2 0.99, dropout 0, no biases, weight decay 0.1, clip 1.0).
2. "labkit-recipe": labkit's recommended small recipe (RoPE, RMSNorm, SwiGLU,
   a higher peak rate and a shorter run) aiming at val loss <= 1.88 in half
   of nanoGPT's wall time.

nanoGPT is not installed here: its figures recorded on this machine (about
22,000 tokens/s, 79 s wall, val loss 1.886 at step 2000) are printed as the
reference, and 3. "plain-torch", a bare nanoGPT-shaped model and loop written
here (same configuration, the same batches, nothing but forward, backward,
clip, AdamW and a cosine rate), is measured in the same run, so machine load
hits both alike.
Tokens/s is the median over training steps (evaluation excluded); wall time
includes evaluation, as nanoGPT's does. Peak memory is the process's max RSS.

    .venv/bin/python benchmarks/bench_train_shakespeare.py [--only NAME]
"""

import argparse
import dataclasses
import resource
import statistics
import time
from pathlib import Path

import torch

from labkit.model import GPT, GPTConfig
from labkit.tokenizer import CharTokenizer
from labkit.train import TrainConfig, train

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
RECIPE_MODEL = dict(
    context_len=64, n_layers=4, n_heads=4, d_model=128, bias=False,
    pos="rope", norm="rmsnorm", mlp="swiglu", d_mlp=352,
)  # fmt: skip
RECIPE_TRAIN = dataclasses.replace(
    NANOGPT_TRAIN, steps=800, lr=3e-3, min_lr=3e-4, warmup_steps=50,
    eval_every=400,
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


def run(name, model_kw, cfg, data, vocab_size, out_dir) -> dict:
    torch.manual_seed(cfg.seed)
    model = GPT(GPTConfig(vocab_size=vocab_size, **model_kw))
    cfg = dataclasses.replace(cfg, out_dir=str(out_dir / name))
    start = time.perf_counter()
    result = train(model, data, cfg)
    wall = time.perf_counter() - start
    from labkit.train import read_run

    rates = [m["tokens_per_s"] for m in read_run(out_dir / name)["metrics"]
             if "val_loss" not in m]  # fmt: skip
    return {
        "run": name,
        "tokens_per_s": statistics.median(rates[5:]),
        "wall_s": wall,
        "val_loss": result.evals[-1]["val_loss"],
        "steps": result.step,
    }


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
        a = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(B, T, C))
        return x + self.down(torch.nn.functional.gelu(self.up(self.ln2(x))))


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


def run_plain(cfg, model_kw, data, vocab_size) -> dict:
    """The bare loop on PlainGPT; evaluation as labkit's (eval_batches)."""
    import math

    torch.manual_seed(cfg.seed)
    model = PlainGPT(vocab_size, **model_kw)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay},
         {"params": rest, "weight_decay": 0.0}],
        lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
    )  # fmt: skip
    gen = torch.Generator().manual_seed(cfg.seed)
    T = model_kw["context_len"]

    def loss_on(x, y):
        logits = model(x)
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())

    @torch.no_grad()
    def val_loss():
        model.eval()
        losses = [loss_on(*data.get_batch("val", cfg.batch_size, T, gen)).item()
                  for _ in range(cfg.eval_batches)]  # fmt: skip
        model.train()
        return sum(losses) / len(losses)

    rates, start = [], time.perf_counter()
    for step in range(cfg.steps):
        if step < cfg.warmup_steps:
            lr = cfg.lr * (step + 1) / cfg.warmup_steps
        else:
            done = (step - cfg.warmup_steps) / (cfg.steps - cfg.warmup_steps)
            lr = cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (
                1 + math.cos(math.pi * done)
            )
        for group in opt.param_groups:
            group["lr"] = lr
        t0 = time.perf_counter()
        loss = loss_on(*data.get_batch("train", cfg.batch_size, T, gen))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
        rates.append(cfg.batch_size * T / (time.perf_counter() - t0))
        if (step + 1) % cfg.eval_every == 0:
            last_val = val_loss()
    return {
        "run": "plain-torch",
        "tokens_per_s": statistics.median(rates[5:]),
        "wall_s": time.perf_counter() - start,
        "val_loss": last_val,
        "steps": cfg.steps,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--only", choices=["nanogpt-config", "plain-torch", "labkit-recipe"]
    )
    ap.add_argument("--out", default="/tmp/labkit-bench-train")
    args = ap.parse_args()
    path = CORPUS / "tinyshakespeare.txt"
    if not path.exists():
        raise SystemExit(f"needs {path} (../shared beside the repo)")
    text = path.read_text()
    tok = CharTokenizer.from_text(text)
    data = ContiguousSplit(tok.encode(text))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"vocab {tok.vocab_size}")  # fmt: skip
    rows = []
    if args.only in (None, "plain-torch"):
        rows.append(run_plain(NANOGPT_TRAIN, NANOGPT_MODEL, data, tok.vocab_size))
        print(rows[-1], flush=True)
    for name, model_kw, cfg in (
        ("nanogpt-config", NANOGPT_MODEL, NANOGPT_TRAIN),
        ("labkit-recipe", RECIPE_MODEL, RECIPE_TRAIN),
    ):
        if args.only in (None, name):
            rows.append(run(name, model_kw, cfg, data, tok.vocab_size, Path(args.out)))
            print(rows[-1], flush=True)
    print(f"\n{'run':<32}{'steps':>6}{'tokens/s':>10}{'wall s':>8}{'val loss':>10}")
    print(f"{'nanoGPT (reference, measured)':<32}{2000:>6}"
          f"{REFERENCE['tokens_per_s']:>10,}{REFERENCE['wall_s']:>8.0f}"
          f"{REFERENCE['val_loss']:>10.3f}")  # fmt: skip
    for r in rows:
        who = "" if r["run"] == "plain-torch" else "labkit "
        label = who + r["run"] + " (this run)"
        print(f"{label:<32}{r['steps']:>6}{r['tokens_per_s']:>10,.0f}"
              f"{r['wall_s']:>8.1f}{r['val_loss']:>10.3f}")  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS): {peak:.0f} MB")


if __name__ == "__main__":
    main()
