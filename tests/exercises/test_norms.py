"""The LayerNorm and RMSNorm checks accept correct answers and reject plausible
wrong ones (the typical bug of each exercise)."""

import torch
import torch.nn.functional as F

from labkit.exercises.norms import _close, check_layer_norm, check_rms_norm
from labkit.norms import layer_norm, rms_norm


def written_layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def written_rms_norm(x, weight, eps):
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def test_correct_norms_pass_and_stubs_are_not_done():
    assert check_layer_norm(written_layer_norm)
    assert check_rms_norm(written_rms_norm)
    assert check_layer_norm(lambda x, w, b, eps: None).status == "not done"

    def stub(x, weight, eps):
        raise NotImplementedError

    assert check_rms_norm(stub).status == "not done"


def test_torch_var_and_rsqrt_written_differently_also_pass():
    def other_order(x, weight, bias, eps):
        centred = x - x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, unbiased=False, keepdim=True)
        return centred * torch.rsqrt(var + eps) * weight + bias

    assert check_layer_norm(other_order)


def test_labkit_and_torch_functions_are_refused():
    assert "labkit's own function" in check_layer_norm(layer_norm).report
    assert "labkit's own function" in check_rms_norm(rms_norm).report

    def by_torch(x, weight, bias, eps):
        return F.layer_norm(x, x.shape[-1:], weight, bias, eps)

    assert "uses '.layer_norm('" in check_layer_norm(by_torch).report


def test_layer_norm_with_unbiased_variance_is_caught():
    def unbiased(x, weight, bias, eps):
        mean = x.mean(-1, keepdim=True)
        return (x - mean) / torch.sqrt(x.var(-1, keepdim=True) + eps) * weight + bias

    result = check_layer_norm(unbiased)
    assert result.status == "failed" and "not C - 1" in result.failed_case.hint


def test_layer_norm_with_eps_outside_the_root_is_caught():
    def eps_outside(x, weight, bias, eps):
        mean = x.mean(-1, keepdim=True)
        std = ((x - mean) ** 2).mean(-1, keepdim=True).sqrt()
        return (x - mean) / (std + eps) * weight + bias

    result = check_layer_norm(eps_outside)
    assert result.status == "failed" and "eps" in result.failed_case.hint


def test_norms_that_ignore_the_eps_argument_are_caught():
    def fixed_eps(x, weight, bias, eps):
        return written_layer_norm(x, weight, bias, 1e-5)

    result = check_layer_norm(fixed_eps)
    assert result.status == "failed" and "eps you are given" in result.report

    def fixed_eps_rms(x, weight, eps):
        return written_rms_norm(x, weight, 1e-6)

    result = check_rms_norm(fixed_eps_rms)
    assert result.status == "failed" and "eps you are given" in result.report


def test_layer_norm_by_mean_of_squares_is_caught_at_a_large_mean():
    def mean_of_squares(x, weight, bias, eps):
        mean = x.mean(-1, keepdim=True)
        var = (x * x).mean(-1, keepdim=True) - mean * mean
        return (x - mean) / torch.sqrt(var + eps) * weight + bias

    result = check_layer_norm(mean_of_squares)
    assert result.status == "failed" and "E[x**2]" in result.failed_case.hint


def test_layer_norm_over_the_whole_tensor_is_caught():
    def whole_tensor(x, weight, bias, eps):
        return (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + eps) * weight + bias

    assert check_layer_norm(whole_tensor).status == "failed"


def test_rms_norm_that_centres_is_caught():
    def centred(x, weight, eps):
        return written_layer_norm(x, weight, torch.zeros_like(weight), eps)

    result = check_rms_norm(centred)
    assert result.status == "failed" and "not x - mean" in result.failed_case.hint


def test_rms_norm_by_the_vector_length_is_caught():
    def by_length(x, weight, eps):
        return x / torch.sqrt(x.pow(2).sum(-1, keepdim=True) + eps) * weight

    result = check_rms_norm(by_length)
    assert result.status == "failed" and "sqrt(C)" in result.failed_case.hint


def test_rms_norm_without_eps_is_caught_and_the_zero_vector_gives_nan():
    def no_eps(x, weight, eps):
        return x / x.pow(2).mean(-1, keepdim=True).sqrt() * weight

    assert check_rms_norm(no_eps).status == "failed"
    from labkit.exercises.norms import _rms_norm_cases

    zero = next(c for c in _rms_norm_cases() if "zeros" in c.label)
    assert "NaN" in _close(zero.expected, no_eps(*zero.args))
