"""The live model in a page, checked in a real browser against labkit.

For every ``.labkit-live`` component of a page (labkit/web/labkit-live.js):

- it starts (its model folder loads, no error shown);
- parity: for each prompt of the export's reference.safetensors, which labkit
  wrote at build time from the same stored (float16-rounded) weights
  (labkit.webexport.reference_tensors), the page's tokenizer gives labkit's
  ids; its logits at every prompt position, and at every step of a greedy
  continuation decoded with its KV cache, are within the export's tolerance
  (1e-3 for float16 weights, 1e-4 for float32) of labkit's; the greedy tokens
  are labkit's, all of them (100 after each short prompt); the attention
  weights of the first prompt are within the tolerance too;
- it answers: a prompt typed into its box changes the tokens and the
  next-token bars; moving the temperature redraws the bars; Greedy writes a
  continuation; the attention maps are drawn, one per head.

The differences are computed here, in Python, from the raw float32 numbers
the page returns. ``check_live(page, html_root)`` returns one dict per
component; ``live_problems(result)`` the lines that fail the check.
Used by booktools/check_site.py and tests/booktools/test_live_component.py.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np

# Runs in the page: the component's own model on the reference prompts.
PARITY_JS = """(el, {prompts, steps}) => {
  const m = el.labkitLive.model;
  const raw = (a) => {  // a Float32Array as base64 of its bytes
    const u = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    let s = "";
    for (let i = 0; i < u.length; i += 8192) {
      s += String.fromCharCode.apply(null, u.subarray(i, i + 8192));
    }
    return btoa(s);
  };
  const greedy = {temperature: 0, topK: 0, topP: 1};
  return prompts.map((text, i) => {
    const ids = m.tokenizer.encode(text).ids.slice(-m.gpt.cfg.context_len);
    const run = m.gpt.forward(ids, null, {weights: i === 0});
    const tokens = [], stepLogits = [];
    for (const s of LabkitLive.decode(m.gpt, ids, steps[i], greedy, null, true)) {
      tokens.push(s.token);
      stepLogits.push(...s.logits);
    }
    const attention = run.attention
      ? raw(Float32Array.from(run.attention.flatMap((l) => l.flatMap((w) => [...w]))))
      : null;
    return {ids, logits: raw(run.logits), tokens,
            stepLogits: raw(Float32Array.from(stepLogits)), attention};
  });
}"""

STATE_JS = "el => el.dataset.state"
BARS_JS = "el => JSON.stringify(el.labkitLive.barsData || [])"


def _floats(text: str, shape) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.float32).reshape(shape)


def reference_of(folder: Path) -> tuple[dict, list[str], float]:
    """(tensors, prompts, tolerance) of an export folder."""
    from safetensors import safe_open
    from safetensors.numpy import load_file

    spec = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    path = folder / spec.get("reference", "reference.safetensors")
    with safe_open(str(path), "np") as f:
        prompts = json.loads(f.metadata()["prompts"])
    return load_file(str(path)), prompts, float(spec["tolerance"])


def _first_difference(a: list, b: list) -> int | None:
    return next((j for j, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), None)


def parity(el, folder: Path) -> dict:
    """The page's numbers against labkit's (see the module docstring)."""
    ref, prompts, tol = reference_of(folder)
    steps = [len(ref[f"{i}.greedy"]) for i in range(len(prompts))]
    runs = el.evaluate(PARITY_JS, {"prompts": prompts, "steps": steps})
    out = {
        "prompts": len(prompts),
        "tolerance": tol,
        "ids_differ": [],
        "max_abs_logit_diff": 0.0,
        "max_abs_attention_diff": None,
        "greedy_same": [],
    }
    for i, run in enumerate(runs):
        ids = ref[f"{i}.ids"].tolist()
        if run["ids"] != ids:
            out["ids_differ"].append(
                f"{prompts[i][:30]!r}: page {run['ids'][:8]}..., labkit {ids[:8]}..."
            )
            continue
        logits = _floats(run["logits"], ref[f"{i}.logits"].shape)
        diff = np.abs(logits - ref[f"{i}.logits"]).max()
        greedy = ref[f"{i}.greedy"].tolist()
        first = _first_difference(run["tokens"], greedy)
        same = len(greedy) if first is None else first
        # logits of the steps decoded on the same text as labkit's (and the
        # first step that chose otherwise)
        upto = same + (first is not None)
        page_steps = _floats(run["stepLogits"], ref[f"{i}.step_logits"].shape)
        step_diff = np.abs(page_steps[:upto] - ref[f"{i}.step_logits"][:upto])
        diff = max(diff, step_diff.max()) if upto else diff
        out["max_abs_logit_diff"] = max(out["max_abs_logit_diff"], float(diff))
        out["greedy_same"].append([same, len(greedy)])
        if run["attention"] is not None and "0.attention" in ref:
            att = _floats(run["attention"], ref["0.attention"].shape)
            att_diff = np.abs(att - ref["0.attention"]).max()
            out["max_abs_attention_diff"] = float(att_diff)
    return out


def answers(page, el) -> dict:
    """Type a prompt, move the temperature, press Greedy: does the page
    answer? Returns what changed."""
    parts = el.get_attribute("data-parts") or "next generate attention"
    result: dict = {}
    before = el.evaluate(BARS_JS)
    tokens_before = el.evaluate("el => el.querySelector('.ll-tokens').textContent")
    typed = "The dog ran to the"
    el.query_selector("textarea.ll-prompt").fill(typed)
    page.wait_for_function(  # the redraw waits for the next animation frame
        "([el, t]) => el.labkitLive.text === t", arg=[el, typed], timeout=20_000
    )
    result["tokens_changed"] = tokens_before != el.evaluate(
        "el => el.querySelector('.ll-tokens').textContent"
    )
    after = el.evaluate(BARS_JS)
    if "next" in parts:
        result["bars_changed"] = before != after and len(json.loads(after)) > 0
        el.query_selector('input[name="temperature"]').fill("2")  # redraws at once
        result["temperature_redraws"] = after != el.evaluate(BARS_JS)
    if "generate" in parts:
        el.query_selector('input[name="new tokens"]').fill("20")
        el.query_selector("button.ll-greedy").click()
        page.wait_for_function(
            "el => el.labkitLive.generated && !el.labkitLive.running",
            arg=el,
            timeout=30_000,
        )
        result["greedy_continuation"] = el.evaluate(
            "el => el.labkitLive.generated.continuation"
        )
    if "attention" in parts:
        result["attention_maps"] = el.evaluate(
            "el => el.querySelectorAll('.ll-heads canvas').length"
        )
        result["heads"] = el.evaluate("el => el.labkitLive.model.gpt.H")
    return result


def check_live(page, html_root: Path, timeout_ms: int = 60_000) -> list[dict]:
    """Check every live component on ``page`` (served from ``html_root``)."""
    results = []
    for i, el in enumerate(page.query_selector_all(".labkit-live")):
        el.scroll_into_view_if_needed()
        try:
            page.wait_for_function(
                "el => el.dataset.state && el.dataset.state !== 'loading'",
                arg=el,
                timeout=timeout_ms,
            )
        except Exception:  # playwright's TimeoutError: reported as the state
            pass
        state = el.evaluate(STATE_JS)
        result = {"index": i, "state": state}
        if state != "ready":
            result["error"] = el.evaluate("el => el.labkitLive && el.labkitLive.error")
            results.append(result)
            continue
        url = el.evaluate("el => el.labkitLive.url")
        folder = html_root / unquote(urlparse(url).path).lstrip("/")
        result["model"] = str(folder.relative_to(html_root))
        result["parity"] = parity(el, folder)
        result["answers"] = answers(page, el)
        results.append(result)
    return results


def live_problems(result: dict) -> list[str]:
    """What fails the check for one component's result."""
    where = f"live model {result['index']}"
    if result["state"] != "ready":
        return [f"{where} did not start ({result['state']}): {result.get('error')}"]
    out = []
    p = result["parity"]
    out += [f"{where}: tokenizer differs from labkit: {d}" for d in p["ids_differ"]]
    if p["max_abs_logit_diff"] > p["tolerance"]:
        out.append(
            f"{where}: logits differ from labkit's by {p['max_abs_logit_diff']:.3g} "
            f"> {p['tolerance']:g}"
        )
    att = p["max_abs_attention_diff"]
    if att is not None and att > p["tolerance"]:
        out.append(f"{where}: attention differs from labkit's by {att:.3g}")
    for same, n in p["greedy_same"]:
        if same != n:
            out.append(f"{where}: greedy continuation leaves labkit's at step {same}")
    a = result["answers"]
    for key in ("tokens_changed", "bars_changed", "temperature_redraws"):
        if a.get(key) is False:
            out.append(f"{where}: {key.replace('_', ' ')}: no")
    if a.get("greedy_continuation") == "":
        out.append(f"{where}: Greedy wrote nothing")
    if "attention_maps" in a and a["attention_maps"] != a["heads"]:
        n, heads = a["attention_maps"], a["heads"]
        out.append(f"{where}: {n} attention maps for {heads} heads")
    return out
