"""The run's files on disk: written so a kill cannot half-write them, read so a
bad one is one sentence naming the file.

A process can be killed between any two instructions (kill -9, a closed
laptop, an out-of-memory killer). Every file labkit rewrites is therefore
written under a temporary name beside it, flushed, then renamed over the old
one: ``os.replace`` is atomic, so a reader finds the old file or the new one,
never half of either. Log files are append-only instead (runlog.MetricsLog).

Reading is the other half. A file that is empty, cut short, of another format
(a pickle, a ``torch.save`` zip, text), valid JSON of the wrong shape, or
weights holding NaN or inf raises ``FileFormatError`` with one line naming the
file and the problem. Nothing is ever unpickled.
Built in: notebooks/11_training_loop.ipynb (save, kill, resume).
"""

import json
import math
import os
from pathlib import Path

import torch


class FileFormatError(ValueError):
    """A file labkit reads is missing a part, cut short, or not what it should
    be; the message names the file."""


def fsync_file(path: Path) -> None:
    """Push a written file to the disk (survives a power cut, not only a kill)."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and os.replace."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: str | Path, record) -> None:
    """``record`` as indented JSON, written atomically (write_text_atomic)."""
    write_text_atomic(path, json.dumps(record, indent=1, default=str) + "\n")


def _foreign_format(head: bytes) -> str | None:
    """Name the format of a file that is not what labkit expected, if known."""
    if not head:
        return "it is empty (0 bytes)"
    if head[:1] == b"\x80":
        return "it is a Python pickle; labkit never unpickles files"
    if head[:4] == b"PK\x03\x04":
        return "it is a zip archive (torch.save's format); labkit reads safetensors"
    return None


def read_json(path: str | Path, what: str = "a JSON object") -> dict:
    """Parse a JSON file that must hold an object (a dict).

    Raises FileNotFoundError or FileFormatError naming ``path``: missing,
    empty, not UTF-8, cut short or not JSON (with line and column), or valid
    JSON that is not an object.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    raw = path.read_bytes()
    foreign = _foreign_format(raw[:4])
    if foreign:
        raise FileFormatError(f"{path} is not {what}: {foreign}")
    try:
        record = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise FileFormatError(f"{path} is not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise FileFormatError(
            f"{path} is not valid JSON (cut short or garbled): {e.msg} at line "
            f"{e.lineno}, column {e.colno}"
        ) from None
    if not isinstance(record, dict):
        raise FileFormatError(
            f"{path} holds a JSON {type(record).__name__}, not {what}"
        )
    return record


def require(record: dict, fields: dict[str, type | tuple], path: Path) -> None:
    """Raise FileFormatError naming ``path`` unless each field is present and
    of its type (bool never counts as a number)."""
    for name, kind in fields.items():
        if name not in record:
            raise FileFormatError(f"{path} has no {name!r} entry")
        value = record[name]
        if not isinstance(value, kind) or (
            isinstance(value, bool) and bool not in _as_tuple(kind)
        ):
            raise FileFormatError(
                f"{path}: {name!r} is {value!r}, expected "
                + " or ".join(k.__name__ for k in _as_tuple(kind))
            )


def _as_tuple(kind) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, metadata) of a safetensors file, every float tensor finite.

    Raises FileNotFoundError or FileFormatError naming ``path``: missing,
    empty, a pickle or torch zip, cut short or garbled, or NaN/inf values.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    with open(path, "rb") as f:
        head = f.read(9)
    # safetensors: an 8-byte little-endian header length, then the JSON header.
    # Its first byte can be 0x80 (a pickle's mark), so look for the "{" first.
    if head[8:9] != b"{":
        foreign = _foreign_format(head[:4])
        if foreign:
            raise FileFormatError(f"{path} is not a safetensors file: {foreign}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as e:  # noqa: BLE001 (SafetensorError is not importable)
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise FileFormatError(
            f"{path} is not a readable safetensors file (cut short or garbled: "
            f"{reason})"
        ) from None
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise FileFormatError(
                f"{path}: tensor {name!r} holds {bad} NaN or inf values "
                f"(a corrupted or diverged file)"
            )
    return tensors, metadata


def finite_number(value) -> bool:
    """True for an int or float that is not bool, NaN or inf."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )
