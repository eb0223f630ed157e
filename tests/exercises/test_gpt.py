"""The GPT checks accept correct answers and reject plausible wrong ones."""

import torch

from labkit.counting import kv_cache_bytes, memory_estimate
from labkit.exercises.gpt import (
    check_kv_cache_bytes,
    check_llama_params,
    check_split_c_attn,
)
from labkit.model import GPTConfig

LLAMA_LAYOUT = dict(pos="rope", norm="rmsnorm", mlp="swiglu", bias=False)


def llama_params(V, L, C, F, H, K):
    D = C // H
    attn = 2 * C * C + 2 * C * K * D  # q and o; k and v with K heads
    block = attn + 3 * C * F + 2 * C  # SwiGLU; two RMSNorm gains
    return L * block + C + 2 * V * C  # final norm; untied embedding and head


def test_a_correct_llama_count_passes_and_a_stub_is_not_done():
    assert check_llama_params(llama_params)
    assert check_llama_params(lambda *sizes: None).status == "not done"


def test_llama_count_with_a_tied_head_is_caught():
    def tied(V, L, C, F, H, K):
        return llama_params(V, L, C, F, H, K) - V * C

    result = check_llama_params(tied)
    assert result.status == "failed" and "not tied" in result.failed_case.hint


def test_llama_count_that_ignores_grouped_query_heads_is_caught():
    def all_heads(V, L, C, F, H, K):
        return llama_params(V, L, C, F, H, H)

    result = check_llama_params(all_heads)
    assert result.status == "failed" and "grouped-query" in result.failed_case.hint


def test_llama_count_without_the_final_norm_or_with_two_mlp_matrices_is_caught():
    def no_final_norm(V, L, C, F, H, K):
        return llama_params(V, L, C, F, H, K) - C

    result = check_llama_params(no_final_norm)
    assert result.failed_case.args == (2, 1, 4, 8, 1, 1)
    assert "final" in result.failed_case.hint

    def plain_mlp(V, L, C, F, H, K):
        return llama_params(V, L, C, F, H, K) - L * C * F

    assert check_llama_params(plain_mlp).status == "failed"


def test_llama_count_that_calls_labkit_is_refused():
    def lazy(V, L, C, F, H, K):
        from labkit.counting import count_params  # noqa: F401

        return 0

    assert "uses 'labkit'" in check_llama_params(lazy).report


def by_memory_estimate(V, L, C, F, H, K):
    # labkit by a side door: GPTConfig and memory_estimate, no "count_params"
    sizes = dict(vocab_size=V, context_len=8, n_layers=L, n_heads=H, d_model=C)
    cfg = GPTConfig(**sizes, n_kv_heads=K, d_mlp=F, tie_weights=False, **LLAMA_LAYOUT)
    return memory_estimate(cfg, 1, 1).weights // 4


def _count_elsewhere(V, L, C, F, H, K):
    return by_memory_estimate(V, L, C, F, H, K)


def test_llama_count_through_memory_estimate_or_a_helper_is_refused():
    assert by_memory_estimate(32000, 32, 4096, 11008, 32, 32) == 6_738_415_616
    result = check_llama_params(by_memory_estimate)
    assert result.status == "failed" and "labkit" in result.report

    def via_helper(V, L, C, F, H, K):  # its own text names nothing of labkit
        return _count_elsewhere(V, L, C, F, H, K)

    result = check_llama_params(via_helper)
    assert result.status == "failed" and "_count_elsewhere" in result.report
    assert check_llama_params(llama_params)  # arithmetic alone is accepted


def kv_bytes(n_layers, n_heads, n_kv_heads, d_model, batch_size, seq_len, nbytes):
    d_head = d_model // n_heads
    return 2 * n_layers * n_kv_heads * d_head * batch_size * seq_len * nbytes


def test_a_correct_kv_cache_passes_and_labkit_own_is_refused():
    assert check_kv_cache_bytes(kv_bytes)
    assert "labkit's own function" in check_kv_cache_bytes(kv_cache_bytes).report

    def stub(*sizes):
        return None

    assert check_kv_cache_bytes(stub).status == "not done"


def test_kv_cache_without_values_is_caught():
    def keys_only(*args):
        return kv_bytes(*args) // 2

    result = check_kv_cache_bytes(keys_only)
    assert result.status == "failed" and result.failed_case.args == (1,) * 7


def test_kv_cache_with_query_heads_is_caught():
    def query_heads(n_layers, n_heads, n_kv_heads, d_model, B, T, nbytes):
        return kv_bytes(n_layers, n_heads, n_heads, d_model, B, T, nbytes)

    result = check_kv_cache_bytes(query_heads)
    assert result.status == "failed" and "n_kv_heads" in result.failed_case.hint

    def head_width_from_kv(n_layers, n_heads, n_kv_heads, d_model, B, T, nbytes):
        d_head = d_model // n_kv_heads  # wrong: D is d_model / n_heads
        return 2 * n_layers * n_kv_heads * d_head * B * T * nbytes

    assert check_kv_cache_bytes(head_width_from_kv).status == "failed"


def split_c_attn(weight, bias):
    C = weight.shape[0]
    if weight.shape != (C, 3 * C) or bias.shape != (3 * C,):
        raise ValueError(f"need (C, 3C) and (3C,), got {weight.shape}, {bias.shape}")
    out = {}
    for name, w, b in zip(
        ("q_proj", "k_proj", "v_proj"), weight.split(C, 1), bias.split(C), strict=True
    ):
        out[f"{name}.weight"] = w.T.contiguous()
        out[f"{name}.bias"] = b
    return out


def test_a_correct_split_passes_and_computes_the_fused_projection():
    assert check_split_c_attn(split_c_attn)
    # what the split means: x @ W + b = [q(x) | k(x) | v(x)]
    gen = torch.Generator().manual_seed(0)
    weight, bias, x = (torch.randn(*s, generator=gen) for s in ((4, 12), (12,), (5, 4)))
    parts = split_c_attn(weight, bias)
    q = x @ parts["q_proj.weight"].T + parts["q_proj.bias"]
    torch.testing.assert_close(q, (x @ weight + bias)[:, :4])


def test_split_without_the_transpose_is_caught():
    def no_transpose(weight, bias):
        out = split_c_attn(weight, bias)
        for name in ("q_proj", "k_proj", "v_proj"):
            out[f"{name}.weight"] = out[f"{name}.weight"].T
        return out

    result = check_split_c_attn(no_transpose)
    assert result.status == "failed" and "transposed" in result.failed_case.hint


def test_split_along_the_wrong_dimension_or_interleaved_is_caught():
    def rows(weight, bias):
        C = weight.shape[0]
        if weight.shape != (C, 3 * C):
            raise ValueError("bad shape")
        out = {}
        for i, name in enumerate(("q_proj", "k_proj", "v_proj")):
            # the thirds taken as interleaved columns (q, k, v, q, k, v, ...)
            out[f"{name}.weight"] = weight[:, i::3].T
            out[f"{name}.bias"] = bias[i::3]
        return out

    assert check_split_c_attn(rows).status == "failed"

    def chunk_rows(weight, bias):
        return {
            f"{n}.{kind}": t
            for n, w, b in zip(
                ("q_proj", "k_proj", "v_proj"),
                weight.chunk(3, 0),
                bias.chunk(3),
                strict=True,
            )
            for kind, t in (("weight", w), ("bias", b))
        }

    assert check_split_c_attn(chunk_rows).status == "failed"


def test_split_that_accepts_a_bad_shape_is_caught():
    def no_check(weight, bias):
        C = weight.shape[1] // 3
        return {
            f"{n}.{kind}": t
            for i, n in enumerate(("q_proj", "k_proj", "v_proj"))
            for kind, t in (
                ("weight", weight[:, i * C : (i + 1) * C].T),
                ("bias", bias[i * C : (i + 1) * C]),
            )
        }

    result = check_split_c_attn(no_check)
    assert result.status == "failed" and "ValueError" in result.failed_case.hint


def test_split_that_checks_only_the_width_or_not_the_bias_is_caught():
    def width_only(weight, bias):  # (5, 12) slips through: 12 % 3 == 0
        if weight.shape[-1] % 3:
            raise ValueError("not 3C")
        q, k, v = weight.T.chunk(3)
        qb, kb, vb = bias.chunk(3)
        names = ("q_proj", "k_proj", "v_proj")
        return {
            **{f"{n}.weight": w for n, w in zip(names, (q, k, v), strict=True)},
            **{f"{n}.bias": b for n, b in zip(names, (qb, kb, vb), strict=True)},
        }

    assert width_only(torch.zeros(5, 12), torch.zeros(12))["q_proj.weight"].shape == (
        4,
        5,
    )
    result = check_split_c_attn(width_only)
    assert result.status == "failed" and "(5, 12)" in result.failed_case.label

    def weight_only(weight, bias):
        C = weight.shape[0]
        if weight.shape != (C, 3 * C):
            raise ValueError("weight must be (C, 3C)")
        return split_c_attn(weight, torch.zeros(3 * C)) | {
            f"{n}.bias": b
            for n, b in zip(("q_proj", "k_proj", "v_proj"), bias.chunk(3), strict=True)
        }

    result = check_split_c_attn(weight_only)
    assert result.status == "failed" and "bias" in result.failed_case.hint
