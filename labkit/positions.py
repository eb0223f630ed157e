"""Position information: sinusoidal, learned, rotary (RoPE), ALiBi, and none.

Attention by itself is blind to order. Four ways to tell it where tokens are:

- sinusoidal (Vaswani et al., 2017): fixed sines and cosines of the position
  added to the token embeddings;
- learned (GPT-2): a trained vector per position, added the same way;
- rotary, RoPE (Su et al., 2021): rotate pairs of query/key features by an
  angle proportional to the position, so q.k depends on the distance only.
  The pairing is HF Llama's "rotate half" convention (feature i pairs with
  i + D/2), so Llama checkpoints load without permuting weights;
- ALiBi (Press et al., 2022): add -slope_h * distance to the attention scores,
  one slope per head;
- none: causal attention alone still leaks some position information.

Every function takes absolute ``positions`` (a LongTensor), so a KV cache only
has to offset them by its length.
Built in: the chapter on positions.
Left out on purpose: RoPE scaling schemes (NTK, YaRN, Llama 3.1's) and T5's
relative buckets.
"""

import math

import torch
from torch import nn

POSITIONS = ("learned", "sinusoidal", "rope", "alibi", "none")


def sinusoidal(positions: torch.Tensor, d_model: int) -> torch.Tensor:
    """Sinusoidal encodings: sin on even features, cos on odd ones.

    PE[p, 2i] = sin(p / 10000**(2i/C)), PE[p, 2i+1] = cos(p / 10000**(2i/C)).
    Shapes: positions (T,) -> (T, C)
    """
    i = torch.arange(0, d_model, 2, dtype=torch.float32, device=positions.device)
    inv_freq = torch.exp(-math.log(10000.0) * i / d_model)  # (ceil(C/2),)
    angles = positions.float()[:, None] * inv_freq[None, :]  # (T, ceil(C/2))
    pe = torch.zeros(len(positions), d_model, device=positions.device)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles[:, : d_model // 2])
    return pe


class SinusoidalPositions(nn.Module):
    """Fixed sinusoidal encodings (no parameters) to add to token embeddings.

    Shapes: positions (T,) -> (T, C)
    """

    def __init__(self, d_model: int):
        super().__init__()
        self.d_model = d_model

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return sinusoidal(positions, self.d_model)


class LearnedPositions(nn.Embedding):
    """A learned vector per position (GPT-2's ``wpe``); an nn.Embedding that says
    which position was out of range.

    Shapes: positions (T,) -> (T, C)
    """

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        if len(positions) and int(positions.max()) >= self.num_embeddings:
            raise ValueError(
                f"position {int(positions.max())} is past context_len="
                f"{self.num_embeddings} of the learned position embedding"
            )
        return super().forward(positions)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) on the two halves of the last dimension."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding applied to queries and keys.

    Feature i and i + D/2 form a pair rotated by angle p * theta**(-2i/D).
    ``inv_freq`` is a non-persistent buffer: nothing enters the state dict.
    Shapes: q (B, H, T, D), k (B, K, T, D), positions (T,) -> same shapes
    """

    def __init__(self, d_head: int, theta: float = 10000.0):
        super().__init__()
        if d_head % 2:
            raise ValueError(f"rotary embedding needs an even d_head, got {d_head}")
        exponent = torch.arange(0, d_head, 2, dtype=torch.float32) / d_head
        self.register_buffer("inv_freq", 1.0 / theta**exponent, persistent=False)

    def cos_sin(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin of every angle, each (T, D), in float32."""
        freqs = positions.float()[:, None] * self.inv_freq[None, :]  # (T, D/2)
        angles = torch.cat((freqs, freqs), dim=-1)  # (T, D)
        return angles.cos(), angles.sin()

    def forward(self, q, k, positions: torch.Tensor):
        cos, sin = self.cos_sin(positions)
        cos, sin = cos.to(q.dtype), sin.to(q.dtype)
        q = q * cos + rotate_half(q) * sin  # (B, H, T, D)
        k = k * cos + rotate_half(k) * sin  # (B, K, T, D)
        return q, k


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """ALiBi's per-head slopes: a geometric sequence starting at 2**(-8/n).

    For a power of two n: slope_h = 2**(-8 (h+1) / n). Otherwise the slopes of
    the nearest lower power of two, then every other slope of the next one
    (as in the paper's code).
    Shapes: returns (H,)
    """

    def power_of_2(n: int) -> list[float]:
        return [2 ** (-8 * (h + 1) / n) for h in range(n)]

    lower = 2 ** math.floor(math.log2(n_heads))
    slopes = power_of_2(lower)
    slopes += power_of_2(2 * lower)[0::2][: n_heads - lower]
    return torch.tensor(slopes)


class ALiBi(nn.Module):
    """Additive attention bias -slope_h * (query position - key position).

    Add the result to the scores before the softmax; future keys are left to
    the causal mask. ``slopes`` is a non-persistent buffer.
    Shapes: q_pos (T,), k_pos (S,) -> (H, T, S)
    """

    def __init__(self, n_heads: int):
        super().__init__()
        self.register_buffer("slopes", alibi_slopes(n_heads), persistent=False)

    def forward(self, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
        distance = (q_pos[:, None] - k_pos[None, :]).float()  # (T, S)
        return -self.slopes[:, None, None] * distance.abs()  # (H, T, S)


def make(kind: str, context_len: int, d_model: int) -> nn.Module | None:
    """The module that adds positions to the embeddings (GPTConfig.pos), or None
    for "rope", "alibi" and "none", which act inside attention or not at all."""
    if kind == "learned":
        return LearnedPositions(context_len, d_model)
    if kind == "sinusoidal":
        return SinusoidalPositions(d_model)
    if kind in ("rope", "alibi", "none"):
        return None
    raise ValueError(f"unknown pos={kind!r}; choose one of {POSITIONS}")
