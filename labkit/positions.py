"""Position information: sinusoidal, learned, rotary (RoPE), ALiBi, and none.

Attention by itself is blind to order. Four ways to tell it where tokens are:

- sinusoidal (Vaswani et al., 2017): fixed sines and cosines of the position
  added to the token embeddings;
- learned (GPT-2): a trained vector per position, added the same way;
- rotary, RoPE (Su et al., 2021): rotate pairs of query/key features by an
  angle proportional to the position, so q.k depends on the distance only.
  Two layouts pair the features differently and are the same rotation up to
  a fixed permutation of the D features (``half_to_adjacent``): the paper's
  and Meta's Llama code rotate adjacent features (2i, 2i+1), read as one
  complex number (``rope_adjacent``); Hugging Face and GPT-NeoX pair feature
  i with i + D/2 ("rotate half"). ``RotaryEmbedding`` uses rotate half, so
  Hugging Face Llama checkpoints (whose W_q, W_k rows are stored in that
  order) load without permuting weights;
- ALiBi (Press et al., 2022): add -slope_h * distance to the attention scores,
  one slope per head;
- none: causal attention alone still leaks some position information.

Reading past the training length with RoPE: ``RotaryEmbedding(..., scale=s)``
is position interpolation (Chen et al., 2023; Hugging Face's "linear" rope
type), every position divided by s; ``ntk_theta`` raises the base instead
("NTK-aware" scaling, bloc97, 2023), slowing the slowest pair by exactly s and
leaving the fastest as it was.

Every function takes absolute ``positions`` (a LongTensor), so a KV cache only
has to offset them by its length.
Built in: notebooks/07_positions.ipynb.
Left out on purpose: YaRN, Llama 3.1's frequency-band scaling, dynamic
(length-dependent) scaling, T5's relative buckets.
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

    ``scale`` multiplies them: the 2017 transformer adds amplitude 1 to token
    embeddings multiplied by sqrt(C); next to GPT-2's std-0.02 embeddings,
    scale = 0.02 * sqrt(2) gives each sine/cosine pair the tokens' root mean
    square at every position (sin^2 + cos^2 = 1), so the vector has their
    expected length 0.02 * sqrt(C); single features do not (a slow pair's
    sine stays near 0 over a short context).
    Shapes: positions (T,) -> (T, C)
    """

    def __init__(self, d_model: int, scale: float = 1.0):
        super().__init__()
        self.d_model, self.scale = d_model, scale

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return self.scale * sinusoidal(positions, self.d_model)


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


def rope_inv_freq(d_head: int, theta: float = 10000.0) -> torch.Tensor:
    """The angle per position of each feature pair: theta**(-2i/D), i < D/2.

    The fastest pair turns 1 radian per position, the slowest
    theta**(-(D-2)/D) (not 1/theta: i stops at D/2 - 1).
    Shapes: returns (D/2,) float32
    Example: rope_inv_freq(4, 100.0) -> [1.0, 0.1]
    """
    if d_head % 2:
        raise ValueError(f"rotary embedding needs an even d_head, got {d_head}")
    exponent = torch.arange(0, d_head, 2, dtype=torch.float32) / d_head
    return 1.0 / theta**exponent


class RotaryEmbedding(nn.Module):
    """Rotary position embedding applied to queries and keys (rotate half).

    Feature i and i + D/2 form a pair rotated by angle (p / scale) *
    theta**(-2i/D). scale > 1 is position interpolation: positions up to
    scale * L land on the angles of positions up to L.
    ``inv_freq`` is a non-persistent buffer: nothing enters the state dict.
    Shapes: q (B, H, T, D), k (B, K, T, D), positions (T,) -> same shapes
    """

    def __init__(self, d_head: int, theta: float = 10000.0, scale: float = 1.0):
        super().__init__()
        if not scale > 0:
            raise ValueError(f"rotary scale must be positive, got {scale}")
        inv_freq = rope_inv_freq(d_head, theta) / scale  # (D/2,)
        self.theta, self.scale = theta, scale
        self.register_buffer("inv_freq", inv_freq, persistent=False)

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


def rope_adjacent(
    x: torch.Tensor, positions: torch.Tensor, theta: float = 10000.0
) -> torch.Tensor:
    """RoPE in the paper's layout: features (2i, 2i+1) are one complex number
    x[2i] + j x[2i+1], multiplied by exp(j p theta**(-2i/D)) (Meta's Llama code).

    Equals RotaryEmbedding on features permuted by ``half_to_adjacent``.
    Shapes: x (..., T, D), positions (T,) -> (..., T, D)
    """
    D = x.shape[-1]
    angles = positions.float()[:, None] * rope_inv_freq(D, theta)  # (T, D/2)
    turn = torch.polar(torch.ones_like(angles), angles)  # (T, D/2) complex
    z = torch.view_as_complex(x.float().reshape(*x.shape[:-1], D // 2, 2))
    return torch.view_as_real(z * turn).flatten(-2).to(x.dtype)  # (..., T, D)


def half_to_adjacent(d_head: int) -> torch.Tensor:
    """Feature order that turns the rotate-half layout into the adjacent one.

    x_adjacent = x_half[..., perm]: feature 2i is half-feature i, feature 2i+1
    is half-feature i + D/2, so each rotated pair ends up side by side.
    Shapes: returns (D,) int64
    Example: half_to_adjacent(6) -> [0, 3, 1, 4, 2, 5]
    """
    if d_head % 2:
        raise ValueError(f"rotary embedding needs an even d_head, got {d_head}")
    half = torch.arange(d_head // 2)
    return torch.stack((half, half + d_head // 2), dim=-1).flatten()


def ntk_theta(theta: float, scale: float, d_head: int) -> float:
    """The base of "NTK-aware" RoPE scaling: theta * scale**(D / (D - 2)).

    With it the slowest pair turns exactly scale times slower (as with
    position interpolation) while the fastest pair is unchanged.
    Example: ntk_theta(10000.0, 4.0, 16) -> 10000 * 4**(16/14)
    """
    if d_head < 4 or d_head % 2:
        raise ValueError(f"NTK scaling needs an even d_head >= 4, got {d_head}")
    return theta * scale ** (d_head / (d_head - 2))


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
