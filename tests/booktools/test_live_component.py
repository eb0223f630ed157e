"""The live-model component in a real browser: what the reader sees and does,
bad input, the ways it can fail to start, and the site check's parity test
failing on a planted error in the exported weights."""

import json
import struct

import numpy as np
from live_helpers import tiny_model, wait_ready

from booktools.check_site import expected_on_page, problems_of
from booktools.live_check import check_live, live_problems
from labkit.tokenizer import CharTokenizer, Tokenizer
from labkit.webexport import export_web

NOTES = "el => Object.keys(el.labkitLive.notes).sort()"


def exported(tmp_path, tokenizer=None, **kw):
    """A tiny byte-level model exported with its page (index.html)."""
    tokenizer = tokenizer or Tokenizer()
    model = tiny_model(vocab_size=tokenizer.vocab_size, **kw)
    export_web(model, tokenizer, tmp_path / "web", page=True)
    return tmp_path / "web"


def opened(tmp_path, served, open_page, **kw):
    folder = exported(tmp_path, **kw)
    page = open_page(served(folder).url("index.html"))
    return page, wait_ready(page), folder


def set_prompt(page, el, text):
    el.query_selector("textarea.ll-prompt").fill(text)
    page.wait_for_function("([el, t]) => el.labkitLive.text === t", arg=[el, text])


def set_control(page, el, name, value):
    el.query_selector(f'input[name="{name}"]').fill(str(value))
    page.wait_for_timeout(50)


def bars(el):
    return el.evaluate("el => el.labkitLive.barsData")


def test_component_passes_the_site_check(tmp_path, served, open_page):
    page, el, folder = opened(tmp_path, served, open_page)
    (result,) = check_live(page, folder)
    assert live_problems(result) == [], result
    assert result["answers"]["attention_maps"] == 4
    assert page.errors == [] and page.external == []


def test_planted_error_in_the_weights_fails_the_check(tmp_path, served, open_page):
    folder = exported(tmp_path)
    path = folder / "model.safetensors"
    blob = bytearray(path.read_bytes())
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8 : 8 + n])
    start = 8 + n + header["blocks.1.mlp.down_proj.weight"]["data_offsets"][0]
    weights = np.frombuffer(blob, dtype=np.float16, count=8, offset=start).copy()
    weights[3] += np.float16(0.05)  # one weight of about 35,000, a little off
    blob[start : start + 16] = weights.tobytes()
    path.write_bytes(bytes(blob))
    page = open_page(served(folder).url("index.html"))
    wait_ready(page)
    (result,) = check_live(page, folder)
    problems = live_problems(result)
    assert any("logits differ from labkit's" in p for p in problems), problems
    assert result["parity"]["max_abs_logit_diff"] > 1e-3
    # and the site check fails the page for it
    page_result = {
        "figures_drawn": 0,
        "figures_expected": 0,
        "widgets_expected": 0,
        "math_rendered": True,
        "slider": None,
        "live_expected": 1,
        "live": [result],
        "external_requests": [],
        "missing": [],
        "console_errors": [],
    }
    assert any("logits differ" in p for p in problems_of(page_result))


def test_planted_error_in_the_tokenizer_fails_the_check(tmp_path, served, open_page):
    folder = exported(tmp_path)
    spec = json.loads((folder / "model.json").read_text())
    ids = spec["tokenizer"]["byte_ids"]
    ids[ord("e")], ids[ord("a")] = ids[ord("a")], ids[ord("e")]
    (folder / "model.json").write_text(json.dumps(spec))
    page = open_page(served(folder).url("index.html"))
    wait_ready(page)
    (result,) = check_live(page, folder)
    assert any("tokenizer differs" in p for p in live_problems(result))


def test_prompt_longer_than_the_context_is_cropped_and_said(
    tmp_path, served, open_page
):
    page, el, _ = opened(tmp_path, served, open_page)  # context_len 32
    set_prompt(page, el, "abcdefghij" * 5)  # 50 bytes
    assert "crop" in el.evaluate(NOTES)
    note = el.query_selector('[data-note="crop"]').inner_text()
    assert "50 tokens" in note and "last 32" in note and "first 18" in note
    assert len(el.query_selector_all(".ll-tok.ll-cropped")) == 18
    assert el.evaluate("el => el.labkitLive.ids.length") == 32
    assert len(el.query_selector_all(".ll-heads canvas")) == 4
    made = el.evaluate("el => el.labkitLive.generate({greedy: true, n: 10})")
    assert len(made["ids"]) == 10
    assert page.errors == []


def test_temperature_zero_is_greedy_and_said(tmp_path, served, open_page):
    page, el, _ = opened(tmp_path, served, open_page)
    set_control(page, el, "temperature", 0)
    probs = [b["prob"] for b in bars(el)]
    assert probs[0] == 1 and sum(probs[1:]) == 0
    assert "temperature" in el.evaluate(NOTES)
    assert "greedy" in el.query_selector('[data-note="temperature"]').inner_text()
    sampled = el.evaluate("el => el.labkitLive.generate({n: 15, seed: 3})")
    greedy = el.evaluate("el => el.labkitLive.generate({greedy: true, n: 15})")
    assert sampled["ids"] == greedy["ids"]


def test_top_p_zero_is_clamped_and_shown(tmp_path, served, open_page):
    page, el, _ = opened(tmp_path, served, open_page)
    set_control(page, el, "top-p", 0)
    assert "top-p" in el.evaluate(NOTES)
    assert "clamped to 0.01" in el.query_selector('[data-note="top-p"]').inner_text()
    shown = el.evaluate(
        "el => el.querySelector('input[name=\"top-p\"]').parentElement.textContent"
    )
    assert "0.01" in shown
    kept = [b for b in bars(el) if b["kept"]]
    assert len(kept) == 1 and kept[0]["prob"] == 1
    set_control(page, el, "top-p", 0.5)
    assert "top-p" not in el.evaluate(NOTES)


def test_characters_outside_the_alphabet_are_shown_as_unknown(
    tmp_path, served, open_page
):
    chars = CharTokenizer.from_text("abc def\n")
    page, el, _ = opened(tmp_path, served, open_page, tokenizer=chars)
    set_prompt(page, el, "bad caf\u00e9 \U0001f642 face")
    assert el.evaluate("el => el.labkitLive.unknown") == ["\u00e9", "\U0001f642"]
    note = el.query_selector('[data-note="unknown"]').inner_text()
    assert "2 characters" in note and "U+00E9" in note and "U+1F642" in note
    assert len(el.query_selector_all(".ll-tok.ll-unknown")) == 2
    ids = el.evaluate("el => el.labkitLive.ids")
    assert ids == chars.encode("bad caf  face")
    assert len(bars(el)) == min(20, chars.vocab_size)
    made = el.evaluate("el => el.labkitLive.generate({n: 5, seed: 1})")
    assert len(made["ids"]) == 5
    assert page.errors == []


def test_empty_prompt_is_said_and_breaks_nothing(tmp_path, served, open_page):
    page, el, _ = opened(tmp_path, served, open_page)
    set_prompt(page, el, "")
    assert "empty" in el.evaluate(NOTES)
    assert bars(el) == []
    assert el.evaluate("el => el.labkitLive.generate({n: 5})") is None
    set_prompt(page, el, "a")
    assert "empty" not in el.evaluate(NOTES) and len(bars(el)) == 20
    assert page.errors == []


def test_sampling_repeats_with_its_seed_and_the_cache_changes_nothing(
    tmp_path, served, open_page
):
    page, el, _ = opened(tmp_path, served, open_page)
    run = "(el, kw) => el.labkitLive.generate(kw)"
    a = el.evaluate(run, {"n": 40, "seed": 5})
    b = el.evaluate(run, {"n": 40, "seed": 5, "useCache": False})
    c = el.evaluate(run, {"n": 40, "seed": 6})
    assert a["ids"] == b["ids"] != c["ids"]
    g1 = el.evaluate(run, {"n": 40, "greedy": True})
    g2 = el.evaluate(run, {"n": 40, "greedy": True, "useCache": False})
    assert g1["ids"] == g2["ids"]
    speed = el.query_selector(".ll-speed").inner_text()
    assert "ms per token" in speed and "KV cache off" in speed


def test_missing_model_files_are_said(tmp_path, served, open_page):
    folder = exported(tmp_path)
    (folder / "model.safetensors").unlink()
    page = open_page(served(folder).url("index.html"))
    el = wait_ready(page)
    assert el.get_attribute("data-state") == "error"
    text = el.inner_text()
    assert "could not start" in text and "model.safetensors not found" in text


def test_page_opened_as_a_file_runs_from_its_bundle(tmp_path, open_page):
    folder = exported(tmp_path)
    page = open_page((folder / "index.html").as_uri())
    el = wait_ready(page)
    assert el.get_attribute("data-state") == "ready", el.inner_text()
    assert len(bars(el)) == 20
    assert page.errors == [] and page.external == []


def test_page_opened_as_a_file_without_bundle_says_what_to_do(tmp_path, open_page):
    folder = exported(tmp_path)
    (folder / "bundle.js").unlink()
    page = open_page((folder / "index.html").as_uri())
    el = wait_ready(page)
    assert el.get_attribute("data-state") == "error"
    assert "serve the folder over HTTP" in el.inner_text()


def test_site_check_expects_the_intro_pages_live_model():
    assert expected_on_page("book/intro.html") == (0, 0, 1)


def test_generation_ends_at_a_stop_token(tmp_path, served, open_page):
    with_eot = Tokenizer.from_merges([], special_tokens=["<|endoftext|>"])
    page, el, _ = opened(tmp_path, served, open_page, tokenizer=with_eot)
    run = (
        "(el, stop) => Array.from(LabkitLive.decode(el.labkitLive.model.gpt, "
        "el.labkitLive.ids, 30, {temperature: 0, topK: 0, topP: 1}, null, true, "
        "new Set(stop)), s => s.token)"
    )
    free = el.evaluate(run, [])
    assert len(free) == 30
    stopped = el.evaluate(run, [free[4]])
    assert stopped == free[: free.index(free[4]) + 1]  # the stop token kept
    el.evaluate('el => { el.dataset.stop = \'["<|endoftext|>", "<|nope|>"]\' }')
    el.evaluate("el => el.labkitLive.generate({greedy: true, n: 5})")
    note = el.query_selector('[data-note="stop"]').inner_text()
    assert "<|nope|>" in note and "<|endoftext|>" not in note
