"""labkit.rewards: exact match and the format reward on story questions,
and the checked call that names the prompt when a reward misbehaves."""

import pytest
import torch

from labkit.instruct import make_examples
from labkit.rewards import (
    RewardError,
    answer_scores,
    call_reward,
    exact_answer_probs,
    exact_match,
    exact_with_format,
    well_formed,
)

EX = make_examples("train", 6)  # one question of each type


def test_exact_match_is_character_for_character():
    ex = EX[0]
    assert exact_match(ex, ex.answer) == 1.0
    assert exact_match(ex, ex.answer + " ") == 0.0
    assert exact_match(ex, ex.answer.lower()) == (ex.answer == ex.answer.lower())
    assert exact_match(ex, None) == 0.0  # never closed with <|end|>


def test_the_format_reward_accepts_any_answer_of_the_right_kind():
    colour = next(ex for ex in EX if ex.qtype == "color")
    wrong = "red" if colour.answer != "red" else "blue"
    assert well_formed(colour, colour.answer) == well_formed(colour, wrong) == 1.0
    assert well_formed(colour, "under the bed") == 0.0  # a place, not a colour
    assert well_formed(colour, None) == 0.0
    reward = exact_with_format(0.25)
    assert reward(colour, colour.answer) == 1.25
    assert reward(colour, wrong) == 0.25 and reward(colour, "redd") == 0.0
    with pytest.raises(ValueError, match="weight"):
        exact_with_format(2.0)


def test_call_reward_names_the_prompt_when_the_reward_misbehaves():
    ex = EX[1]

    def broken(example, answer):
        return {"a": 1}["b"]

    cases = [
        (broken, "raised KeyError"),
        (lambda e, a: None, "not a number"),
        (lambda e, a: "1.0", "not a number"),
        (lambda e, a: float("nan"), "must be finite"),
    ]
    for reward, problem in cases:
        with pytest.raises(RewardError, match=problem) as err:
            call_reward(reward, ex, "fox")
        message = str(err.value)
        assert f"story seed {ex.story_seed}" in message and "'fox'" in message
        assert ex.passage[:30] in message
    assert call_reward(lambda e, a: True, ex, "fox") == 1.0
    assert call_reward(exact_match, ex, ex.answer) == 1.0


def sampler_prob(model, ids, answer, temperature):
    """P(answer | ids) step by step, from the sampler's own distribution."""
    from labkit.sampling import next_token_probs

    prob, seq = 1.0, list(ids)
    with torch.no_grad():
        for token in answer:
            logits = model(torch.tensor([seq]))[:, -1]
            prob *= next_token_probs(logits, temperature)[0, token].item()
            seq.append(token)
    return prob


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_exact_answer_probs_is_the_samplers_probability_of_the_answer(temperature):
    from chat_helpers import TOK, tiny_chat_model

    from labkit.chat import END, prompt_ids

    model = tiny_chat_model(seed=3)
    examples = EX[:3]
    got = exact_answer_probs(model, TOK, examples, temperature=temperature)
    for ex, p in zip(examples, got.tolist(), strict=True):
        answer = TOK.encode(ex.answer) + [TOK.special_tokens[END]]
        want = sampler_prob(model, prompt_ids(ex.prompt, TOK), answer, temperature)
        assert p == pytest.approx(want, rel=1e-4), ex.qtype
    with pytest.raises(ValueError, match="temperature"):
        exact_answer_probs(model, TOK, examples, temperature=0)


def test_answer_scores_greedy_is_teacher_forced_exact():
    from chat_helpers import TOK, tiny_chat_model

    from labkit.evals import teacher_forced_exact

    model = tiny_chat_model(seed=3)
    probs, greedy = answer_scores(model, TOK, EX)
    assert greedy.tolist() == [float(r) for r in teacher_forced_exact(model, TOK, EX)]
    torch.testing.assert_close(probs, exact_answer_probs(model, TOK, EX))
