"""Peak memory of train_bpe_fast streaming a 100 MB generated text, beside HF.

The text is generated (seeded): lines of words drawn from a Zipf distribution
over 200,000 made-up words, with numbers and punctuation, written to a
temporary file. Each trainer runs in its own child process, which reports
its peak resident set size (ru_maxrss) and its wall time; the file itself is
never held whole in memory by ``train_bpe_fast``.

    .venv/bin/python benchmarks/bench_tokenizer_memory.py [--mb 100 --vocab 1024]
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = """
import json, resource, sys, time
path, vocab_size, which = sys.argv[1], int(sys.argv[2]), sys.argv[3]
start = time.perf_counter()
if which == "labkit":
    from pathlib import Path
    from labkit.tokenizer import train_bpe_fast
    tok = train_bpe_fast(Path(path), vocab_size)
    n = tok.vocab_size
else:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    hf = Tokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    hf.train([path], trainer)
    n = hf.get_vocab_size()
print(json.dumps({"seconds": time.perf_counter() - start, "vocab": n,
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_words(rng: np.random.Generator, n: int) -> list[str]:
    letters = np.array(list("etaoinshrdlcumwfgypbvkjxqz"))
    p = 1 / np.arange(1, 27)
    lengths = rng.integers(1, 11, n)
    return ["".join(rng.choice(letters, size=k, p=p / p.sum())) for k in lengths]


def write_corpus(path: Path, megabytes: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    words = np.array(make_words(rng, 200_000))
    rank_p = 1 / np.arange(1, len(words) + 1)
    rank_p /= rank_p.sum()
    punct = np.array([" ", " ", " ", " ", ", ", ". ", "; ", " 42 ", "!\n", ".\n"])
    written = 0
    with open(path, "w", encoding="utf-8") as f:
        while written < megabytes * 1_000_000:
            picked = words[rng.choice(len(words), size=100_000, p=rank_p)]
            seps = punct[rng.integers(0, len(punct), size=100_000)]
            block = "".join(np.char.add(picked, seps))
            f.write(block)
            written += len(block)


def run_child(path: Path, vocab_size: int, which: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(vocab_size), which],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--no-hf", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "generated.txt"
        write_corpus(path, args.mb)
        size = path.stat().st_size / 1e6
        print(f"generated text: {size:.1f} MB, vocab {args.vocab}")
        for which in ["labkit"] if args.no_hf else ["labkit", "hf"]:
            r = run_child(path, args.vocab, which)
            name = "labkit train_bpe_fast" if which == "labkit" else "HF BpeTrainer"
            print(
                f"  {name:24s} peak RSS {r['peak_mb']:7.1f} MB, "
                f"{r['seconds']:7.1f} s, vocab {r['vocab']}"
            )


if __name__ == "__main__":
    main()
