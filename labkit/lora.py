"""LoRA: fine-tune a frozen model through small low-rank adapters.

LoRA (Hu et al., 2021, "LoRA: Low-Rank Adaptation of Large Language Models")
leaves a linear layer's weight W (out, in) frozen and learns a low-rank change
B @ A, with A (rank, in) and B (out, rank), scaled by alpha / rank:

    y = x W^T + (alpha / rank) * x A^T B^T

With ``rslora=True`` the scale is alpha / sqrt(rank) instead (Kalajdzievski,
2023, "A Rank Stabilization Scaling Factor for Fine-Tuning with LoRA"):
under Adam each entry of A and B moves about lr per step whatever the rank,
so ``B @ A`` grows about like sqrt(rank) and alpha / rank shrinks the update
as the rank grows; alpha / sqrt(rank) keeps its size about the same.

B starts at zero, so the adapted model starts exactly where the base model is.
Only A and B are trained and saved: rank * (in + out) numbers per layer instead
of in * out. ``merge`` folds the change into W (no extra cost at inference);
``unmerge`` takes it out again.

``LoRALinear`` is an ``nn.Linear`` (same ``weight`` and ``bias`` names, the very
same Parameter objects), so the model's state dict, ``trace`` hooks and
``count_params`` still read the base weights as before.

Built in: notebooks/15_lora.ipynb.
A quantized base (QLoRA) is labkit.qlinear's QLoRALinear, a subclass that
overrides ``base_forward``.
Left out on purpose: dropout on the adapter input,
adapters on embeddings, several adapters per model at once.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from labkit.train.files import FileFormatError, read_safetensors

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("up_proj", "gate_proj", "down_proj")
TARGETS = ATTENTION + MLP


def _check_rank_alpha(rank: int, alpha: float) -> None:
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise ValueError(f"rank={rank!r} must be a positive integer")
    if not alpha > 0:
        raise ValueError(f"alpha={alpha!r} must be positive")


class LoRALinear(nn.Linear):
    """A linear layer with a frozen weight and a trainable low-rank update.

    Shapes: x (..., in) -> (..., out); lora_A (rank, in); lora_B (out, rank)
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float, rslora: bool = False):
        _check_rank_alpha(rank, alpha)
        nn.Module.__init__(self)
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight = base.weight  # shared with base, frozen
        self.register_parameter("bias", base.bias)  # None stays None, as in Linear
        self.weight.requires_grad_(False)
        self._add_adapters(rank, alpha, rslora, base.weight.device, base.weight.dtype)

    def _add_adapters(self, rank, alpha, rslora, device, dtype) -> None:
        """Freeze the bias, create lora_A (Kaiming, as nn.Linear) and lora_B
        (zeros). A subclass with another base (labkit.qlinear's QLoRALinear)
        calls this after setting in_features, out_features and bias."""
        if self.bias is not None:
            self.bias.requires_grad_(False)
        self.rank, self.alpha, self.rslora = rank, float(alpha), bool(rslora)
        kw = dict(device=device, dtype=dtype)
        self.lora_A = nn.Parameter(torch.empty(rank, self.in_features, **kw))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, rank, **kw))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as nn.Linear
        self.merged = False

    @property
    def scaling(self) -> float:
        """alpha / rank, or alpha / sqrt(rank) with rslora."""
        return self.alpha / (math.sqrt(self.rank) if self.rslora else self.rank)

    def delta(self) -> torch.Tensor:
        """The change to the weight: scaling * B @ A. Shapes: (out, in)"""
        return self.scaling * self.lora_B @ self.lora_A

    def base_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen layer's output, x W^T + b. Shapes: (..., in) -> (..., out)"""
        return nn.functional.linear(x, self.weight, self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base_forward(x)  # (..., out)
        if self.merged:
            return y
        return y + self.scaling * (x @ self.lora_A.T) @ self.lora_B.T

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into the weight (idempotent)."""
        if not self.merged:
            self.weight += self.delta()
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take the update out of the weight again (idempotent)."""
        if self.merged:
            self.weight -= self.delta()
            self.merged = False

    def extra_repr(self) -> str:
        rs = ", rslora=True" if self.rslora else ""
        return f"{super().extra_repr()}, rank={self.rank}, alpha={self.alpha:g}{rs}"


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """Every LoRALinear in ``model`` by its qualified name."""
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def _chosen_linears(model: nn.Module, targets) -> dict[str, nn.Linear]:
    """The plain nn.Linear layers whose attribute name is in ``targets``.

    Raises ValueError, listing the linear layers the model has, when none is.
    """
    linears = {
        n: m for n, m in model.named_modules() if type(m) is nn.Linear
    }  # type() not isinstance(): a LoRALinear is an nn.Linear
    chosen = {n: m for n, m in linears.items() if n.rsplit(".", 1)[-1] in targets}
    if not chosen:
        kinds = sorted({n.rsplit(".", 1)[-1] for n in linears})
        raise ValueError(
            f"no linear layer named {list(targets)}; the model has {kinds}"
        )
    return chosen


def add_lora(
    model: nn.Module,
    targets: tuple[str, ...] = TARGETS,
    rank: int = 8,
    alpha: float = 16.0,
    rslora: bool = False,
) -> list[str]:
    """Freeze ``model`` and wrap each nn.Linear whose attribute name is in
    ``targets`` (``q_proj``, ``down_proj``, ...) in a LoRALinear, scaled by
    alpha / rank (alpha / sqrt(rank) with ``rslora``).

    Returns the qualified names wrapped. Raises ValueError, listing the linear
    layers the model has, when no target matches or when LoRA is already on.
    """
    _check_rank_alpha(rank, alpha)
    if lora_layers(model):
        raise ValueError("model already has LoRA adapters; merge or load instead")
    chosen = _chosen_linears(model, targets)
    return freeze_and_wrap(model, chosen, lambda m: LoRALinear(m, rank, alpha, rslora))


def freeze_and_wrap(model: nn.Module, chosen: dict[str, nn.Module], wrap) -> list[str]:
    """Freeze every parameter, then replace each chosen submodule by
    ``wrap(submodule)``; returns the names wrapped. Called only once the
    choice is checked, so a failed call leaves the model as it was (shared by
    add_lora and labkit.qlinear.add_qlora)."""
    for p in model.parameters():
        p.requires_grad_(False)
    for name, layer in chosen.items():
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent), attr, wrap(layer))
    return list(chosen)


def merge_lora(model: nn.Module) -> None:
    """Merge every adapter into its weight (forward is unchanged, and cheaper)."""
    for layer in lora_layers(model).values():
        layer.merge()


def unmerge_lora(model: nn.Module) -> None:
    """Undo ``merge_lora``."""
    for layer in lora_layers(model).values():
        layer.unmerge()


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter tensors: ``{"blocks.0.attn.q_proj.lora_A": ..., ...}``."""
    return {
        k: v for k, v in model.state_dict().items() if k.endswith(("lora_A", "lora_B"))
    }


def trainable_parameters(model: nn.Module) -> int:
    """How many numbers the optimizer updates (requires_grad=True)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def save_lora(model: nn.Module, path: str | Path) -> Path:
    """Save only the adapters (safetensors), with rank, alpha and targets as
    metadata. Adapters must be unmerged (a merged weight is not what is saved).
    Written to a temporary file first, then renamed (a kill leaves no half file).
    """
    layers = lora_layers(model)
    if not layers:
        raise ValueError("model has no LoRA adapters to save; call add_lora first")
    if any(m.merged for m in layers.values()):
        raise ValueError("adapters are merged; call unmerge_lora before saving")
    first = next(iter(layers.values()))
    meta = {
        "rank": str(first.rank),
        "alpha": str(first.alpha),
        "rslora": str(first.rslora),
        "targets": json.dumps(sorted({n.rsplit(".", 1)[-1] for n in layers})),
    }
    tensors = {k: v.contiguous() for k, v in lora_state_dict(model).items()}
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def _read_adapters(path) -> tuple[dict, int, float, tuple[str, ...], bool]:
    """(tensors, rank, alpha, targets, rslora) of a file written by save_lora,
    with every part checked (FileFormatError naming the file). A file without
    an rslora entry (written before the option existed) is alpha / rank."""
    tensors, meta = read_safetensors(path)
    if not {"rank", "alpha", "targets"} <= set(meta):
        raise FileFormatError(
            f"{path} has no rank/alpha/targets metadata: not written by save_lora"
        )
    try:
        rank, alpha = int(meta["rank"]), float(meta["alpha"])
        targets = tuple(json.loads(meta["targets"]))
        _check_rank_alpha(rank, alpha)
    except (TypeError, ValueError) as e:
        raise FileFormatError(
            f"{path}: bad rank/alpha/targets metadata ({e})"
        ) from None
    if not targets or not set(targets) <= set(TARGETS) or not math.isfinite(alpha):
        raise FileFormatError(
            f"{path}: metadata targets {list(targets)}, alpha {alpha}: targets must "
            f"be among {list(TARGETS)}, alpha finite"
        )
    rslora = meta.get("rslora", "False")
    if rslora not in ("True", "False"):
        raise FileFormatError(f"{path}: rslora metadata {rslora!r} is not a bool")
    return tensors, rank, alpha, targets, rslora == "True"


def _expected_adapters(
    model, path, rank, alpha, targets, rslora=False
) -> dict[str, tuple]:
    """Adapter name -> shape the model has (or would get from add_lora)."""
    layers = lora_layers(model)
    if not layers:
        chosen = _chosen_linears(model, targets)
        dims = {n: (m.in_features, m.out_features) for n, m in chosen.items()}
    else:
        wrong = [
            f"{n} (rank {m.rank}, alpha {m.alpha:g}, rslora {m.rslora})"
            for n, m in layers.items()
            if (m.rank, m.alpha, m.rslora) != (rank, alpha, rslora)
        ]
        if wrong:
            raise ValueError(
                f"{path} holds rank {rank}, alpha {alpha}, rslora {rslora} "
                "adapters; "
                f"the model has {wrong[:2]}"
            )
        dims = {n: (m.in_features, m.out_features) for n, m in layers.items()}
    shapes = {}
    for name, (d_in, d_out) in dims.items():
        shapes[f"{name}.lora_A"] = (rank, d_in)
        shapes[f"{name}.lora_B"] = (d_out, rank)
    return shapes


def _check_fits(expected: dict, tensors: dict, path) -> None:
    """Raise ValueError unless the file holds exactly the expected adapters,
    each of its expected shape."""
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise ValueError(
            f"{path}: adapters do not fit the model; "
            f"missing {missing[:4]}, unexpected {extra[:4]}"
        )
    for name, shape in expected.items():
        t = tensors[name]
        if tuple(t.shape) != shape or not t.is_floating_point():
            raise ValueError(
                f"{path}: adapters do not fit the model; {name} is {t.dtype} "
                f"{tuple(t.shape)}, the model needs a float {shape} "
                f"(another width, or another rank)"
            )


def load_lora(model: nn.Module, path: str | Path) -> None:
    """Load adapters saved by ``save_lora`` into ``model``.

    A model without adapters gets them first (rank, alpha, targets from the
    file). The whole file is checked before the model is touched: a file that
    is not a save_lora file (FileFormatError), missing or unexpected names,
    another shape, rank or alpha than the model's adapters (ValueError naming
    them) all leave the model exactly as it was.
    """
    tensors, rank, alpha, targets, rslora = _read_adapters(path)
    expected = _expected_adapters(model, path, rank, alpha, targets, rslora)
    _check_fits(expected, tensors, path)
    if not lora_layers(model):
        add_lora(model, targets, rank, alpha, rslora)
    with torch.no_grad():
        for name, layer in lora_layers(model).items():
            layer.unmerge()
            layer.lora_A.copy_(tensors[name + ".lora_A"])
            layer.lora_B.copy_(tensors[name + ".lora_B"])
