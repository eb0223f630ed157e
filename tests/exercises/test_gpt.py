"""The GPT checks accept correct answers and reject plausible wrong ones."""

import torch

from labkit.counting import kv_cache_bytes
from labkit.exercises.gpt import (
    check_kv_cache_bytes,
    check_llama_params,
    check_split_c_attn,
)


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
    if weight.shape != (C, 3 * C):
        raise ValueError(f"weight must be (C, 3C), got {tuple(weight.shape)}")
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
