"""Causal evidence inside a GPT: ablate heads, patch activations, attribute logits.

An attention map says where a head looks, not whether the model needs it.
These functions intervene on one head at a time through forward hooks on the
head's slice of the input to ``o_proj`` (``z``, the head's weighted values):

- ``head_z``: every head's ``z`` for a batch (what the hooks replace);
- ``replace_heads``: a context manager that swaps chosen heads' ``z`` for a
  given tensor: zeros (zero ablation), its mean over the batch and positions
  (mean ablation), or the ``z`` of another input (activation patching,
  Meng et al., 2022; Wang et al., 2022);
- ``head_contributions`` and ``direct_logit_attribution``: what each head
  writes into the residual stream and how much of it reaches the logit of the
  right token through the final norm (frozen at the run's own scale) and the
  unembedding (Elhage et al., 2021);
- ``remove_from_input``: take one head's output out of the input of a later
  layer's queries, keys or values only, to test K-composition causally.

Built in: notebooks/13_inside_a_trained_model.ipynb.
Left out on purpose: path patching over several hops, attribution patching
(a gradient approximation), the composition scores read from weights alone.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F

from labkit.norms import LayerNorm, RMSNorm


@torch.no_grad()
def head_z(model, tokens: torch.Tensor) -> torch.Tensor:
    """Each head's output before ``o_proj`` (its weighted sum of values).

    Shapes: tokens (B, T) -> (B, L, H, T, D)
    """
    seen = {}
    handles = [
        block.attn.o_proj.register_forward_pre_hook(
            lambda mod, args, i=i: seen.__setitem__(i, args[0])
        )
        for i, block in enumerate(model.blocks)
    ]
    try:
        model(tokens)
    finally:
        for handle in handles:
            handle.remove()
    H, D = model.cfg.n_heads, model.cfg.d_head
    B, T = tokens.shape
    z = [seen[i].view(B, T, H, D).transpose(1, 2) for i in range(len(seen))]
    return torch.stack(z, 1)  # (B, L, H, T, D)


@contextmanager
def replace_heads(model, values: dict[tuple[int, int], torch.Tensor]):
    """Inside the block, head (layer, head)'s ``z`` is replaced by its value.

    A value broadcasts to (B, T, D): ``0.0`` ablates the head, its mean over
    batch and positions (D,) mean-ablates it, another run's (B, T, D) patches
    it. Hooks are removed on exit.
    Shapes: values {(layer, head): (D,) | (B, T, D) | float}
    """
    H, D = model.cfg.n_heads, model.cfg.d_head
    for layer, head in values:
        if not (0 <= layer < len(model.blocks) and 0 <= head < H):
            raise ValueError(
                f"no head ({layer}, {head}): the model has {len(model.blocks)} "
                f"layers of {H} heads"
            )

    def hook(layer):
        def pre(module, args):
            z = args[0]  # (B, T, H * D)
            B, T = z.shape[:2]
            z = z.reshape(B, T, H, D).clone()
            for (i, h), value in values.items():
                if i == layer:
                    z[:, :, h] = torch.as_tensor(value, dtype=z.dtype)
            return (z.reshape(B, T, H * D),)

        return pre

    layers = sorted({layer for layer, _ in values})
    handles = [
        model.blocks[i].attn.o_proj.register_forward_pre_hook(hook(i)) for i in layers
    ]
    try:
        yield model
    finally:
        for handle in handles:
            handle.remove()


def head_contributions(model, z: torch.Tensor) -> torch.Tensor:
    """What each head adds to the residual stream: its slice of ``o_proj``.

    The heads' sum plus ``o_proj``'s bias is attention's output.
    Shapes: z (B, L, H, T, D) (``head_z``) -> (B, L, H, T, C)
    """
    H, D = model.cfg.n_heads, model.cfg.d_head
    w = torch.stack([b.attn.o_proj.weight for b in model.blocks])  # (L, C, H*D)
    w = w.view(w.shape[0], w.shape[1], H, D)  # (L, C, H, D)
    return torch.einsum("blhtd,lchd->blhtc", z, w)


def direct_logit_attribution(
    parts: torch.Tensor, final: torch.Tensor, norm, unembed: torch.Tensor, targets
) -> torch.Tensor:
    """Each part's direct effect on the logit of each position's target token.

    The final norm is linear once its scale is frozen at the run's own value
    (from ``final``, the stream it normalises): LayerNorm centres each part
    and divides by the stream's std, RMSNorm divides by its RMS; then the
    norm's weight and the target's unembedding row. The norm's bias is in no
    part. Summed over parts that add up to ``final``, it gives the logits
    minus the bias term.
    Shapes: parts (N, T, C), final (T, C), unembed (V, C), targets (T,) -> (N, T)
    """
    if isinstance(norm, LayerNorm):
        parts = parts - parts.mean(-1, keepdim=True)
        var = final.var(-1, unbiased=False, keepdim=True)  # (T, 1)
        scale = torch.rsqrt(var + norm.eps)
    elif isinstance(norm, RMSNorm):
        scale = torch.rsqrt(final.pow(2).mean(-1, keepdim=True) + norm.eps)
    else:
        raise ValueError(f"norm must be LayerNorm or RMSNorm, got {type(norm)}")
    direction = unembed[torch.as_tensor(targets)] * norm.weight  # (T, C)
    return (parts * scale * direction).sum(-1)  # (N, T)


@contextmanager
def remove_from_input(model, source: tuple[int, int], layer: int, path: str):
    """Inside the block, ``layer``'s queries, keys or values (``path`` "q",
    "k" or "v") read the residual stream without head ``source``'s output
    (mean-ablated: its mean over batch and positions stays). The other two
    paths, and every other layer, see the stream as it is.

    Shapes: source (layer, head) with source layer < layer
    """
    if path not in ("q", "k", "v"):
        raise ValueError(f"path must be 'q', 'k' or 'v', got {path!r}")
    if not 0 <= source[0] < layer < len(model.blocks):
        raise ValueError(f"need source layer {source[0]} < layer {layer} < L")
    H, D = model.cfg.n_heads, model.cfg.d_head
    src, block = model.blocks[source[0]].attn.o_proj, model.blocks[layer]
    w = src.weight.view(-1, H, D)[:, source[1]]  # (C, D)
    kept = {}

    def grab_source(module, args):
        B, T = args[0].shape[:2]
        z = args[0].reshape(B, T, H, D)[:, :, source[1]]  # (B, T, D)
        out = z @ w.T  # (B, T, C)
        kept["delta"] = out - out.mean((0, 1))

    def grab_stream(module, args):
        kept["x"] = args[0]

    def swap(module, args):
        return (block.norm_1(kept["x"] - kept["delta"]),)

    handles = [
        src.register_forward_pre_hook(grab_source),
        block.register_forward_pre_hook(grab_stream),
        getattr(block.attn, f"{path}_proj").register_forward_pre_hook(swap),
    ]
    try:
        yield model
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def token_losses(model, tokens: torch.Tensor) -> torch.Tensor:
    """Next-token loss at every position (predicting token t + 1).

    Shapes: tokens (B, T) -> (B, T - 1)
    """
    logits = model(tokens)  # (B, T, V)
    return F.cross_entropy(
        logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none"
    )
