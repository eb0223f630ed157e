"""Quantized linear layers, quantized models, and QLoRA.

``QuantLinear`` replaces an ``nn.Linear``: it keeps only the quantized codes
(4-bit ones packed two per byte) and their scales, as buffers, and rebuilds
the float weight in every forward (dequantize, then an ordinary matmul). The
memory saved is in storage; the arithmetic is still float32. A real kernel
dequantizes tile by tile inside the matmul; this one builds the whole (out,
in) weight, which is what makes it readable.

``quantize_model`` swaps a model's linear layers for QuantLinears;
``model_bytes`` counts what the model holds, from its tensors.

QLoRA (Dettmers et al., 2023, "QLoRA: Efficient Finetuning of Quantized
LLMs") fine-tunes such a model through LoRA adapters: the quantized base is
frozen (it has no float weight to train), the adapters stay in float.
``QLoRALinear`` is labkit.lora's LoRALinear with a QuantLinear as its base
(only ``base_forward`` differs), so ``save_lora``/``load_lora``,
``lora_state_dict`` and ``trainable_parameters`` work on it unchanged.

``save_quantized``/``load_quantized`` write and read a quantized model as
safetensors (tied weights stored once), the whole file checked against the
model before anything is loaded.
Built in: notebooks/19_quantization_and_qlora.ipynb.
Left out on purpose: paged optimizers, 16-bit compute dtype for the
dequantized weight, quantized embeddings and output head.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from pathlib import Path

import torch
from safetensors.torch import save_model
from torch import nn

from labkit.lora import (
    TARGETS,
    LoRALinear,
    _check_rank_alpha,
    freeze_and_wrap,
    lora_layers,
)
from labkit.quant import (
    SCHEMES,
    QuantizedWeight,
    dequantize_weight,
    quantize_weight,
)
from labkit.train.checkpoint import check_weights, config_differences
from labkit.train.files import FileFormatError, read_safetensors

FORMAT = "labkit-quantized-1"


class QuantLinear(nn.Module):
    """A frozen linear layer stored quantized, dequantized in forward.

    Buffers: ``codes`` (int8, or uint8 with two 4-bit codes per byte) and
    ``scales`` (float32), or, double-quantized, ``scale_codes``,
    ``scale_steps`` and ``scale_mean``. The bias, if any, stays float, frozen.
    Shapes: x (..., in) -> (..., out)
    """

    def __init__(
        self,
        linear: nn.Linear,
        scheme: str,
        group_size: int = 64,
        double_quant: bool = False,
    ):
        super().__init__()
        q = quantize_weight(linear.weight, scheme, group_size, double_quant)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.scheme, self.group_size = q.scheme, q.group_size
        self.double_quant = bool(double_quant)
        for name, t in q.tensors().items():
            self.register_buffer(name, t.clone())
        bias = None
        if linear.bias is not None:
            bias = nn.Parameter(linear.bias.detach().clone(), requires_grad=False)
        self.register_parameter("bias", bias)

    def quantized(self) -> QuantizedWeight:
        """The stored weight as a QuantizedWeight (sharing the buffers)."""
        names = ("codes", "scales", "scale_codes", "scale_steps", "scale_mean")
        parts = {n: getattr(self, n, None) for n in names}
        shape = (self.out_features, self.in_features)
        return QuantizedWeight(self.scheme, shape, self.group_size, **parts)

    def dequantized_weight(self) -> torch.Tensor:
        """The float32 weight the codes stand for. Shapes: (out, in)"""
        return dequantize_weight(self.quantized())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.dequantized_weight().to(x.dtype)  # (out, in), rebuilt each call
        return nn.functional.linear(x, w, self.bias)

    def extra_repr(self) -> str:
        dq = ", double_quant=True" if self.double_quant else ""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"scheme={self.scheme}, group_size={self.group_size}{dq}"
        )


def quantize_model(
    model: nn.Module,
    scheme: str,
    group_size: int = 64,
    double_quant: bool = False,
    targets: tuple[str, ...] = TARGETS,
) -> list[str]:
    """Replace each nn.Linear whose attribute name is in ``targets`` (the
    attention and MLP projections; not the output head) by a QuantLinear.

    Every layer is quantized before any is swapped in, so a bad scheme or a
    group size that does not divide a row raises (naming the layer) and leaves
    the model as it was. Returns the qualified names replaced.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme={scheme!r}; choose one of {SCHEMES}")
    chosen = {
        n: m
        for n, m in model.named_modules()
        if type(m) is nn.Linear and n.rsplit(".", 1)[-1] in targets
    }
    if not chosen:
        raise ValueError(f"no nn.Linear named {list(targets)} to quantize")
    built = {}
    for name, linear in chosen.items():
        try:
            built[name] = QuantLinear(linear, scheme, group_size, double_quant)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
    for name, layer in built.items():
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent), attr, layer)
    return list(built)


def quant_layers(model: nn.Module) -> dict[str, QuantLinear]:
    """Every QuantLinear in ``model`` by its qualified name."""
    return {n: m for n, m in model.named_modules() if isinstance(m, QuantLinear)}


def model_bytes(model: nn.Module) -> dict[str, int]:
    """Bytes the model stores, by kind, counted from its tensors (a tied
    weight once): "float" parameters (embeddings, norms, biases, adapters,
    unquantized layers), quantized "codes", "scales" (all scale tensors), and
    other "buffers". ``sum(values())`` is the total.
    """
    out = {"float": 0, "codes": 0, "scales": 0, "buffers": 0}
    seen = set()
    tensors = [("float", p) for p in model.parameters()]
    for name, b in model.named_buffers():
        leaf = name.rsplit(".", 1)[-1]
        kind = "codes" if leaf == "codes" else "buffers"
        kind = "scales" if leaf.startswith("scale") else kind
        tensors.append((kind, b))
    for kind, t in tensors:
        if id(t) not in seen:
            seen.add(id(t))
            out[kind] += t.numel() * t.element_size()
    return out


class QLoRALinear(LoRALinear):
    """LoRA adapters on a frozen QuantLinear: y = base(x) + s (x A^T) B^T.

    The base is a submodule (``.base``); its codes are buffers, so no gradient
    can reach them. ``merge`` is refused: adding B A to a quantized weight
    would need a re-quantization, which changes the base.
    Shapes: x (..., in) -> (..., out); lora_A (rank, in); lora_B (out, rank)
    """

    def __init__(
        self, base: QuantLinear, rank: int, alpha: float, rslora: bool = False
    ):
        _check_rank_alpha(rank, alpha)
        nn.Module.__init__(self)
        self.in_features, self.out_features = base.in_features, base.out_features
        self.base = base
        self.register_parameter("bias", None)  # the base adds its own bias
        device = base.codes.device
        self._add_adapters(rank, alpha, rslora, device, torch.float32)

    def base_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x)

    def merge(self) -> None:
        raise ValueError(
            "cannot merge LoRA into a quantized weight; keep the adapters apart "
            "(or dequantize the base, merge, and quantize again)"
        )

    def extra_repr(self) -> str:
        rs = ", rslora=True" if self.rslora else ""
        return f"rank={self.rank}, alpha={self.alpha:g}{rs}"


def add_qlora(
    model: nn.Module,
    targets: tuple[str, ...] = TARGETS,
    rank: int = 8,
    alpha: float = 16.0,
    rslora: bool = False,
) -> list[str]:
    """Freeze ``model`` and put LoRA adapters on each QuantLinear whose
    attribute name is in ``targets``. Returns the qualified names wrapped.
    Raises ValueError when no QuantLinear matches or adapters are already on.
    """
    _check_rank_alpha(rank, alpha)
    if lora_layers(model):
        raise ValueError("model already has LoRA adapters")
    chosen = {
        n: m for n, m in quant_layers(model).items() if n.rsplit(".", 1)[-1] in targets
    }
    if not chosen:
        raise ValueError(
            f"no QuantLinear named {list(targets)}; call quantize_model first"
        )
    return freeze_and_wrap(model, chosen, lambda m: QLoRALinear(m, rank, alpha, rslora))


def _settings(model: nn.Module) -> dict[str, str]:
    """The quantization settings of a model's QuantLinears, as metadata."""
    layers = quant_layers(model)
    kinds = {(m.scheme, m.double_quant) for m in layers.values()}
    groups = {m.group_size for m in layers.values() if m.scheme in ("int4", "nf4")}
    if len(kinds) != 1 or len(groups) > 1:
        raise ValueError(f"layers are quantized in several ways: {sorted(kinds)}")
    ((scheme, dq),) = kinds
    cfg = getattr(model, "cfg", None)
    return {
        "format": FORMAT,
        "scheme": scheme,
        "group_size": str(next(iter(groups), 64)),
        "double_quant": str(dq),
        "targets": json.dumps(sorted({n.rsplit(".", 1)[-1] for n in layers})),
        "model_config": json.dumps(dataclasses.asdict(cfg) if cfg else None),
    }


def save_quantized(model: nn.Module, path: str | Path) -> Path:
    """Write a quantized model (codes, scales, float parameters) to one
    safetensors file with its settings as metadata, through a temporary file.
    Refuses a model with no QuantLinear or with adapters (save those apart,
    with save_lora)."""
    if not quant_layers(model):
        raise ValueError("model has no QuantLinear; call quantize_model first")
    if lora_layers(model):
        raise ValueError("model has LoRA adapters: save them with save_lora")
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_model(model, str(tmp), metadata=_settings(model))
    os.replace(tmp, path)
    return path


def _read_settings(path, meta: dict) -> tuple:
    """(scheme, group_size, double_quant, targets, config) from metadata."""
    if meta.get("format") != FORMAT:
        raise FileFormatError(f"{path} is not a save_quantized file (no {FORMAT})")
    try:
        scheme, group_size = meta["scheme"], int(meta["group_size"])
        dq = {"True": True, "False": False}[meta["double_quant"]]
        targets = tuple(json.loads(meta["targets"]))
        config = json.loads(meta["model_config"])
    except (KeyError, ValueError, TypeError) as e:
        raise FileFormatError(f"{path}: bad quantization metadata ({e!r})") from None
    if scheme not in SCHEMES:
        raise FileFormatError(f"{path}: scheme {scheme!r} is not one of {SCHEMES}")
    return scheme, group_size, dq, targets, config


def load_quantized(model: nn.Module, path: str | Path) -> None:
    """Quantize ``model`` (a float model of the file's shape) the way the file
    says and load the file's codes, scales and float parameters into it.

    Everything is checked before the model is touched: the metadata, the
    model's config against the file's, every tensor's name, shape and dtype
    (FileFormatError or ValueError naming the file and the problem).
    """
    tensors, meta = read_safetensors(path)
    scheme, group_size, dq, targets, config = _read_settings(path, meta)
    cfg = getattr(model, "cfg", None)
    if config is not None and cfg is not None:
        diffs = config_differences(config, dataclasses.asdict(cfg))
        if diffs:
            raise ValueError(
                f"{path} holds a model of another shape: "
                + "; ".join(d.replace("(checkpoint)", "(file)") for d in diffs[:4])
            )
    shadow = copy.deepcopy(model)
    quantize_model(shadow, scheme, group_size, dq, targets)
    full = check_weights(shadow, tensors, Path(path))
    own = shadow.state_dict()
    for name, t in full.items():
        if t.dtype != own[name].dtype:
            raise FileFormatError(
                f"{path}: {name!r} is {t.dtype}, the model stores {own[name].dtype}"
            )
    quantize_model(model, scheme, group_size, dq, targets)
    model.load_state_dict(full)
