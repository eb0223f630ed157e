"""labkit.mlp: activations against torch, gated variants written out by hand."""

import pytest
import torch
import torch.nn.functional as F

from labkit.mlp import ACTIVATIONS, MLP, MLPS, GatedMLP, make_mlp


def test_gelu_tanh_mlp_matches_hand_formula(seed):
    mlp = MLP(8, 32, "gelu_tanh")
    x = torch.randn(2, 3, 8)
    h = x @ mlp.up_proj.weight.T + mlp.up_proj.bias
    c = (2 / torch.pi) ** 0.5
    h = 0.5 * h * (1 + torch.tanh(c * (h + 0.044715 * h**3)))  # GPT-2's gelu_new
    expected = h @ mlp.down_proj.weight.T + mlp.down_proj.bias
    torch.testing.assert_close(mlp(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("act,fn", [("gelu", F.gelu), ("relu", F.relu)])
def test_plain_mlp_uses_its_activation(seed, act, fn):
    mlp = MLP(8, 16, act)
    x = torch.randn(4, 8)
    torch.testing.assert_close(mlp(x), mlp.down_proj(fn(mlp.up_proj(x))))


@pytest.mark.parametrize(
    "variant,gate",
    [("swiglu", F.silu), ("geglu", F.gelu), ("reglu", F.relu), ("glu", torch.sigmoid)],
)
def test_gated_mlp_multiplies_gate_and_up(seed, variant, gate):
    mlp = GatedMLP(8, 16, variant)
    x = torch.randn(2, 5, 8)
    g, u = x @ mlp.gate_proj.weight.T, x @ mlp.up_proj.weight.T
    torch.testing.assert_close(mlp(x), (gate(g) * u) @ mlp.down_proj.weight.T)


def test_swiglu_has_three_projections_without_bias():
    mlp = make_mlp("swiglu", 8, 16, bias=False)
    assert sum(p.numel() for p in mlp.parameters()) == 3 * 8 * 16


# each activation written out from its definition, independent of torch's
REFERENCE = {
    "gelu": lambda x: 0.5 * x * (1 + torch.erf(x / 2**0.5)),
    "gelu_tanh": lambda x: (
        0.5 * x * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (x + 0.044715 * x**3)))
    ),
    "relu": lambda x: x.clamp_min(0),
    "silu": lambda x: x / (1 + torch.exp(-x)),
    "sigmoid": lambda x: 1 / (1 + torch.exp(-x)),
}
GATES = {"swiglu": "silu", "geglu": "gelu", "reglu": "relu", "glu": "sigmoid"}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_activations_match_their_definitions(name):
    x = torch.linspace(-6, 6, 1001)
    torch.testing.assert_close(ACTIVATIONS[name](x), REFERENCE[name](x))


@pytest.mark.parametrize("kind", MLPS)
def test_every_mlp_kind_computes_its_formula(seed, kind):
    mlp = make_mlp(kind, 8, 12)
    x = torch.randn(2, 3, 8)  # (B, T, C)
    up = x @ mlp.up_proj.weight.T + mlp.up_proj.bias  # (B, T, d_mlp)
    if kind in GATES:  # published names: Shazeer (2020), Dauphin et al. (2017)
        gate = x @ mlp.gate_proj.weight.T + mlp.gate_proj.bias
        hidden = REFERENCE[GATES[kind]](gate) * up
    else:
        hidden = REFERENCE[kind](up)
    expected = hidden @ mlp.down_proj.weight.T + mlp.down_proj.bias  # (B, T, C)
    assert mlp(x).shape == (2, 3, 8)
    torch.testing.assert_close(mlp(x), expected, rtol=1e-5, atol=1e-6)


def test_unknown_mlp_names_the_choices():
    with pytest.raises(ValueError, match="mlp='tanh'.*swiglu"):
        make_mlp("tanh", 8, 16)
    with pytest.raises(ValueError, match="activation='swiglu'"):
        MLP(8, 16, "swiglu")
    with pytest.raises(ValueError, match="variant='gelu'"):
        GatedMLP(8, 16, "gelu")


def test_dead_units_hand_derived():
    from labkit.mlp import dead_units

    pre = torch.tensor([[1.0, 0.0, -1.0], [-2.0, 0.0, 3.0]])  # (N=2, d_mlp=3)
    # unit 0 fires on token 0, unit 1 is exactly 0 (ReLU gives 0), unit 2 fires
    assert dead_units(pre).tolist() == [False, True, False]
    assert dead_units(pre.view(1, 2, 3)).tolist() == [False, True, False]


def test_dead_units_pool_every_leading_dimension(seed):
    from labkit.mlp import dead_units

    pre = torch.randn(3, 5, 8)  # (B, T, d_mlp)
    pre[..., 2] = -pre[..., 2].abs()  # unit 2 negative on every token
    pre[1, 4, 5] = -1.0
    assert dead_units(pre).nonzero().flatten().tolist() == [2]


def test_dead_relu_unit_gets_no_gradient(seed):
    from labkit.mlp import dead_units

    mlp = MLP(4, 6, "relu")
    with torch.no_grad():
        mlp.up_proj.bias[3] = -100.0  # unit 3 can never switch on
    x = torch.randn(10, 4)
    pre = mlp.up_proj(x)
    assert dead_units(pre)[3]
    mlp(x).square().sum().backward()
    assert (mlp.up_proj.weight.grad[3] == 0).all()
    assert (mlp.up_proj.weight.grad.abs().sum(1) > 0).sum() >= 1


def test_dead_units_refuses_a_vector():
    from labkit.mlp import dead_units

    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        dead_units(torch.zeros(3))
