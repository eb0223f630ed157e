"""The residual-step check accepts correct answers and rejects plausible wrong
ones: the norm in the wrong place, the stream normalised, x changed in place."""

import dataclasses

import torch

from labkit.exercises import norms
from labkit.exercises.residual import (
    _residual_cases,
    _residual_step,
    check_residual_step,
)
from labkit.model import Block, GPTConfig


def test_the_check_is_still_importable_from_the_norms_module():
    assert norms.check_residual_step is check_residual_step


def test_a_correct_residual_step_passes_and_a_stub_is_not_done():
    def step(x, sublayer, norm, prenorm):
        return x + sublayer(norm(x)) if prenorm else norm(x + sublayer(x))

    assert check_residual_step(step)
    assert check_residual_step(lambda *args: None).status == "not done"


def test_residual_step_with_the_norm_on_the_output_is_caught():
    def norm_after(x, sublayer, norm, prenorm):
        return x + norm(sublayer(x)) if prenorm else norm(x + sublayer(x))

    assert check_residual_step(norm_after).status == "failed"


def test_residual_step_that_normalises_the_stream_itself_is_caught():
    def stream_normalised(x, sublayer, norm, prenorm):
        if prenorm:
            h = norm(x)
            return h + sublayer(h)  # the skip carries norm(x), not x
        return norm(x + sublayer(x))

    result = check_residual_step(stream_normalised)
    assert result.status == "failed" and "untouched" in result.failed_case.hint


def test_residual_step_with_placements_swapped_or_no_norm_is_caught():
    def swapped(x, sublayer, norm, prenorm):
        return norm(x + sublayer(x)) if prenorm else x + sublayer(norm(x))

    assert check_residual_step(swapped).failed_case.args[3] is True

    def post_without_norm(x, sublayer, norm, prenorm):
        return x + sublayer(norm(x)) if prenorm else x + sublayer(x)

    result = check_residual_step(post_without_norm)
    assert result.status == "failed" and result.failed_case.args[3] is False


def test_the_residual_cases_have_norms_that_change_their_input():
    for case in _residual_cases():
        x, _, norm, _ = case.args
        assert not torch.allclose(norm(x), x, atol=1e-2), case.label


def test_two_reference_steps_are_labkits_block_pre_and_post_norm(seed):
    cfg = GPTConfig(vocab_size=16, context_len=8, n_layers=1, n_heads=2, d_model=8)
    x = torch.randn(2, 5, 8) * 3 + 1
    pos = torch.arange(5)
    for prenorm in (True, False):
        block = Block(dataclasses.replace(cfg, prenorm=prenorm))
        with torch.no_grad():
            for p in block.parameters():
                p.normal_(0, 0.5)

        def attn(h, block=block):
            return block.attn(h, positions=pos)[0]

        with torch.no_grad():
            h = _residual_step(x, attn, block.norm_1, prenorm)
            ours = _residual_step(h, block.mlp, block.norm_2, prenorm)
            torch.testing.assert_close(block(x, positions=pos), ours)
            other = _residual_step(x, attn, block.norm_1, not prenorm)
            other = _residual_step(other, block.mlp, block.norm_2, not prenorm)
            assert not torch.allclose(block(x, positions=pos), other, atol=1e-3)


def test_residual_step_that_adds_in_place_is_caught():
    def in_place(x, sublayer, norm, prenorm):
        if prenorm:
            x += sublayer(norm(x))  # changes the caller's tensor
            return x
        x += sublayer(x)
        return norm(x)

    result = check_residual_step(in_place)
    assert result.status == "failed"
    assert "in-place" in result.failed_case.hint
    assert result.failed_case.args[0].requires_grad


def test_in_place_on_a_copy_passes():
    def on_a_copy(x, sublayer, norm, prenorm):
        h = x.clone()
        h += sublayer(norm(x)) if prenorm else sublayer(x)
        return h if prenorm else norm(h)

    assert check_residual_step(on_a_copy)


def test_the_reference_step_is_refused():
    assert "labkit's own function" in check_residual_step(_residual_step).report
