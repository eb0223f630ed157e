"""labkit.sft: the loss is taken on the answer tokens only, padding is inert,
and SFT runs through labkit.train unchanged."""

import pytest
import torch
import torch.nn.functional as F
from chat_helpers import TOK
from chat_helpers import tiny_chat_model as tiny_model

from labkit.chat import END, ChatTooLong, encode_chat
from labkit.instruct import make_examples, make_splits
from labkit.model import GPT, GPTConfig
from labkit.sft import (
    IGNORE_INDEX,
    SFTData,
    chat_messages,
    masked_lm_loss,
    pad_rows,
    sft_pair,
)
from labkit.train import TrainConfig, train
from labkit.train.loop import lm_loss


def test_targets_are_the_answer_and_its_end_only():
    ex = make_examples("train", 1)[0]
    ids, mask = encode_chat(chat_messages(ex), TOK)
    x, y = sft_pair(ids, mask)
    assert torch.equal(x, torch.tensor(ids[:-1]))
    kept = y[y != IGNORE_INDEX].tolist()
    assert TOK.decode(kept) == ex.answer + END
    assert (y[: len(ids) - len(kept) - 1] == IGNORE_INDEX).all()
    _, every = sft_pair(ids, mask, mask_prompt=False)
    assert torch.equal(every, torch.tensor(ids[1:]))


def test_masked_loss_equals_cross_entropy_on_the_answer_tokens_only():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, 11, generator=gen)
    y = torch.randint(0, 11, (3, 7), generator=gen)
    y[0, :5] = IGNORE_INDEX
    y[2, 3:] = IGNORE_INDEX
    keep = y != IGNORE_INDEX
    by_hand = F.cross_entropy(logits[keep], y[keep])
    torch.testing.assert_close(masked_lm_loss(logits, y), by_hand)
    torch.testing.assert_close(
        masked_lm_loss(logits, y), F.cross_entropy(logits.flatten(0, 1), y.flatten())
    )
    # a mean over every position (the plausible mistake) is another number
    every = F.cross_entropy(logits.flatten(0, 1), y.clamp(min=0).flatten())
    assert not torch.isclose(every, by_hand)
    with pytest.raises(ValueError, match="every target is IGNORE_INDEX"):
        masked_lm_loss(logits, torch.full_like(y, IGNORE_INDEX))


def test_only_answer_positions_pass_a_gradient_back():
    model = tiny_model()
    ex = make_examples("train", 1)[0]
    x, y = sft_pair(*encode_chat(chat_messages(ex), TOK))
    logits = model(x[None])
    # only positions whose target is an answer token pass a gradient back
    g = torch.autograd.grad(masked_lm_loss(logits, y[None]), logits)[0][0]
    assert (g[y == IGNORE_INDEX] == 0).all() and (g[y != IGNORE_INDEX] != 0).any()


def test_right_padding_leaves_the_real_tokens_logits_unchanged():
    model = tiny_model().eval()
    exs = make_examples("train", 6)
    rows = [sft_pair(*encode_chat(chat_messages(e), TOK)) for e in exs]
    x, y = pad_rows(rows, TOK.special_tokens[END])
    assert x.shape[1] == max(len(r[0]) for r in rows)
    with torch.no_grad():
        padded = model(x)
        for b, (xb, yb) in enumerate(rows):
            alone = model(xb[None])[0]
            torch.testing.assert_close(padded[b, : len(xb)], alone)
            assert (y[b, len(yb) :] == IGNORE_INDEX).all()
            torch.testing.assert_close(
                masked_lm_loss(padded[b : b + 1], y[b : b + 1]),
                masked_lm_loss(alone[None], yb[None]),
            )


def test_sft_data_batches_are_seeded_padded_and_checked():
    splits = make_splits({"train": 40, "val": 8})
    data = SFTData(splits, TOK, context_len=128)
    x1, y1 = data.get_batch("train", 5, 128, torch.Generator().manual_seed(1))
    x2, y2 = data.get_batch("train", 5, 128, torch.Generator().manual_seed(1))
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert x1.shape == y1.shape and x1.shape[0] == 5 and x1.shape[1] <= 128
    assert (y1 != IGNORE_INDEX).sum(1).min() >= 2  # an answer byte and <|end|>
    with pytest.raises(ValueError, match="share story seed"):
        SFTData({"train": splits["train"], "val": splits["train"][:2]}, TOK, 128)
    with pytest.raises(ChatTooLong, match="context_len=41"):
        SFTData(splits, TOK, context_len=40)
    with pytest.raises(ValueError, match="unknown split 'test'"):
        data.get_batch("test", 2, 128, torch.Generator())


def test_sft_trains_through_the_one_loop_and_learns_the_answers():
    splits = make_splits({"train": 12, "val": 6})
    data = SFTData(splits, TOK, context_len=128)
    model = tiny_model(1)
    cfg = TrainConfig(steps=30, batch_size=8, lr=1e-2, min_lr=1e-3, warmup_steps=2,
                      eval_every=30, eval_batches=2, device="cpu", progress=False,
                      sample_prompts=(), seed=0)  # fmt: skip
    x, y = data.get_batch("train", 8, 128, torch.Generator().manual_seed(5))
    before = lm_loss(model, x, y).item()
    torch.testing.assert_close(lm_loss(model, x, y), masked_lm_loss(model(x), y))
    result = train(model, data, cfg)
    assert result.step == 30
    assert lm_loss(model, x, y).item() < 0.5 * before
    # with a vocabulary the model lacks, the loop refuses before any step
    with pytest.raises(ValueError, match="vocab_size=256 is smaller"):
        small = GPT(GPTConfig(vocab_size=256, context_len=128, n_layers=1,
                              n_heads=2, d_model=32))  # fmt: skip
        train(small, data, cfg)


def test_rehearsal_adds_plain_story_windows_with_every_target(tmp_path):
    from labkit.data import prepare_tokens
    from labkit.storygen import generate as generate_stories

    stories = prepare_tokens(generate_stories(30_000, seed=2), TOK, tmp_path, seed=0)
    splits = make_splits({"train": 20, "val": 6})
    data = SFTData(splits, TOK, 128, stories=stories, story_rows=3, story_len=40)
    x, y = data.get_batch("train", 5, 128, torch.Generator().manual_seed(0))
    assert x.shape[0] == 8
    story_x, story_y = x[5:, :40], y[5:, :40]
    assert (story_y != IGNORE_INDEX).all() and (y[5:, 40:] == IGNORE_INDEX).all()
    assert torch.equal(story_x[:, 1:], story_y[:, :-1])  # shifted by one
    assert story_x.max() < 256  # plain bytes: no chat token
    assert (y[:5] != IGNORE_INDEX).sum() < 5 * 30  # answers only there
    with pytest.raises(ValueError, match="story_rows=2 needs stories"):
        SFTData(splits, TOK, 128, story_rows=2)
    with pytest.raises(ValueError, match="story_len=200 must be in 1..128"):
        SFTData(splits, TOK, 128, stories=stories, story_rows=1, story_len=200)
