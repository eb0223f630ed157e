"""Checks for the exercises of the chapter on GPT, assembled and counted.

The references are labkit.counting's ``count_params`` and ``kv_cache_bytes``
(on a GPTConfig with Llama's layout) and labkit.hf's GPT-2 mapping: the fused
``c_attn`` a case hands in is built by ``hf_state_dict`` from known q, k, v
projections, which the learner's function must give back.

Built in: notebooks/10_gpt_assembled.ipynb.
"""

from __future__ import annotations

import inspect

import torch

from labkit.counting import count_params, kv_cache_bytes
from labkit.exercises import Case, CheckResult, Raises, exact, run_check, tensors_close
from labkit.hf import hf_state_dict
from labkit.model import PRESETS, GPTConfig

_LLAMA = dict(pos="rope", norm="rmsnorm", mlp="swiglu", bias=False, tie_weights=False)


def _llama(V: int, L: int, C: int, F: int, H: int, K: int) -> GPTConfig:
    return GPTConfig(
        vocab_size=V,
        context_len=8,
        n_layers=L,
        n_heads=H,
        n_kv_heads=K,
        d_model=C,
        d_mlp=F,
        **_LLAMA,
    )


def _llama_cases() -> list[Case]:
    def case(V, L, C, F, H, K, hint):
        label = f"V={V}, L={L}, C={C}, F={F}, H={H}, K={K}"
        return Case(
            (V, L, C, F, H, K), count_params(_llama(V, L, C, F, H, K)), hint, label
        )

    by_hand = [
        (
            (2, 1, 4, 8, 1, 1),
            "by hand: q and o are C x C, k and v C x (K * C/H); SwiGLU has "
            "three C x F matrices; two RMSNorm gains per block and a final "
            "one; the head is not tied (V x C twice); nothing has a bias",
        ),
        (
            (2, 2, 4, 8, 1, 1),
            "RMSNorm has one gain vector of C and no bias: two per block, "
            "plus the final norm, (2L + 1) C in all",
        ),
        (
            (1000, 1, 4, 8, 1, 1),
            "Llama's head is not tied: the V x C table is counted twice "
            "(token embedding and lm_head); RoPE adds no table",
        ),
        (
            (2, 1, 8, 8, 4, 2),
            "grouped-query attention: k and v have K heads of D = C/H "
            "features each, so each is C x (K * D), smaller than q",
        ),
        (
            (2, 1, 8, 8, 4, 1),
            "K = 1 (multi-query): one head of D features for k and one for v",
        ),
        ((2, 1, 8, 20, 2, 2), "F is its own size, not 4C"),
    ]
    cases = [case(*sizes, hint) for sizes, hint in by_hand]
    for name in ("llama2-7b", "llama3-8b"):
        c = PRESETS[name].resolved()
        sizes = (c.vocab_size, c.n_layers, c.d_model, c.d_mlp, c.n_heads)
        hint = f"{name}: the released checkpoint's total, {count_params(c):,}"
        cases.append(case(*sizes, c.n_kv_heads, hint))
    gen = torch.Generator().manual_seed(0)

    def pick(*values):
        return values[int(torch.randint(len(values), (1,), generator=gen))]

    for _ in range(8):
        H = pick(1, 2, 4, 8)
        K = pick(*[k for k in (1, 2, 4, 8) if H % k == 0])
        C = H * pick(2, 4, 8, 16)
        F = int(torch.randint(1, 100, (1,), generator=gen))
        V = int(torch.randint(1, 500, (1,), generator=gen))
        L = int(torch.randint(1, 6, (1,), generator=gen))
        cases.append(case(V, L, C, F, H, K, "random sizes"))
    return cases


def _labkit_name(fn, depth: int = 3) -> str | None:
    """A global name ``fn`` (or a function of the learner's it calls) reads
    that is labkit's: a labkit module, class or function. The source search
    of ``run_check`` sees only ``fn``'s own text, not a helper or an object
    imported elsewhere in the notebook (``GPTConfig``, ``memory_estimate``).
    """
    code = getattr(fn, "__code__", None)
    if code is None or depth == 0:
        return None
    names, stack = set(), [code]
    while stack:  # the function's code and the code of its inner functions
        c = stack.pop()
        names.update(c.co_names)
        stack.extend(k for k in c.co_consts if hasattr(k, "co_names"))
    scope = getattr(fn, "__globals__", {})
    for name in sorted(names):
        value = scope.get(name)
        owner = getattr(value, "__name__", "") if inspect.ismodule(value) else ""
        owner = owner or getattr(value, "__module__", "") or ""
        if isinstance(owner, str) and owner.split(".")[0] == "labkit":
            return name
        if inspect.isfunction(value) and value is not fn:
            found = _labkit_name(value, depth - 1)
            if found is not None:
                return f"{name} -> {found}"
    return None


def check_llama_params(fn) -> CheckResult:
    """Check ``fn(V, L, C, F, H, K) -> int``: the parameters of a Llama-style
    GPT (RMSNorm, SwiGLU of width F, no biases, untied head, RoPE, K kv heads).

    The arithmetic must be the learner's: a function that reads labkit (its
    own text, a labkit object by name, or a helper that does) is refused.
    """
    name = "check_llama_params"
    used = _labkit_name(fn) if callable(fn) else None
    if used is not None:
        report = (
            f"✗ {name}: {fn.__name__} uses labkit ({used}); write the "
            "arithmetic yourself"
        )
        print(report)
        return CheckResult(name, "failed", len(_llama_cases()), report)
    return run_check(
        name,
        fn,
        _llama_cases(),
        exact,
        summary="one block by hand, norms, untied head, grouped-query heads, "
        "Llama 2 7B and Llama 3 8B, 8 random",
        forbidden=(
            "labkit",
            "count_params",
            "param_counts",
            "memory_estimate",
            "GPTConfig",
            "PRESETS",
            "numel",
        ),
    )


def _kv_cases() -> list[Case]:
    def case(L, H, K, C, B, T, nbytes, hint):
        cfg = GPTConfig(
            vocab_size=2, context_len=8, n_layers=L, n_heads=H, n_kv_heads=K, d_model=C
        )
        label = (
            f"n_layers={L}, n_heads={H}, n_kv_heads={K}, d_model={C}, "
            f"batch_size={B}, seq_len={T}, bytes_per_value={nbytes}"
        )
        expected = kv_cache_bytes(cfg, B, T, nbytes)
        return Case((L, H, K, C, B, T, nbytes), expected, hint, label)

    cases = [
        case(1, 1, 1, 1, 1, 1, 1, "one layer, one token, one value: a key AND a value"),
        case(3, 1, 1, 1, 1, 1, 1, "every layer caches its own keys and values"),
        case(
            1,
            4,
            4,
            8,
            1,
            1,
            1,
            "each kv head holds D = d_model / n_heads values, so all heads "
            "together hold d_model",
        ),
        case(
            1,
            4,
            1,
            8,
            1,
            1,
            1,
            "grouped-query attention: the cache holds the n_kv_heads key/value "
            "heads, not the n_heads query heads (D is still d_model / n_heads)",
        ),
        case(1, 1, 1, 1, 3, 5, 1, "every sequence of the batch, every token"),
        case(1, 1, 1, 1, 1, 1, 2, "bytes per value: 2 in float16, 4 in float32"),
    ]
    for name, T in (("gpt2", 1024), ("llama2-7b", 4096), ("llama3-8b", 8192)):
        cfg = PRESETS[name].resolved()
        args = (cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.d_model)
        nbytes = kv_cache_bytes(cfg, 1, T, 2)
        cases.append(
            case(*args, 1, T, 2, f"{name}, full context in 16 bits: {nbytes:,} bytes")
        )
    gen = torch.Generator().manual_seed(1)
    for _ in range(6):
        H = (1, 2, 4, 8)[int(torch.randint(4, (1,), generator=gen))]
        K = H // (1, 2)[int(torch.randint(2, (1,), generator=gen))] or 1
        sizes = [int(torch.randint(1, n, (1,), generator=gen)) for n in (5, 9, 100)]
        L, B, T = sizes
        cases.append(case(L, H, K, H * 4, B, T, 2, "random sizes"))
    return cases


def check_kv_cache_bytes(fn) -> CheckResult:
    """Check ``fn(n_layers, n_heads, n_kv_heads, d_model, batch_size, seq_len,
    bytes_per_value) -> int``: the bytes of a KV cache holding seq_len tokens.
    """
    return run_check(
        "check_kv_cache_bytes",
        fn,
        _kv_cases(),
        exact,
        summary="keys and values, layers, heads, grouped-query, batch, bytes, "
        "GPT-2 and Llama at full context, 6 random",
        forbidden=("labkit", "kv_cache_bytes", "memory_estimate"),
        references=(kv_cache_bytes,),
    )


_PROJ = ("q_proj", "k_proj", "v_proj")


def _c_attn_case(weights: dict, hint: str, label: str) -> Case:
    """The fused c_attn labkit's exporter builds from these q, k, v."""
    ours = {f"blocks.0.attn.{k}": v for k, v in weights.items()}
    hf = hf_state_dict("gpt2", ours, n_layers=1)
    fused_w = hf["transformer.h.0.attn.c_attn.weight"]  # (C, 3C), Conv1D
    fused_b = hf["transformer.h.0.attn.c_attn.bias"]  # (3C,)
    return Case((fused_w, fused_b), dict(weights), hint, label)


def _random_qkv(C: int, gen) -> dict:
    out = {}
    for p in _PROJ:
        out[f"{p}.weight"] = torch.randn(C, C, generator=gen)
        out[f"{p}.bias"] = torch.randn(C, generator=gen)
    return out


def _c_attn_cases() -> list[Case]:
    numbered = torch.arange(12.0).view(3, 2, 2)  # q, k, v weights, all different
    by_hand = {}
    for i, p in enumerate(_PROJ):
        by_hand[f"{p}.weight"] = numbered[i]
        by_hand[f"{p}.bias"] = torch.tensor([20.0 + 2 * i, 21.0 + 2 * i])
    cases = [
        _c_attn_case(
            by_hand,
            "Conv1D stores (in, out): x @ weight; nn.Linear stores (out, in): "
            "x @ weight.T, so each third must be transposed",
            "C = 2: weight (2, 6) = columns [q | k | v], bias (6,)",
        ),
    ]
    gen = torch.Generator().manual_seed(2)
    cases.append(
        _c_attn_case(
            _random_qkv(3, gen),
            "the thirds are along the output (last) dimension of the (C, 3C) "
            "weight: q is columns 0..C-1, k the next C, v the last C",
            "C = 3, random q, k, v",
        )
    )
    cases.append(
        _c_attn_case(
            _random_qkv(1, gen),
            "C = 1: weight (1, 3), bias (3,); each answer is (1, 1) and (1,)",
            "C = 1",
        )
    )
    for C in (4, 8, 12, 16):
        cases.append(_c_attn_case(_random_qkv(C, gen), "random weights", f"C = {C}"))
    bad = [
        ((4, 11), (11,), "a weight of shape (C, 3C) is needed: refuse (4, 11)"),
        (
            (5, 12),
            (12,),
            "(5, 12) splits into thirds of 4 columns, but C = 5 rows: the weight "
            "must be (C, 3C) with the same C, not only a width divisible by 3",
        ),
        ((4, 12), (11,), "the bias must be (3C,): refuse a (4, 12) weight with (11,)"),
        ((4, 12), (4,), "the bias must be (3C,) = (12,), not (C,)"),
    ]
    for w_shape, b_shape, hint in bad:
        cases.append(
            Case(
                (torch.zeros(w_shape), torch.zeros(b_shape)),
                Raises(ValueError),
                hint + " with ValueError",
                label=f"weight {w_shape}, bias {b_shape}",
            )
        )
    return cases


def _dict_close(expected, returned) -> str | None:
    if not isinstance(returned, dict):
        return f"expected a dict with keys {sorted(expected)}"
    if set(returned) != set(expected):
        return f"keys {sorted(returned)}, expected {sorted(expected)}"
    for key in sorted(expected):
        why = tensors_close(expected[key], returned[key])
        if why is not None:
            return f"{key}: {why}"
    return None


def check_split_c_attn(fn) -> CheckResult:
    """Check ``fn(weight, bias) -> dict``: GPT-2's fused c_attn (Conv1D weight
    (C, 3C), bias (3C,)) as nn.Linear tensors "q_proj.weight" (C, C),
    "q_proj.bias" (C,) and the same for k_proj and v_proj; ValueError for a
    weight that is not (C, 3C) or a bias that is not (3C,).
    """
    return run_check(
        "check_split_c_attn",
        fn,
        _c_attn_cases(),
        _dict_close,
        summary="numbered C = 2 by hand, C = 3, C = 1, 4 random, 4 bad shapes refused",
        forbidden=("labkit", "from_hf_gpt2", "hf_state_dict"),
    )
