"""Counting a GPT from its config: parameters, FLOPs per token, memory, MFU.

Everything here is arithmetic on a ``GPTConfig`` (on its ``resolved()`` sizes):
no model is built, so the counts work for GPT-2 XL or Llama 3 8B on a laptop.
tests/test_counting.py holds them equal to the published totals, to the built
model's ``parameters()``, to torch's FLOP counter and to the tensors autograd
actually saves on both attention paths.

Conventions: "non-embedding" parameters leave out the token and position tables
and an untied head (Kaplan et al., 2020, count N without vocabulary and position
embeddings). Attention's score and weighted-sum FLOPs are counted over every key
(4 * T * d_model per layer per token, as the written-out attention computes
them) unless ``causal=True``, which counts only the keys a query may see. MFU
(Chowdhery et al., 2022) divides the model's FLOPs per second, as counted here,
by a peak rate the caller supplies.

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
    norms_per_layer = 1 if cfg.mlp == "none" or cfg.parallel else 2
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


def non_embedding_params(cfg) -> int:
    """Parameters outside the vocabulary and position tables (Kaplan's N).

    An untied head is a vocabulary table too and is left out with them.
    Example: non_embedding_params(PRESETS["gpt2"]) == 85_056_000
    """
    parts = param_counts(cfg)
    return sum(parts.values()) - parts["tok_emb"] - parts["pos_emb"] - parts["lm_head"]


def flops_by_part(
    cfg, seq_len: int | None = None, *, training: bool = False, causal: bool = False
) -> dict[str, int]:
    """Matrix-multiply FLOPs per token by part (x3 with training=True).

    Parts: "attn_proj" (q, k, v and output projections), "attn_scores" (scores
    and weighted sum over the keys), "mlp", "lm_head". Embedding lookups cost no
    FLOPs; biases are additions, not part of the matmuls. Each query scores all
    seq_len keys unless causal=True: then query t scores its t + 1 keys, on
    average (seq_len + 1) / 2, about half. seq_len defaults to context_len.
    """
    cfg = cfg.resolved()
    T = cfg.context_len if seq_len is None else seq_len
    C, H, K, D, F, L = (
        cfg.d_model,
        cfg.n_heads,
        cfg.n_kv_heads,
        cfg.d_head,
        cfg.d_mlp,
        cfg.n_layers,
    )
    n_mlp = 0 if cfg.mlp == "none" else (3 if cfg.mlp in GATED else 2) * C * F
    # q . k and weights @ v: 2 FLOPs x D x (keys seen) each, for each of H heads
    keys_x2 = T + 1 if causal else 2 * T  # 2 x the mean number of keys per query
    parts = {
        "attn_proj": 2 * L * (2 * C * H * D + 2 * C * K * D),
        "attn_scores": L * 2 * H * D * keys_x2,
        "mlp": 2 * L * n_mlp,
        "lm_head": 2 * cfg.vocab_size * C,
    }
    return {k: 3 * v for k, v in parts.items()} if training else parts


def flops_per_token(
    cfg, seq_len: int | None = None, *, training: bool = False, causal: bool = False
) -> int:
    """Matrix-multiply FLOPs per token of a forward pass (x3 with training=True).

    2 FLOPs (a multiply and an add) per weight of every linear layer and of the
    head, plus the attention scores and weighted sum, 4 * seq_len * d_model per
    layer, counted over all seq_len keys as the written-out attention computes
    them; causal=True counts only the keys each query may see (about half).
    The backward pass costs twice the forward. seq_len defaults to context_len.
    Example: flops_per_token(PRESETS["gpt2"]) == 284_812_800
    """
    return sum(flops_by_part(cfg, seq_len, training=training, causal=causal).values())


def mfu(
    cfg,
    tokens_per_second: float,
    peak_flops_per_second: float,
    seq_len: int | None = None,
    *,
    causal: bool = False,
) -> float:
    """Model FLOPs utilisation of training: the training FLOPs per token counted
    here, times the tokens trained per second, over the peak FLOP rate.

    The count is the model's, not the kernel's: a kernel that skips work does not
    raise it. seq_len defaults to context_len.
    Example: mfu(PRESETS["gpt2"], 1000, 1e12) == 3 * 284_812_800 * 1000 / 1e12
    """
    if not peak_flops_per_second > 0:
        raise ValueError(f"peak_flops_per_second={peak_flops_per_second} must be > 0")
    if not tokens_per_second >= 0:
        raise ValueError(f"tokens_per_second={tokens_per_second} must be >= 0")
    count = flops_per_token(cfg, seq_len, training=True, causal=causal)
    return count * tokens_per_second / peak_flops_per_second


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


def activation_elements_per_token(cfg, seq_len: int, *, fused: bool = False) -> int:
    """Elements autograd saves per token for the backward pass (no checkpointing).

    Per layer: both norms' inputs and outputs, q, k, v, the attention output, the
    MLP's hidden activations, and the attention weights, H * seq_len, which the
    written-out attention keeps; the fused kernel (fused=True) keeps one number
    per head instead (the softmax's log-sum-exp). Then the final norm's input
    and output and the log-softmax of the loss (V).
    """
    cfg = cfg.resolved()
    C, F, H = cfg.d_model, cfg.d_mlp, cfg.n_heads
    q_out = 2 * H * cfg.d_head  # the queries and the attention output
    kv = 2 * cfg.n_kv_heads * cfg.d_head
    mlp_hidden = 4 * F if cfg.mlp in GATED else 2 * F
    norms = 4 * C  # two norms, input and output each
    if cfg.mlp == "none":  # attention-only: one norm, no MLP
        mlp_hidden, norms = 0, 2 * C
    weights = H if fused else H * seq_len
    per_layer = q_out + norms + kv + weights + mlp_hidden
    return cfg.n_layers * per_layer + 2 * C + cfg.vocab_size


def kv_cache_bytes(cfg, batch_size: int, seq_len: int, bytes_per_value: int) -> int:
    """Bytes of the keys and values cached for batch_size sequences of seq_len.

    2 (k and v) x n_layers x n_kv_heads x d_head values per token: grouped-query
    attention (fewer kv heads) shrinks it. Example: Llama 3 8B in 16-bit, one
    token: 2 * 32 * 8 * 128 * 2 = 131072 bytes.
    """
    cfg = cfg.resolved()
    per_token = 2 * cfg.n_layers * cfg.n_kv_heads * cfg.d_head
    return per_token * batch_size * seq_len * bytes_per_value


def memory_estimate(
    cfg,
    batch_size: int,
    seq_len: int | None = None,
    *,
    training: bool = True,
    bytes_per_param: int = 4,
    optimizer: str = "adamw",
    fused: bool = False,
) -> MemoryEstimate:
    """Memory for training (weights, gradients, optimizer state, activations) or
    inference (weights, KV cache for batch_size sequences of seq_len tokens).

    Optimizer states are float32 (AdamW keeps two per parameter). seq_len
    defaults to context_len. fused=True counts activations for the fused
    attention kernel, which keeps no (T, S) weights. Activations at inference
    are not counted (one layer at a time, small next to the cache).
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
        kv = kv_cache_bytes(cfg, batch_size, T, bytes_per_param)
        return MemoryEstimate(weights, 0, 0, 0, kv)
    per_token = activation_elements_per_token(cfg, T, fused=fused)
    acts = batch_size * T * per_token * bytes_per_param
    return MemoryEstimate(
        weights, weights, OPTIMIZER_STATES[optimizer] * P * 4, acts, 0
    )


# Bits per stored weight of each quantization scheme (labkit.quant's names).
WEIGHT_BITS = {
    "fp32": 32,
    "fp16": 16,
    "bf16": 16,
    "int8-tensor": 8,
    "int8-channel": 8,
    "int4": 4,
    "nf4": 4,
}
DQ_BLOCK = 256  # scales per float32 scale when the scales are double-quantized
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "gate_proj")
PROJECTIONS += ("down_proj",)


def linear_shapes(cfg) -> dict[str, tuple[int, int]]:
    """(in, out) of each projection of one block, by attribute name."""
    cfg = cfg.resolved()
    C, H, K, D, F = cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.d_head, cfg.d_mlp
    shapes = {
        "q_proj": (C, H * D),
        "k_proj": (C, K * D),
        "v_proj": (C, K * D),
        "o_proj": (H * D, C),
    }
    if cfg.mlp != "none":
        shapes["up_proj"] = (C, F)
        if cfg.mlp in GATED:
            shapes["gate_proj"] = (C, F)
        shapes["down_proj"] = (F, C)
    return shapes


def lora_params(cfg, rank: int, targets: tuple[str, ...]) -> int:
    """Adapter parameters: rank * (in + out) per targeted projection per layer
    (a target the model lacks, gate_proj in a GELU MLP, adds none).

    Example: lora_params(PRESETS["llama2-7b"], 64, ("q_proj", "v_proj"))
    == 32 * 2 * 64 * (4096 + 4096)
    """
    shapes = linear_shapes(cfg)
    known = PROJECTIONS
    unknown = sorted(set(targets) - set(known))
    present = [t for t in targets if t in shapes]
    if unknown or not present:
        raise ValueError(
            f"targets {list(targets)}: choose among {list(known)}; this model "
            f"has {sorted(shapes)}"
        )
    per_layer = sum(rank * (shapes[t][0] + shapes[t][1]) for t in present)
    return cfg.n_layers * per_layer


def _scale_bytes(n_in: int, n_out: int, scheme: str, group_size, double_quant):
    """Bytes of one projection's scales, as labkit.quant stores them."""
    if scheme in ("fp32", "fp16", "bf16"):
        return 0
    if scheme == "int8-tensor":
        n_scales = 1
    elif scheme == "int8-channel":
        n_scales = n_out
    else:
        if n_in % group_size:
            raise ValueError(f"group_size={group_size} does not divide in={n_in}")
        n_scales = n_out * n_in // group_size
    if not double_quant:
        return 4 * n_scales
    return n_scales + 4 * -(-n_scales // DQ_BLOCK) + 4  # codes, steps, mean


def weight_bytes(
    cfg,
    scheme: str,
    group_size: int = 64,
    double_quant: bool = False,
    float_bytes: int = 2,
) -> int:
    """Bytes of a model's weights with its block projections stored in
    ``scheme`` (WEIGHT_BITS) and everything else (embeddings, head, norms,
    biases) at ``float_bytes`` per parameter. Scales are counted as
    labkit.quant stores them: float32 each, or with ``double_quant`` one byte
    each plus a float32 step per DQ_BLOCK and a float32 mean per projection.
    Equals labkit.qlinear.model_bytes of a model quantized that way.
    """
    if scheme not in WEIGHT_BITS:
        raise ValueError(
            f"unknown scheme={scheme!r}; choose one of {tuple(WEIGHT_BITS)}"
        )
    shapes = linear_shapes(cfg)
    n_linear = cfg.n_layers * sum(i * o for i, o in shapes.values())
    scales = cfg.n_layers * sum(
        _scale_bytes(i, o, scheme, group_size, double_quant) for i, o in shapes.values()
    )
    rest = count_params(cfg) - n_linear
    return n_linear * WEIGHT_BITS[scheme] // 8 + scales + rest * float_bytes


def finetune_bytes(
    cfg,
    scheme: str,
    rank: int,
    targets: tuple[str, ...],
    group_size: int = 64,
    double_quant: bool = False,
    float_bytes: int = 2,
) -> dict[str, int]:
    """Bytes to fine-tune through LoRA adapters on a frozen base stored in
    ``scheme``: the base's weights (weight_bytes), the adapters, their
    gradients and AdamW's two states, all float32. Activations not counted.
    """
    n = lora_params(cfg, rank, targets)
    return {
        "weights": weight_bytes(cfg, scheme, group_size, double_quant, float_bytes),
        "adapters": 4 * n,
        "adapter_grads": 4 * n,
        "optimizer": 4 * OPTIMIZER_STATES["adamw"] * n,
    }
