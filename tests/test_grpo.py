"""labkit.grpo: group advantages, the k3 KL estimator against its
definition, the clipped objective's gradient against REINFORCE by hand, a
loop that learns to emit a rewarded token, and the errors for bad input."""

import json

import pytest
import torch
from chat_helpers import TOK
from chat_helpers import tiny_chat_model as tiny_model

from labkit.dpo import token_logprobs
from labkit.grpo import (
    GRPOConfig,
    Rollouts,
    Task,
    answer_logprobs,
    clipped_objective,
    group_advantages,
    grpo_update,
    k3_kl,
    qa_task,
    sample_groups,
    train_grpo,
)
from labkit.instruct import make_examples
from labkit.model import GPT, GPTConfig
from labkit.rewards import RewardError, exact_match
from labkit.sft import IGNORE_INDEX


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run several times faster on one thread of a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_group_with_equal_rewards_has_zero_advantages():
    rewards = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0],
                            [0.3, 0.3, 0.3, 0.3]])  # fmt: skip
    adv = group_advantages(rewards)
    assert torch.equal(adv, torch.zeros(3, 4)) and not adv.isnan().any()


def test_advantages_are_the_reward_against_the_group_by_hand():
    # rewards 1, 0, 0, 0: mean 1/4, population std sqrt(3)/4
    adv = group_advantages(torch.tensor([[1.0, 0.0, 0.0, 0.0], [2.0, 4.0, 4.0, 2.0]]))
    s3 = 3**0.5
    expected = torch.tensor([[3 / s3, -1 / s3, -1 / s3, -1 / s3], [-1, 1, 1, -1.0]])
    torch.testing.assert_close(adv, expected)


def test_a_group_of_one_is_an_error():
    with pytest.raises(ValueError, match="group_size=1.*no baseline"):
        GRPOConfig(group_size=1)
    with pytest.raises(ValueError, match="no baseline"):
        group_advantages(torch.tensor([[1.0], [0.0]]))


def test_k3_matches_its_definition_on_a_toy_distribution():
    p = torch.tensor([0.5, 0.25, 0.15, 0.1])  # the policy
    q = torch.tensor([0.25, 0.25, 0.25, 0.25])  # the reference
    kl = (p * (p / q).log()).sum()  # KL(p || q) by definition
    k3 = k3_kl(p.log(), q.log())  # at each symbol, as if sampled
    # by hand at symbol 0: d = log(0.25/0.5), exp(d) - d - 1 = 0.5 + log 2 - 1
    assert k3[0].item() == pytest.approx(0.5 + torch.log(torch.tensor(2.0)) - 1)
    assert (k3 >= 0).all()
    torch.testing.assert_close((p * k3).sum(), kl, rtol=0, atol=1e-6)  # E_p[k3]
    draws = torch.multinomial(
        p, 200_000, True, generator=torch.Generator().manual_seed(0)
    )
    sampled = k3[draws]
    assert abs(sampled.mean() - kl) < 4 * sampled.std() / 200_000**0.5


def rows(model, n=6, seed=0):
    """Random prompt + answer rows of a tiny chat model: targets only on
    the last few tokens of each row (answers of different lengths)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 12), generator=gen)
    y = torch.randint(0, 256, (n, 12), generator=gen)
    for i in range(n):
        y[i, : 12 - (i % 3 + 2)] = IGNORE_INDEX  # answers of 2, 3, 4 tokens
    return x, y


def test_gradient_at_ratio_one_equals_reinforce_with_the_group_baseline():
    torch.set_default_dtype(torch.float64)
    try:
        policy = tiny_model(seed=1)
        x, y = rows(policy)
        rewards = torch.tensor([[1.0, 0.0, 0.0], [0.5, 1.0, 0.0]])  # P=2, k=3
        adv = group_advantages(rewards).flatten()
        mask = (y != IGNORE_INDEX).double()
        logp = token_logprobs(policy(x), y)
        loss = clipped_objective(logp, logp.detach(), logp.detach(), adv, mask,
                                 clip_eps=0.2, beta=0.04)  # fmt: skip
        ours = torch.autograd.grad(loss, list(policy.parameters()))
        # REINFORCE by hand: -mean_i A_i * mean_t log pi(t), A_i = (r_i - mean)/std
        r = rewards
        baseline = r.mean(-1, keepdim=True)
        std = ((r - baseline) ** 2).mean(-1, keepdim=True).sqrt()
        a = ((r - baseline) / std).flatten()
        logp2 = token_logprobs(policy(x), y)
        per_answer = (logp2 * mask).sum(-1) / mask.sum(-1)
        hand = -(a * per_answer).mean()
        theirs = torch.autograd.grad(hand, list(policy.parameters()))
        for g_ours, g_hand in zip(ours, theirs, strict=True):
            torch.testing.assert_close(g_ours, g_hand, rtol=0, atol=1e-9)
        assert max(g.abs().max() for g in theirs) > 1e-3  # not a zero test
    finally:
        torch.set_default_dtype(torch.float32)


def test_the_clip_stops_the_gradient_past_one_plus_eps():
    logp = torch.log(torch.tensor([[0.6, 0.3]])).requires_grad_()
    old = torch.log(torch.tensor([[0.4, 0.3]]))  # ratio 1.5 on the first token
    mask = torch.ones(1, 2)
    loss = clipped_objective(logp, old, logp.detach(), torch.tensor([1.0]), mask,
                             clip_eps=0.2, beta=0.0)  # fmt: skip
    loss.backward()
    assert logp.grad[0, 0] == 0 and logp.grad[0, 1] != 0  # clipped, not clipped
    logp.grad = None
    # a negative advantage: the ratio above 1 + eps is *not* clipped (min)
    clipped_objective(logp, old, logp.detach(), torch.tensor([-1.0]), mask,
                      clip_eps=0.2, beta=0.0).backward()  # fmt: skip
    assert logp.grad[0, 0] != 0


def test_a_reward_for_a_fixed_token_drives_a_tiny_model_to_emit_it():
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=8, context_len=16, n_layers=1, n_heads=2, d_model=32)
    policy, reference = GPT(cfg), GPT(cfg)
    reference.load_state_dict(policy.state_dict())
    task = Task(
        items=list(range(8)),
        prompt=lambda i: [i],
        decode=lambda ids: ids,
        reward=lambda item, ids: sum(t == 3 for t in ids) / len(ids),
    )
    grpo = GRPOConfig(steps=24, prompts_per_step=2, group_size=8, lr=1e-2,
                      beta=0.0, max_new_tokens=4)  # fmt: skip
    history = train_grpo(policy, reference, task, grpo).history
    assert history[0]["reward"] < 0.3  # about 1/8 at the start
    assert min(h["reward"] for h in history[-3:]) > 0.9
    assert history[-1]["kl"] > history[0]["kl"]


def test_run_folder_and_metrics_follow_labkit_train(tmp_path):
    policy, reference = tiny_model(seed=2), tiny_model(seed=2)
    task = qa_task(make_examples("train", 4), TOK, 128, exact_match)
    cfg = GRPOConfig(steps=2, prompts_per_step=2, group_size=2, max_new_tokens=3,
                     out_dir=str(tmp_path / "run"))  # fmt: skip
    result = train_grpo(policy, reference, task, cfg)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["grpo_config"]["group_size"] == 2 and run["device"] == "cpu"
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == result.history
    keys = {"reward", "reward_std", "kl", "answer_len", "zero_var_frac"}
    assert keys <= set(result.history[0])
    # seeded: the same config gives the same run
    again = train_grpo(tiny_model(seed=2), tiny_model(seed=2), task,
                       GRPOConfig(steps=2, prompts_per_step=2, group_size=2,
                                  max_new_tokens=3))  # fmt: skip
    assert again.history == result.history


def test_a_reward_that_raises_or_returns_no_number_names_the_prompt():
    model = tiny_model(seed=3)
    examples = make_examples("train", 2)
    cfg = GRPOConfig(prompts_per_step=1, group_size=2, max_new_tokens=2)

    def broken(example, answer):
        raise KeyError("colour")

    def says_yes(example, answer):
        return "yes"

    for reward, problem in ((broken, "raised KeyError"), (says_yes, "not a number")):
        task = qa_task(examples, TOK, 128, reward)
        with pytest.raises(RewardError, match=problem) as err:
            sample_groups(model, task, examples[:1], cfg, seed=0)
        assert f"story seed {examples[0].story_seed}" in str(err.value)
        assert examples[0].passage[:20] in str(err.value)


def test_a_reference_of_another_shape_and_too_few_prompts_are_refused():
    task = qa_task(make_examples("train", 2), TOK, 128, exact_match)
    with pytest.raises(ValueError, match="another shape"):
        train_grpo(tiny_model(), tiny_model(d_model=16), task, GRPOConfig())
    frozen = tiny_model().requires_grad_(False)
    with pytest.raises(ValueError, match="requires grad"):
        train_grpo(frozen, tiny_model(), task, GRPOConfig())
    with pytest.raises(ValueError, match="fewer than prompts_per_step"):
        train_grpo(tiny_model(), tiny_model(), task, GRPOConfig(prompts_per_step=4))


def sampler_logprobs(model, x, y, temperature):
    """Per answer token, log of the sampler's own probability of it
    (labkit.sampling's distribution, one prefix at a time)."""
    from labkit.sampling import next_token_probs

    out = torch.zeros(y.shape)
    with torch.no_grad():
        for i, j in (y != IGNORE_INDEX).nonzero().tolist():
            logits = model(x[i : i + 1, : j + 1])[:, -1]
            out[i, j] = next_token_probs(logits, temperature)[0, y[i, j]].log()
    return out


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_the_loss_scores_answers_with_the_samplers_own_probabilities(temperature):
    model = tiny_model(seed=4)
    examples = make_examples("train", 2)
    task = qa_task(examples, TOK, 128, exact_match)
    cfg = GRPOConfig(prompts_per_step=2, group_size=2, max_new_tokens=4,
                     temperature=temperature)  # fmt: skip
    batch = sample_groups(model, task, examples, cfg, seed=0)
    mask = batch.y != IGNORE_INDEX
    # only the sampled answer tokens are targets: none of the prompt
    prompt_len = [len(task.prompt(e)) for e in examples for _ in range(2)]
    assert mask.sum(-1).tolist() == batch.lengths.tolist()
    assert [int(m.nonzero().min()) for m in mask] == [n - 1 for n in prompt_len]
    scored = answer_logprobs(model, batch.x, batch.y, cfg.temperature)
    torch.testing.assert_close(
        scored, sampler_logprobs(model, batch.x, batch.y, temperature) * mask,
        rtol=0, atol=1e-5,
    )  # fmt: skip


def test_one_small_step_raises_the_logprob_of_the_better_answers():
    policy, reference = tiny_model(seed=5), tiny_model(seed=5)
    x, y = rows(policy, n=6)
    rewards = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])  # P=2, k=3
    batch = Rollouts(x, y, [None] * 6, rewards, (y != IGNORE_INDEX).sum(-1))
    cfg = GRPOConfig(prompts_per_step=2, group_size=3, lr=1e-3, beta=0.0)
    before = token_logprobs(policy(x), y).sum(-1).detach()
    optimizer = torch.optim.SGD(policy.parameters(), lr=cfg.lr)
    grpo_update(policy, reference, optimizer, batch, cfg)
    change = token_logprobs(policy(x), y).sum(-1).detach() - before
    better = rewards.flatten() > rewards.mean(-1, keepdim=True).expand(2, 3).flatten()
    assert (change[better] > 0).all() and (change[~better] < 0).all(), change


def test_the_update_scores_policy_and_reference_at_the_sampling_temperature():
    policy, reference = tiny_model(seed=6), tiny_model(seed=7)
    examples = make_examples("train", 2)
    task = qa_task(examples, TOK, 128, exact_match)
    cfg = GRPOConfig(prompts_per_step=2, group_size=2, max_new_tokens=4,
                     temperature=0.7, lr=1e-9)  # fmt: skip
    batch = sample_groups(policy, task, examples, cfg, seed=0)
    mask = (batch.y != IGNORE_INDEX).float()
    logp = sampler_logprobs(policy, batch.x, batch.y, 0.7)
    ref = sampler_logprobs(reference, batch.x, batch.y, 0.7)
    want = ((k3_kl(logp, ref) * mask).sum(-1) / mask.sum(-1)).mean().item()
    optimizer = torch.optim.SGD(policy.parameters(), lr=cfg.lr)
    got = grpo_update(policy, reference, optimizer, batch, cfg)["kl"]
    assert got == pytest.approx(want, rel=1e-4)
