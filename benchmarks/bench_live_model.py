"""Speed and weight of the live model in the page, beside labkit in torch.

For labkit's small model (recipes.load_small_model, 0.84M parameters) and a
chapter-11-sized model (2 layers, d_model 64, 4 heads, context 64; its
weights random: the time per token does not depend on their values), in
headless chromium (Debian's), it prints

- milliseconds per generated token in the page (labkit/web/labkit-live.js),
  greedy from "Once upon a time" for as many tokens as fit the context, with
  the KV cache and without it (each step then runs the whole window again),
  the median of --repeats runs after one warm-up run;
- the same figures for labkit itself (torch on the CPU, one thread like the
  page, labkit.sampling.generate with use_cache on and off): the reference;
- the page weight the component adds: the bytes a page with the component
  fetched, minus those of the same page without it (labkit-live.js,
  model.json and the float16 weights; reference.safetensors is read only by
  the site check, bundle.js only by a page opened as a file).

Goals (issue 18): <= 5 ms per token with the cache for the small model, and
<= 2 MB added to a page.

    .venv/bin/python benchmarks/bench_live_model.py [--repeats 5]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from booktools.check_site import CHROMIUM_ARGS, find_chromium, serve
from labkit import webexport
from labkit.model import GPT, GPTConfig
from labkit.recipes import load_small_model
from labkit.sampling import generate
from labkit.tokenizer import Tokenizer

PROMPT = "Once upon a time"
CHAPTER_11 = GPTConfig(
    vocab_size=256, context_len=64, n_layers=2, n_heads=4, d_model=64
)  # notebooks/11_training_loop.ipynb's defaults
TIME_JS = """(el, {n, useCache, repeats}) => {
  const m = el.labkitLive.model;
  const ids = m.tokenizer.encode(el.dataset.prompt).ids;
  const greedy = {temperature: 0, topK: 0, topP: 1};
  const once = () => {
    const t0 = performance.now();
    let made = 0;
    for (const _ of LabkitLive.decode(m.gpt, ids, n, greedy, null, useCache)) made++;
    return (performance.now() - t0) / made;
  };
  once();  // warm-up: the first run also compiles the code
  return Array.from({length: repeats}, once);
}"""


def page(folder: Path, name: str, with_component: bool) -> str:
    div = (
        f'<div class="labkit-live" data-mount="auto" data-src="{name}/" '
        f'data-prompt="{PROMPT}" data-parts="next"></div>'
        if with_component
        else ""
    )
    script = f"<script src='{webexport.SCRIPT.name}' defer></script>" * with_component
    html = (
        "<!doctype html><meta charset='utf-8'><link rel='icon' href='data:,'>"
        f"{script}<body><p>a page</p>{div}</body>"
    )
    path = folder / f"{name}-{'with' if with_component else 'without'}.html"
    path.write_text(html)
    return path.name


def fetched_bytes(browser, url: str, wait_ready: bool) -> int:
    ctx = browser.new_context()
    p = ctx.new_page()
    sizes = []
    p.on("response", lambda r: sizes.append(len(r.body())) if r.ok else None)
    p.goto(url, wait_until="networkidle")
    if wait_ready:
        p.wait_for_selector('.labkit-live[data-state="ready"]', timeout=60_000)
    ctx.close()
    return sum(sizes)


def page_ms(browser, url: str, n: int, use_cache: bool, repeats: int) -> float:
    ctx = browser.new_context()
    p = ctx.new_page()
    p.goto(url)
    el = p.wait_for_selector('.labkit-live[data-state="ready"]', timeout=60_000)
    runs = el.evaluate(TIME_JS, {"n": n, "useCache": use_cache, "repeats": repeats})
    ctx.close()
    return statistics.median(runs)


def torch_ms(model, ids, n: int, use_cache: bool, repeats: int) -> float:
    generate(model, [ids], n, temperature=0, use_cache=use_cache)  # warm-up
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        generate(model, [ids], n, temperature=0, use_cache=use_cache)
        runs.append((time.perf_counter() - start) * 1000 / n)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("no chromium found (scripts/setup.sh installs Debian's)")
    from playwright.sync_api import sync_playwright

    torch.set_num_threads(1)
    small, tokenizer = load_small_model()
    torch.manual_seed(0)
    models = {"small": small, "chapter11": GPT(CHAPTER_11).eval()}
    folder = Path(tempfile.mkdtemp(prefix="bench-live-"))
    (folder / webexport.SCRIPT.name).write_bytes(webexport.SCRIPT.read_bytes())
    for name, model in models.items():
        webexport.export_web(model, Tokenizer(), folder / name, name=name)
    server, base = serve(folder)
    ids = tokenizer.encode(PROMPT)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        print(f"chromium {browser.version}, torch {torch.__version__} (1 thread)")
        print(f"{'model':10} {'params':>8} {'tokens':>6}  {'ms/token':>26}  reference")
        for name, model in models.items():
            n = model.cfg.context_len - len(ids)  # all within the context
            url = f"{base}/{page(folder, name, True)}"
            params = sum(p.numel() for p in model.parameters())
            for use_cache in (True, False):
                ms = page_ms(browser, url, n, use_cache, args.repeats)
                ref = torch_ms(model, ids, n, use_cache, args.repeats)
                how = "with the KV cache" if use_cache else "without the cache"
                print(
                    f"{name:10} {params / 1e6:7.2f}M {n:6d}  page {ms:6.2f} {how:17}"
                    f"  labkit/torch {ref:6.2f}"
                )
            added = fetched_bytes(browser, url, True) - fetched_bytes(
                browser, f"{base}/{page(folder, name, False)}", False
            )
            files = {
                f: (folder / name / f).stat().st_size
                for f in ("model.json", "model.safetensors")
            }
            files["labkit-live.js"] = webexport.SCRIPT.stat().st_size
            parts = ", ".join(f"{k} {v / 1e6:.3f}" for k, v in files.items())
            print(f"{name:10} page weight added: {added / 1e6:.2f} MB ({parts})")
        browser.close()
    server.shutdown()
    print("goals: <= 5 ms/token with the cache (small model); <= 2 MB added a page")


if __name__ == "__main__":
    main()
