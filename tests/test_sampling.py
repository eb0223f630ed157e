"""labkit.sampling: filters, seeded sampling, batching, EOS, cache parity."""

import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.model import GPT, PRESETS
from labkit.sampling import (
    generate,
    next_token_probs,
    stream_text,
    stream_tokens,
    top_k_filter,
    top_p_filter,
)
from labkit.tokenizer import Tokenizer

CFG = dataclasses.replace(PRESETS["tiny"], context_len=16, n_layers=1)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GPT(CFG)


def test_top_k_hand_case():
    logits = torch.tensor([1.0, 4.0, 2.0, 3.0])
    out = top_k_filter(logits, 2)
    assert torch.isinf(out[[0, 2]]).all() and out[[1, 3]].tolist() == [4.0, 3.0]


def test_top_p_hand_case():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    kept = torch.isfinite(top_p_filter(probs.log(), 0.8))
    assert kept.tolist() == [True, True, False, False]  # 0.5 + 0.3 reaches 0.8
    kept = torch.isfinite(top_p_filter(probs.log(), 0.81))
    assert kept.tolist() == [True, True, True, False]
    kept = torch.isfinite(top_p_filter(probs.log(), 0.1))
    assert kept.tolist() == [True, False, False, False]  # the top one stays


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 20), st.floats(0.05, 1.0), st.floats(0.1, 3.0))
def test_next_token_probs_is_a_distribution_on_the_kept_tokens(k, p, t):
    logits = torch.randn(3, 20, generator=torch.Generator().manual_seed(k))
    probs = next_token_probs(logits, t, top_k=k, top_p=p)
    torch.testing.assert_close(probs.sum(-1), torch.ones(3))
    assert ((probs > 0).sum(-1) <= k).all()


def test_temperature_zero_is_greedy_and_bad_values_fail():
    logits = torch.tensor([[0.1, 2.0, -1.0]])
    assert next_token_probs(logits, 0).tolist() == [[0.0, 1.0, 0.0]]
    with pytest.raises(ValueError, match="temperature"):
        next_token_probs(logits, -1)
    with pytest.raises(ValueError, match="top_p"):
        next_token_probs(logits, top_p=1.5)
    with pytest.raises(ValueError, match="top_k"):
        next_token_probs(logits, top_k=0)


def test_kv_cache_gives_the_uncached_tokens_under_greedy(model):
    prompts = [[1, 2, 3], [4, 5, 6, 7, 8, 9], [10]]
    # 30 new tokens run past context_len=16: the window is cropped
    cached = generate(model, prompts, 30, temperature=0)
    plain = generate(model, prompts, 30, temperature=0, use_cache=False)
    assert cached == plain and [len(r) for r in cached] == [30, 30, 30]


def test_greedy_matches_a_written_out_argmax_loop(model):
    seq = [3, 1, 4]
    for _ in range(5):
        with torch.no_grad():
            logits = model(torch.tensor([seq[-CFG.context_len :]]))
        seq.append(int(logits[0, -1].argmax()))
    assert generate(model, [[3, 1, 4]], 5, temperature=0)[0] == seq[3:]


def test_batched_prompts_of_different_lengths_equal_one_at_a_time(model):
    prompts = [[7, 8, 9, 10, 11], [1], [2, 3]]
    batched = generate(model, prompts, 6, seed=1, top_k=10, temperature=0)
    single = [generate(model, [p], 6, temperature=0)[0] for p in prompts]
    assert batched == single


def test_same_seed_same_tokens_other_seed_other_tokens(model):
    a = generate(model, [[1, 2]], 20, seed=3)
    assert a == generate(model, [[1, 2]], 20, seed=3)
    assert a == generate(model, [[1, 2]], 20, seed=3, use_cache=False)
    assert a != generate(model, [[1, 2]], 20, seed=4)


def test_stops_at_end_of_text(model):
    greedy = generate(model, [[1, 2]], 10, temperature=0)[0]
    eos = greedy[3]
    out = generate(model, [[1, 2], [5]], 10, temperature=0, eos_id=eos)
    assert out[0] == greedy[: greedy.index(eos) + 1]
    assert all(len(r) <= 10 for r in out)


def test_streaming_yields_tokens_as_produced(model):
    seen = []
    out = generate(model, [[1, 2]], 7, temperature=0, on_token=seen.append)
    assert [int(t[0]) for t in seen] == out[0]
    steps = list(stream_tokens(model, [[1, 2]], 7, temperature=0))
    assert [int(t[0]) for t in steps] == out[0]


def test_stream_text_joins_to_the_decoded_continuation(model):
    tok = Tokenizer()
    pieces = list(stream_text(model, tok, "hi", 12, temperature=0))
    ids = generate(model, [tok.encode("hi")], 12, temperature=0)[0]
    assert "".join(pieces) == tok.decode(ids).rstrip("\ufffd")


def test_empty_prompt_fails_with_a_message(model):
    with pytest.raises(ValueError, match="at least one token"):
        generate(model, [[]], 3)


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(max_new_tokens=-1), "max_new_tokens=-1 must be an integer >= 0"),
        (dict(max_new_tokens=2.5), "max_new_tokens=2.5 must be an integer"),
        (dict(temperature=float("nan")), "temperature=nan must be a finite number"),
        (dict(temperature=float("inf")), "temperature=inf must be a finite number"),
        (dict(top_k=0), "top_k=0 must be a positive integer"),
        (dict(top_p=float("nan")), r"top_p=nan must be in \(0, 1\]"),
    ],
)
def test_bad_sampling_settings_fail_before_the_model_runs(kw, message):
    calls = []

    class Spy(torch.nn.Module):
        cfg = CFG

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, *args, **kwargs):
            calls.append(1)
            raise AssertionError("the model ran")

    args = dict(max_new_tokens=3, **kw) if "max_new_tokens" not in kw else kw
    with pytest.raises(ValueError, match=message):
        generate(Spy(), [[1, 2]], **args)
    with pytest.raises(ValueError, match=message):
        next(stream_tokens(Spy(), [[1, 2]], **args))
    assert calls == []
