"""GPT-2 124M training throughput and MFU on one CUDA GPU (bf16, compiled).

The GPT-2 small configuration at context 1024, trained by labkit's loop with
bf16 autocast, torch.compile and fused AdamW on random tokens (throughput
does not depend on the text). Prints tokens/s, model FLOPs utilisation
(training FLOPs per token from labkit.counting times tokens/s, over the GPU's
dense bf16 peak, given with --peak-tflops; 989 for an H100 SXM) and peak
memory. Exits with a message on a machine without CUDA.

    .venv/bin/python benchmarks/bench_train_gpt2_cuda.py [--batch 16 --steps 30]
"""

import argparse
import statistics
import tempfile

import torch

from labkit.counting import flops_per_token
from labkit.model import GPT, PRESETS
from labkit.train import TrainConfig, read_run, train


class RandomTokens:
    def __init__(self, vocab_size: int):
        self.vocab_size = vocab_size

    def get_batch(self, split, batch_size, context_len, generator):
        block = torch.randint(self.vocab_size, (batch_size, context_len + 1),
                              generator=generator)  # fmt: skip
        return block[:, :-1], block[:, 1:]  # (B, T) each


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this benchmark needs a GPU")
    torch.backends.cuda.matmul.allow_tf32 = True
    cfg = PRESETS["gpt2"]
    torch.manual_seed(0)
    model = GPT(cfg)
    out = tempfile.mkdtemp(prefix="bench-gpt2-")
    train_cfg = TrainConfig(
        steps=args.steps, batch_size=args.batch, grad_accum=args.grad_accum,
        lr=6e-4, min_lr=6e-5, warmup_steps=5, eval_every=args.steps,
        eval_batches=1, compile=not args.no_compile, out_dir=out,
        sample_prompts=(), progress=False,
    )  # fmt: skip
    train(model, RandomTokens(cfg.vocab_size), train_cfg)
    rates = [m["tokens_per_s"] for m in read_run(out)["metrics"][10:-1]]
    tokens_s = statistics.median(rates)
    flops = flops_per_token(cfg, cfg.context_len, training=True)
    mfu = tokens_s * flops / (args.peak_tflops * 1e12)
    print(f"GPT-2 124M, context {cfg.context_len}, batch {args.batch}, bf16, "
          f"compile={not args.no_compile}: {tokens_s:,.0f} tokens/s, "
          f"MFU {mfu:.1%} of {args.peak_tflops:g} TFLOP/s, peak memory "
          f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")  # fmt: skip


if __name__ == "__main__":
    main()
