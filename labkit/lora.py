"""LoRA: fine-tune a frozen model through small low-rank adapters.

LoRA (Hu et al., 2021, "LoRA: Low-Rank Adaptation of Large Language Models")
leaves a linear layer's weight W (out, in) frozen and learns a low-rank change
B @ A, with A (rank, in) and B (out, rank), scaled by alpha / rank:

    y = x W^T + (alpha / rank) * x A^T B^T

B starts at zero, so the adapted model starts exactly where the base model is.
Only A and B are trained and saved: rank * (in + out) numbers per layer instead
of in * out. ``merge`` folds the change into W (no extra cost at inference);
``unmerge`` takes it out again.

``LoRALinear`` is an ``nn.Linear`` (same ``weight`` and ``bias`` names, the very
same Parameter objects), so the model's state dict, ``trace`` hooks and
``count_params`` still read the base weights as before.

Built in: notebooks/15_lora.ipynb.
Left out on purpose: dropout on the adapter input, quantised bases (QLoRA),
adapters on embeddings, several adapters per model at once.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn

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

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        _check_rank_alpha(rank, alpha)
        nn.Module.__init__(self)
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight = base.weight  # shared with base, frozen
        self.register_parameter("bias", base.bias)  # None stays None, as in Linear
        self.weight.requires_grad_(False)
        if self.bias is not None:
            self.bias.requires_grad_(False)
        self.rank, self.alpha = rank, float(alpha)
        kw = dict(device=base.weight.device, dtype=base.weight.dtype)
        self.lora_A = nn.Parameter(torch.empty(rank, self.in_features, **kw))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, rank, **kw))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as nn.Linear
        self.merged = False

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank

    def delta(self) -> torch.Tensor:
        """The change to the weight: scaling * B @ A. Shapes: (out, in)"""
        return self.scaling * self.lora_B @ self.lora_A

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.linear(x, self.weight, self.bias)  # (..., out)
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
        return f"{super().extra_repr()}, rank={self.rank}, alpha={self.alpha:g}"


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """Every LoRALinear in ``model`` by its qualified name."""
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def add_lora(
    model: nn.Module,
    targets: tuple[str, ...] = TARGETS,
    rank: int = 8,
    alpha: float = 16.0,
) -> list[str]:
    """Freeze ``model`` and wrap each nn.Linear whose attribute name is in
    ``targets`` (``q_proj``, ``down_proj``, ...) in a LoRALinear.

    Returns the qualified names wrapped. Raises ValueError, listing the linear
    layers the model has, when no target matches or when LoRA is already on.
    """
    _check_rank_alpha(rank, alpha)
    if lora_layers(model):
        raise ValueError("model already has LoRA adapters; merge or load instead")
    linears = {
        n: m for n, m in model.named_modules() if type(m) is nn.Linear
    }  # type() not isinstance(): a LoRALinear is an nn.Linear
    chosen = [n for n in linears if n.rsplit(".", 1)[-1] in targets]
    if not chosen:
        kinds = sorted({n.rsplit(".", 1)[-1] for n in linears})
        raise ValueError(
            f"no linear layer named {list(targets)}; the model has {kinds}"
        )
    for p in model.parameters():  # only now: a failed call leaves the model as is
        p.requires_grad_(False)
    for name in chosen:
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, attr, LoRALinear(linears[name], rank, alpha))
    return chosen


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
    metadata. Adapters must be unmerged (a merged weight is not what is saved)."""
    from safetensors.torch import save_file

    layers = lora_layers(model)
    if not layers:
        raise ValueError("model has no LoRA adapters to save; call add_lora first")
    if any(m.merged for m in layers.values()):
        raise ValueError("adapters are merged; call unmerge_lora before saving")
    first = next(iter(layers.values()))
    meta = {
        "rank": str(first.rank),
        "alpha": str(first.alpha),
        "targets": json.dumps(sorted({n.rsplit(".", 1)[-1] for n in layers})),
    }
    tensors = {k: v.contiguous() for k, v in lora_state_dict(model).items()}
    path = Path(path)
    save_file(tensors, str(path), metadata=meta)
    return path


def _check_fits(model: nn.Module, tensors: dict, meta: dict, path) -> None:
    """Raise ValueError unless the file's adapters match the model's, name for
    name, in rank and in alpha."""
    own = lora_state_dict(model)
    missing, extra = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
    if missing or extra:
        raise ValueError(
            f"{path}: adapters do not fit the model; "
            f"missing {missing[:4]}, unexpected {extra[:4]}"
        )
    wrong = [
        f"{n} (rank {m.rank}, alpha {m.alpha:g})"
        for n, m in lora_layers(model).items()
        if (m.rank, m.alpha) != (int(meta["rank"]), float(meta["alpha"]))
    ]
    if wrong:
        raise ValueError(
            f"{path} holds rank {meta['rank']}, alpha {meta['alpha']} adapters; "
            f"the model has {wrong[:2]}"
        )


def load_lora(model: nn.Module, path: str | Path) -> None:
    """Load adapters saved by ``save_lora`` into ``model``.

    A model without adapters gets them first (rank, alpha, targets from the
    file). Every tensor must match a layer: missing or unexpected names, or
    another rank or alpha than the model's adapters, raise ValueError naming
    them.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if not {"rank", "alpha", "targets"} <= set(meta):
        raise ValueError(
            f"{path} has no rank/alpha/targets metadata: not written by save_lora"
        )
    if not lora_layers(model):
        add_lora(
            model,
            tuple(json.loads(meta["targets"])),
            int(meta["rank"]),
            float(meta["alpha"]),
        )
    tensors = load_file(str(path))
    _check_fits(model, tensors, meta, path)
    with torch.no_grad():
        for name, layer in lora_layers(model).items():
            layer.unmerge()
            layer.lora_A.copy_(tensors[name + ".lora_A"])
            layer.lora_B.copy_(tensors[name + ".lora_B"])
