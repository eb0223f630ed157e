"""labkit.dpo: the loss of the paper, by hand and in closed form; sequence
log-probs over the answer only; DPO through labkit.train."""

import math

import pytest
import torch
import torch.nn.functional as F
from chat_helpers import TOK
from chat_helpers import tiny_chat_model as tiny_model

from labkit.chat import ChatTooLong
from labkit.dpo import (
    DPOData,
    check_reference,
    dpo_loss,
    dpo_metrics,
    dpo_objective,
    pair_logprobs,
    sampled_kl,
    sequence_logprobs,
)
from labkit.instruct import make_examples, make_pairs
from labkit.sft import IGNORE_INDEX
from labkit.train import TrainConfig, train


def test_sequence_logprob_sums_the_answer_tokens_of_a_two_token_toy():
    # vocabulary of 2, two positions; position 0 is the prompt (ignored)
    logits = torch.log(torch.tensor([[[0.5, 0.5], [0.2, 0.8]]]))  # (1, 2, 2)
    y = torch.tensor([[IGNORE_INDEX, 1]])
    torch.testing.assert_close(
        sequence_logprobs(logits, y), torch.log(torch.tensor([0.8]))
    )
    y_both = torch.tensor([[0, 1]])
    expected = math.log(0.5) + math.log(0.8)
    assert sequence_logprobs(logits, y_both).item() == pytest.approx(expected)


def test_dpo_loss_equals_a_value_computed_by_hand():
    # two-token answers: policy and reference probabilities written out
    pi_w = torch.tensor([math.log(0.6 * 0.5)])  # chosen: 0.6 then 0.5
    pi_l = torch.tensor([math.log(0.2 * 0.5)])
    ref_w = torch.tensor([math.log(0.4 * 0.5)])
    ref_l = torch.tensor([math.log(0.4 * 0.5)])
    beta = 0.5
    # margin = beta * (log(0.3/0.2) - log(0.1/0.2)) = 0.5 * log(3)
    by_hand = -math.log(1 / (1 + math.exp(-0.5 * math.log(3))))
    assert by_hand == pytest.approx(math.log(1 + 3**-0.5))
    assert dpo_loss(pi_w, pi_l, ref_w, ref_l, beta).item() == pytest.approx(by_hand)
    # swapped signs of the log-ratios, or no beta, give other numbers
    assert dpo_loss(pi_l, pi_w, ref_l, ref_w, beta).item() != pytest.approx(by_hand)
    assert dpo_loss(pi_w, pi_l, ref_w, ref_l, 1.0).item() != pytest.approx(by_hand)


def test_gradient_matches_the_closed_form():
    # d loss / d log pi(y_w) = -beta * sigmoid(-margin), and + for y_l
    gen = torch.Generator().manual_seed(0)
    pi_w, pi_l, ref_w, ref_l = (torch.randn(5, generator=gen) for _ in range(4))
    pi_w.requires_grad_()
    pi_l.requires_grad_()
    beta = 0.3
    dpo_loss(pi_w, pi_l, ref_w, ref_l, beta).backward()
    margin = beta * ((pi_w - ref_w) - (pi_l - ref_l)).detach()
    closed = beta * torch.sigmoid(-margin) / 5  # mean over 5 pairs
    torch.testing.assert_close(pi_w.grad, -closed)
    torch.testing.assert_close(pi_l.grad, closed)


def test_policy_equal_to_reference_gives_log_2():
    gen = torch.Generator().manual_seed(1)
    pi_w, pi_l = torch.randn(7, generator=gen), torch.randn(7, generator=gen)
    for beta in (0.01, 0.1, 5.0):
        loss = dpo_loss(pi_w, pi_l, pi_w.clone(), pi_l.clone(), beta)
        assert loss.item() == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="beta=0"):
        dpo_loss(pi_w, pi_l, pi_w, pi_l, 0)


def pairs_data(n_train=16, n_val=8):
    pairs = {
        "train": make_pairs(make_examples("train", n_train)),
        "val": make_pairs(make_examples("val", n_val)),
    }
    return pairs, DPOData(pairs, TOK, 128)


def test_batches_hold_each_pair_as_neighbouring_rows_with_answers_only():
    pairs, data = pairs_data()
    x, y = data.batch("train", [0, 3])
    assert x.shape[0] == 4
    for row, (p, answer) in enumerate(
        [
            (pairs["train"][0], "c"),
            (pairs["train"][0], "r"),
            (pairs["train"][3], "c"),
            (pairs["train"][3], "r"),
        ]  # fmt: skip
    ):
        text = TOK.decode(y[row][y[row] != IGNORE_INDEX].tolist())
        assert text == (p.chosen if answer == "c" else p.rejected) + "<|end|>"
    gen = torch.Generator().manual_seed(0)
    assert data.get_batch("train", 3, 128, gen)[0].shape[0] == 6


def test_metrics_of_the_reference_itself_are_neutral():
    _, data = pairs_data()
    ref = tiny_model().eval()
    x, y = data.batch("val", list(range(8)))
    m = dpo_metrics(ref, ref, x, y, beta=0.1)
    assert m.loss == pytest.approx(math.log(2))
    assert m.margin == 0 and m.reward_accuracy == 0 and m.chosen_reward == 0
    chosen, _ = pair_logprobs(ref, x, y)
    assert m.chosen_logp == pytest.approx(chosen.mean().item(), abs=1e-5)
    assert sampled_kl(ref, ref, TOK, make_examples("val", 3), 2) == 0


def test_a_reference_of_another_shape_is_refused():
    with pytest.raises(ValueError, match="another shape.*d_model|tok_emb"):
        check_reference(tiny_model(), tiny_model(d_model=16))
    _, data = pairs_data()
    cfg = TrainConfig(steps=2, batch_size=2, warmup_steps=0, eval_every=2,
                      eval_batches=1, device="cpu", progress=False,
                      sample_prompts=())  # fmt: skip
    with pytest.raises(ValueError, match="another shape"):
        train(
            tiny_model(), data, cfg, loss_fn=dpo_objective(tiny_model(d_model=16), 0.1)
        )


def test_identical_answers_and_long_prompts_are_refused():
    ex = make_examples("train", 1)[0]
    from labkit.instruct import PreferencePair

    with pytest.raises(ValueError, match="same answer"):
        PreferencePair(ex, ex.answer, ex.answer, "grammar")
    pair = make_pairs([ex])
    with pytest.raises(ChatTooLong, match="context_len=41"):
        DPOData({"train": pair, "val": make_pairs(make_examples("val", 1))}, TOK, 40)


def test_dpo_through_the_loop_raises_the_margin_and_leaves_the_reference():
    _, data = pairs_data()
    ref = tiny_model(3)
    policy = tiny_model(3)
    before = {k: v.clone() for k, v in ref.state_dict().items()}
    x, y = data.batch("train", list(range(16)))
    cfg = TrainConfig(steps=25, batch_size=8, lr=3e-3, min_lr=3e-4, warmup_steps=2,
                      eval_every=25, eval_batches=1, device="cpu", progress=False,
                      sample_prompts=(), weight_decay=0.0)  # fmt: skip
    result = train(policy, data, cfg, loss_fn=dpo_objective(ref, beta=0.5))
    m = dpo_metrics(policy, ref, x, y, beta=0.5)
    assert m.margin > 0.5 and m.reward_accuracy > 0.9 and m.loss < math.log(2)
    assert "val_loss" in result.evals[-1]
    torch.testing.assert_close(ref.state_dict(), before)  # frozen
    # the loss the loop used is the DPO loss of the paper
    pi_w, pi_l = pair_logprobs(policy, x, y)
    ref_w, ref_l = pair_logprobs(ref, x, y)
    margin = 0.5 * ((pi_w - ref_w) - (pi_l - ref_l))
    torch.testing.assert_close(
        dpo_objective(ref, 0.5)(policy, x, y), -F.logsigmoid(margin).mean()
    )
