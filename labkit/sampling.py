"""Sampling: turning next-token logits into text, one token at a time.

* greedy: always the most likely token;
* temperature: divide the logits by t before the softmax (t < 1 sharpens,
  t > 1 flattens);
* top-k: keep the k most likely tokens, renormalise (Fan et al., 2018);
* top-p (nucleus): keep the smallest set whose probability reaches p
  (Holtzman et al., 2020).

``generate`` decodes a batch of prompts of different lengths without padding:
all rows advance together from the shortest prompt's length, and a row whose
prompt is longer is fed its own next prompt token instead of a sample until
its prompt runs out. A seed makes sampling repeatable.

The KV cache (on by default) keeps each layer's keys and values, so a step
runs the model on one new token instead of the whole window; greedy decoding
gives the same tokens with and without it (tested).

Past the context length the window is cropped to the last ``context_len``
tokens. Positions then shift by one each step, so cached keys go stale: from
that point each step recomputes the cropped window without the cache (exact,
and the same work as the uncached path: the whole window every step).
Built in: notebooks/12_sampling.ipynb.
Left out on purpose: beam search, repetition penalties, speculative decoding.
"""

import math
from collections.abc import Callable, Iterator
from contextlib import closing

import torch

from labkit.attention import KVCache


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Set all but the k largest logits of each row to -inf.

    Shapes: (..., V) -> (..., V)
    """
    if not 1 <= k:
        raise ValueError(f"top_k={k} must be a positive integer")
    k = min(k, logits.shape[-1])
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the most likely tokens whose probabilities sum to at least p.

    The most likely token is always kept. Shapes: (..., V) -> (..., V)
    """
    if not 0 < p <= 1:
        raise ValueError(f"top_p={p} must be in (0, 1]")
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    before = probs.cumsum(dim=-1) - probs  # mass of the tokens ranked above
    drop_sorted = before >= p  # (..., V) in sorted order
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def next_token_probs(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> torch.Tensor:
    """The distribution a sampler draws from: temperature, then top-k, top-p.

    temperature=0 means greedy: all the mass on the argmax.
    Shapes: (..., V) -> (..., V), rows sum to 1.
    """
    if not (math.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"temperature={temperature} must be a finite number >= 0")
    logits = logits.float()
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
    logits = logits / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return torch.softmax(logits, dim=-1)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_sampling(
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> None:
    """Raise ValueError, naming the argument, unless every setting is usable:
    max_new_tokens >= 0, a finite temperature >= 0, top_k >= 1, 0 < top_p <= 1.
    """
    if not _is_int(max_new_tokens) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens={max_new_tokens!r} must be an integer >= 0")
    if not isinstance(temperature, (int, float)) or not math.isfinite(temperature):
        raise ValueError(f"temperature={temperature!r} must be a finite number >= 0")
    if temperature < 0:
        raise ValueError(f"temperature={temperature} must be >= 0")
    if top_k is not None and (not _is_int(top_k) or top_k < 1):
        raise ValueError(f"top_k={top_k!r} must be a positive integer")
    if top_p is not None and not (isinstance(top_p, (int, float)) and 0 < top_p <= 1):
        raise ValueError(f"top_p={top_p!r} must be in (0, 1]")


def _as_rows(prompts) -> list[list[int]]:
    if torch.is_tensor(prompts):
        return [row.tolist() for row in prompts.reshape(-1, prompts.shape[-1])]
    rows = [list(p) for p in prompts]
    if not rows or any(len(r) == 0 for r in rows):
        raise ValueError("every prompt needs at least one token")
    return rows


@torch.no_grad()
def _next_logits(model, seqs, cache, fed: int) -> tuple[torch.Tensor, int]:
    """Next-token logits of each row, and how many tokens the cache now holds.

    With a cache, only the tokens after the ``fed`` it holds go through the model,
    while the window fits the context; past it (or uncached) the window is
    cropped to the last context_len tokens and run whole.
    Shapes: seqs (B, t) -> logits (B, V)
    """
    if cache is not None and seqs.shape[1] <= model.cfg.context_len:
        return model(seqs[:, fed:], cache=cache)[:, -1], seqs.shape[1]
    return model(seqs[:, -model.cfg.context_len :])[:, -1], fed


def _decode(
    model, rows, max_new_tokens, temperature, top_k, top_p, seed, eos_id, use_cache
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The decoding loop behind ``stream_tokens`` and ``generate``.

    Yields (tokens, new) each step: tokens (B,) is what each row appends (its
    own next prompt token while its prompt lasts, ``eos_id`` again once it is
    done); new (B,) bool marks the rows for which that token is one of their
    up to ``max_new_tokens`` generated ones.
    """
    device = next(model.parameters()).device
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()  # a fresh random seed; the global RNG is left alone
    else:
        gen.manual_seed(seed)
    B, lengths = len(rows), [len(r) for r in rows]
    t0 = min(lengths)
    seqs = torch.tensor([r[:t0] for r in rows], device=device)  # (B, t0)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    made = torch.zeros(B, dtype=torch.long, device=device)  # generated per row
    cache, fed = None, 0  # fed: tokens of seqs already in the cache
    if use_cache:
        dtype = next(model.parameters()).dtype
        cache = KVCache.for_model(model.cfg, B, dtype=dtype, device=device)
    was_training = model.training
    model.eval()
    try:
        for _ in range(max(lengths) - t0 + max_new_tokens):
            logits, fed = _next_logits(model, seqs, cache, fed)  # (B, V)
            probs = next_token_probs(logits, temperature, top_k, top_p)
            if temperature == 0:
                nxt = probs.argmax(-1)  # (B,)
            else:
                nxt = torch.multinomial(probs, 1, generator=gen)[:, 0]  # (B,)
            pos = seqs.shape[1]
            forced = [rows[b][pos] if pos < lengths[b] else -1 for b in range(B)]
            forced = torch.tensor(forced, device=device)  # (B,) -1: generate
            nxt = torch.where(forced >= 0, forced, nxt)
            new = (forced < 0) & ~done & (made < max_new_tokens)  # (B,)
            made += new
            if eos_id is not None:
                nxt = torch.where(done, torch.full_like(nxt, eos_id), nxt)
                done |= (nxt == eos_id) & (forced < 0)
            seqs = torch.cat([seqs, nxt[:, None]], dim=1)  # (B, t + 1)
            yield nxt, new
            if eos_id is not None and bool(done.all()):
                return
    finally:
        model.train(was_training)


def stream_tokens(
    model,
    prompts,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    eos_id: int | None = None,
    use_cache: bool = True,
) -> Iterator[torch.Tensor]:
    """Yield each step's new tokens, one per prompt, as they are produced.

    While a row's prompt is longer than the shortest one it yields its own
    prompt tokens; rows that produced ``eos_id`` yield it again until all rows
    are done.
    Shapes: prompts: list of token lists (or a (B, T) tensor); yields (B,) long.
    """
    check_sampling(max_new_tokens, temperature, top_k, top_p)
    rows = _as_rows(prompts)
    args = (temperature, top_k, top_p, seed, eos_id, use_cache)
    with closing(_decode(model, rows, max_new_tokens, *args)) as steps:
        for nxt, _ in steps:
            yield nxt


def generate(
    model,
    prompts,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    eos_id: int | None = None,
    use_cache: bool = True,
    on_token: Callable[[torch.Tensor], None] | None = None,
) -> list[list[int]]:
    """Continue each prompt by up to ``max_new_tokens`` tokens.

    Returns only the new tokens of each row (ending at ``eos_id``, which is
    kept, when given). temperature=0 is greedy. ``on_token`` is called with
    each step's (B,) tokens as they are produced (streaming).
    Shapes: prompts: B lists of token ids (any lengths) -> B lists.
    """
    check_sampling(max_new_tokens, temperature, top_k, top_p)
    rows = _as_rows(prompts)
    out: list[list[int]] = [[] for _ in rows]
    args = (temperature, top_k, top_p, seed, eos_id, use_cache)
    with closing(_decode(model, rows, max_new_tokens, *args)) as steps:
        for nxt, new in steps:
            if on_token is not None:
                on_token(nxt)
            for b in new.nonzero()[:, 0].tolist():
                out[b].append(int(nxt[b]))
    return out


def stream_text(
    model, tokenizer, prompt: str, max_new_tokens: int, **kwargs
) -> Iterator[str]:
    """Yield the text of one prompt's continuation piece by piece.

    A piece is held back while it ends inside a multi-byte character.
    """
    ids: list[int] = []
    shown = ""
    for nxt in stream_tokens(
        model, [tokenizer.encode(prompt)], max_new_tokens, **kwargs
    ):
        ids.append(int(nxt[0]))
        text = tokenizer.decode(ids)
        if not text.endswith("\ufffd") and len(text) > len(shown):
            yield text[len(shown) :]
            shown = text
        if kwargs.get("eos_id") is not None and ids[-1] == kwargs["eos_id"]:
            return
