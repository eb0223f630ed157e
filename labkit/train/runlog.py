"""The run folder: run.json (what was run, where, with what) and metrics.jsonl.

``run.json`` holds the full train and model configs, the corpus manifest and
tokenizer hash, the git commit (when run inside a repository), the library
versions, the device, the seed and the wall time. ``metrics.jsonl`` has one
JSON object per logged step (step, loss, lr, grad_norm, tokens_per_s, and
train_loss / val_loss / val_bpb at evaluations); ``samples.jsonl`` the text
sampled at each evaluation. ``read_run`` gives both back as data.

The logs are append-only, one line per write. A kill can cut the last line
short; readers skip such a line (it has no newline yet), and a resumed run
first rewrites each log, atomically, to the lines up to its checkpoint's step.
So the line of every checkpointed step survives: it is written before the
checkpoint is (loop.py orders the writes).
Built in: notebooks/11_training_loop.ipynb.
"""

import json
import platform
import shutil
import subprocess
from pathlib import Path

import numpy
import safetensors
import torch

import labkit
from labkit.train.checkpoint import list_checkpoints
from labkit.train.files import FileFormatError, read_json, write_text_atomic


def git_commit(path: str | Path = ".") -> str | None:
    """The HEAD commit of the repository holding ``path`` (None outside one)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "safetensors": safetensors.__version__,
        "labkit": labkit.__version__,
    }


def check_run_dir(run_dir: Path, need_bytes: int) -> None:
    """Fail before training if run_dir cannot be written or lacks space.

    Raises OSError naming the folder: not creatable, not writable, or with
    less free space than ``need_bytes`` (the checkpoints it will hold).
    """
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-probe"
        probe.write_bytes(b"x")
        probe.unlink()
    except OSError as e:
        raise OSError(f"run folder {run_dir} is not writable: {e}") from e
    free = shutil.disk_usage(run_dir).free
    if free < need_bytes:
        raise OSError(
            f"not enough free space for run folder {run_dir}: checkpoints need "
            f"about {need_bytes / 1e6:.1f} MB, {free / 1e6:.1f} MB free"
        )


class MetricsLog:
    """Appends one JSON line per call to ``run_dir/name`` (flushed each time)."""

    def __init__(self, run_dir: Path, name: str = "metrics.jsonl"):
        self.path = Path(run_dir) / name

    def truncate_after(self, step: int) -> None:
        """Keep the lines up to ``step`` (a resumed run rewrites the rest).

        Rewritten atomically: a kill leaves the old file or the new one.
        """
        if self.path.exists():
            kept = [r for r in read_jsonl(self.path) if r.get("step", 0) <= step]
            write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def write(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON-lines file ([] if there is none).

    A last line without its newline is a write cut short and is skipped; any
    other line that is not a JSON object raises FileFormatError naming the
    file and the line number.
    """
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    out = []
    for number, line in enumerate(lines[:-1], start=1):  # [-1]: after the last \n
        try:
            record = json.loads(line) if line else None
        except json.JSONDecodeError as e:
            raise FileFormatError(
                f"{path}, line {number}: not a JSON record ({e.msg})"
            ) from None
        if line and not isinstance(record, dict):
            raise FileFormatError(f"{path}, line {number}: not a JSON object")
        if record is not None:
            out.append(record)
    return out


def read_run(run_dir: str | Path) -> dict:
    """{'run': run.json, 'metrics': [...], 'samples': [...]} of a run folder."""
    run_dir = Path(run_dir)
    path = run_dir / "run.json"
    if not path.exists():
        raise FileNotFoundError(f"no run.json in {run_dir}: not a run folder")
    return {
        "run": read_json(path, "a run record"),
        "metrics": read_jsonl(run_dir / "metrics.jsonl"),
        "samples": read_jsonl(run_dir / "samples.jsonl"),
    }


LOGS = ("metrics.jsonl", "samples.jsonl")


def existing_run(run_dir: str | Path) -> str | None:
    """What of a run ``run_dir`` holds ('run.json, 2 checkpoints'), or None."""
    run_dir = Path(run_dir)
    found = [name for name in ("run.json", *LOGS) if (run_dir / name).exists()]
    ckpts = list_checkpoints(run_dir / "checkpoints")
    if ckpts:
        newest = ckpts[-1].name.removeprefix("step_").lstrip("0") or "0"
        many = "s" if len(ckpts) > 1 else ""
        found.append(f"{len(ckpts)} checkpoint{many} (newest: step {newest})")
    return ", ".join(found) or None


def flatten(config: dict, prefix: str = "") -> dict:
    """{'train': {'lr': 1}} -> {'train.lr': 1}."""
    out = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def differing_settings(run_folders) -> dict[str, list]:
    """The train/model settings that differ between runs: name -> values."""
    configs = []
    for folder in run_folders:
        run = read_run(folder)["run"]
        configs.append(
            flatten({"train": run["train_config"], "model": run["model_config"] or {}})
        )
    keys = sorted(set().union(*configs)) if configs else []
    table = {k: [c.get(k) for c in configs] for k in keys}
    return {
        k: v
        for k, v in table.items()
        if k not in _BOOKKEEPING and len({json.dumps(x) for x in v}) > 1
    }


_BOOKKEEPING = {"train.out_dir", "train.resume", "train.progress", "train.stop_at"}
