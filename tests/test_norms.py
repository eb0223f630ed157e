"""labkit.norms against torch's own layers, with random (not default) weights."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.norms import (
    GroupNorm,
    LayerNorm,
    RMSNorm,
    batch_norm,
    layer_norm,
    make_norm,
    rms_norm,
)

TOL = dict(rtol=1e-5, atol=1e-5)


def randomize(module):
    with torch.no_grad():
        for p in module.parameters():
            p.normal_()
    return module


def test_layernorm_matches_torch_with_random_weights(seed):
    ours = randomize(LayerNorm(32, eps=1e-5))
    ref = torch.nn.LayerNorm(32, eps=1e-5)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(3, 7, 32) * 4 + 2
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)


def test_written_out_layer_norm_equals_module_values_and_gradients(seed):
    ln = randomize(LayerNorm(24))
    x = (torch.randn(4, 5, 24) * 3 + 1).requires_grad_()
    torch.testing.assert_close(layer_norm(x, ln.weight, ln.bias), ln(x), **TOL)
    g1 = torch.autograd.grad(layer_norm(x, ln.weight, ln.bias).square().sum(), x)
    g2 = torch.autograd.grad(ln(x).square().sum(), x)
    torch.testing.assert_close(g1, g2, **TOL)


def test_layer_norm_hand_derived():
    x = torch.tensor([[1.0, 3.0]])  # mean 2, variance 1
    out = layer_norm(x, torch.tensor([2.0, 2.0]), torch.tensor([0.5, 0.5]), eps=0.0)
    torch.testing.assert_close(out, torch.tensor([[-1.5, 2.5]]))


def test_layernorm_without_bias_matches_torch(seed):
    ours = randomize(LayerNorm(16, bias=False))
    ref = torch.nn.LayerNorm(16, bias=False)
    ref.load_state_dict(ours.state_dict())
    assert "bias" not in dict(ours.named_parameters())
    x = torch.randn(2, 5, 16)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)


def test_rmsnorm_matches_torch_with_random_weights(seed):
    ours = randomize(RMSNorm(32, eps=1e-6))
    ref = torch.nn.RMSNorm(32, eps=1e-6)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(3, 7, 32) * 3
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)


def test_rmsnorm_gradients_match_torch_rmsnorm(seed):
    ours = randomize(RMSNorm(32, eps=1e-6))
    ref = torch.nn.RMSNorm(32, eps=1e-6)
    ref.load_state_dict(ours.state_dict())
    x = (torch.randn(3, 7, 32) * 3 + 1).requires_grad_()
    g = torch.randn(3, 7, 32)
    ours_grads = torch.autograd.grad(ours(x), (x, ours.weight), g)
    ref_grads = torch.autograd.grad(ref(x), (x, ref.weight), g)
    torch.testing.assert_close(ours_grads, ref_grads, **TOL)


def test_rmsnorm_in_bfloat16_keeps_hf_order():
    norm = RMSNorm(8).to(torch.bfloat16)
    x = torch.randn(2, 8, dtype=torch.bfloat16)
    x32 = x.float()
    inv_rms = torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + 1e-6)
    expected = norm.weight * (x32 * inv_rms).to(torch.bfloat16)
    assert torch.equal(norm(x), expected)


def test_rmsnorm_hand_derived():
    norm = RMSNorm(2, eps=0.0)
    x = torch.tensor([[3.0, 4.0]])  # rms = sqrt((9 + 16) / 2) = 5 / sqrt(2)
    expected = x / (5 / 2**0.5)
    torch.testing.assert_close(norm(x), expected)


def test_written_out_rms_norm_matches_torch_and_the_module(seed):
    weight = torch.randn(16)
    x = torch.randn(3, 5, 16) * 2 + 1
    want = torch.nn.functional.rms_norm(x, (16,), weight, eps=1e-6)
    torch.testing.assert_close(rms_norm(x, weight, eps=1e-6), want, **TOL)
    module = RMSNorm(16)
    with torch.no_grad():
        module.weight.copy_(weight)
    assert torch.equal(module(x), rms_norm(x, weight))


def test_rms_norm_keeps_the_mean_that_layer_norm_removes():
    x = torch.tensor([[1.0, 2.0, 3.0, 6.0]])  # mean 3, mean square 12.5
    ones = torch.ones(4)
    torch.testing.assert_close(rms_norm(x, ones, eps=0.0), x / 12.5**0.5)
    assert rms_norm(x, ones).mean() > 0.8  # not centred
    # a shift changes RMSNorm's output, a positive scale does not
    assert not torch.allclose(rms_norm(x + 5, ones), rms_norm(x, ones))
    torch.testing.assert_close(rms_norm(7 * x, ones), rms_norm(x, ones))


def test_batch_norm_matches_torch_training_mode(seed):
    weight, bias = torch.randn(8), torch.randn(8)
    x = torch.randn(4, 6, 8) * 3 + 2  # (B, T, C)
    flat = x.reshape(-1, 8)  # torch's batch_norm wants (N, C)
    want = torch.nn.functional.batch_norm(
        flat, None, None, weight, bias, training=True, eps=1e-5
    ).reshape(x.shape)
    torch.testing.assert_close(batch_norm(x, weight, bias), want, **TOL)
    ref = torch.nn.BatchNorm1d(8)  # (B, C, T) layout, training mode
    with torch.no_grad():
        ref.weight.copy_(weight)
        ref.bias.copy_(bias)
    got = ref(x.transpose(1, 2)).transpose(1, 2)
    torch.testing.assert_close(batch_norm(x, weight, bias), got, **TOL)


def test_batch_norm_mixes_tokens_and_erases_a_lone_one():
    weight, bias = torch.ones(4), torch.full((4,), 0.5)
    x = torch.randn(2, 5, 4)
    later = x.clone()
    later[1, -1] += 3.0  # change the last token of the other sequence
    first = batch_norm(x, weight, bias)[0, 0]
    assert not torch.allclose(batch_norm(later, weight, bias)[0, 0], first)
    torch.testing.assert_close(  # LayerNorm: the first token is untouched
        layer_norm(later, weight, bias)[0, 0], layer_norm(x, weight, bias)[0, 0]
    )
    lone = torch.randn(1, 1, 4)  # one token: every feature is its own mean
    torch.testing.assert_close(batch_norm(lone, weight, bias), bias.expand(1, 1, 4))


def test_groupnorm_matches_torch_groupnorm(seed):
    ours = randomize(GroupNorm(4, 32))
    ref = torch.nn.GroupNorm(4, 32)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(6, 32)  # torch's GroupNorm wants (N, C, ...)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)


def test_groupnorm_with_one_group_is_layernorm(seed):
    x = torch.randn(2, 3, 8)
    torch.testing.assert_close(GroupNorm(1, 8)(x), LayerNorm(8)(x))


def test_groupnorm_rejects_indivisible_groups():
    with pytest.raises(ValueError, match="n_groups=3"):
        GroupNorm(3, 8)


def test_make_norm_builds_the_named_norm(seed):
    x = torch.randn(2, 3, 8) * 3 + 1
    rms = make_norm("rmsnorm", 8, eps=1e-6)  # x / rms(x), one gain, no bias
    want = x / (x.pow(2).mean(-1, keepdim=True) + 1e-6).sqrt()
    torch.testing.assert_close(rms(x), want, **TOL)
    assert sum(p.numel() for p in rms.parameters()) == 8
    ln = make_norm("layernorm", 8, bias=False, eps=1e-6)
    centred = x - x.mean(-1, keepdim=True)
    want = centred / (centred.pow(2).mean(-1, keepdim=True) + 1e-6).sqrt()
    torch.testing.assert_close(ln(x), want, **TOL)
    assert sum(p.numel() for p in make_norm("layernorm", 8).parameters()) == 16
    with pytest.raises(ValueError, match="batchnorm.*layernorm"):
        make_norm("batchnorm", 8)


@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=0, max_size=3), d=st.integers(1, 16))
def test_norms_keep_shape_and_layernorm_has_zero_mean(shape, d):
    x = torch.randn(*shape, d)
    y = LayerNorm(d)(x)
    assert y.shape == x.shape and RMSNorm(d)(x).shape == x.shape
    torch.testing.assert_close(y.mean(-1), torch.zeros(shape), atol=1e-5, rtol=0)
