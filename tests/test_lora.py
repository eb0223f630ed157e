"""labkit.lora: adapters start at zero, merge exactly, train and save alone."""

import dataclasses

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from labkit.lora import (
    LoRALinear,
    add_lora,
    load_lora,
    lora_layers,
    lora_state_dict,
    merge_lora,
    save_lora,
    trainable_parameters,
    unmerge_lora,
)
from labkit.model import GPT, PRESETS
from labkit.train.config import TrainConfig
from labkit.train.optim import make_optimizer

CFG = dataclasses.replace(PRESETS["tiny"], context_len=16)


def tiny_gpt(seed: int = 0, cfg=CFG) -> GPT:
    torch.manual_seed(seed)
    return GPT(cfg)


def randomize_adapters(model):
    with torch.no_grad():
        for layer in lora_layers(model).values():
            layer.lora_B.normal_(0, 0.05)


@pytest.fixture
def idx():
    return torch.randint(
        0, CFG.vocab_size, (2, 16), generator=torch.Generator().manual_seed(1)
    )


def test_adapters_start_at_zero_change(idx):
    model = tiny_gpt()
    before = model(idx)
    names = add_lora(model, rank=4, alpha=8)
    assert len(names) == CFG.n_layers * 6  # q, k, v, o, up, down per block
    torch.testing.assert_close(model(idx), before)


def test_merged_equals_unmerged_forward_and_unmerge_restores(idx):
    model = tiny_gpt()
    w = model.blocks[0].attn.q_proj.weight.clone()
    add_lora(model, rank=4, alpha=8)
    randomize_adapters(model)
    unmerged = model(idx)
    merge_lora(model)
    assert not torch.equal(model.blocks[0].attn.q_proj.weight, w)
    torch.testing.assert_close(model(idx), unmerged, atol=1e-5, rtol=1e-4)
    merge_lora(model)  # idempotent
    unmerge_lora(model)
    torch.testing.assert_close(model.blocks[0].attn.q_proj.weight, w)
    torch.testing.assert_close(model(idx), unmerged)


@pytest.mark.parametrize("preset", ["tiny", "tiny-llama"])
def test_training_moves_only_adapters_and_merge_keeps_the_function(preset, idx):
    cfg = dataclasses.replace(PRESETS[preset], context_len=16)
    model = tiny_gpt(cfg=cfg)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    names = add_lora(model, rank=2, alpha=4)
    assert any(n.endswith("gate_proj") for n in names) == (preset == "tiny-llama")
    opt = make_optimizer(model, TrainConfig(weight_decay=0.1, lr=1e-2))
    for _ in range(3):  # real AdamW steps, weight decay on
        logits = model(idx[:, :-1])
        loss = torch.nn.functional.cross_entropy(
            logits.flatten(0, 1), idx[:, 1:].flatten()
        )
        loss.backward()
        opt.step()
        opt.zero_grad()
    after = model.state_dict()
    for k, v in base.items():
        assert torch.equal(after[k], v), f"{k} moved"
    assert all(lora_layers(model)[n].lora_B.abs().sum() > 0 for n in names)
    unmerged = model(idx)
    merge_lora(model)
    torch.testing.assert_close(model(idx), unmerged, atol=1e-5, rtol=1e-4)


def test_lora_linear_is_the_formula_written_out():
    torch.manual_seed(0)
    base = torch.nn.Linear(6, 5)
    layer = LoRALinear(base, rank=2, alpha=3.0)
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(4, 6)
    expected = x @ base.weight.T + base.bias + 1.5 * x @ (layer.lora_B @ layer.lora_A).T
    torch.testing.assert_close(layer(x), expected)


def test_only_adapters_receive_gradients(idx):
    model = tiny_gpt()
    add_lora(model, targets=("q_proj", "v_proj"), rank=2, alpha=4)
    randomize_adapters(model)
    model(idx).logsumexp(-1).mean().backward()
    for name, p in model.named_parameters():
        if "lora_" in name:
            assert p.requires_grad and p.grad is not None and p.grad.abs().sum() > 0
        else:
            assert not p.requires_grad and p.grad is None, name
    d, r = CFG.d_model, 2
    assert trainable_parameters(model) == CFG.n_layers * 2 * r * (d + d)


def test_saving_stores_only_adapters_and_loads_back(tmp_path, idx):
    model = tiny_gpt()
    add_lora(model, rank=4, alpha=8)
    randomize_adapters(model)
    path = save_lora(model, tmp_path / "adapters.safetensors")
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
        assert f.metadata()["rank"] == "4"
    assert keys == set(lora_state_dict(model))
    assert all(k.endswith(("lora_A", "lora_B")) for k in keys)
    assert len(keys) == 2 * CFG.n_layers * 6
    n_adapter = trainable_parameters(model)
    n_model = sum(p.numel() for p in model.parameters())
    assert n_adapter < n_model / 4
    size = path.stat().st_size  # float32 adapters plus a small JSON header
    assert 4 * n_adapter < size < 4 * n_adapter + 16_384
    fresh = tiny_gpt()  # same base weights (same seed), no adapters yet
    load_lora(fresh, path)
    torch.testing.assert_close(fresh(idx), model(idx))


def test_bad_input_names_the_problem(tmp_path):
    model = tiny_gpt()
    with pytest.raises(ValueError, match="rank=0 must be a positive integer"):
        add_lora(model, rank=0)
    with pytest.raises(ValueError, match=r"no linear layer named \['qkv'\]"):
        add_lora(model, targets=("qkv",))
    assert all(p.requires_grad for p in model.parameters())  # left as it was
    with pytest.raises(ValueError, match="no LoRA adapters to save"):
        save_lora(tiny_gpt(), tmp_path / "x.safetensors")
    add_lora(model, targets=("q_proj",))
    with pytest.raises(ValueError, match="already has LoRA adapters"):
        add_lora(model)
    save_lora(model, tmp_path / "q.safetensors")
    other = tiny_gpt()
    add_lora(other, targets=("v_proj",))
    with pytest.raises(ValueError, match="do not fit the model"):
        load_lora(other, tmp_path / "q.safetensors")
    wider = tiny_gpt()
    add_lora(wider, targets=("q_proj",), rank=3)
    with pytest.raises(
        ValueError, match="holds rank 8, alpha 16.0, rslora False adapters"
    ):
        load_lora(wider, tmp_path / "q.safetensors")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ValueError, match="not written by save_lora"):
        load_lora(tiny_gpt(), tmp_path / "plain.safetensors")


# --- a failed load changes nothing ------------------------------------------------
def _snapshot(model) -> dict:
    """Everything a load could change: modules, tensors, requires_grad."""
    return {
        "modules": [(n, type(m).__name__) for n, m in model.named_modules()],
        "tensors": {k: v.clone() for k, v in model.state_dict().items()},
        "grad": {n: p.requires_grad for n, p in model.named_parameters()},
    }


def _assert_same(model, snap) -> None:
    now = _snapshot(model)
    assert now["modules"] == snap["modules"] and now["grad"] == snap["grad"]
    torch.testing.assert_close(now["tensors"], snap["tensors"])


def _saved(tmp_path, cfg=CFG, rank=4, targets=("q_proj", "v_proj"), edit=None):
    model = tiny_gpt(cfg=cfg)
    add_lora(model, targets=targets, rank=rank, alpha=8)
    randomize_adapters(model)
    path = save_lora(model, tmp_path / "adapters.safetensors")
    if edit is not None:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        edit(tensors)
        save_file(tensors, str(path), metadata=meta)
    return path


def _extra(t):
    t["blocks.0.attn.k_proj.lora_A"] = torch.zeros(4, CFG.d_model)


def _missing(t):
    t.pop(sorted(t)[0])


def _reranked(t):
    t["blocks.0.attn.q_proj.lora_A"] = torch.zeros(2, CFG.d_model)


FILES = {
    "wider model's": dict(cfg=dataclasses.replace(CFG, d_model=CFG.d_model * 2)),
    "deeper model's": dict(cfg=dataclasses.replace(CFG, n_layers=CFG.n_layers + 1)),
    "rank-2": dict(rank=2),
    "extra tensor": dict(edit=_extra),
    "missing tensor": dict(edit=_missing),
    "one tensor of another rank": dict(edit=_reranked),
    "other targets": dict(targets=("up_proj",)),
}


@pytest.mark.parametrize("adapters_first", [False, True], ids=["bare", "with-lora"])
@pytest.mark.parametrize("kind", list(FILES))
def test_a_load_that_does_not_fit_leaves_the_model_as_it_was(
    kind, adapters_first, tmp_path
):
    path = _saved(tmp_path, **FILES[kind])
    model = tiny_gpt(seed=1)
    if adapters_first:
        add_lora(model, targets=("q_proj", "v_proj"), rank=4, alpha=8)
    snap = _snapshot(model)
    if kind == "rank-2" and not adapters_first:  # fits: it adds rank-2 adapters
        load_lora(model, path)
        assert all(m.rank == 2 for m in lora_layers(model).values())
        return
    if kind == "other targets" and not adapters_first:
        load_lora(model, path)
        assert set(n.rsplit(".", 1)[1] for n in lora_layers(model)) == {"up_proj"}
        return
    with pytest.raises(ValueError, match=str(path)):
        load_lora(model, path)
    _assert_same(model, snap)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is not a safetensors file: it is empty"),
        (b"\x80\x04K\x01.", "it is a Python pickle"),
        (b"PK\x03\x04junk", "it is a zip archive"),
        ("truncated", "cut short or garbled"),
        ("nan", "holds 1 NaN or inf values"),
        ("bad rank", "bad rank/alpha/targets metadata"),
        ("bad targets", "targets must be among"),
    ],
)
def test_a_bad_adapter_file_is_one_line_naming_it(content, message, tmp_path):
    path = _saved(tmp_path)
    if content == "truncated":
        path.write_bytes(path.read_bytes()[:-10])
    elif content in ("nan", "bad rank", "bad targets"):
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        if content == "nan":
            tensors["blocks.0.attn.q_proj.lora_B"][0, 0] = float("nan")
        elif content == "bad rank":
            meta["rank"] = "four"
        else:
            meta["targets"] = '["c_attn"]'
        save_file(tensors, str(path), metadata=meta)
    else:
        path.write_bytes(content)
    model = tiny_gpt()
    snap = _snapshot(model)
    with pytest.raises(ValueError) as err:
        load_lora(model, path)
    assert str(err.value).startswith(str(path)) and message in str(err.value)
    assert "\n" not in str(err.value)
    _assert_same(model, snap)


def test_save_lora_writes_through_a_temporary_file(tmp_path, monkeypatch):
    import os

    model = tiny_gpt()
    add_lora(model, targets=("q_proj",), rank=2, alpha=4)
    renames = []
    real = os.replace
    monkeypatch.setattr(
        os, "replace", lambda a, b: (renames.append((str(a), str(b))), real(a, b))
    )
    path = save_lora(model, tmp_path / "a.safetensors")
    assert renames == [(str(path) + ".tmp", str(path))]


def test_rslora_scales_by_alpha_over_sqrt_rank(idx):
    torch.manual_seed(0)
    linear = torch.nn.Linear(6, 5)
    plain = LoRALinear(linear, rank=4, alpha=8.0)
    rs = LoRALinear(linear, rank=4, alpha=8.0, rslora=True)
    assert plain.scaling == 2.0 and rs.scaling == 4.0  # 8/4 and 8/sqrt(4)
    with torch.no_grad():
        rs.lora_A.copy_(plain.lora_A)
        rs.lora_B.normal_(0, 0.1)
        plain.lora_B.copy_(rs.lora_B)
    x = torch.randn(3, 6)
    base_out = linear(x)
    torch.testing.assert_close(rs(x) - base_out, 2 * (plain(x) - base_out))
    torch.testing.assert_close(rs.delta(), 4.0 * rs.lora_B @ rs.lora_A)
    assert "rslora=True" in repr(rs) and "rslora" not in repr(plain)


def test_rslora_survives_save_and_load_and_mismatch_is_refused(tmp_path, idx):
    model = tiny_gpt()
    add_lora(model, rank=4, alpha=8.0, rslora=True)
    randomize_adapters(model)
    assert all(m.rslora for m in lora_layers(model).values())
    path = save_lora(model, tmp_path / "rs.safetensors")
    fresh = tiny_gpt()
    load_lora(fresh, path)
    assert all(m.rslora and m.scaling == 4.0 for m in lora_layers(fresh).values())
    with torch.no_grad():
        torch.testing.assert_close(fresh(idx), model(idx))
    plain = tiny_gpt()
    add_lora(plain, rank=4, alpha=8.0)
    with pytest.raises(ValueError, match="rslora True adapters"):
        load_lora(plain, path)


def test_file_without_rslora_entry_loads_as_plain_lora(tmp_path, idx):
    model = tiny_gpt()
    add_lora(model, rank=2, alpha=4.0)
    randomize_adapters(model)
    path = save_lora(model, tmp_path / "old.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta = {k: v for k, v in f.metadata().items() if k != "rslora"}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    save_file(tensors, str(path), metadata=meta)
    fresh = tiny_gpt()
    load_lora(fresh, path)
    assert not any(m.rslora for m in lora_layers(fresh).values())
    with torch.no_grad():
        torch.testing.assert_close(fresh(idx), model(idx))
