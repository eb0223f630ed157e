"""The token pipeline: text -> train/val token files -> windows and batches.

``prepare_tokens`` cuts the text at line ends into chunks, sends a seeded
random share of the chunks to validation, encodes each split with any
tokenizer (an object with encode/decode/vocab_size) and writes beside the data
a ``manifest.json``: the sources and their sha256, the tokenizer and its hash,
the split seed and fractions, and the token counts. Tokens are stored raw in
``train.bin`` / ``val.bin`` (uint16 when the vocabulary fits, else uint32) and
read back memory-mapped by ``TokenData``, so a corpus larger than memory costs
nothing until a batch touches it.

Models with different tokenizers are compared in bits per byte:
bits/byte = (loss in nats per token) / ln 2 / (bytes per token).
Built in: notebooks/05_embeddings_first_training.ipynb.
Leaves out on purpose: sharding across files, document masking, shuffling
buffers (batches are random windows, as in nanoGPT).
"""

import hashlib
import json
import math
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from labkit.corpora import read_text, sha256_file

MANIFEST = "manifest.json"
FORMAT = "labkit.tokens/1"


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits in 16 bits, else uint32."""
    return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.uint32)


PROBE = "The quick brown fox, naïve café 東京 🙂\n\tdef f(x): return x**2"


def tokenizer_hash(tokenizer) -> str:
    """sha256 of the tokenizer's saved files if it has ``save``; otherwise of
    its class name, vocab_size and its encoding of a fixed probe text."""
    h = hashlib.sha256()
    if not hasattr(tokenizer, "save"):
        kind = type(tokenizer)
        probe = [int(i) for i in tokenizer.encode(PROBE)]
        h.update(json.dumps([kind.__qualname__, tokenizer.vocab_size, probe]).encode())
        return h.hexdigest()
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save(Path(tmp) / "tokenizer")
        for p in sorted(Path(tmp).rglob("*")):
            if p.is_file():
                h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def split_chunks(text: str, n_chunks: int) -> list[str]:
    """Cut text into about n_chunks pieces, each ending at a line end."""
    cuts, start, step = [], 0, max(1, len(text) // n_chunks)
    while start < len(text):
        end = text.find("\n", start + step)
        end = len(text) if end == -1 else end + 1
        cuts.append(text[start:end])
        start = end
    return cuts


def _sources(text_or_paths) -> tuple[list[str], list[dict]]:
    if isinstance(text_or_paths, str):
        if not text_or_paths:
            raise ValueError("the text to tokenise is empty")
        digest = hashlib.sha256(text_or_paths.encode()).hexdigest()
        return [text_or_paths], [{"name": "<text>", "sha256": digest}]
    paths = [text_or_paths] if isinstance(text_or_paths, Path) else text_or_paths
    texts = [read_text(p) for p in paths]
    meta = [{"path": str(p), "sha256": sha256_file(Path(p))} for p in paths]
    return texts, meta


def _encode_to(path: Path, chunks: list[str], tokenizer, dtype, desc: str, progress):
    from tqdm.auto import tqdm

    n_tokens, n_bytes = 0, 0
    with open(path, "wb") as f:
        for chunk in tqdm(chunks, desc=desc, unit="chunk", disable=not progress):
            ids = np.asarray(tokenizer.encode(chunk), dtype=np.int64)
            if ids.size and (ids.min() < 0 or ids.max() >= tokenizer.vocab_size):
                raise ValueError(
                    f"token id out of range for vocab_size "
                    f"{tokenizer.vocab_size} in {desc}"
                )
            f.write(ids.astype(dtype).tobytes())
            n_tokens += ids.size
            n_bytes += len(chunk.encode("utf-8"))
    return {
        "path": path.name,
        "tokens": n_tokens,
        "bytes": n_bytes,
        "sha256": sha256_file(path),
    }


def prepare_tokens(
    text_or_paths,
    tokenizer,
    out_dir,
    val_fraction: float = 0.1,
    seed: int = 0,
    n_chunks: int = 100,
    progress: bool = False,
) -> "TokenData":
    """Tokenise text (a str) or files (a Path or list of paths) into out_dir.

    The text is cut into ``n_chunks`` pieces at line ends; a seeded shuffle
    sends round(val_fraction * pieces) of them, at least one, to validation.
    Writes train.bin, val.bin and manifest.json; returns the loaded TokenData.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    texts, sources = _sources(text_or_paths)
    chunks = [c for t in texts for c in split_chunks(t, n_chunks)]
    if len(chunks) < 2:
        raise ValueError("the text has fewer than 2 lines: nothing to split")
    order = list(range(len(chunks)))
    random.Random(seed).shuffle(order)
    n_val = min(len(chunks) - 1, max(1, round(val_fraction * len(chunks))))
    val_ids = set(order[:n_val])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dtype = token_dtype(tokenizer.vocab_size)
    files = {}
    for split, keep in (("train", False), ("val", True)):
        part = [c for i, c in enumerate(chunks) if (i in val_ids) == keep]
        files[split] = _encode_to(
            out / f"{split}.bin", part, tokenizer, dtype, split, progress
        )
    manifest = {
        "format": FORMAT,
        "sources": sources,
        "tokenizer": {
            "class": type(tokenizer).__name__,
            "vocab_size": int(tokenizer.vocab_size),
            "sha256": tokenizer_hash(tokenizer),
        },
        "split": {
            "seed": seed,
            "val_fraction": val_fraction,
            "train_fraction": 1 - val_fraction,
            "n_chunks": len(chunks),
            "val_chunks": n_val,
        },
        "dtype": dtype.name,
        "files": files,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return TokenData.load(out)


def get_batch(
    tokens, batch_size: int, context_len: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """batch_size random windows of context_len + 1 tokens, drawn with generator.

    ``tokens`` is any 1-D sequence of ids that numpy can slice: an array, a
    memmap, a CPU tensor. Each window starts at a uniform offset in
    0 .. len(tokens) - context_len - 1, so its last target is a real token.
    Shapes: x, y are (B, T) int64 with B = batch_size, T = context_len, and
    y[:, t] is the token after x[:, t].
    Example: tokens 0..9, context_len 3 -> rows such as x=[4,5,6], y=[5,6,7].
    Built in: notebooks/05_embeddings_first_training.ipynb.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    _check_fits(len(tokens), context_len, "the tokens")
    starts = torch.randint(
        len(tokens) - context_len, (batch_size,), generator=generator
    )
    rows = [np.asarray(tokens[s : s + context_len + 1]) for s in starts.tolist()]
    block = torch.from_numpy(np.stack(rows).astype(np.int64))  # (B, T+1)
    return block[:, :-1], block[:, 1:]


class TokenWindows(torch.utils.data.Dataset):
    """Windows of context_len + 1 tokens, a new one every ``stride`` tokens.

    Item i is (x, y): x = tokens[i*stride : i*stride + T], y the same shifted by
    one; there are (len(tokens) - T - 1) // stride + 1 of them, and tokens past
    the last whole window are left out. stride = context_len tiles the tokens:
    every target is scored exactly once (evaluation); stride < context_len
    overlaps the windows; stride = 1 gives every window. ``tokens`` is any 1-D
    sequence numpy can slice (array, memmap, CPU tensor).
    Shapes: x, y are (T,) int64 with T = context_len.
    Example: tokens 0..19, T=5, stride=5 -> 3 windows, the last x=[10..14].
    Built in: notebooks/05_embeddings_first_training.ipynb.
    """

    def __init__(self, tokens, context_len: int, stride: int):
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        _check_fits(len(tokens), context_len, "the tokens")
        self.tokens, self.context_len, self.stride = tokens, context_len, stride

    def __len__(self) -> int:
        return (len(self.tokens) - self.context_len - 1) // self.stride + 1

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"window {i} out of range for {len(self)} windows")
        start = (i % len(self)) * self.stride
        chunk = np.asarray(self.tokens[start : start + self.context_len + 1])
        chunk = torch.from_numpy(chunk.astype(np.int64))  # (T+1,)
        return chunk[:-1], chunk[1:]


def _check_fits(n_tokens: int, context_len: int, what: str) -> None:
    if context_len < 1:
        raise ValueError(f"context_len must be >= 1, got {context_len}")
    if context_len >= n_tokens:
        raise ValueError(
            f"context_len={context_len} is longer than {what} "
            f"({n_tokens} tokens; need at least context_len + 1)"
        )


class TokenData:
    """A prepared token folder: its manifest and memory-mapped splits."""

    def __init__(self, out_dir: Path, manifest: dict, splits: dict):
        self.out_dir, self.manifest, self.splits = out_dir, manifest, splits

    @classmethod
    def load(cls, out_dir, verify: bool = True) -> "TokenData":
        """Open out_dir; with verify, refuse files that no longer match the
        manifest (size and sha256), naming the file."""
        out = Path(out_dir)
        mpath = out / MANIFEST
        if not mpath.exists():
            raise FileNotFoundError(f"no {MANIFEST} in {out}: run prepare_tokens")
        manifest = json.loads(mpath.read_text())
        dtype = np.dtype(manifest["dtype"])
        splits = {}
        for split, info in manifest["files"].items():
            path = out / info["path"]
            if not path.exists():
                raise ValueError(f"{path} is missing; the manifest lists it")
            n = path.stat().st_size // dtype.itemsize
            if n != info["tokens"] or (verify and sha256_file(path) != info["sha256"]):
                raise ValueError(
                    f"{path} no longer matches {mpath} (manifest: {info['tokens']} "
                    f"tokens, sha256 {info['sha256'][:12]}...; file: {n} tokens): "
                    f"run prepare_tokens again"
                )
            splits[split] = (
                np.memmap(path, dtype=dtype, mode="r") if n else np.zeros(0, dtype)
            )
        return cls(out, manifest, splits)

    @property
    def vocab_size(self) -> int:
        return self.manifest["tokenizer"]["vocab_size"]

    def tokens(self, split: str) -> np.ndarray:
        if split not in self.splits:
            raise ValueError(
                f"unknown split {split!r}; known: {', '.join(self.splits)}"
            )
        return self.splits[split]

    def bytes_per_token(self, split: str) -> float:
        """UTF-8 bytes of text per token in a split (for bits per byte)."""
        self.tokens(split)  # checks the name
        info = self.manifest["files"][split]
        return info["bytes"] / info["tokens"]

    def windows(self, split: str, context_len: int, stride: int) -> TokenWindows:
        return TokenWindows(self.tokens(split), context_len, stride)

    def get_batch(
        self, split: str, batch_size: int, context_len: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """batch_size random windows from a split, drawn with ``generator``
        (the module's ``get_batch`` on this split's tokens).

        Shapes: x, y are (B, T) int64, y[:, t] = x[:, t + 1] in the data.
        """
        data = self.tokens(split)
        _check_fits(len(data), context_len, f"the {split} split")
        return get_batch(data, batch_size, context_len, generator)


def bits_per_byte(loss: float, bytes_per_token: float) -> float:
    """Convert a loss in nats per token to bits per byte of text."""
    return loss / math.log(2) / bytes_per_token
