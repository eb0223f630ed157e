"""Checking a model against a reference implementation: weights and a measure.

Two implementations that agree on random weights compute the same function,
but only if the random weights make every operation matter. With small weights
(GPT-2's std 0.02 at a narrow width, C = 128, or norm gains drawn near 0), an
activation's inputs sit where GELU and its tanh approximation agree to 1e-5,
and with gains near 0 attention is near uniform whatever its scale: the wrong
GELU, or a missing 1/sqrt(D), then moves the logits less than a loose
tolerance. ``unit_scale_`` draws weights at which activations stay near unit
size through the whole model (each linear layer's weights with standard
deviation 1/sqrt(fan-in), norm gains near 1), and ``relative_error`` measures
a difference against the size of the reference.

Built in: the chapter on GPT assembled, counted and checked (the Hugging Face
GPT-2 check, and the two planted bugs it must catch).
Left out on purpose: per-layer diffing (compare ``labkit.model.trace`` outputs).
"""

import torch
from torch import nn

PARITY_TOL = 1e-5  # float32 reruns differ by ~1e-6 relative; planted bugs by more


def _fan_in(module: nn.Module, name: str, p: torch.Tensor) -> int:
    """Inputs each output of a 2-D weight sums over."""
    if isinstance(module, nn.Linear):
        return module.in_features
    if isinstance(module, nn.Embedding):  # as a tied head it reads d_model inputs
        return module.embedding_dim
    if hasattr(module, "nx") and p.shape[0] == module.nx:  # HF Conv1D: (in, out)
        return module.nx
    raise ValueError(
        f"unit_scale_ does not know the fan-in of {type(module).__name__}.{name} "
        f"of shape {tuple(p.shape)} (it knows nn.Linear, nn.Embedding, HF Conv1D)"
    )


def unit_scale_(
    model: nn.Module, seed: int = 0, *, gain_std: float = 0.1, bias_std: float = 0.1
) -> nn.Module:
    """Random weights, in place, at which activations stay near unit size.

    2-D weights: normal with std 1/sqrt(fan-in). 1-D: biases normal(0, bias_std),
    other vectors (norm gains) 1 + normal(0, gain_std). A tied weight is drawn
    once. The draws come from one generator seeded ``seed``, in the order of
    ``model.modules()``, so two models with the same layout get the same weights.
    Returns the model.
    """
    gen = torch.Generator().manual_seed(seed)
    done: set[int] = set()
    with torch.no_grad():
        for module in model.modules():
            for name, p in module.named_parameters(recurse=False):
                if id(p) in done:
                    continue
                done.add(id(p))
                noise = torch.randn(p.shape, generator=gen)
                if p.dim() == 2:
                    value = noise / _fan_in(module, name, p) ** 0.5
                elif p.dim() == 1 and name == "bias":
                    value = noise * bias_std
                elif p.dim() == 1:
                    value = 1.0 + noise * gain_std
                else:
                    raise ValueError(
                        f"unit_scale_ does not know how to draw "
                        f"{type(module).__name__}.{name} of shape {tuple(p.shape)}"
                    )
                p.copy_(value)
    return model


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    """max |ours - reference| / max |reference|: a difference in the reference's
    own units, so it means the same for logits of size 0.05 or 50.

    Shapes: ours and reference of the same shape.
    """
    if ours.shape != reference.shape:
        raise ValueError(
            f"shapes differ: ours {tuple(ours.shape)}, "
            f"reference {tuple(reference.shape)}"
        )
    scale = reference.abs().max()
    if scale == 0:
        raise ValueError("the reference is all zeros: a relative error is undefined")
    return ((ours - reference).abs().max() / scale).item()


def logits_relative_error(ours: nn.Module, reference: nn.Module, idx) -> float:
    """relative_error of two models' logits on token ids idx (B, T), no grad.

    ``reference`` may be a Hugging Face model (its output's ``.logits`` is used).
    """
    with torch.no_grad():
        theirs = reference(idx)
        theirs = getattr(theirs, "logits", theirs)
        return relative_error(ours(idx), theirs)
