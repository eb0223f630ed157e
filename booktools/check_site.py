"""Open every page of the built book in a real headless browser, offline.

For each page it asserts, and records in ``_build/site_check.json``:
- every plotly figure the chapter stores is drawn (counted against the notebook);
- the first slider figure redraws when another step is chosen with the mouse;
- no request leaves 127.0.0.1 (the browser's DNS is cut and any such request is
  blocked and reported), no local file is missing;
- no JavaScript console error or uncaught exception;
- math (MathJax) and saved widgets render from the book's own copies;
- every live model (labkit.live) starts, its logits match labkit's within the
  export's tolerance and its greedy continuations are labkit's, and it answers
  a typed prompt (booktools/live_check.py).
A full-page screenshot of each page is kept in ``_build/screenshots/``.

Usage: python -m booktools.check_site _build/html
Skips, saying why, only when no chromium can be found.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

from booktools.live_check import check_live, live_problems

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # cut the network: every host name but the local server fails to resolve
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def expected_figures(notebook: Path) -> tuple[int, int, int]:
    """(plotly figures, saved widget views, live models) a chapter shows."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    figures = widgets = live = 0
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] != "code" or {"remove-output", "remove-cell"} & set(tags):
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            figures += "application/vnd.plotly.v1+json" in data
            widgets += "application/vnd.jupyter.widget-view+json" in data
            live += "application/vnd.labkit.live+json" in data
    return figures, widgets, live


def expected_on_page(rel: str) -> tuple[int, int, int]:
    """What the page's source shows: a chapter's outputs, or the live models
    a markdown page holds as raw HTML."""
    source = ROOT / Path(rel).with_suffix(".ipynb")
    if source.is_file():
        return expected_figures(source)
    source = ROOT / Path(rel).with_suffix(".md")
    text = source.read_text(encoding="utf-8") if source.is_file() else ""
    return 0, 0, text.count('class="labkit-live"')


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


SLIDER_STATE = """gd => JSON.stringify({
  active: gd._fullLayout.sliders[0].active,
  visible: gd._fullData.map(t => t.visible),
  svg: gd.querySelector('.cartesianlayer, .pielayer, .polarlayer')?.innerHTML.length,
})"""


def try_slider(page) -> dict | None:
    """Click the last step of the first slider figure; report before/after."""
    handle = page.evaluate_handle(
        "() => [...document.querySelectorAll('.js-plotly-plot')]"
        ".find(gd => gd._fullLayout && gd._fullLayout.sliders"
        " && gd._fullLayout.sliders.length)"
    )
    if page.evaluate("h => !h", handle):
        return None
    gd = handle.as_element()
    gd.scroll_into_view_if_needed()
    before = json.loads(gd.evaluate(SLIDER_STATE))
    n_steps = gd.evaluate("gd => gd._fullLayout.sliders[0].steps.length")
    target = 0 if before["active"] == n_steps - 1 else n_steps - 1
    rail = gd.query_selector(".slider-rail-touch-rect")
    box = rail.bounding_box()
    fraction = target / max(n_steps - 1, 1)
    x = box["x"] + 10 + fraction * (box["width"] - 20)
    page.mouse.click(x, box["y"] + box["height"] / 2)
    page.wait_for_timeout(400)
    after = json.loads(gd.evaluate(SLIDER_STATE))
    return {"steps": n_steps, "chosen": target, "before": before, "after": after}


def _wait(page, condition: str, timeout: int) -> None:
    """Wait until a JavaScript condition holds; a timeout is not an error here
    (what was not drawn in time is then counted and reported)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(condition, timeout=timeout)
    except PlaywrightTimeout:
        pass


def check_page(page, base: str, rel: str, html_root: Path, shots: Path) -> dict:
    external, missing, errors, sizes = [], [], [], []

    def on_request(route):
        host = urlparse(route.request.url).hostname
        if route.request.url.startswith(("data:", "blob:")) or host == "127.0.0.1":
            route.continue_()
        else:
            external.append(route.request.url)
            route.abort()

    page.route("**/*", on_request)
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))

    def on_response(response):
        if response.status >= 400:
            missing.append(f"{response.status} {response.url}")
        local = html_root / urlparse(response.url).path.lstrip("/")
        if local.is_file():
            sizes.append(local.stat().st_size)

    page.on("response", on_response)
    page.goto(f"{base}/{rel}", wait_until="networkidle")
    n_fig, n_widgets, n_live = expected_on_page(rel)
    drawn_js = (
        "[...document.querySelectorAll('.js-plotly-plot')]"
        ".filter(gd => gd.querySelector('.main-svg')).length"
    )
    if n_fig:
        # each figure has two .main-svg layers: count figures, not layers, and
        # give a loaded machine time (a timeout is reported as figures missing)
        _wait(page, f"{drawn_js} >= {n_fig}", timeout=60_000)
    drawn = page.evaluate(drawn_js)
    if n_widgets:
        page.wait_for_selector(".jupyter-widgets", timeout=20_000)
    widgets_drawn = page.evaluate(
        "document.querySelectorAll('.jupyter-widgets.widget-container, "
        ".jupyter-widgets.widget-inline-hbox, .jupyter-widgets.widget-vbox').length"
    )
    has_math = page.evaluate("!!document.querySelector('.math, mjx-container')")
    math_js = "!!window.MathJax && !!document.querySelector('mjx-container')"
    if has_math:
        _wait(page, math_js, timeout=30_000)
    math_ok = (not has_math) or page.evaluate(math_js)
    slider = try_slider(page) if n_fig else None
    live = check_live(page, html_root)
    shot = shots / (rel.replace("/", "__").removesuffix(".html") + ".png")
    page.screenshot(path=str(shot), full_page=True)
    return {
        "page": rel,
        "figures_expected": n_fig,
        "figures_drawn": drawn,
        "widgets_expected": n_widgets,
        "widgets_drawn": widgets_drawn,
        "math_rendered": math_ok,
        "slider": slider,
        "live_expected": n_live,
        "live": live,
        "external_requests": external,
        "missing": missing,
        "console_errors": errors,
        "page_weight_bytes": sum(sizes),
        "screenshot": str(shot),
    }


def problems_of(result: dict) -> list[str]:
    out = []
    if result["figures_drawn"] < result["figures_expected"]:
        out.append(
            f"{result['figures_drawn']} of {result['figures_expected']} plotly "
            "figures drawn"
        )
    if result["widgets_expected"] and not result["widgets_drawn"]:
        out.append("saved widgets not rendered")
    if not result["math_rendered"]:
        out.append("math not rendered by the local MathJax")
    slider = result["slider"]
    if slider is not None:
        before, after = slider["before"], slider["after"]
        if after["active"] != slider["chosen"] or (
            before["visible"] == after["visible"] and before["svg"] == after["svg"]
        ):
            out.append(f"slider did not redraw: {slider}")
    if len(result["live"]) != result["live_expected"]:
        out.append(
            f"{len(result['live'])} of {result['live_expected']} live models found"
        )
    for live in result["live"]:
        out += live_problems(live)
    out += [f"request left 127.0.0.1: {u}" for u in result["external_requests"]]
    out += [f"missing: {u}" for u in result["missing"]]
    out += [f"console error: {e}" for e in result["console_errors"]]
    return out


def main(argv: list[str]) -> int:
    html_root = Path(argv[0] if argv else "_build/html").resolve()
    chromium = find_chromium()
    if chromium is None:
        print(
            "SKIP browser check: no chromium found (scripts/setup.sh installs "
            "Debian's chromium where apt-get and root are available)"
        )
        return 0
    from playwright.sync_api import sync_playwright

    pages = sorted(
        str(p.relative_to(html_root))
        for folder in ("book", "notebooks")
        for p in (html_root / folder).glob("*.html")
    )
    shots = html_root.parent / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    server, base = serve(html_root)
    results = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        for rel in pages:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            results.append(check_page(page, base, rel, html_root, shots))
            context.close()
        browser.close()
    server.shutdown()
    (html_root.parent / "site_check.json").write_text(json.dumps(results, indent=1))
    failed = 0
    for result in results:
        problems = problems_of(result)
        failed += bool(problems)
        slider = "redraws" if result["slider"] else "-"
        print(
            f"{'FAIL' if problems else 'ok  '} {result['page']:45} "
            f"figures {result['figures_drawn']}/{result['figures_expected']}  "
            f"slider {slider:7}  {result['page_weight_bytes'] / 1e6:5.2f} MB"
        )
        for live in result["live"]:
            if live["state"] == "ready":
                p = live["parity"]
                print(
                    f"     live model {live['model']}: max |logit - labkit| "
                    f"{p['max_abs_logit_diff']:.2g} (tolerance {p['tolerance']:g}), "
                    f"attention {p['max_abs_attention_diff'] or 0:.2g}, greedy "
                    + ", ".join(f"{a}/{b}" for a, b in p["greedy_same"])
                    + " tokens identical"
                )
        for line in problems:
            print(f"     {line}")
    print(f"site check: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
