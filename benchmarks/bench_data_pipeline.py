"""Throughput of the generated corpus and the token pipeline.

Prints, in one run:
- the stories source: entropy rate, default size, generation time;
- prepare_tokens on a MB-sized file of stories with a byte tokenizer (MB/s),
  beside the reference: the same bytes written straight to a uint16 file with
  numpy (the floor for any pipeline: no split, no manifest, no checks);
- TokenData.get_batch throughput (batches/s) on the memory-mapped file.

Usage: python benchmarks/bench_data_pipeline.py [--mb 100]
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from labkit import storygen
from labkit.data import prepare_tokens


class ByteTokenizer:
    vocab_size = 256

    def encode(self, text: str) -> list[int]:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)

    def decode(self, ids) -> str:
        return bytes(ids).decode("utf-8", errors="replace")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=100.0)
    args = ap.parse_args()
    stats = storygen.story_stats()
    t = time.perf_counter()
    default = storygen.generate()
    gen_s = time.perf_counter() - t
    print(
        f"stories: {stats['bits_per_byte']:.6f} bits/byte "
        f"({stats['bits_per_story']:.3f} bits / {stats['bytes_per_story']:.2f} "
        f"bytes per story); default {len(default):,} bytes in {gen_s:.2f} s"
    )

    n_bytes = int(args.mb * 1e6)
    t = time.perf_counter()
    text = storygen.generate(n_bytes, seed=1)
    big_s = time.perf_counter() - t
    mb = len(text) / 1e6
    print(f"generated {mb:.1f} MB of stories in {big_s:.1f} s ({mb / big_s:.1f} MB/s)")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "stories.txt"
        src.write_text(text)
        del text
        t = time.perf_counter()
        data = prepare_tokens([src], ByteTokenizer(), Path(tmp) / "tok")
        ours = time.perf_counter() - t
        t = time.perf_counter()
        raw = np.frombuffer(src.read_bytes(), dtype=np.uint8)
        raw.astype(np.uint16).tofile(Path(tmp) / "raw.bin")
        ref = time.perf_counter() - t
        print(
            f"prepare_tokens (read, check UTF-8, split, encode, write, sha256): "
            f"{mb / ours:.1f} MB/s ({ours:.1f} s)"
        )
        print(
            f"reference, numpy bytes -> uint16 file only: {mb / ref:.1f} MB/s "
            f"({ref:.1f} s)"
        )
        gen = torch.Generator().manual_seed(0)
        t = time.perf_counter()
        for _ in range(200):
            data.get_batch("train", 64, 256, gen)
        per = (time.perf_counter() - t) / 200
        print(f"get_batch(64 x 256) from the memory map: {1 / per:.0f} batches/s")


if __name__ == "__main__":
    main()
