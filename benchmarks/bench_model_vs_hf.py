"""Forward + backward time of labkit's GPT vs HF transformers' GPT-2, on CPU.

Both models have the same small GPT-2 config and the same weights (labkit's is
loaded from the HF one with labkit.hf.from_hf_gpt2). Timings alternate between
the two so background load hits both alike; each figure is the median of
--repeats runs after --warmup runs. Prints both and the ratio (labkit / HF;
below 1 means labkit is faster).

    .venv/bin/python benchmarks/bench_model_vs_hf.py [--layers 4 --d-model 256 ...]
"""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
import transformers

from labkit.hf import from_hf_gpt2


def step_time(model, idx, targets, get_logits) -> float:
    """Seconds for one forward pass, loss and backward pass."""
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    logits = get_logits(model(idx))
    F.cross_entropy(logits.flatten(0, 1), targets.flatten()).backward()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: keep)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    hf_cfg = transformers.GPT2Config(
        vocab_size=args.vocab,
        n_positions=args.seq_len,
        n_embd=args.d_model,
        n_layer=args.layers,
        n_head=args.heads,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
    )
    hf = transformers.GPT2LMHeadModel(hf_cfg).train()
    ours = from_hf_gpt2(hf).train()
    idx = torch.randint(0, args.vocab, (args.batch, args.seq_len))
    targets = torch.roll(idx, -1, dims=1)
    runs = {
        "labkit GPT": (ours, lambda out: out),
        f"HF GPT2LMHeadModel ({hf.config._attn_implementation})": (
            hf,
            lambda out: out.logits,
        ),
    }
    with torch.no_grad():  # same function, so the timings compare like with like
        diff = (ours(idx) - hf(idx).logits).abs().max().item()
    times = {name: [] for name in runs}
    for i in range(args.warmup + args.repeats):
        order = list(runs) if i % 2 == 0 else list(runs)[::-1]
        for name in order:
            t = step_time(runs[name][0], idx, targets, runs[name][1])
            if i >= args.warmup:
                times[name].append(t)
    print(
        f"config: {args.layers} layers, d_model {args.d_model}, {args.heads} heads, "
        f"vocab {args.vocab}, batch {args.batch} x {args.seq_len} tokens, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"transformers {transformers.__version__}"
    )
    print(f"max |logit difference| = {diff:.2e}")
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    for name, m in medians.items():
        print(
            f"{name:40s} forward+backward median {m * 1e3:8.1f} ms "
            f"(min {min(times[name]) * 1e3:.1f}, {args.repeats} repeats)"
        )
    ours_t, hf_t = medians.values()
    paired = statistics.median(a / b for a, b in zip(*times.values(), strict=True))
    print(
        f"ratio labkit / HF = {ours_t / hf_t:.3f} (of medians), "
        f"{paired:.3f} (median of back-to-back pairs): "
        f"{'labkit no slower' if ours_t <= hf_t else 'labkit slower'}"
    )


if __name__ == "__main__":
    main()
