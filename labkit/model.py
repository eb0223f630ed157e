"""GPT assembled: the config and its presets, the block, the model, tracing.

A GPT (Radford et al., 2018, 2019) embeds tokens, adds position information,
runs n_layers blocks that each add attention and an MLP to a residual stream,
normalises, and maps each position to next-token logits. One ``GPTConfig``
describes GPT-2 and Llama alike: choose positions (learned, sinusoidal, RoPE,
ALiBi, none), norm (LayerNorm, RMSNorm), MLP (GELU, SwiGLU, ...), grouped-query
heads, biases, a tied or untied head, pre-norm or post-norm blocks.

Counts (parameters, FLOPs, memory) are functions of the config in
labkit.counting (``count_params`` is also importable from here); loading and
exporting Hugging Face checkpoints is labkit.hf (which imports this module, so
this one does not import it). Generation is labkit.sampling. ``trace(model)``
collects internals through hooks.

Built in: the chapters on the block and on GPT assembled.
Left out on purpose: mixture of experts, weight sharing across layers, fused
kernels, tensor parallelism.
"""

import math
from contextlib import contextmanager
from dataclasses import dataclass, replace

import torch
from torch import nn

from labkit import positions as positions_mod
from labkit.attention import KVCache, MultiHeadAttention
from labkit.counting import (  # noqa: F401 (re-exported)
    count_params,
    flops_per_token,
    memory_estimate,
)
from labkit.mlp import MLPS, make_mlp
from labkit.norms import NORMS, make_norm
from labkit.positions import POSITIONS, ALiBi, RotaryEmbedding


@dataclass(frozen=True)
class GPTConfig:
    """Everything that fixes a GPT's shape. Frozen: use dataclasses.replace.

    Two sizes follow others unless set: n_kv_heads=None means n_heads (plain
    multi-head attention) and d_mlp=None means 4 * d_model. The field keeps
    None, so ``dataclasses.replace(cfg, d_model=256)`` (or ``labkit train
    --set model.d_model=256``) widens the MLP with it; ``cfg.resolved()`` is
    the same config with both written out, which is what a built model uses.
    A wrong combination raises ValueError naming the fields.
    """

    vocab_size: int = 50257
    context_len: int = 1024
    n_layers: int = 12
    n_heads: int = 12
    n_kv_heads: int | None = None  # None: n_heads
    d_model: int = 768
    d_mlp: int | None = None  # None: 4 * d_model
    pos: str = "learned"  # one of labkit.positions.POSITIONS
    norm: str = "layernorm"  # "layernorm" or "rmsnorm"
    mlp: str = "gelu_tanh"  # one of MLP_CHOICES: labkit.mlp.MLPS or "none"
    bias: bool = True  # biases in the linear layers and LayerNorms
    tie_weights: bool = True  # lm_head shares tok_emb's weight
    prenorm: bool = True  # norm before attention/MLP (GPT-2) or after (2017)
    parallel: bool = False  # attention and MLP read one norm (GPT-J, PaLM)
    dropout: float = 0.0
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0

    def __post_init__(self):
        problems = _config_problems(self)
        if problems:
            raise ValueError("invalid GPTConfig: " + "; ".join(problems))

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    def resolved(self) -> "GPTConfig":
        """This config with n_kv_heads and d_mlp written out (None filled in).

        Two configs build the same model when their ``resolved()`` are equal.
        Example: GPTConfig(d_model=64, n_heads=4).resolved().d_mlp -> 256
        """
        return replace(
            self,
            n_kv_heads=self.n_heads if self.n_kv_heads is None else self.n_kv_heads,
            d_mlp=4 * self.d_model if self.d_mlp is None else self.d_mlp,
        )


def _config_problems(cfg: GPTConfig) -> list[str]:
    """Every problem with the config, each naming its fields."""
    out = []
    sizes = ("vocab_size", "context_len", "n_layers", "n_heads", "d_model")
    for name in sizes + ("n_kv_heads", "d_mlp"):
        value = getattr(cfg, name)
        if value is None and name not in sizes:
            continue  # n_kv_heads, d_mlp: None follows n_heads, d_model
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            out.append(f"{name}={value!r} must be a positive integer")
    if out:
        return out
    if cfg.d_model % cfg.n_heads:
        out.append(f"d_model={cfg.d_model} is not divisible by n_heads={cfg.n_heads}")
    if cfg.n_kv_heads is not None and cfg.n_heads % cfg.n_kv_heads:
        out.append(
            f"n_heads={cfg.n_heads} is not divisible by "
            f"n_kv_heads={cfg.n_kv_heads} (grouped-query attention)"
        )
    for name, choices in (("pos", POSITIONS), ("norm", NORMS), ("mlp", MLP_CHOICES)):
        if getattr(cfg, name) not in choices:
            out.append(f"{name}={getattr(cfg, name)!r} is not one of {choices}")
    if cfg.pos == "rope" and not cfg.d_model % cfg.n_heads and cfg.d_head % 2:
        out.append(
            f"pos='rope' needs an even d_head, but d_model={cfg.d_model} / "
            f"n_heads={cfg.n_heads} = {cfg.d_head}"
        )
    if cfg.parallel and not cfg.prenorm:
        out.append("parallel=True needs prenorm=True (both read one norm_1)")
    if not 0.0 <= cfg.dropout < 1.0:
        out.append(f"dropout={cfg.dropout} must be in [0, 1)")
    if not cfg.norm_eps > 0:
        out.append(f"norm_eps={cfg.norm_eps} must be positive")
    if not cfg.rope_theta > 0:
        out.append(f"rope_theta={cfg.rope_theta} must be positive")
    return out


# mlp="none" gives attention-only blocks (the induction-heads experiment)
MLP_CHOICES = MLPS + ("none",)


class NoMLP(nn.Module):
    """The MLP of an attention-only block: it writes nothing to the stream.

    Kept as a module so ``trace`` still reports "mlp_out" (all zeros).
    Shapes: x (B, T, C) -> zeros (B, T, C)
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


_LLAMA = dict(pos="rope", norm="rmsnorm", mlp="swiglu", bias=False, tie_weights=False)
PRESETS = {
    # small ones for the chapters and for training on a laptop (byte-level vocab)
    "tiny": GPTConfig(
        vocab_size=256, context_len=128, n_layers=2, n_heads=4, d_model=64
    ),
    "small": GPTConfig(
        vocab_size=256, context_len=256, n_layers=4, n_heads=4, d_model=128
    ),
    "tiny-llama": GPTConfig(
        vocab_size=256,
        context_len=128,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        d_model=64,
        d_mlp=176,
        **_LLAMA,
    ),
    # published models: count_params(PRESETS[name]) equals their totals
    "gpt2": GPTConfig(),
    "gpt2-medium": GPTConfig(n_layers=24, n_heads=16, d_model=1024),
    "gpt2-large": GPTConfig(n_layers=36, n_heads=20, d_model=1280),
    "gpt2-xl": GPTConfig(n_layers=48, n_heads=25, d_model=1600),
    "llama2-7b": GPTConfig(
        vocab_size=32000,
        context_len=4096,
        n_layers=32,
        n_heads=32,
        d_model=4096,
        d_mlp=11008,
        **_LLAMA,
    ),
    "llama3-8b": GPTConfig(
        vocab_size=128256,
        context_len=8192,
        n_layers=32,
        n_heads=32,
        n_kv_heads=8,
        d_model=4096,
        d_mlp=14336,
        rope_theta=500000.0,
        **_LLAMA,
    ),
}


class Block(nn.Module):
    """One transformer block: attention then MLP, each added to the residual stream.

    Pre-norm (GPT-2, Llama): x + attn(norm_1(x)), then + mlp(norm_2(.)).
    Post-norm (2017 transformer): norm_1(x + attn(x)), then norm_2(. + mlp(.)).
    Parallel (GPT-J, PaLM): h = norm_1(x); x + attn(h) + mlp(h); no norm_2.
    mlp="none": attention only; norm_2 is the identity and the MLP adds zeros.
    Shapes: x (B, T, C) -> (B, T, C)
    """

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        cfg = cfg.resolved()  # n_kv_heads and d_mlp as numbers
        eps, bias = cfg.norm_eps, cfg.bias
        self.prenorm = cfg.prenorm
        self.norm_1 = make_norm(cfg.norm, cfg.d_model, bias=bias, eps=eps)
        rope = (
            RotaryEmbedding(cfg.d_head, cfg.rope_theta) if cfg.pos == "rope" else None
        )
        alibi = ALiBi(cfg.n_heads) if cfg.pos == "alibi" else None
        self.attn = MultiHeadAttention(
            cfg.d_model,
            cfg.n_heads,
            cfg.n_kv_heads,
            bias=bias,
            rope=rope,
            alibi=alibi,
            dropout=cfg.dropout,
        )
        self.parallel = cfg.parallel
        if cfg.mlp == "none":  # attention-only: no MLP, so no norm before it
            self.norm_2, self.mlp = nn.Identity(), NoMLP()
        elif cfg.parallel:  # the MLP reads norm_1's output too
            self.norm_2 = nn.Identity()
            self.mlp = make_mlp(cfg.mlp, cfg.d_model, cfg.d_mlp, bias=bias)
        else:
            self.norm_2 = make_norm(cfg.norm, cfg.d_model, bias=bias, eps=eps)
            self.mlp = make_mlp(cfg.mlp, cfg.d_model, cfg.d_mlp, bias=bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, *, positions, cache=None, layer=0, need_weights=False):
        kw = dict(
            positions=positions, cache=cache, layer=layer, need_weights=need_weights
        )
        if self.parallel:  # both sublayers read the stream entering the block
            h = self.norm_1(x)  # (B, T, C)
            return x + self.drop(self.attn(h, **kw)[0]) + self.drop(self.mlp(h))
        if self.prenorm:
            x = x + self.drop(self.attn(self.norm_1(x), **kw)[0])
            return x + self.drop(self.mlp(self.norm_2(x)))
        x = self.norm_1(x + self.drop(self.attn(x, **kw)[0]))
        return self.norm_2(x + self.drop(self.mlp(x)))


class GPT(nn.Module):
    """A decoder-only transformer language model built from a GPTConfig.

    forward(idx, cache=None, need_weights=False) returns logits only. With a
    KVCache it processes the T new tokens after the cache's ``length`` ones
    (positions offset accordingly). need_weights=True takes the written-out
    attention path so ``trace`` can collect attention weights.
    Shapes: idx (B, T) long -> logits (B, T, V)
    """

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = positions_mod.make(cfg.pos, cfg.context_len, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        if cfg.prenorm:
            self.norm_f = make_norm(
                cfg.norm, cfg.d_model, bias=cfg.bias, eps=cfg.norm_eps
            )
        else:  # post-norm blocks already end in a norm
            self.norm_f = nn.Identity()
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        init_weights(self, cfg)
        if cfg.tie_weights:
            self.lm_head.weight = self.tok_emb.weight

    def forward(
        self,
        idx: torch.Tensor,
        *,
        cache: KVCache | None = None,
        need_weights: bool = False,
    ) -> torch.Tensor:
        B, T = idx.shape
        start = cache.length if cache is not None else 0
        pos = torch.arange(start, start + T, device=idx.device)  # (T,)
        x = self.tok_emb(idx)  # (B, T, C)
        if self.pos_emb is not None:
            x = x + self.pos_emb(pos)  # (T, C) broadcast over B
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, positions=pos, cache=cache, layer=i, need_weights=need_weights)
        return self.lm_head(self.norm_f(x))  # (B, T, V)


def init_weights(model: GPT, cfg: GPTConfig, std: float = 0.02) -> None:
    """GPT-2's initialisation: normal(0, std) weights, zero biases, unit norms,
    and the projections into the residual stream scaled by 1/sqrt(2 n_layers)."""
    for name, p in model.named_parameters():
        if p.dim() == 1:
            nn.init.zeros_(p) if name.endswith("bias") else nn.init.ones_(p)
        elif name.endswith(("o_proj.weight", "down_proj.weight")):
            nn.init.normal_(p, 0.0, std / math.sqrt(2 * cfg.n_layers))
        else:
            nn.init.normal_(p, 0.0, std)


@contextmanager
def trace(model: GPT, *, detach: bool = True):
    """Collect the model's internals during forward passes into a dict you own.

    Keys (i = layer index), each the value from the latest forward pass:
      "blocks.{i}.resid_pre"     (B, T, C) residual stream entering block i
      "blocks.{i}.attn_out"      (B, T, C) attention's output (before dropout)
      "blocks.{i}.resid_mid"     (B, T, C) residual stream between attn and MLP
                                 (absent for a parallel block: there is none)
      "blocks.{i}.mlp_out"       (B, T, C) the MLP's output
      "blocks.{i}.resid_post"    (B, T, C) residual stream leaving block i
      "blocks.{i}.attn.weights"  (B, H, T, S) only with forward(need_weights=True)
      "resid_final"              (B, T, C) input of the final norm
      "norm_f"                   (B, T, C) output of the final norm
    detach=False keeps the autograd graph (for attributions). Hooks are removed
    when the block exits; the model keeps no activations.
    Example:
        with trace(model) as acts:
            model(idx, need_weights=True)
        acts["blocks.0.attn.weights"]
    """
    acts: dict[str, torch.Tensor] = {}
    keep = (lambda t: t.detach()) if detach else (lambda t: t)

    def save(key, index=None, pre=False):
        def hook(module, args, output=None):
            value = args[0] if pre else output
            value = value[index] if index is not None else value
            if value is not None:
                acts[key] = keep(value)

        return hook

    handles = []
    for i, block in enumerate(model.blocks):
        p = f"blocks.{i}."
        handles += [
            block.register_forward_pre_hook(save(p + "resid_pre", pre=True)),
            block.register_forward_hook(save(p + "resid_post")),
            block.attn.register_forward_hook(save(p + "attn_out", 0)),
            block.attn.register_forward_hook(save(p + "attn.weights", 1)),
            block.mlp.register_forward_hook(save(p + "mlp_out")),
            block.norm_2.register_forward_pre_hook(save(p + "resid_mid", pre=True))
            if block.prenorm
            else block.norm_1.register_forward_hook(save(p + "resid_mid")),
        ]
    handles.append(
        model.norm_f.register_forward_pre_hook(save("resid_final", pre=True))
    )
    handles.append(model.norm_f.register_forward_hook(save("norm_f")))
    try:
        yield acts
    finally:
        for h in handles:
            h.remove()
