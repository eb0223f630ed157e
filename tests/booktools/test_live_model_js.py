"""labkit-live.js in a real browser against labkit: the forward pass over every
config choice labkit has, the tokenizers, and the sampling filters.

Each model is exported by labkit.webexport (float32 unless said: tolerance
1e-4) with labkit's reference logits, mounted in one page, and held to them
by booktools.live_check.parity, the code the site check runs: ids, logits at
every prompt position and every greedy step (KV cache on, the window cropped
past the context), greedy tokens, attention weights.
"""

import json
import shutil

import pytest
import torch
from live_helpers import tiny_model, wait_ready

from booktools.live_check import parity, reference_of
from labkit.tokenizer import CharTokenizer, Tokenizer, train_bpe_fast
from labkit.webexport import SCRIPT, export_web

CONFIGS = {
    # GPT-2: learned positions, LayerNorm with biases, GELU (tanh), tied head
    "gpt2": {},
    # Llama: RoPE, RMSNorm, SwiGLU, no biases, untied head, grouped-query heads
    "llama": dict(
        pos="rope",
        norm="rmsnorm",
        mlp="swiglu",
        bias=False,
        tie_weights=False,
        n_kv_heads=2,
        d_mlp=48,
    ),
    # the 2017 transformer: sinusoidal positions, post-norm, exact GELU
    "postnorm": dict(pos="sinusoidal", prenorm=False, mlp="gelu"),
    "alibi_geglu": dict(pos="alibi", norm="rmsnorm", mlp="geglu"),
    "nopos_reglu_mqa": dict(pos="none", mlp="reglu", n_kv_heads=1, bias=False),
    "glu_relu_odd": dict(mlp="glu", n_heads=2, d_model=24, context_len=20),
    "relu": dict(mlp="relu", n_layers=3),
    "attention_only": dict(mlp="none", prenorm=False),
}
TEXT = (
    "Once upon a time, Ben's dog didn't run 1234 times!\n\n  It's   fine; "
    "caf\u00e9 na\u00efve \u4e16\u754c \U0001f642 <|endoftext|>The end.\t"
)
TRICKY = [
    "",
    "a",
    "   ",
    "hello world",
    "I'm you're we've they'll she'd it's",
    "x\u0085y\ufeffz\u00a0w",  # white space: Python's \\s has U+0085, not U+FEFF
    "\n\n\nline  two\r\n",
    "<|endoftext|><|endoftext|>a<|endoftext|>",
    "na\u00efve caf\u00e9 \u0645\u0631\u062d\u0628\u0627 \u4e16\u754c",
    "1234567 3.14 \U0001f642\U0001f642",
    "word" * 40,
]


def page_with(folders, tmp_path) -> str:
    shutil.copyfile(SCRIPT, tmp_path / SCRIPT.name)
    divs = "".join(
        f'<div class="labkit-live" data-mount="auto" data-src="{f.name}/" '
        f'data-parts="next attention"></div>'
        for f in folders
    )
    (tmp_path / "index.html").write_text(
        f"<!doctype html><meta charset='utf-8'><link rel='icon' href='data:,'>"
        f"<script src='{SCRIPT.name}' defer></script><body>{divs}</body>"
    )
    return "index.html"


def components(page, n):
    els = page.query_selector_all(".labkit-live")
    assert len(els) == n
    for el in els:
        wait_ready(page, f'.labkit-live[data-src="{el.get_attribute("data-src")}"]')
        assert el.get_attribute("data-state") == "ready", el.inner_text()
    return els


def assert_parity(result, tolerance):
    assert result["ids_differ"] == []
    assert result["max_abs_logit_diff"] <= tolerance, result
    assert result["max_abs_attention_diff"] <= tolerance, result
    assert all(same == n for same, n in result["greedy_same"]), result


def test_forward_pass_matches_labkit_for_every_config(tmp_path, served, open_page):
    folders = []
    for i, (name, changes) in enumerate(CONFIGS.items()):
        folders.append(tmp_path / name)
        export_web(tiny_model(i, **changes), Tokenizer(), folders[-1], dtype="float32")
    page = open_page(served().url(page_with(folders, tmp_path)))
    for el, folder in zip(components(page, len(folders)), folders, strict=True):
        result = parity(el, folder)
        assert result["tolerance"] == 1e-4
        assert_parity(result, 1e-4)
        # the long prompt's greedy steps went past the context: the page
        # cropped the window there as labkit does
        ref, _, _ = reference_of(folder)
        ctx = json.loads((folder / "model.json").read_text())["config"]["context_len"]
        assert len(ref["2.ids"]) + len(ref["2.greedy"]) > ctx
    assert page.errors == [] and page.external == []


def test_float16_export_is_held_to_1e_3(tmp_path, served, open_page):
    folder = tmp_path / "half"
    spec = export_web(tiny_model(3, **CONFIGS["llama"]), Tokenizer(), folder)
    assert spec["dtype"] == "float16" and spec["tolerance"] == 1e-3
    page = open_page(served().url(page_with([folder], tmp_path)))
    (el,) = components(page, 1)
    assert_parity(parity(el, folder), 1e-3)


def test_bpe_and_char_tokenizers_encode_and_decode_as_labkit(
    tmp_path, served, open_page
):
    bpe = train_bpe_fast(TEXT * 20, 300, special_tokens=["<|endoftext|>"])
    chars = CharTokenizer.from_text(TEXT)
    made = {"bpe": bpe, "chars": chars}
    folders = []
    for name, tok in made.items():
        folders.append(tmp_path / name)
        model = tiny_model(7, vocab_size=tok.vocab_size, context_len=48)
        export_web(model, tok, folders[-1], dtype="float32")
    page = open_page(served().url(page_with(folders, tmp_path)))
    for el, (name, tok) in zip(components(page, 2), made.items(), strict=True):
        assert_parity(parity(el, tmp_path / name), 1e-4)
        texts = TRICKY + [TEXT] if name == "bpe" else [TEXT, TEXT[::-1], ""]
        got = el.evaluate(
            "(el, texts) => texts.map(t => { const k = el.labkitLive.model.tokenizer;"
            " const ids = k.encode(t).ids; return [ids, k.decode(ids)]; })",
            texts,
        )
        for text, (ids, decoded) in zip(texts, got, strict=True):
            assert ids == tok.encode(text), text
            assert decoded == tok.decode(ids) == text
    assert page.errors == []


@pytest.mark.parametrize(
    "settings",
    [
        (0.0, 0, 1.0),
        (1.0, 0, 1.0),
        (0.7, 0, 1.0),
        (1.0, 5, 1.0),
        (1.0, 1, 1.0),
        (1.0, 0, 0.9),
        (1.3, 0, 0.5),
        (0.8, 20, 0.95),
        (2.0, 3, 0.01),
    ],
)
def test_sampling_filters_match_labkit(settings, tmp_path, served, open_page):
    from labkit.sampling import next_token_probs

    folder = tmp_path / "m"
    export_web(tiny_model(), Tokenizer(), folder, reference=False, bundle=False)
    page = open_page(served().url(page_with([folder], tmp_path)))
    components(page, 1)
    t, k, p = settings
    torch.manual_seed(1)
    logits = torch.randn(4, 256) * 3
    got = page.evaluate(
        "([rows, t, k, p]) => rows.map(r => Array.from("
        "LabkitLive.nextTokenProbs(Float32Array.from(r), t, k, p)))",
        [logits.tolist(), t, k, p],
    )
    want = next_token_probs(logits, t, k or None, p if p < 1 else None)
    torch.testing.assert_close(torch.tensor(got, dtype=torch.float32), want)
