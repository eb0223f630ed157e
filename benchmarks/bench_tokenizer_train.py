"""BPE training time: labkit's train_bpe_fast vs HF tokenizers' BpeTrainer.

Two runs, as in the issue, each including reading the file and pre-tokenising:

* Tiny Shakespeare (1.1 MB) to vocab 1024: ours beside HF ``tokenizers``
  (byte-level BPE, GPT-2 pre-tokenisation), measured in the same run,
  alternating so background load hits both alike; the target is ours within
  5x of HF;
* corpus.en (133 kB) to vocab 500 with <|endoftext|>: ours (target < 1.5 s),
  and the teaching ``train_bpe`` for scale (--teaching).

Each figure is the median of --repeats runs. Reads ../shared beside the repo.

    .venv/bin/python benchmarks/bench_tokenizer_train.py [--repeats 3]
"""

import argparse
import os
import statistics
import time
import warnings
from pathlib import Path

import tokenizers
from tokenizers import decoders, models, pre_tokenizers, trainers

from labkit.tokenizer import train_bpe, train_bpe_fast

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def train_hf(path: Path, vocab_size: int) -> tokenizers.Tokenizer:
    hf = tokenizers.Tokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    hf.train([str(path)], trainer)
    return hf


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--teaching", action="store_true", help="also time train_bpe")
    args = ap.parse_args()
    shakespeare = SHARED / "corpora" / "tinyshakespeare.txt"
    corpus_en = SHARED / "fixtures" / "corpus.en"
    print(
        f"tokenizers {tokenizers.__version__}, {os.cpu_count()} CPUs, "
        f"RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS', 'unset')}"
    )
    runs = {
        "labkit train_bpe_fast": lambda: train_bpe_fast(shakespeare, 1024),
        "HF tokenizers BpeTrainer": lambda: train_hf(shakespeare, 1024),
    }
    times = {name: [] for name in runs}
    for i in range(args.repeats):
        for name in list(runs) if i % 2 == 0 else list(runs)[::-1]:
            times[name].append(timed(runs[name]))
    size = shakespeare.stat().st_size / 1e6
    print(f"\nTiny Shakespeare ({size:.2f} MB) -> vocab 1024, incl. reading:")
    med = {name: statistics.median(ts) for name, ts in times.items()}
    for name, m in med.items():
        print(f"  {name:28s} median {m:7.3f} s (min {min(times[name]):.3f} s)")
    ratio = med["labkit train_bpe_fast"] / med["HF tokenizers BpeTrainer"]
    verdict = "within" if ratio <= 5 else "OUTSIDE"
    print(f"  ratio ours / HF = {ratio:.2f}x ({verdict} the 5x target)")

    eot = ["<|endoftext|>"]
    fast = [timed(lambda: train_bpe_fast(corpus_en, 500, eot)) for _ in range(3)]
    size = corpus_en.stat().st_size / 1e3
    print(f"\ncorpus.en ({size:.0f} kB) -> vocab 500, incl. reading:")
    m = statistics.median(fast)
    verdict = "meets" if m < 1.5 else "MISSES"
    print(f"  labkit train_bpe_fast        median {m:7.3f} s ({verdict} < 1.5 s)")
    hf = statistics.median([timed(lambda: train_hf(corpus_en, 500)) for _ in range(3)])
    print(f"  HF tokenizers BpeTrainer     median {hf:7.3f} s")
    if args.teaching:
        text = corpus_en.read_text(encoding="utf-8")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = timed(lambda: train_bpe(text, 500, eot))
        print(f"  labkit train_bpe (teaching)  once   {t:7.3f} s")


if __name__ == "__main__":
    main()
