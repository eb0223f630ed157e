"""labkit.train.loop: the loop trains, accumulates exactly, calls its hook,
and checks its inputs before the first step."""

import json
import math

import pytest
import torch

from labkit.train import pick_device, train


def test_training_lowers_the_loss(data, model, cfg):
    result = train(model(), data, cfg(steps=30, eval_every=30))
    losses = list(result.losses.values())
    assert losses[-1] < losses[0] - 1.0
    assert result.evals[-1]["val_loss"] < math.log(256)
    assert result.evals[-1]["val_bpb"] == pytest.approx(
        result.evals[-1]["val_loss"] / math.log(2) / data.bytes_per_token("val")
    )


def test_grad_accumulation_equals_the_full_batch(data, model, cfg):
    a = train(model(), data, cfg(grad_accum=1))
    b = train(model(), data, cfg(grad_accum=2))
    for s in a.losses:
        assert a.losses[s] == pytest.approx(b.losses[s], abs=1e-5)


def test_on_eval_hook_sees_each_evaluation(data, model, cfg):
    seen = []
    train(model(), data, cfg(), on_eval=lambda step, rec: seen.append((step, rec)))
    assert [s for s, _ in seen] == [4, 8]
    assert all("val_loss" in rec and "train_loss" in rec for _, rec in seen)
    assert json.dumps([r for _, r in seen])  # records are plain data


def test_a_loss_fn_replaces_the_loss_in_training_and_evaluation(data, model, cfg):
    from labkit.train.loop import lm_loss

    calls = []

    def doubled(m, x, y):  # twice the usual loss: the records must show it
        calls.append(x.shape)
        return 2 * lm_loss(m, x, y)

    plain = train(model(), data, cfg())
    twice = train(model(), data, cfg(), loss_fn=doubled)
    assert calls and len(calls) == 8 + 2 * 2 * 2  # 8 steps, 2 evals x 2 splits
    step = max(plain.losses)
    assert twice.losses[step] == pytest.approx(2 * plain.losses[step], rel=0.2)
    assert twice.evals[0]["val_loss"] == pytest.approx(
        2 * plain.evals[0]["val_loss"], rel=1e-4
    )


class Counting:
    """Token data that counts its batches and can shorten a split."""

    def __init__(self, data, short: str | None = None, vocab_size: int = 256):
        self.data, self.short, self.vocab_size, self.batches = (
            data,
            short,
            vocab_size,
            0,
        )

    def tokens(self, split):
        tokens = self.data.tokens(split)
        return tokens[:10] if split == self.short else tokens

    def get_batch(self, *args):
        self.batches += 1
        return self.data.get_batch(*args)


class WideTokenizer:
    vocab_size = 300

    def encode(self, text):
        return [1, 2]

    def decode(self, ids):
        return "x"


@pytest.mark.parametrize(
    "setting, message",
    [
        (
            dict(short="val"),
            r"the val split has 10 tokens, fewer than context_len \+ 1",
        ),
        (dict(short="train"), r"the train split has 10 tokens"),
        (dict(vocab_size=300), r"vocab_size=256 is smaller than the data's \(300\)"),
        (dict(tokenizer=WideTokenizer()), r"smaller than the tokenizer's \(300\)"),
        (dict(device="cuda:99"), r"device='cuda:99' is not on this machine"),
        (dict(device="gpu"), r"device='gpu' is not a device; use auto, cpu, cuda"),
        (dict(device="meta"), r"device='meta': labkit trains on auto, cpu"),
        (dict(context_len=32), r"context_len=32 is longer than the model's"),
    ],
)
def test_bad_inputs_fail_before_the_first_step(
    setting, message, data, model, cfg, tmp_path
):
    tokenizer = setting.pop("tokenizer", None)
    kw = {k: setting.pop(k) for k in ("device", "context_len") if k in setting}
    counting = Counting(data, **setting)
    net = model()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(ValueError, match=message):
        train(
            net, counting, cfg(out_dir=str(tmp_path / "run"), **kw), tokenizer=tokenizer
        )
    assert counting.batches == 0
    torch.testing.assert_close(net.state_dict(), before)
    assert not (tmp_path / "run").exists()  # nothing written either


def test_pick_device_auto_and_cpu():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_samples_need_a_labkit_gpt(data, cfg):
    class Bare(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(256, 256)

        def forward(self, x):
            return self.emb(x)

    with pytest.raises(
        ValueError, match="samples at each evaluation need a labkit GPT"
    ):
        train(Bare(), data, cfg(context_len=16), tokenizer=WideTokenizer())
    result = train(Bare(), data, cfg(context_len=16, steps=4, warmup_steps=1))
    assert result.step == 4  # a plain module trains, without samples


def test_recorded_model_config_writes_derived_sizes_out():
    """Runs recorded when GPTConfig filled d_mlp and n_kv_heads in (older
    run.json files) compare equal to runs recorded now, so they resume."""
    import dataclasses

    from labkit.model import GPT, GPTConfig
    from labkit.train.checkpoint import config_differences
    from labkit.train.loop import model_config

    cfg = GPTConfig(vocab_size=64, context_len=16, n_layers=1, n_heads=2, d_model=16)
    recorded = model_config(GPT(cfg))
    assert recorded["d_mlp"] == 64 and recorded["n_kv_heads"] == 2
    older = dataclasses.asdict(cfg) | {"d_mlp": 64, "n_kv_heads": 2}
    assert config_differences(older, recorded) == []
    wider = model_config(GPT(dataclasses.replace(cfg, d_mlp=32)))
    assert config_differences(older, wider) == ["d_mlp: 64 (checkpoint) -> 32 (now)"]
