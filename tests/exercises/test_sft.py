"""The instruction-tuning checks pass correct answers and reject plausible
wrong ones."""

import torch

from labkit.exercises.sft import check_masked_loss, check_sft_targets
from labkit.sft import IGNORE_INDEX, masked_lm_loss, sft_pair


def targets(ids, mask):
    if len(ids) < 2:
        raise ValueError("need two tokens")
    ids = torch.tensor(ids)
    y = ids[1:].clone()
    y[~torch.tensor(mask[1:])] = IGNORE_INDEX
    return ids[:-1], y


def test_a_correct_sft_targets_passes_and_the_stub_is_not_done():
    assert check_sft_targets(targets)
    assert check_sft_targets(lambda ids, mask: None).status == "not done"
    assert "labkit's own function" in check_sft_targets(sft_pair).report


def test_sft_targets_with_the_mask_off_by_one_is_caught():
    def off_by_one(ids, mask):  # the mask of the *input* token, mask[:-1]
        if len(ids) < 2:
            raise ValueError("need two tokens")
        ids = torch.tensor(ids)
        y = ids[1:].clone()
        y[~torch.tensor(mask[:-1])] = IGNORE_INDEX
        return ids[:-1], y

    result = check_sft_targets(off_by_one)
    assert result.status == "failed" and "mask[1:]" in result.failed_case.hint


def test_sft_targets_without_masking_or_without_shift_are_caught():
    def unmasked(ids, mask):
        if len(ids) < 2:
            raise ValueError("need two tokens")
        return torch.tensor(ids[:-1]), torch.tensor(ids[1:])

    assert check_sft_targets(unmasked).status == "failed"

    def unshifted(ids, mask):
        if len(ids) < 2:
            raise ValueError("need two tokens")
        y = torch.tensor(ids)
        y[~torch.tensor(mask)] = IGNORE_INDEX
        return torch.tensor(ids), y

    assert check_sft_targets(unshifted).status == "failed"

    def accepts_one_token(ids, mask):
        return torch.tensor(ids[:-1]), torch.tensor(ids[1:])

    assert check_sft_targets(accepts_one_token).status == "failed"


def loss(logits, y):
    keep = y != IGNORE_INDEX
    if not keep.any():
        raise ValueError("no answer token")
    logp = logits.log_softmax(-1).gather(-1, y.clamp(min=0)[..., None])[..., 0]
    return -logp[keep].mean()


def test_a_correct_masked_loss_passes_and_labkits_is_refused():
    assert check_masked_loss(loss)
    assert check_masked_loss(lambda logits, y: None).status == "not done"
    assert "labkit's own function" in check_masked_loss(masked_lm_loss).report

    def with_cross_entropy(logits, y):
        import torch.nn.functional as F

        return F.cross_entropy(logits.flatten(0, 1), y.flatten())

    assert "cross_entropy" in check_masked_loss(with_cross_entropy).report


def test_a_loss_averaged_over_all_positions_is_caught():
    def over_all_positions(logits, y):
        keep = y != IGNORE_INDEX
        if not keep.any():
            raise ValueError("no answer token")
        logp = logits.log_softmax(-1).gather(-1, y.clamp(min=0)[..., None])[..., 0]
        return -(logp * keep).sum() / y.numel()

    result = check_masked_loss(over_all_positions)
    assert result.status == "failed" and "-log 0.8" in result.failed_case.hint


def test_a_loss_averaged_row_by_row_is_caught():
    def row_means(logits, y):
        keep = y != IGNORE_INDEX
        if not keep.any():
            raise ValueError("no answer token")
        logp = logits.log_softmax(-1).gather(-1, y.clamp(min=0)[..., None])[..., 0]
        per_row = -(logp * keep).sum(1) / keep.sum(1).clamp(min=1)
        return per_row.mean()

    result = check_masked_loss(row_means)
    assert result.status == "failed" and "row by row" in result.failed_case.hint


def test_a_loss_through_log_of_softmax_or_returning_nan_is_caught():
    def log_of_softmax(logits, y):
        keep = y != IGNORE_INDEX
        if not keep.any():
            raise ValueError("no answer token")
        p = logits.softmax(-1).gather(-1, y.clamp(min=0)[..., None])[..., 0]
        return -p.log()[keep].mean()

    result = check_masked_loss(log_of_softmax)
    assert result.status == "failed" and "log_softmax" in result.failed_case.hint

    def nan_when_empty(logits, y):
        keep = y != IGNORE_INDEX
        logp = logits.log_softmax(-1).gather(-1, y.clamp(min=0)[..., None])[..., 0]
        return -logp[keep].mean()

    result = check_masked_loss(nan_when_empty)
    assert result.status == "failed" and "nan" in result.failed_case.hint
