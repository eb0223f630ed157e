"""Counting a GPT from its config: parameters, FLOPs per token, memory.

Everything here is arithmetic on a ``GPTConfig`` (on its ``resolved()`` sizes):
no model is built, so the counts work for GPT-2 XL or Llama 3 8B on a laptop.
tests/test_counting.py holds them equal to the published totals, to the built
model's ``parameters()``, to torch's FLOP counter and to the tensors autograd
actually saves.

Built in: the chapter on GPT assembled, counted and checked.
Left out on purpose: mixed-precision master weights, activation checkpointing,
ZeRO sharding, and the FLOPs of norms, softmax and activations (a few percent).
"""

from dataclasses import dataclass

from labkit.mlp import GATED

OPTIMIZER_STATES = {"adamw": 2, "sgd-momentum": 1, "sgd": 0}  # fp32 tensors/param


def param_counts(cfg) -> dict[str, int]:
    """Parameters by part: tok_emb, pos_emb, attn, mlp, norms, lm_head.

    attn, mlp and norms are summed over all layers (norms includes norm_f);
    lm_head is 0 when tied to tok_emb.
    """
    cfg = cfg.resolved()  # n_kv_heads and d_mlp as numbers
    C, H, K, D, F = cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.d_head, cfg.d_mlp
    b = int(cfg.bias)
    attn = C * H * D + 2 * C * K * D + H * D * C + b * (H * D + 2 * K * D + C)
    if cfg.mlp == "none":  # attention-only blocks: no MLP and no norm_2
        mlp = 0
    elif cfg.mlp in GATED:
        mlp = 3 * C * F + b * (2 * F + C)
    else:
        mlp = 2 * C * F + b * (F + C)
    norm = C * (2 if cfg.norm == "layernorm" and cfg.bias else 1)
    norms_per_layer = 1 if cfg.mlp == "none" else 2
    n_norms = norms_per_layer * cfg.n_layers + int(cfg.prenorm)
    return {
        "tok_emb": cfg.vocab_size * C,
        "pos_emb": cfg.context_len * C if cfg.pos == "learned" else 0,
        "attn": cfg.n_layers * attn,
        "mlp": cfg.n_layers * mlp,
        "norms": n_norms * norm,
        "lm_head": 0 if cfg.tie_weights else cfg.vocab_size * C,
    }


def count_params(cfg) -> int:
    """Total parameters of GPT(cfg), counting a tied head once.

    Example: count_params(PRESETS["gpt2"]) == 124_439_808
    """
    return sum(param_counts(cfg).values())


def flops_per_token(cfg, seq_len: int | None = None, *, training: bool = False) -> int:
    """Matrix-multiply FLOPs per token of a forward pass (x3 with training=True).

    2 FLOPs (a multiply and an add) per weight of every linear layer and of the
    head, plus the attention scores and weighted sum, 4 * seq_len * d_model per
    layer, counted over all seq_len keys as the written-out attention computes
    them (a causal kernel can skip about half). The backward pass costs twice
    the forward.
    seq_len defaults to context_len.
    """
    cfg = cfg.resolved()
    T = cfg.context_len if seq_len is None else seq_len
    parts = param_counts(cfg)
    C = cfg.d_model
    linear = parts["attn"] + parts["mlp"] + cfg.vocab_size * C
    if cfg.bias:  # biases are additions, not part of the matmuls
        per_layer = cfg.n_heads * cfg.d_head + 2 * cfg.n_kv_heads * cfg.d_head + C
        if cfg.mlp != "none":
            per_layer += 2 * cfg.d_mlp + C if cfg.mlp in GATED else cfg.d_mlp + C
        linear -= cfg.n_layers * per_layer
    forward = 2 * linear + cfg.n_layers * 4 * T * C
    return 3 * forward if training else forward


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes needed, by kind. ``total`` is their sum."""

    weights: int
    gradients: int
    optimizer: int
    activations: int
    kv_cache: int

    @property
    def total(self) -> int:
        return (
            self.weights
            + self.gradients
            + self.optimizer
            + self.activations
            + self.kv_cache
        )


def activation_elements_per_token(cfg, seq_len: int) -> int:
    """Elements autograd saves per token for the backward pass (no checkpointing).

    Per layer: the block input, both norms' inputs and outputs, q, k, v, the
    attention output, the attention weights (H * seq_len: torch's CPU attention
    keeps them; flash attention would not), and the MLP's hidden activations.
    Then the final norm and the logits with their softmax.
    """
    cfg = cfg.resolved()
    C, F = cfg.d_model, cfg.d_mlp
    kv = 2 * cfg.n_kv_heads * cfg.d_head
    mlp_hidden = 4 * F if cfg.mlp in GATED else 2 * F
    norms = 4 * C  # two norms, input and output each
    if cfg.mlp == "none":  # attention-only: one norm, no MLP
        mlp_hidden, norms = 0, 2 * C
    per_layer = 2 * C + norms + kv + cfg.n_heads * seq_len + mlp_hidden
    return cfg.n_layers * per_layer + 2 * C + 2 * cfg.vocab_size


def memory_estimate(
    cfg,
    batch_size: int,
    seq_len: int | None = None,
    *,
    training: bool = True,
    bytes_per_param: int = 4,
    optimizer: str = "adamw",
) -> MemoryEstimate:
    """Memory for training (weights, gradients, optimizer state, activations) or
    inference (weights, KV cache for batch_size sequences of seq_len tokens).

    Optimizer states are float32 (AdamW keeps two per parameter). seq_len
    defaults to context_len. Activations at inference are not counted (one layer
    at a time, small next to the cache).
    """
    if optimizer not in OPTIMIZER_STATES:
        raise ValueError(
            f"unknown optimizer={optimizer!r}; choose one of {tuple(OPTIMIZER_STATES)}"
        )
    cfg = cfg.resolved()
    T = cfg.context_len if seq_len is None else seq_len
    P = count_params(cfg)
    weights = P * bytes_per_param
    if not training:
        kv = 2 * cfg.n_layers * batch_size * T * cfg.n_kv_heads * cfg.d_head
        return MemoryEstimate(weights, 0, 0, 0, kv * bytes_per_param)
    acts = batch_size * T * activation_elements_per_token(cfg, T) * bytes_per_param
    return MemoryEstimate(
        weights, weights, OPTIMIZER_STATES[optimizer] * P * 4, acts, 0
    )
