"""labkit.qlinear: quantized layers and models, bytes, QLoRA, files."""

import dataclasses

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from labkit.counting import finetune_bytes, lora_params, weight_bytes
from labkit.lora import TARGETS, load_lora, lora_layers, save_lora, trainable_parameters
from labkit.model import GPT, PRESETS
from labkit.qlinear import (
    QLoRALinear,
    QuantLinear,
    add_qlora,
    load_quantized,
    model_bytes,
    quant_layers,
    quantize_model,
    save_quantized,
)
from labkit.quant import dequantize_weight, quantize_weight
from labkit.train.files import FileFormatError

CFG = dataclasses.replace(PRESETS["tiny"], context_len=16)
LLAMA = dataclasses.replace(PRESETS["tiny-llama"], context_len=16)


def tiny_gpt(cfg=CFG, seed=0) -> GPT:
    torch.manual_seed(seed)
    return GPT(cfg).eval()


@pytest.fixture
def idx():
    gen = torch.Generator().manual_seed(1)
    return torch.randint(0, CFG.vocab_size, (2, 16), generator=gen)


def test_quant_linear_stores_buffers_and_dequantizes_in_forward():
    torch.manual_seed(0)
    linear = nn.Linear(64, 8)
    layer = QuantLinear(linear, "nf4", 32, double_quant=True)
    assert [n for n, _ in layer.named_parameters()] == ["bias"]
    assert not layer.bias.requires_grad
    assert set(dict(layer.named_buffers())) == {
        "codes",
        "scale_codes",
        "scale_steps",
        "scale_mean",
    }
    assert layer.codes.dtype == torch.uint8 and layer.codes.shape == (8, 32)
    x = torch.randn(3, 64)
    w = dequantize_weight(quantize_weight(linear.weight, "nf4", 32, True))
    torch.testing.assert_close(layer(x), x @ w.T + linear.bias, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "scheme, bound", [("int8-channel", 0.01), ("int4", 0.1), ("nf4", 0.1)]
)
def test_quantized_model_logits_are_close_to_fp32(idx, scheme, bound):
    """Stated bound on this random tiny model: the largest logit difference
    is under 1% (8 bits) or 10% (4 bits) of the largest |logit|."""
    model = tiny_gpt()
    with torch.no_grad():
        ref = model(idx)
        names = quantize_model(model, scheme, 32)
        out = model(idx)
    assert len(names) == CFG.n_layers * 6  # q, k, v, o, up, down
    diff = (out - ref).abs().max()
    assert 0 < diff < bound * ref.abs().max()


def test_a_bad_group_size_names_the_layer_and_leaves_the_model_as_it_was(idx):
    model = tiny_gpt()
    with pytest.raises(ValueError, match=r"blocks\.0\.attn\.q_proj: group_size=48"):
        quantize_model(model, "nf4", 48)
    assert not quant_layers(model)
    with pytest.raises(ValueError, match="unknown scheme"):
        quantize_model(model, "fp8")


@pytest.mark.parametrize("cfg", [CFG, LLAMA], ids=["gpt2-style", "llama-style"])
@pytest.mark.parametrize("scheme, dq", [("int8-channel", False), ("nf4", True)])
def test_model_bytes_are_counted_from_tensors_and_match_counting(cfg, scheme, dq):
    model = tiny_gpt(cfg)
    fp32 = sum(model_bytes(model).values()) - model_bytes(model)["buffers"]
    assert fp32 == weight_bytes(cfg, "fp32", float_bytes=4)  # rope tables aside
    quantize_model(model, scheme, 16, dq)
    counted = model_bytes(model)
    counted.pop("buffers")
    assert sum(counted.values()) == weight_bytes(cfg, scheme, 16, dq, float_bytes=4)
    assert counted["codes"] > 0 and counted["scales"] > 0
    assert sum(counted.values()) < (0.5 if scheme == "nf4" else 0.6) * fp32


def test_qlora_trains_only_the_adapters_and_leaves_the_base_bit_identical(idx):
    model = tiny_gpt()
    quantize_model(model, "nf4", 32, double_quant=True)
    with torch.no_grad():
        before_logits = model(idx)
    names = add_qlora(model, rank=4, alpha=8)
    assert all(isinstance(m, QLoRALinear) for m in lora_layers(model).values())
    assert names == list(lora_layers(model))
    with torch.no_grad():
        torch.testing.assert_close(model(idx), before_logits, rtol=0, atol=0)
    base = {k: v.clone() for k, v in model.state_dict().items() if "lora" not in k}
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(n.endswith(("lora_A", "lora_B")) for n in trainable)
    assert trainable_parameters(model) == lora_params(CFG, 4, TARGETS)
    model.train()
    loss = nn.functional.cross_entropy(model(idx).flatten(0, 1), idx.flatten())
    loss.backward()
    for name, p in model.named_parameters():
        assert (p.grad is not None) == name.endswith(("lora_A", "lora_B")), name
    assert all(b.grad is None for b in model.buffers())
    with torch.no_grad():  # one plain gradient step (torch.optim imports dynamo)
        for p in model.parameters():
            if p.grad is not None:
                p -= 0.1 * p.grad
    after = model.state_dict()
    for k, v in base.items():
        assert torch.equal(after[k], v), k  # codes, scales, embeddings, norms
    assert any((m.lora_B != 0).any() for m in lora_layers(model).values())
    with pytest.raises(ValueError, match="cannot merge"):
        next(iter(lora_layers(model).values())).merge()


def test_qlora_adapters_save_and_load_with_labkit_lora(tmp_path, idx):
    model = tiny_gpt()
    quantize_model(model, "nf4", 32)
    add_qlora(model, rank=2, alpha=4)
    with torch.no_grad():
        for layer in lora_layers(model).values():
            layer.lora_B.normal_(0, 0.05)
        want = model(idx)
    save_lora(model, tmp_path / "a.safetensors")
    other = tiny_gpt()
    quantize_model(other, "nf4", 32)
    add_qlora(other, rank=2, alpha=4)
    load_lora(other, tmp_path / "a.safetensors")
    with torch.no_grad():
        torch.testing.assert_close(other(idx), want, rtol=0, atol=0)


def test_finetune_bytes_of_a_tiny_model_match_its_tensors():
    model = tiny_gpt(LLAMA)
    quantize_model(model, "nf4", 16, double_quant=True)
    add_qlora(model, rank=4, alpha=8)
    counted = finetune_bytes(LLAMA, "nf4", 4, TARGETS, 16, True, float_bytes=4)
    adapters = 4 * trainable_parameters(model)
    assert counted["adapters"] == adapters
    stored = model_bytes(model)
    assert counted["weights"] + adapters == sum(stored.values()) - stored["buffers"]


def test_save_and_load_quantized_round_trip(tmp_path, idx):
    model = tiny_gpt()
    quantize_model(model, "int4", 32, double_quant=True)
    path = save_quantized(model, tmp_path / "q.safetensors")
    fresh = tiny_gpt(seed=5)  # other float weights: all come from the file
    load_quantized(fresh, path)
    with torch.no_grad():
        torch.testing.assert_close(fresh(idx), model(idx), rtol=0, atol=0)
    assert {m.scheme for m in quant_layers(fresh).values()} == {"int4"}


def test_loading_into_a_model_of_another_shape_names_the_problem(tmp_path):
    model = tiny_gpt()
    quantize_model(model, "nf4", 32)
    path = save_quantized(model, tmp_path / "q.safetensors")
    wider = tiny_gpt(dataclasses.replace(CFG, d_model=128))
    with pytest.raises(ValueError, match=r"another shape: d_model: 64 \(file\) -> 128"):
        load_quantized(wider, path)
    assert not quant_layers(wider)
    # a model without a config: the tensors' shapes are checked
    wider.cfg = None
    with pytest.raises(
        FileFormatError, match=r"'tok_emb.weight' has shape \(256, 64\)"
    ):
        load_quantized(wider, path)
    assert not quant_layers(wider)


def test_bad_quantized_files_are_refused(tmp_path):
    plain = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(2)}, str(plain))
    with pytest.raises(FileFormatError, match="not a save_quantized file"):
        load_quantized(tiny_gpt(), plain)
    with pytest.raises(ValueError, match="no QuantLinear"):
        save_quantized(tiny_gpt(), tmp_path / "x.safetensors")
    model = tiny_gpt()
    quantize_model(model, "nf4", 32)
    add_qlora(model)
    with pytest.raises(ValueError, match="save_lora"):
        save_quantized(model, tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match="already has LoRA"):
        add_qlora(model)
    with pytest.raises(ValueError, match="call quantize_model first"):
        add_qlora(tiny_gpt())
