"""The token pipeline: manifest, split, memory-mapped tokens, windows, batches."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from labkit import data


class Bytes:
    """The trivial tokenizer: one token per UTF-8 byte."""

    vocab_size = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        return bytes(ids).decode("utf-8")


class Wide(Bytes):
    """Ids above 65535, to force uint32 storage."""

    vocab_size = 70_000

    def encode(self, text):
        return [i + 69_000 for i in super().encode(text)]


TEXT = "".join(f"line {i}: the cat sat on the mat.\n" for i in range(500))


@pytest.fixture
def prepared(tmp_path):
    return data.prepare_tokens(TEXT, Bytes(), tmp_path / "tok", val_fraction=0.2)


def test_split_is_seeded_complete_and_disjoint(prepared, tmp_path):
    train = bytes(prepared.tokens("train").tolist()).decode()
    val = bytes(prepared.tokens("val").tolist()).decode()
    assert len(train) + len(val) == len(TEXT)
    lines = train.splitlines() + val.splitlines()
    assert sorted(lines) == sorted(TEXT.splitlines())
    assert 0.1 < len(val) / len(TEXT) < 0.3
    again = data.prepare_tokens(TEXT, Bytes(), tmp_path / "b", val_fraction=0.2)
    assert np.array_equal(again.tokens("val"), prepared.tokens("val"))
    other = data.prepare_tokens(TEXT, Bytes(), tmp_path / "c", 0.2, seed=1)
    assert not np.array_equal(other.tokens("val"), prepared.tokens("val"))


def test_manifest_records_sources_tokenizer_split_counts(prepared):
    m = json.loads((prepared.out_dir / "manifest.json").read_text())
    assert m["sources"][0]["sha256"] == data.hashlib.sha256(TEXT.encode()).hexdigest()
    assert m["tokenizer"]["vocab_size"] == 256 and len(m["tokenizer"]["sha256"]) == 64
    assert m["split"]["seed"] == 0 and m["split"]["val_fraction"] == 0.2
    total = m["files"]["train"]["tokens"] + m["files"]["val"]["tokens"]
    assert total == len(TEXT.encode()) and m["dtype"] == "uint16"
    train = prepared.tokens("train")  # read from the file, not held in memory
    path = prepared.out_dir / m["files"]["train"]["path"]
    assert Path(train.filename) == path.resolve() and not train.flags.writeable
    assert np.array_equal(train, np.fromfile(path, dtype=np.uint16))


def test_uint32_when_vocab_exceeds_16_bits(tmp_path):
    d = data.prepare_tokens(TEXT, Wide(), tmp_path / "w")
    assert d.manifest["dtype"] == "uint32"
    assert int(d.tokens("train").max()) >= 69_000 + ord("t")


def test_batches_are_shifted_windows_and_seeded(prepared):
    g = torch.Generator().manual_seed(0)
    x, y = prepared.get_batch("train", 4, 16, g)
    assert x.shape == y.shape == (4, 16) and x.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    g2 = torch.Generator().manual_seed(0)
    assert torch.equal(prepared.get_batch("train", 4, 16, g2)[0], x)
    flat = bytes(prepared.tokens("train").tolist())
    assert bytes(x[0].tolist()) in flat  # each row is a real window


def test_windows_with_stride(prepared):
    tokens = np.arange(20)
    w = data.TokenWindows(tokens, context_len=5, stride=5)
    assert len(w) == 3  # starts 0, 5, 10 (15 needs token 20)
    x, y = w[2]
    assert x.tolist() == [10, 11, 12, 13, 14] and y.tolist() == [11, 12, 13, 14, 15]
    assert len(data.TokenWindows(tokens, 5, 1)) == 15
    assert len(prepared.windows("val", 8, 8)) > 0
    with pytest.raises(IndexError):
        w[3]


def test_context_len_longer_than_data_is_refused(prepared):
    n = len(prepared.tokens("val"))
    with pytest.raises(ValueError, match=f"context_len={n} is longer than the val"):
        prepared.get_batch("val", 2, n, torch.Generator())
    with pytest.raises(ValueError, match="longer than"):
        data.TokenWindows(np.arange(4), 4, 1)


def test_manifest_that_no_longer_matches_is_refused(prepared):
    path = prepared.out_dir / "train.bin"
    raw = bytearray(path.read_bytes())
    raw[0] ^= 1  # same size, different content
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="train.bin no longer matches"):
        data.TokenData.load(prepared.out_dir)
    path.write_bytes(bytes(raw[:-2]))  # one token shorter
    with pytest.raises(ValueError, match="no longer matches"):
        data.TokenData.load(prepared.out_dir, verify=False)


def test_bad_files_name_the_file_and_offset(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\n\x80")
    with pytest.raises(ValueError, match="bad.txt is not UTF-8: byte offset 3"):
        data.prepare_tokens([bad], Bytes(), tmp_path / "t")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.txt is empty"):
        data.prepare_tokens([empty], Bytes(), tmp_path / "t")
    with pytest.raises(ValueError, match="empty"):
        data.prepare_tokens("", Bytes(), tmp_path / "t")


def test_files_as_sources(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text(TEXT)
    b.write_text("héllo\n" * 50)
    d = data.prepare_tokens([a, b], Bytes(), tmp_path / "t")
    assert [s["path"] for s in d.manifest["sources"]] == [str(a), str(b)]
    assert sum(len(d.tokens(s)) for s in ("train", "val")) == len(
        (TEXT + "héllo\n" * 50).encode()
    )


def test_bits_per_byte_hand_derived(prepared):
    # byte tokens: 1 byte per token, so a loss of ln 2 nats is 1 bit per byte
    assert prepared.bytes_per_token("train") == 1.0
    assert data.bits_per_byte(math.log(2), 1.0) == pytest.approx(1.0)
    assert data.bits_per_byte(math.log(2) * 3, 4.0) == pytest.approx(0.75)


def test_unknown_split(prepared):
    with pytest.raises(ValueError, match="known: train, val"):
        prepared.get_batch("test", 1, 4, torch.Generator())


def test_tokenizer_hash_is_stable_and_tells_tokenizers_apart():
    assert data.tokenizer_hash(Bytes()) == data.tokenizer_hash(Bytes())
    assert data.tokenizer_hash(Bytes()) != data.tokenizer_hash(Wide())


def test_tokenizer_hash_uses_saved_files(tmp_path):
    class Saved(Bytes):
        def __init__(self, tag):
            self.tag = tag

        def save(self, path):
            path.with_suffix(".json").write_text(json.dumps({"tag": self.tag}))

    assert data.tokenizer_hash(Saved("a")) == data.tokenizer_hash(Saved("a"))
    assert data.tokenizer_hash(Saved("a")) != data.tokenizer_hash(Saved("b"))


def test_labkit_byte_tokenizer_gives_the_same_tokens(tmp_path):
    module = pytest.importorskip("labkit.tokenizer.tokenizer")
    ours = data.prepare_tokens(TEXT, Bytes(), tmp_path / "a")
    lib = data.prepare_tokens(TEXT, module.Tokenizer(), tmp_path / "b")
    for split in ("train", "val"):
        assert np.array_equal(ours.tokens(split), lib.tokens(split))
    assert lib.manifest["tokenizer"]["sha256"] != ours.manifest["tokenizer"]["sha256"]


def test_get_batch_hand_derived_starts_cover_every_offset_and_no_more():
    tokens = np.arange(10)  # context_len 3: starts 0..6, the last window 6..9
    x, y = data.get_batch(tokens, 2000, 3, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (2000, 3) and x.dtype == y.dtype == torch.int64
    assert torch.equal(x[:, 1:] - x[:, :-1], torch.ones(2000, 2, dtype=torch.int64))
    assert torch.equal(y, x + 1)  # arange: the next token is one more
    assert set(x[:, 0].tolist()) == set(range(7))


def test_get_batch_gives_the_same_windows_from_arrays_tensors_and_token_data(
    prepared,
):
    train = prepared.tokens("train")
    sources = [train, np.array(train), torch.from_numpy(np.array(train, np.int64))]
    batches = [
        data.get_batch(src, 5, 12, torch.Generator().manual_seed(3)) for src in sources
    ]
    batches.append(prepared.get_batch("train", 5, 12, torch.Generator().manual_seed(3)))
    for x, y in batches[1:]:
        assert torch.equal(x, batches[0][0]) and torch.equal(y, batches[0][1])


def test_get_batch_refuses_bad_sizes_naming_them():
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        data.get_batch(np.arange(10), 0, 3, torch.Generator())
    with pytest.raises(ValueError, match="context_len=10 is longer than the tokens"):
        data.get_batch(np.arange(10), 2, 10, torch.Generator())
    with pytest.raises(ValueError, match="context_len must be >= 1, got 0"):
        data.get_batch(np.arange(10), 2, 0, torch.Generator())


def test_windows_with_stride_context_len_score_every_target_once():
    tokens = np.arange(103)
    T = 8
    tiled = data.TokenWindows(tokens, T, stride=T)
    targets = np.concatenate([tiled[i][1].numpy() for i in range(len(tiled))])
    assert len(tiled) == (103 - T - 1) // T + 1 == 12
    assert targets.tolist() == list(range(1, len(tiled) * T + 1))  # each once
    half = data.TokenWindows(tokens, T, stride=T // 2)
    seen = np.bincount(
        np.concatenate([half[i][1].numpy() for i in range(len(half))]), minlength=103
    )
    assert set(seen[T // 2 + 1 : len(half) * (T // 2)]) == {2}  # inside: twice
    assert set(seen[1 : T // 2 + 1]) == {1}  # the first half-window: once


def test_windows_read_tensors_and_negative_indices():
    w = data.TokenWindows(torch.arange(20), 5, 3)
    assert len(w) == 5  # starts 0, 3, 6, 9, 12 (15 needs token 20)
    x, y = w[-1]
    assert x.tolist() == [12, 13, 14, 15, 16] and y.tolist() == [13, 14, 15, 16, 17]
    with pytest.raises(ValueError, match="stride must be >= 1, got 0"):
        data.TokenWindows(torch.arange(20), 5, 0)
    with pytest.raises(IndexError, match="window 5 out of range for 5 windows"):
        w[5]
