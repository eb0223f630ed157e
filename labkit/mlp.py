"""The position-wise MLP of a transformer block: GELU/ReLU, and gated (GLU) variants.

A plain MLP widens each token to d_mlp, applies a nonlinearity and projects back:
down_proj(act(up_proj(x))). GPT-2 uses GELU with the tanh approximation
(Hendrycks & Gimpel, 2016); the original transformer used ReLU. Gated variants
(Shazeer, 2020, "GLU Variants Improve Transformer") multiply two projections,
one through the nonlinearity: down_proj(act(gate_proj(x)) * up_proj(x)); with
SiLU this is Llama's SwiGLU.

``dead_units`` finds the ReLU units that no token switches on.

Built in: notebooks/09_mlp_and_block.ipynb.
Left out on purpose: mixture-of-experts routing and fused kernels.
"""

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {
    "gelu": F.gelu,  # exact, with erf
    "gelu_tanh": partial(F.gelu, approximate="tanh"),  # GPT-2's gelu_new
    "relu": F.relu,
    "silu": F.silu,
    "sigmoid": torch.sigmoid,
}
# a plain MLP is named by its activation; a gated one by its own name, mapped
# to the activation of its gate
PLAIN = ("gelu", "gelu_tanh", "relu", "silu")
GATED = {"swiglu": "silu", "geglu": "gelu", "reglu": "relu", "glu": "sigmoid"}
MLPS = PLAIN + tuple(GATED)


class MLP(nn.Module):
    """up_proj -> activation -> down_proj.

    Args: activation is one of "gelu", "gelu_tanh", "relu", "silu".
    Shapes: x (B, T, C) -> (B, T, C); hidden (B, T, d_mlp)
    """

    def __init__(
        self,
        d_model: int,
        d_mlp: int,
        activation: str = "gelu_tanh",
        *,
        bias: bool = True,
    ):
        super().__init__()
        if activation not in PLAIN:
            raise ValueError(
                f"unknown activation={activation!r}; choose one of {PLAIN}"
            )
        self.activation = activation
        self.up_proj = nn.Linear(d_model, d_mlp, bias=bias)
        self.down_proj = nn.Linear(d_mlp, d_model, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = ACTIVATIONS[self.activation](self.up_proj(x))  # (B, T, d_mlp)
        return self.down_proj(h)  # (B, T, C)


class GatedMLP(nn.Module):
    """down_proj(act(gate_proj(x)) * up_proj(x)): SwiGLU, GeGLU, ReGLU, GLU.

    Args: variant is one of "swiglu" (SiLU gate, Llama), "geglu", "reglu",
    "glu" (sigmoid gate, Dauphin et al., 2017).
    Shapes: x (B, T, C) -> (B, T, C); hidden (B, T, d_mlp)
    """

    def __init__(
        self, d_model: int, d_mlp: int, variant: str = "swiglu", *, bias: bool = False
    ):
        super().__init__()
        if variant not in GATED:
            raise ValueError(
                f"unknown gated variant={variant!r}; choose one of {tuple(GATED)}"
            )
        self.variant = variant
        self.gate_proj = nn.Linear(d_model, d_mlp, bias=bias)
        self.up_proj = nn.Linear(d_model, d_mlp, bias=bias)
        self.down_proj = nn.Linear(d_mlp, d_model, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = ACTIVATIONS[GATED[self.variant]](self.gate_proj(x))  # (B, T, d_mlp)
        return self.down_proj(gate * self.up_proj(x))  # (B, T, C)


def dead_units(pre: torch.Tensor) -> torch.Tensor:
    """True for each hidden unit whose pre-activation is <= 0 on every token.

    Such a unit's ReLU gives 0 there and passes no gradient to its up_proj row,
    so on these inputs it is dead: it neither writes nor learns.
    Shapes: pre (..., d_mlp), e.g. (B, T, d_mlp) or (N, d_mlp) -> (d_mlp,) bool
    Example: dead_units(torch.tensor([[1., 0.], [-2., 0.]])) -> [False, True]
    """
    if pre.dim() < 2:
        raise ValueError(
            f"pre has shape {tuple(pre.shape)}: need (..., d_mlp) with at least "
            "one token dimension"
        )
    return (pre <= 0).flatten(0, -2).all(0)  # (d_mlp,)


def make_mlp(kind: str, d_model: int, d_mlp: int, *, bias: bool = True) -> nn.Module:
    """The MLP named by ``kind`` (GPTConfig.mlp): a plain activation or a GLU."""
    if kind in PLAIN:
        return MLP(d_model, d_mlp, kind, bias=bias)
    if kind in GATED:
        return GatedMLP(d_model, d_mlp, kind, bias=bias)
    raise ValueError(f"unknown mlp={kind!r}; choose one of {MLPS}")
