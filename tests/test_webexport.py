"""labkit.webexport and labkit.live: the files a page reads, the reference
logits, the JavaScript pattern, the CLI, and the output a chapter stores.
(The page's side, in a real browser: tests/booktools/test_live_*.py.)"""

import json
import re
import subprocess
import sys

import pytest
import regex
import torch
from live_helpers import tiny_model
from safetensors import safe_open
from safetensors.torch import load_file

from labkit import cli, live, webexport
from labkit.model import GPT
from labkit.sampling import generate
from labkit.tokenizer import CharTokenizer, Tokenizer, train_bpe_fast
from labkit.tokenizer.pretokenize import GPT2_PATTERN, GPT4_PATTERN


def test_export_writes_what_the_page_reads(tmp_path):
    model = tiny_model(tie_weights=False, pos="rope")
    spec = webexport.export_web(model, Tokenizer(), tmp_path, name="t", page=True)
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {
        "model.json",
        "model.safetensors",
        "reference.safetensors",
        "bundle.js",
        "index.html",
        "labkit-live.js",
    }
    assert json.loads((tmp_path / "model.json").read_text()) == spec
    assert spec["format"] == "labkit.web" and spec["version"] == 1
    assert spec["config"]["n_kv_heads"] == 4 and spec["config"]["d_mlp"] == 128
    weights = load_file(tmp_path / "model.safetensors")
    assert set(weights) == set(model.state_dict())  # untied: lm_head stored
    assert all(w.dtype == torch.float16 for w in weights.values())
    assert spec["n_params"] == sum(p.numel() for p in model.parameters())
    assert (tmp_path / "model.safetensors").stat().st_mode & 0o044 == 0o044


def test_tied_head_is_stored_once(tmp_path):
    webexport.export_web(tiny_model(), Tokenizer(), tmp_path, reference=False)
    assert "lm_head.weight" not in load_file(tmp_path / "model.safetensors")
    assert not (tmp_path / "reference.safetensors").exists()


def test_reference_is_labkit_on_the_stored_float16_weights(tmp_path):
    model = tiny_model(seed=2)
    webexport.export_web(model, Tokenizer(), tmp_path)
    ref = load_file(tmp_path / "reference.safetensors")
    stored = GPT(model.cfg).eval()
    weights = load_file(tmp_path / "model.safetensors")
    stored.load_state_dict({k: v.float() for k, v in weights.items()}, strict=False)
    ids = ref["0.ids"].tolist()
    assert ids == Tokenizer().encode("Once upon a time")
    with torch.no_grad():
        logits = stored(torch.tensor([ids]))[0]
        fp32 = model(torch.tensor([ids]))[0]
    # (prompt 0 went through the written-out attention, for its weights)
    torch.testing.assert_close(ref["0.logits"], logits, rtol=0, atol=1e-5)
    assert (fp32 - logits).abs().max() > 1e-3  # float16 rounding shows
    assert ref["0.greedy"].tolist() == generate(stored, [ids], 100, temperature=0)[0]
    L, H, T = model.cfg.n_layers, model.cfg.n_heads, len(ids)
    assert ref["0.attention"].shape == (L, H, T, T)
    torch.testing.assert_close(ref["0.attention"].sum(-1), torch.ones(L, H, T))
    with safe_open(tmp_path / "reference.safetensors", "pt") as f:
        prompts = json.loads(f.metadata()["prompts"])
    long_ids = ref["2.ids"]
    assert len(prompts) == 3 and len(long_ids) == model.cfg.context_len - 4
    assert len(long_ids) + len(ref["2.greedy"]) > model.cfg.context_len
    assert ref["2.step_logits"].shape == (len(ref["2.greedy"]), 256)


def test_float32_export_has_the_tighter_tolerance(tmp_path):
    spec = webexport.export_web(tiny_model(), Tokenizer(), tmp_path, dtype="float32")
    assert spec["tolerance"] == 1e-4
    weights = load_file(tmp_path / "model.safetensors")
    torch.testing.assert_close(
        weights["tok_emb.weight"], tiny_model().tok_emb.weight, rtol=0, atol=0
    )


def test_bad_exports_are_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="dtype='int8' is not one of"):
        webexport.export_web(tiny_model(), Tokenizer(), tmp_path, dtype="int8")
    bpe = train_bpe_fast(" ".join(f"word{i}" for i in range(400)), 300)
    with pytest.raises(
        ValueError, match="tokenizer has 300 tokens, the model only 256"
    ):
        webexport.export_web(tiny_model(), bpe, tmp_path)
    gpt4 = train_bpe_fast("hello world " * 50, 260, pattern="gpt4")
    with pytest.raises(ValueError, match="no JavaScript equivalent"):
        webexport.export_web(tiny_model(vocab_size=260), gpt4, tmp_path)


def test_tokenizer_spec_of_bpe_and_chars():
    bpe = train_bpe_fast("aaabdaaabac " * 20, 260, special_tokens=["<|x|>"])
    spec = webexport.tokenizer_spec(bpe)
    assert spec["kind"] == "bpe" and len(spec["vocab"]) == bpe.vocab_size
    first = spec["merges"][0]
    a, b = bpe.merges[0]
    assert [bytes.fromhex(spec["vocab"][i]) for i in first] == [a, b, a + b]
    assert spec["special_tokens"] == {"<|x|>": bpe.vocab_size - 1}
    assert webexport.tokenizer_spec(CharTokenizer("ab")) == {
        "kind": "char",
        "chars": "ab",
    }
    assert webexport.tokenizer_spec(Tokenizer())["pattern_js"] is None


def test_js_pattern_writes_out_pythons_classes():
    js = webexport.js_pattern(GPT2_PATTERN)
    assert "\\p{" not in js and "\\s" not in js and "\\S" not in js
    assert js.startswith("'s|'t|'re|'ve|'m|'ll|'d| ?[")
    space = webexport._CLASSES["\\s"]
    assert "\\u{85}" in space and "\\u{feff}" not in space  # Python's \s, not JS's
    # the written-out classes, read back by Python, cut text as the original
    back = regex.compile(re.sub(r"\\u\{(\w+)\}", lambda m: f"\\U{m[1]:0>8}", js))
    text = "I'm  here\u0085 caf\u00e9 42x\ufeff\u4e16\u754c!!\n\n end "
    assert back.findall(text) == regex.findall(GPT2_PATTERN, text)
    with pytest.raises(ValueError, match="possessive quantifier or inline flag"):
        webexport.js_pattern(GPT4_PATTERN)
    with pytest.raises(ValueError, match="pattern escape .* at 0 is not supported"):
        webexport.js_pattern(r"\d+")


def test_reference_prompts_keep_a_char_tokenizers_alphabet():
    chars = CharTokenizer("Oacemnoptiu ")
    prompts = webexport.reference_prompts(chars, 16)
    assert [n for _, n in prompts] == [100, 100, 12]
    assert prompts[0][0] == "Once upon a time"
    assert all(set(p) <= set(chars.chars) for p, _ in prompts)
    assert len(chars.encode(prompts[2][0])) == 12


def test_cli_exports_a_run_folder(tmp_path, capsys):
    corpus = tmp_path / "notes.txt"
    corpus.write_text("".join(f"note {i}: the cat sat.\n" for i in range(200)))
    run = tmp_path / "run"
    argv = ["train", "--corpus", str(corpus), "--tokenizer", "char"]
    argv += ["--out", str(run), "--set", "model.context_len=16"]
    for s in ("steps=2", "warmup_steps=1", "eval_every=2", "batch_size=2"):
        argv += ["--set", f"train.{s}"]
    argv += ["--set", "train.eval_batches=1", "--set", "train.progress=false"]
    assert cli.main(argv) == 0
    out = tmp_path / "web"
    assert cli.main(["export-web", str(run), "-o", str(out), "--dtype", "float32"]) == 0
    said = capsys.readouterr().out
    assert f"{out}/index.html" in said and "step_000002" in said
    spec = json.loads((out / "model.json").read_text())
    assert spec["source"]["kind"] == "run" and spec["name"] == "run"
    assert spec["dtype"] == "float32" and (out / "index.html").exists()


def test_cli_refuses_what_it_cannot_export(tmp_path, capsys):
    assert cli.main(["export-web", "-o", str(tmp_path)]) == 2
    assert "give a run folder or --recipe small|sft" in capsys.readouterr().err
    assert cli.main(["export-web", str(tmp_path / "nope"), "-o", str(tmp_path)]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert cli.main(["export-web", str(tmp_path), "-o", str(tmp_path / "o")]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_sft_recipe_exports_the_chat_model_with_its_chat_tokens(tmp_path, monkeypatch):
    from labkit import recipes
    from labkit.chat import CHAT_TOKENS, chat_tokenizer

    tokenizer = chat_tokenizer()
    model = tiny_model(vocab_size=tokenizer.vocab_size)
    monkeypatch.setattr(recipes, "load_sft_model", lambda: (model, tokenizer))
    assert cli.main(["export-web", "--recipe", "sft", "-o", str(tmp_path)]) == 0
    spec = json.loads((tmp_path / "model.json").read_text())
    assert spec["name"] == "sft" and spec["source"]["kind"] == "recipe"
    assert spec["source"]["recipe"] == recipes.sft_recipe_name()
    specials = spec["tokenizer"]["special_tokens"]
    assert [specials[t] for t in CHAT_TOKENS] == [256, 257, 258]
    shown = live.live_model("sft", stop=("<|end|>",))._repr_mimebundle_()
    assert shown[live.LIVE_MIME]["source"] == "sft"
    assert shown[live.LIVE_MIME]["model"] == "sft"
    with pytest.raises(ValueError, match="'tiny' is not 'small', 'sft'"):
        webexport.export_source("tiny", tmp_path / "other")


# --- labkit.live: the output a chapter stores ------------------------------------
def test_live_model_outside_a_server_exports_nothing_and_is_the_same_everywhere(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JPY_PARENT_PID", raising=False)
    shown = live.live_model(prompt="Hi", parts=("next",))._repr_mimebundle_()
    assert not (tmp_path / "live_models").exists()
    assert shown[live.LIVE_MIME] == {
        "version": 1,
        "model": "small",
        "source": "small",
        "prompt": "Hi",
        "parts": ["next"],
        "temperature": 1.0,
        "top_k": 0,
        "top_p": 1.0,
    }
    html = shown["text/html"]
    assert 'data-prompt="Hi"' in html and ' data-files="' not in html
    assert "run this cell to start it" in html and "<script>" in html
    assert live.live_model(prompt="Hi", parts=("next",))._repr_mimebundle_() == shown


def test_live_model_refuses_bad_settings_by_name():
    with pytest.raises(ValueError, match="parts=\\('bars',\\)"):
        live.live_model(parts=("bars",))
    with pytest.raises(ValueError, match="top_p=1.5"):
        live.live_model(top_p=1.5)
    with pytest.raises(ValueError, match="name='a/b'"):
        live.live_model(name="a/b")


def test_live_model_in_a_jupyter_kernel_exports_beside_the_notebook(
    tmp_path, monkeypatch
):
    root = tmp_path / "root"
    notebooks = root / "my notebooks"
    notebooks.mkdir(parents=True)
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    info = {"pid": 4242, "root_dir": str(root), "base_url": "/lab-base/"}
    (runtime / "jpserver-4242.json").write_text(json.dumps(info))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("JPY_PARENT_PID", "4242")
    monkeypatch.setenv("JPY_SESSION_NAME", str(notebooks / "ch.ipynb"))
    made = live.live_model((tiny_model(), Tokenizer()), name="mine")
    assert made.files_url == "/lab-base/files/my%20notebooks/live_models/"
    folder = notebooks / "live_models"
    assert (folder / "labkit-live.js").read_bytes() == webexport.SCRIPT.read_bytes()
    assert {p.name for p in (folder / "mine").iterdir()} == {
        "model.json",
        "model.safetensors",
    }
    html = made._repr_mimebundle_()["text/html"]
    assert 'data-src="/lab-base/files/my%20notebooks/live_models/mine/"' in html
    assert made.spec["source"] is None  # a model in memory: the book cannot
    # a kernel started by nbclient: JPY_PARENT_PID names no server
    monkeypatch.setenv("JPY_PARENT_PID", "4243")
    assert live.jupyter_server() is None


def test_book_html_mounts_itself_and_has_no_script():
    spec = live.live_model(prompt='say "hi" <b>')._repr_mimebundle_()[live.LIVE_MIME]
    html = live.live_html(spec, book=True)
    assert 'data-mount="auto"' in html and "<script" not in html
    assert 'data-prompt="say &quot;hi&quot; &lt;b&gt;"' in html


def test_import_labkit_live_does_not_import_torch():
    code = "import labkit.live, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
