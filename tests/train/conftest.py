"""Fixtures for labkit.train: a tiny model and corpus, quick configs, a
finished short run to copy, and a runner that kills a training process
(SIGKILL, as kill -9) at a chosen file operation."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from labkit.data import prepare_tokens
from labkit.model import GPT, GPTConfig
from labkit.tokenizer import Tokenizer
from labkit.train import TrainConfig, train

TINY = GPTConfig(vocab_size=256, context_len=16, n_layers=1, n_heads=2, d_model=16)
QUICK = dict(
    steps=8,
    batch_size=4,
    lr=1e-2,
    min_lr=1e-3,
    warmup_steps=2,
    eval_every=4,
    eval_batches=2,
    progress=False,
    sample_tokens=8,
)


def words(n_lines=400, seed=0) -> str:
    rng = random.Random(seed)
    vocab = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "away"]
    return "".join(" ".join(rng.choices(vocab, k=8)) + ".\n" for _ in range(n_lines))


def quick_cfg(**kw) -> TrainConfig:
    return TrainConfig(**{**QUICK, **kw})


def tiny_model(seed=0, cfg=TINY) -> GPT:
    torch.manual_seed(seed)
    return GPT(cfg)


@pytest.fixture(scope="session")
def tokens_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tokens")
    prepare_tokens(words(), Tokenizer(), out, val_fraction=0.1, seed=0)
    return out


@pytest.fixture(scope="session")
def data(tokens_dir):
    from labkit.data import TokenData

    return TokenData.load(tokens_dir)


@pytest.fixture
def cfg():
    """quick_cfg: TrainConfig(**QUICK, **overrides)."""
    return quick_cfg


@pytest.fixture
def model():
    """tiny_model(seed=0): the same weights for the same seed."""
    return tiny_model


@pytest.fixture(scope="session")
def straight(data):
    """The losses of an uninterrupted 8-step run (nothing written)."""
    return train(tiny_model(), data, quick_cfg()).losses


@pytest.fixture(scope="session")
def _half_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("half") / "run"
    train(tiny_model(), data, quick_cfg(out_dir=str(out), stop_at=4))
    return out


@pytest.fixture
def half_run(_half_run, tmp_path):
    """A copy of a run stopped (and checkpointed) at step 4 of 8."""
    return shutil.copytree(_half_run, tmp_path / "run")


# --- kill -9 at a chosen file operation ----------------------------------------
HARNESS = textwrap.dedent(
    """
    import json, os, signal, sys

    spec = json.loads(os.environ["LABKIT_KILL"])
    state = {"seen": 0, "armed": False, "after": 0, "dying": False}

    def matches(event, args):
        if event != spec["event"]:
            return False
        if event == "open":
            mode = args[1] if isinstance(args[1], str) else ""
            if not any(m in mode for m in spec.get("mode", "wax")):
                return False
        text = " ".join(str(a) for a in args[:2])
        return all(c in text for c in spec["contains"])

    def die(args):
        state["dying"] = True
        if spec.get("effect") == "truncate":  # as if killed right after open
            open(args[0], "w").close()
        elif spec.get("effect") == "half-line":  # as if killed mid-write
            with open(args[0], "a") as f:
                f.write('{"step": 99, "loss": 1.2')
        os.kill(os.getpid(), signal.SIGKILL)

    def hook(event, args):
        if state["dying"]:
            return
        if state["armed"]:
            if event == spec["then"]:
                state["after"] += 1
                if state["after"] == spec.get("then_nth", 1):
                    die(args)
        elif matches(event, args):
            state["seen"] += 1
            if state["seen"] == spec.get("nth", 1):
                if spec.get("then"):
                    state["armed"] = True
                else:
                    die(args)

    sys.addaudithook(hook)
    exec(compile(sys.argv[1], "<scenario>", "exec"))
    """
)

TRAIN = textwrap.dedent(
    """
    import json, sys
    import torch
    from labkit.data import TokenData
    from labkit.model import GPT, GPTConfig
    from labkit.train import TrainConfig, train

    tokens, model_cfg, train_cfg = json.loads(sys.argv[2])
    torch.manual_seed(0)
    model = GPT(GPTConfig(**model_cfg))
    train(model, TokenData.load(tokens), TrainConfig(**train_cfg))
    """
)


@pytest.fixture
def run_killed(tmp_path):
    """run_killed(spec, code=TRAIN, args=...) runs ``code`` in a new Python
    process that SIGKILLs itself when the audit event in ``spec`` happens;
    asserts it did die that way."""

    def run(spec: dict, code: str = TRAIN, args=None):
        env = dict(os.environ, LABKIT_KILL=json.dumps(spec))
        cmd = [sys.executable, "-c", HARNESS, code, json.dumps(args)]
        done = subprocess.run(
            cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == -signal.SIGKILL, (
            f"the kill at {spec} did not happen (exit {done.returncode}): "
            f"{done.stderr[-2000:]}"
        )
        return done

    return run


def train_args(tokens_dir, out, **train_kw):
    """The argument run_killed passes to TRAIN: tokens, model, train config."""
    import dataclasses

    cfg = {**QUICK, "out_dir": str(out), **train_kw}
    return [str(tokens_dir), dataclasses.asdict(TINY), cfg]


@pytest.fixture
def killed_train(run_killed, tokens_dir):
    """killed_train(spec, out, **train_kw): TRAIN killed at ``spec``."""

    def run(spec, out, **train_kw):
        return run_killed(spec, TRAIN, train_args(tokens_dir, out, **train_kw))

    return run


@pytest.fixture
def tiny_cfg() -> GPTConfig:
    """The tiny model's GPTConfig (vocab 256, context 16, 1 layer, d_model 16)."""
    return TINY
