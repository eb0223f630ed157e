"""labkit.parity: unit-scale random weights and the relative error."""

import pytest
import torch
from torch import nn

from labkit.model import GPT, PRESETS, trace
from labkit.parity import PARITY_TOL, logits_relative_error, relative_error, unit_scale_


def test_relative_error_hand_derived():
    ours = torch.tensor([1.0, -2.0, 3.0])
    reference = torch.tensor([1.0, -4.0, 3.5])
    assert relative_error(ours, reference) == 2.0 / 4.0
    assert relative_error(reference, reference) == 0.0
    # the same absolute difference is small next to large logits
    assert relative_error(ours * 100, reference * 100) == pytest.approx(0.5)


def test_relative_error_refuses_bad_input():
    with pytest.raises(ValueError, match=r"ours \(2,\), reference \(3,\)"):
        relative_error(torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match="all zeros"):
        relative_error(torch.ones(3), torch.zeros(3))


def test_unit_scale_draws_each_kind_of_parameter():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(400, 300), nn.LayerNorm(300), nn.Linear(300, 2))
    unit_scale_(model, seed=1)
    first, norm = model[0], model[1]
    assert abs(first.weight.std().item() - 400**-0.5) < 0.002
    assert abs(model[2].weight.std().item() - 300**-0.5) < 0.01
    assert abs(first.bias.std().item() - 0.1) < 0.02
    assert abs(norm.weight.mean().item() - 1.0) < 0.03
    assert abs(norm.weight.std().item() - 0.1) < 0.02
    assert abs(norm.bias.mean().item()) < 0.03


def test_unit_scale_same_layout_same_weights_and_tied_drawn_once():
    a = unit_scale_(GPT(PRESETS["tiny"]), seed=3)
    b = unit_scale_(GPT(PRESETS["tiny"]), seed=3)
    for (name, pa), pb in zip(
        a.state_dict().items(), b.state_dict().values(), strict=True
    ):
        assert torch.equal(pa, pb), name
    assert a.lm_head.weight is a.tok_emb.weight
    c = unit_scale_(GPT(PRESETS["tiny"]), seed=4)
    assert not torch.equal(a.tok_emb.weight, c.tok_emb.weight)


def test_unit_scale_keeps_activations_near_unit_size():
    model = unit_scale_(GPT(PRESETS["small"]), seed=0).eval()
    idx = torch.randint(0, 256, (2, 64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), trace(model) as acts:
        logits = model(idx)
    for i in range(model.cfg.n_layers):
        for part in ("attn_out", "mlp_out"):
            assert 0.3 < acts[f"blocks.{i}.{part}"].std() < 3, (i, part)
    assert 0.3 < logits.std() < 3


def test_unit_scale_names_a_module_it_does_not_know():
    with pytest.raises(ValueError, match=r"Bilinear\.weight of shape \(2, 3, 4\)"):
        unit_scale_(nn.Bilinear(3, 4, 2))

    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.table = nn.Parameter(torch.zeros(3, 5))

    with pytest.raises(ValueError, match=r"fan-in of Odd\.table of shape \(3, 5\)"):
        unit_scale_(Odd())


def test_logits_relative_error_of_a_copy_is_tiny_and_of_another_model_large():
    a = unit_scale_(GPT(PRESETS["tiny"]), seed=0).eval()
    b = unit_scale_(GPT(PRESETS["tiny"]), seed=0).eval()
    idx = torch.randint(0, 256, (1, 16))
    assert logits_relative_error(a, b, idx) < PARITY_TOL
    c = unit_scale_(GPT(PRESETS["tiny"]), seed=1).eval()
    assert logits_relative_error(a, c, idx) > 0.1
