"""DDP through torchrun: 2 CPU processes (gloo) give 1 process's losses."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from labkit.data import prepare_tokens
from labkit.model import GPT, GPTConfig
from labkit.tokenizer import Tokenizer
from labkit.train import TrainConfig, train

WORKER = textwrap.dedent(
    """
    import json, sys
    import torch
    from labkit.data import TokenData
    from labkit.model import GPT, GPTConfig
    from labkit.train import TrainConfig, train
    from labkit.train import ddp

    tokens, out = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    model = GPT(GPTConfig(**json.loads(sys.argv[3])))
    cfg = TrainConfig(**json.loads(sys.argv[4]))
    result = train(model, TokenData.load(tokens), cfg)
    if ddp.setup("cpu").is_main:
        json.dump({str(k): v for k, v in result.losses.items()}, open(out, "w"))
    ddp.cleanup()
    """
)


@pytest.mark.slow
def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    text = "".join(f"line {i % 37} of {i % 11} words here.\n" for i in range(600))
    prepare_tokens(text, Tokenizer(), tmp_path / "tok", seed=0)
    model_cfg = dict(vocab_size=256, context_len=16, n_layers=1, n_heads=2, d_model=16)
    train_cfg = dict(
        steps=4,
        batch_size=8,
        grad_accum=2,
        warmup_steps=1,
        lr=1e-2,
        min_lr=1e-3,
        eval_every=4,
        eval_batches=1,
        progress=False,
        device="cpu",
    )
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = tmp_path / "losses.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--standalone", str(script), str(tmp_path / "tok"), str(out),
           json.dumps(model_cfg), json.dumps(train_cfg)]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    two = {int(k): v for k, v in json.loads(out.read_text()).items()}

    from labkit.data import TokenData

    torch.manual_seed(0)
    one = train(GPT(GPTConfig(**model_cfg)), TokenData.load(tmp_path / "tok"),
                TrainConfig(**train_cfg)).losses  # fmt: skip
    assert sorted(two) == sorted(one) == [1, 2, 3, 4]
    for step in one:
        assert two[step] == pytest.approx(one[step], abs=1e-5)
    assert one[4] < one[1]  # it trained
