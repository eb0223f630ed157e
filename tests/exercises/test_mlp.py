"""The SwiGLU and dead-unit checks accept correct answers and reject plausible
wrong ones (the typical bug of each exercise)."""

import torch
import torch.nn.functional as F

from labkit.exercises.mlp import check_block, check_dead_units, check_swiglu
from labkit.mlp import dead_units


def written_swiglu(x, w_gate, w_up, w_down):
    gate = x @ w_gate.T
    return (gate * torch.sigmoid(gate) * (x @ w_up.T)) @ w_down.T


def written_dead_units(pre):
    if pre.dim() < 2:
        raise ValueError("need (..., d_mlp)")
    return (pre <= 0).reshape(-1, pre.shape[-1]).all(0)


def test_correct_answers_pass_and_stubs_are_not_done():
    assert check_swiglu(written_swiglu)
    assert check_dead_units(written_dead_units)
    assert check_swiglu(lambda x, g, u, d: None).status == "not done"

    def stub(pre):
        raise NotImplementedError

    assert check_dead_units(stub).status == "not done"


def test_labkit_own_dead_units_is_refused():
    result = check_dead_units(dead_units)
    assert not result and "labkit's own function" in result.report


def test_swiglu_with_sigmoid_instead_of_silu_is_caught():
    def glu(x, w_gate, w_up, w_down):  # GLU's gate, not SwiGLU's
        return (torch.sigmoid(x @ w_gate.T) * (x @ w_up.T)) @ w_down.T

    result = check_swiglu(glu)
    assert result.status == "failed" and "3.52" in result.failed_case.hint


def test_swiglu_with_the_activation_on_the_up_projection_is_caught():
    def swapped(x, w_gate, w_up, w_down):
        return ((x @ w_gate.T) * F.silu(x @ w_up.T)) @ w_down.T

    result = check_swiglu(swapped)
    assert result.status == "failed" and "gate projection only" in result.report


def test_swiglu_with_untransposed_weights_is_caught():
    def untransposed(x, w_gate, w_up, w_down):
        return (F.silu(x @ w_gate) * (x @ w_up)) @ w_down

    result = check_swiglu(untransposed)
    assert result.status == "failed" and "out_features" in result.report


def test_dead_units_with_strict_inequality_is_caught():
    def strict(pre):
        if pre.dim() < 2:
            raise ValueError("need (..., d_mlp)")
        return (pre < 0).reshape(-1, pre.shape[-1]).all(0)

    result = check_dead_units(strict)
    assert result.status == "failed" and "<= 0, not < 0" in result.report


def test_dead_units_from_the_mean_is_caught():
    def by_mean(pre):
        if pre.dim() < 2:
            raise ValueError("need (..., d_mlp)")
        return pre.reshape(-1, pre.shape[-1]).mean(0) <= 0

    result = check_dead_units(by_mean)
    assert result.status == "failed" and "not the average" in result.report


def test_dead_units_over_the_first_dimension_only_is_caught():
    def first_dim(pre):
        if pre.dim() < 2:
            raise ValueError("need (..., d_mlp)")
        return (pre <= 0).all(0)  # (T, d_mlp) for a (B, T, d_mlp) input

    result = check_dead_units(first_dim)
    assert result.status == "failed" and "(B, T, d_mlp)" in result.report


def test_dead_units_that_accepts_a_vector_is_caught():
    def no_check(pre):
        return (pre <= 0).reshape(-1, pre.shape[-1]).all(0)

    result = check_dead_units(no_check)
    assert result.status == "failed" and "ValueError" in result.report


def written_block(x, norm_1, attn, norm_2, mlp, parallel):
    h = norm_1(x)
    if parallel:
        return x + attn(h) + mlp(h)
    x = x + attn(h)
    return x + mlp(norm_2(x))


def test_correct_block_passes_and_stub_is_not_done():
    assert check_block(written_block)
    assert check_block(lambda *args: None).status == "not done"


def test_serial_block_whose_mlp_reads_the_input_is_caught():
    def mlp_reads_x(x, norm_1, attn, norm_2, mlp, parallel):
        h = norm_1(x)
        if parallel:
            return x + attn(h) + mlp(h)
        return x + attn(h) + mlp(norm_2(x))  # should read x + attn(h)

    result = check_block(mlp_reads_x)
    assert result.status == "failed" and "after attention" in result.report


def test_parallel_block_that_uses_norm_2_is_caught():
    def uses_norm_2(x, norm_1, attn, norm_2, mlp, parallel):
        if parallel:
            return x + attn(norm_1(x)) + mlp(norm_2(x))
        return written_block(x, norm_1, attn, norm_2, mlp, parallel)

    result = check_block(uses_norm_2)
    assert result.status == "failed" and "norm_2 is not used" in result.report


def test_block_without_the_residual_is_caught():
    def no_residual(x, norm_1, attn, norm_2, mlp, parallel):
        h = norm_1(x)
        if parallel:
            return attn(h) + mlp(h)
        return written_block(x, norm_1, attn, norm_2, mlp, parallel)

    assert check_block(no_residual).status == "failed"
