"""Scaled dot-product attention, written out and fast; multi-head and grouped-query
attention; the masks; a KV cache for decoding.

Attention (Vaswani et al., 2017): each query scores every key, softmax(q.k / sqrt(D)),
and returns the weighted average of the values. Multi-head attention runs H of these
side by side on slices of the model width. Grouped-query attention (Ainslie et al.,
2023) lets groups of H / K query heads share one of K key/value heads, which shrinks
the KV cache; K = H is ordinary multi-head attention, K = 1 multi-query attention.

Mask convention, everywhere in labkit: a boolean ``mask`` where True = may attend.
Masks broadcast against the scores (B, H, T, S): (T, S) for causality, (B, 1, 1, S)
for padding. With a KV cache the T queries are the last T of the S key positions.

Two paths compute the same thing: ``attention`` writes the softmax out and can return
the weights; ``attention_fast`` calls torch's ``F.scaled_dot_product_attention``
(tests/test_attention.py holds them equal). MultiHeadAttention takes the written-out
path only when asked for weights (``need_weights=True``).

Built in: the chapter on attention (and the KV cache in the sampling chapter).
Left out on purpose: sliding windows, paged caches, cross-attention.
"""

import torch
import torch.nn.functional as F
from torch import nn

from labkit.positions import ALiBi, RotaryEmbedding


def causal_mask(T: int, S: int | None = None, device=None) -> torch.Tensor:
    """Boolean mask, True where query t may attend to key s.

    With a KV cache the T queries are the last T of S positions.
    Shapes: returns (T, S); S defaults to T.
    Example: causal_mask(3) -> [[1,0,0],[1,1,0],[1,1,1]]
    """
    S = T if S is None else S
    if S < T:
        raise ValueError(f"causal_mask needs S >= T, got T={T}, S={S}")
    return torch.ones(T, S, dtype=torch.bool, device=device).tril(diagonal=S - T)


def padding_mask(keep: torch.Tensor) -> torch.Tensor:
    """Mask from a per-token keep flag (True = real token, False = padding).

    Shapes: keep (B, S) -> (B, 1, 1, S), to broadcast over heads and queries.
    """
    return keep.bool()[:, None, None, :]


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """Repeat each key/value head n_rep times so query head h reads kv head h // n_rep.

    Shapes: (B, K, S, D) -> (B, K * n_rep, S, D)
    """
    return x if n_rep == 1 else x.repeat_interleave(n_rep, dim=1)


def attention(q, k, v, mask=None, position_bias=None, dropout_p: float = 0.0):
    """Scaled dot-product attention written out; returns (output, weights).

    weights = softmax(q k^T / sqrt(D) + position_bias, masked where mask is False).
    A query row with no allowed key gives NaN, as in torch.
    Shapes: q (B, H, T, D), k and v (B, K, S, D) with H % K == 0;
    mask and position_bias broadcast to (B, H, T, S);
    returns output (B, H, T, D) and weights (B, H, T, S).
    """
    H, K, D = q.shape[1], k.shape[1], q.shape[-1]
    k, v = repeat_kv(k, H // K), repeat_kv(v, H // K)  # (B, H, S, D)
    scores = q @ k.transpose(-2, -1) / D**0.5  # (B, H, T, S)
    if position_bias is not None:
        scores = scores + position_bias
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)  # (B, H, T, S)
    if dropout_p > 0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ v, weights  # (B, H, T, D), (B, H, T, S)


def attention_fast(
    q,
    k,
    v,
    mask=None,
    position_bias=None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
):
    """The same as ``attention`` through F.scaled_dot_product_attention (no weights).

    ``is_causal=True`` (with mask=None and no bias) lets torch build the causal
    mask itself, which is faster.
    Shapes: as ``attention``; returns (B, H, T, D).
    """
    H, K = q.shape[1], k.shape[1]
    attn_mask = mask
    if position_bias is not None:
        attn_mask = position_bias.to(q.dtype)
        if mask is not None:
            attn_mask = attn_mask.masked_fill(~mask, float("-inf"))
    return F.scaled_dot_product_attention(
        q,
        k,
        v,
        attn_mask=attn_mask,
        dropout_p=dropout_p,
        is_causal=is_causal,
        enable_gqa=H != K,
    )


class KVCache:
    """Keys and values of the tokens seen so far, per layer, for decoding.

    Make one for a model with ``KVCache.for_model(cfg, batch_size)`` and pass it to
    ``GPT.forward(idx, cache=cache)`` again and again: each call appends the new
    tokens' keys and values and positions start at ``cache.length``.
    Shapes: each layer holds k, v of (B, K, max_len, D); ``update`` returns
    (B, K, S, D) with S = tokens cached so far.
    """

    def __init__(
        self,
        n_layers: int,
        batch_size: int,
        n_kv_heads: int,
        d_head: int,
        max_len: int,
        *,
        dtype=torch.float32,
        device=None,
    ):
        shape = (n_layers, batch_size, n_kv_heads, max_len, d_head)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.max_len = max_len
        self.lengths = [0] * n_layers  # tokens cached in each layer

    @classmethod
    def for_model(
        cls,
        cfg,
        batch_size: int,
        max_len: int | None = None,
        *,
        dtype=torch.float32,
        device=None,
    ) -> "KVCache":
        """An empty cache sized for a GPTConfig (max_len defaults to context_len)."""
        cfg = cfg.resolved()  # n_kv_heads as a number
        max_len = cfg.context_len if max_len is None else max_len
        return cls(
            cfg.n_layers,
            batch_size,
            cfg.n_kv_heads,
            cfg.d_head,
            max_len,
            dtype=dtype,
            device=device,
        )

    @staticmethod
    def nbytes_for(
        cfg, batch_size: int, max_len: int | None = None, *, dtype=torch.float32
    ) -> int:
        """Bytes a cache for ``cfg`` holds, without allocating it.

        2 (keys and values) x n_layers x batch_size x n_kv_heads x max_len x
        d_head values, each of ``dtype``'s size; max_len defaults to context_len.
        Shapes: none (a count of bytes, as an int).
        Example: GPT-2 small at 1024 tokens in float16 -> 37,748,736 bytes.
        """
        cfg = cfg.resolved()
        max_len = cfg.context_len if max_len is None else max_len
        if batch_size < 0 or max_len < 0:
            raise ValueError(
                f"batch_size={batch_size} and max_len={max_len} must be >= 0"
            )
        size = torch.empty((), dtype=dtype).element_size()
        values = cfg.n_layers * batch_size * cfg.n_kv_heads * max_len * cfg.d_head
        return 2 * values * size

    @property
    def length(self) -> int:
        """Number of tokens already cached (in the first layer)."""
        return self.lengths[0]

    @property
    def nbytes(self) -> int:
        """Bytes held by the keys and values (all of max_len, used or not)."""
        return self.k.nbytes + self.v.nbytes

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        """Append T new keys/values to ``layer``; return all S cached so far."""
        start, T = self.lengths[layer], k.shape[2]
        if start + T > self.max_len:
            raise ValueError(
                f"KV cache is full: {start} cached + {T} new tokens > "
                f"max_len={self.max_len}"
            )
        self.k[layer, :, :, start : start + T] = k
        self.v[layer, :, :, start : start + T] = v
        self.lengths[layer] = start + T
        return self.k[layer, :, :, : start + T], self.v[layer, :, :, : start + T]

    def reset(self) -> None:
        self.lengths = [0] * len(self.lengths)


class MultiHeadAttention(nn.Module):
    """Causal multi-head attention with grouped-query heads, RoPE or ALiBi.

    Args: n_kv_heads (K) defaults to n_heads (H); rope or alibi are the position
    modules applied inside attention (labkit.positions); causal=False for an
    encoder-style layer. forward returns (output, weights) where weights is
    None unless need_weights=True, which takes the written-out path.
    ``mask`` (True = may attend) is combined with the causal mask. Both paths
    call q_proj, k_proj and v_proj as modules, so hooks on them and replacements
    (LoRA adapters) always run. (One product of the three stacked weights was
    tried: no faster to train, slower to decode.)
    Shapes: x (B, T, C) -> output (B, T, C), weights (B, H, T, S);
    positions (T,) absolute positions of the new tokens.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        n_kv_heads: int | None = None,
        *,
        bias: bool = True,
        rope: RotaryEmbedding | None = None,
        alibi: ALiBi | None = None,
        dropout: float = 0.0,
        causal: bool = True,
    ):
        super().__init__()
        self.n_heads, self.n_kv_heads = n_heads, n_kv_heads or n_heads
        if d_model % n_heads or self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"need d_model={d_model} divisible by n_heads={n_heads} and "
                f"n_heads divisible by n_kv_heads={self.n_kv_heads}"
            )
        self.d_head = d_model // n_heads
        self.q_proj = nn.Linear(d_model, n_heads * self.d_head, bias=bias)
        self.k_proj = nn.Linear(d_model, self.n_kv_heads * self.d_head, bias=bias)
        self.v_proj = nn.Linear(d_model, self.n_kv_heads * self.d_head, bias=bias)
        self.o_proj = nn.Linear(n_heads * self.d_head, d_model, bias=bias)
        self.rope, self.alibi = rope, alibi
        self.dropout, self.causal = dropout, causal

    def forward(
        self,
        x,
        *,
        positions=None,
        mask=None,
        cache: KVCache | None = None,
        layer: int = 0,
        need_weights: bool = False,
    ):
        B, T, _ = x.shape
        H, K, D = self.n_heads, self.n_kv_heads, self.d_head
        if positions is None:
            start = cache.lengths[layer] if cache is not None else 0
            positions = torch.arange(start, start + T, device=x.device)
        q = self.q_proj(x).view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
        k = self.k_proj(x).view(B, T, K, D).transpose(1, 2)  # (B, K, T, D)
        v = self.v_proj(x).view(B, T, K, D).transpose(1, 2)  # (B, K, T, D)
        if self.rope is not None:
            q, k = self.rope(q, k, positions)
        if cache is not None:
            k, v = cache.update(layer, k, v)  # (B, K, S, D)
        S = k.shape[2]
        bias = None
        if self.alibi is not None:
            k_pos = torch.arange(
                int(positions[-1]) + 1 - S, int(positions[-1]) + 1, device=x.device
            )
            bias = self.alibi(positions, k_pos)  # (H, T, S)
        p = self.dropout if self.training else 0.0
        weights = None
        plain = self.causal and mask is None and bias is None and T in (1, S)
        if plain and not need_weights:
            # torch builds the causal mask itself; a single new query sees all keys
            out = attention_fast(q, k, v, dropout_p=p, is_causal=T == S)
        else:
            full = causal_mask(T, S, x.device) if self.causal else None
            if mask is not None:
                full = mask if full is None else full & mask
            if need_weights:
                out, weights = attention(q, k, v, full, bias, p)
            else:
                out = attention_fast(q, k, v, full, bias, p)
        out = out.transpose(1, 2).reshape(B, T, H * D)  # (B, T, C)
        return self.o_proj(out), weights
