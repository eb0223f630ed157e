"""The live model in JupyterLab, as a reader meets it (the first test that
drives JupyterLab's own page).

JupyterLab starts on 127.0.0.1 with a token, over a copy of chapter 12 (its
own port, runtime, settings and workspace folders), and headless chromium
opens the chapter with the network cut:

1. before anything runs, the saved output of the live-model cell says to run
   the cell (a notebook from git is untrusted: JupyterLab dropped its script);
2. after the parameters cells and the live-model cell run, the component
   draws: the kernel exported the model into live_models/ beside the
   notebook and the page fetched it through the server's /files/ route;
3. it answers a typed prompt: the bars follow it, and Greedy writes labkit's
   own greedy continuation of it (on the same float16-rounded weights).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHAPTER = REPO / "notebooks" / "12_sampling.ipynb"
TOKEN = "labkit-test-token"
PROMPT = "The dog ran to the"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server over tmp/root holding notebooks/12_sampling.ipynb.

    The small model is made first, here: on a fresh cache (CI) its recipe
    trains for minutes, which must not count against the page's timeouts.
    """
    from labkit.recipes import load_small_model

    load_small_model()
    root = tmp_path / "root"
    (root / "notebooks").mkdir(parents=True)
    shutil.copyfile(CHAPTER, root / "notebooks" / CHAPTER.name)
    settings = tmp_path / "settings"
    for plugin, values in {
        "notebook-extension/tracker": {"windowingMode": "none"},
        "apputils-extension/notification": {"fetchNews": "false"},
    }.items():
        path = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = dict(
        os.environ,
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
    )
    port = free_port()
    args = [
        str(Path(sys.executable).parent / "jupyter-lab"),
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={TOKEN}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")
    log = open(tmp_path / "lab.log", "w")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start: {(tmp_path / 'lab.log')}")
                time.sleep(0.5)
        yield url, root
    finally:
        server.terminate()  # the server shuts its kernels down
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def labkit_greedy(prompt: str, n: int) -> str:
    """labkit's greedy continuation on the weights the page reads."""
    from labkit import webexport
    from labkit.recipes import load_small_model
    from labkit.sampling import generate

    model, tokenizer = load_small_model()
    stored = webexport._as_stored(model, webexport.stored_weights(model, "float16"))
    ids = tokenizer.encode(prompt)
    return tokenizer.decode(generate(stored, [ids], n, temperature=0)[0])


@pytest.mark.slow
def test_chapter_12_live_model_in_jupyterlab(lab, open_page):
    url, root = lab
    page = open_page(f"{url}/lab/tree/notebooks/{CHAPTER.name}?token={TOKEN}")
    live_cell = page.locator(".jp-CodeCell", has_text="live_model(prompt=prompt")
    live_cell.wait_for(timeout=90_000)
    # 1. what a reader who just opened the chapter sees: the saved text
    saved = live_cell.locator(".jp-OutputArea")
    assert "run this cell to start it" in saved.inner_text()
    assert live_cell.locator(".ll-root").count() == 0  # no script ran
    # 2. run the parameters cells, then the live cell, each once it is its
    # turn (saved outputs cleared first, so each cell's count is this session's)
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=90_000)
    page.get_by_role("menuitem", name="Edit").click()
    page.get_by_text("Clear Outputs of All Cells").click()
    cells = page.locator(".jp-Notebook .jp-Cell")
    for count, cell in enumerate((cells.nth(1), cells.nth(2), live_cell), 1):
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        prompt = cell.locator(".jp-InputPrompt")
        page.wait_for_function(
            "([el, n]) => el.textContent.includes(`[${n}]`)",
            arg=[prompt.element_handle(), count],
            timeout=120_000,
        )
    component = live_cell.locator('.labkit-live[data-state="ready"]')
    try:
        component.wait_for(timeout=120_000)
    except Exception:
        page.screenshot(path=str(root.parent / "lab.png"))
        output = live_cell.locator(".jp-OutputArea").inner_text()
        pytest.fail(f"the component did not start; the cell shows: {output[:600]}")
    assert (root / "notebooks" / "live_models" / "small" / "model.json").exists()
    el = component.element_handle()
    src = el.get_attribute("data-src")
    assert src == "/files/notebooks/live_models/small/"
    # 3. it answers a typed prompt
    el.query_selector("textarea.ll-prompt").fill(PROMPT)
    page.wait_for_function(
        "([el, t]) => el.labkitLive.text === t && el.labkitLive.barsData.length",
        arg=[el, PROMPT],
    )
    title = el.query_selector(".ll-next .ll-title").inner_text()
    assert PROMPT in title
    el.query_selector('input[name="new tokens"]').fill("20")
    el.query_selector("button.ll-greedy").click()
    page.wait_for_function(
        "el => el.labkitLive.generated && !el.labkitLive.running", arg=el
    )
    text = el.evaluate("el => el.labkitLive.generated.continuation")
    assert text == labkit_greedy(PROMPT, 20)
    assert page.external == []
    assert not [e for e in page.errors if "labkit" in e.lower()], page.errors
