"""Character-level Tiny Shakespeare: labkit's loop vs nanoGPT's CPU figures.

Two runs on ../shared/corpora/tinyshakespeare.txt, split as nanoGPT splits it
(first 90% train, last 10% val), 20 eval batches per evaluation:

1. "nanogpt-config": the nanoGPT CPU configuration (4 layers, 4 heads, width
   128, context 64, batch 12, 2000 steps, lr 1e-3 -> 1e-4 cosine, 100 warmup,
   beta2 0.99, dropout 0, no biases, weight decay 0.1, clip 1.0).
2. "labkit-recipe": labkit's recommended small recipe (RoPE, RMSNorm, SwiGLU,
   a higher peak rate and a shorter run) aiming at val loss <= 1.88 in half
   of nanoGPT's wall time.

nanoGPT is not installed here: its figures on this machine (about 22,000
tokens/s, 79 s wall, val loss 1.886 at step 2000) are printed as the reference.
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

NANOGPT_MODEL = dict(context_len=64, n_layers=4, n_heads=4, d_model=128, bias=False)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=["nanogpt-config", "labkit-recipe"])
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
        print(f"{'labkit ' + r['run']:<32}{r['steps']:>6}{r['tokens_per_s']:>10,.0f}"
              f"{r['wall_s']:>8.1f}{r['val_loss']:>10.3f}")  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS): {peak:.0f} MB")


if __name__ == "__main__":
    main()
