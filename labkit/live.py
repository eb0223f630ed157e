"""The live model in a chapter: one call shows a GPT running in the page.

``live_model()`` (also ``labkit.viz.live_model``) returns an object that a
notebook displays as the component of labkit/web/labkit-live.js: a prompt
box, the tokens, the next-token bars with temperature, top-k and top-p,
sampling and greedy decoding, the attention maps. The same output works in
two places, each fetching the model's files (labkit.webexport) over HTTP:

- in the built book, the output's JSON (``LIVE_MIME``) is drawn by
  booktools/bookext.py, which exports the model at build time into
  ``_static/live/<name>/`` with labkit's reference logits, and loads the
  script from ``_static/live/labkit-live.js``;
- in JupyterLab, the output's HTML: running the cell exports the model into
  ``live_models/<name>/`` beside the notebook, and its script fetches it
  through the Jupyter server's ``/files/`` route. The server is found from
  the kernel's side: JPY_PARENT_PID is the server's process, whose runtime
  file (jpserver-<pid>.json) gives its root folder and base URL.

JupyterLab runs an output's script only for a cell run in this session: a
notebook opened from git is not trusted, so its saved output shows the text
that says to run the cell. Without a Jupyter server (nbclient, papermill,
nbval) nothing is exported and the saved output is the same on every
machine. Importing this module does not import torch.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
from pathlib import Path
from urllib.parse import quote

LIVE_MIME = "application/vnd.labkit.live+json"
PARTS = ("next", "generate", "attention")
FOLDER = "live_models"  # beside the notebook, served by Jupyter's /files/
SCRIPT = Path(__file__).parent / "web" / "labkit-live.js"
_NAME = re.compile(r"[A-Za-z0-9_.-]+")

LAB_FALLBACK = (
    "Live model \u201c{name}\u201d: a GPT that runs in this page. JupyterLab "
    "runs an output\u2019s script only for a cell run in this session (a "
    "notebook opened from git is not trusted): run this cell to start it. In "
    "the built book it starts by itself."
)
NO_SERVER = (
    "This cell ran outside a Jupyter server (nbclient, papermill), so the "
    "model was not exported for this page: run the cell in JupyterLab, or "
    "read the built book."
)
BOOK_FALLBACK = (
    "Live model \u201c{name}\u201d: a GPT that runs in this page with "
    "JavaScript. If this text stays, the page\u2019s script did not run."
)


RECIPES = ("small", "sft")  # models a chapter names (labkit.recipes)


def live_model(
    source="small",
    *,
    prompt: str = "Once upon a time",
    parts=PARTS,
    name: str | None = None,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    stop: tuple[str, ...] = (),
) -> LiveModel:
    """A GPT running in the page, shown by the cell that returns this.

    Args:
        source: "small" (labkit's small model, recipes.load_small_model: what
            the book shows), "sft" (that model instruction-tuned,
            recipes.load_sft_model: ask it a question), a run folder made
            by ``labkit train`` (str or Path, relative to the notebook), or a
            (model, tokenizer) pair,
            which JupyterLab shows but the book cannot rebuild.
        prompt: the text the box starts with.
        parts: which parts to show, of "next" (the next-token bars and the
            sampling controls), "generate" (sample and greedy) and
            "attention" (the maps of every layer and head).
        name: the folder the export goes to (default "small", "sft", the run
            folder's name, or "model").
        temperature, top_k, top_p: where the controls start (0 = off for
            top_k, 1 = off for top_p).
        stop: special tokens that end a continuation (an end-of-text or
            end-of-turn token), kept as labkit's ``eos_id`` keeps it.
    Raises ValueError naming a bad part, name or setting.
    """
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        raise ValueError(f"parts={tuple(parts)!r}: choose from {PARTS}")
    if not (0 <= temperature <= 2 and 0 <= top_p <= 1 and top_k >= 0):
        raise ValueError(
            f"temperature={temperature} (0..2), top_k={top_k} (>= 0) or "
            f"top_p={top_p} (0..1) is out of range"
        )
    if isinstance(source, tuple):
        book_source, default = None, "model"
    elif source in RECIPES:
        book_source, default = source, source
    else:
        book_source, default = f"run:{Path(source).as_posix()}", Path(source).name
    name = name or default
    if not _NAME.fullmatch(name):
        raise ValueError(f"name={name!r}: use letters, digits, '.', '_', '-'")
    spec = {
        "version": 1,
        "model": name,
        "source": book_source,
        "prompt": prompt,
        "parts": list(parts),
        "temperature": temperature,
        "top_k": top_k,
        "top_p": top_p,
    }
    if stop:
        spec["stop"] = list(stop)
    return LiveModel(spec, source)


class LiveModel:
    """What ``live_model`` returns: exported for JupyterLab when made in a
    kernel a Jupyter server started; displayed through _repr_mimebundle_."""

    def __init__(self, spec: dict, source):
        self.spec = spec
        self.files_url = None
        server = jupyter_server()
        if server is not None:
            self.files_url = export_for_jupyter(spec["model"], source, server)

    def __repr__(self) -> str:
        return f"LiveModel({self.spec['model']!r}, parts={self.spec['parts']})"

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {
            LIVE_MIME: self.spec,
            "text/html": live_html(self.spec, files=self.files_url),
            "text/plain": repr(self),
        }


def live_html(spec: dict, *, files: str | None = None, book: bool = False) -> str:
    """The component's HTML: a ``.labkit-live`` element whose data-*
    attributes say what to show, holding the text a reader sees if no script
    runs. For JupyterLab (book=False) a loader script follows it; the book's
    pages load labkit-live.js themselves (data-mount="auto")."""
    attrs = {
        "class": "labkit-live",
        "data-model": spec["model"],
        "data-source": spec.get("source") or "",
        "data-prompt": spec["prompt"],
        "data-parts": " ".join(spec["parts"]),
        "data-temperature": spec["temperature"],
        "data-top-k": spec["top_k"],
        "data-top-p": spec["top_p"],
    }
    if spec.get("stop"):
        attrs["data-stop"] = json.dumps(spec["stop"])
    if book:
        attrs["data-mount"] = "auto"
    elif files:
        attrs["data-files"] = files
        attrs["data-src"] = f"{files}{spec['model']}/"
    text = (BOOK_FALLBACK if book else LAB_FALLBACK).format(name=spec["model"])
    div = "".join(f' {k}="{html.escape(str(v))}"' for k, v in attrs.items())
    out = f'<div{div}><p class="ll-fallback">{html.escape(text)}</p></div>'
    return out if book else out + _loader()


def _loader() -> str:
    """The script after the element in JupyterLab: load labkit-live.js from
    the export's folder (once per page), then start the component."""
    version = hashlib.sha256(SCRIPT.read_bytes()).hexdigest()[:12]
    return f"""<script>
(function () {{
  var el = document.currentScript && document.currentScript.previousElementSibling;
  if (!el || !el.classList.contains("labkit-live")) return;
  var say = function (text) {{ el.querySelector(".ll-fallback").textContent = text; }};
  var files = el.getAttribute("data-files");
  if (!files) {{ say({json.dumps(NO_SERVER)}); return; }}
  var start = function () {{ window.LabkitLive.mount(el); }};
  if (window.LabkitLive) {{ start(); return; }}
  var s = document.createElement("script");
  s.src = files + "labkit-live.js?v={version}";
  s.onload = start;
  s.onerror = function () {{ say("Could not load " + s.src + ": run the cell."); }};
  say("Loading the live model\u2026");
  document.head.appendChild(s);
}})();
</script>"""


def jupyter_server() -> dict | None:
    """The runtime record (root_dir, base_url, ...) of the Jupyter server
    that started this kernel, or None outside one."""
    pid = os.environ.get("JPY_PARENT_PID")
    if not pid or not pid.isdigit():
        return None
    try:
        from jupyter_core.paths import jupyter_runtime_dir
    except ImportError:
        return None
    path = Path(jupyter_runtime_dir()) / f"jpserver-{pid}.json"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # a kernel started by nbclient or papermill, not a server
    return info if isinstance(info, dict) and info.get("root_dir") else None


def notebook_dir() -> Path:
    """The running notebook's folder: JPY_SESSION_NAME's (the path jupyter_server
    gives the kernel), else the kernel's working folder."""
    session = os.environ.get("JPY_SESSION_NAME", "")
    if session and Path(session).is_absolute() and Path(session).parent.is_dir():
        return Path(session).parent
    return Path.cwd()


def export_for_jupyter(name: str, source, server: dict) -> str | None:
    """Export into live_models/<name>/ beside the notebook; return the URL of
    live_models/ under the server's /files/ route (None when the notebook is
    not under the server's root, which then cannot serve it)."""
    import shutil

    from labkit import webexport

    folder = notebook_dir().resolve()
    try:
        rel = folder.relative_to(Path(server["root_dir"]).expanduser().resolve())
    except ValueError:
        return None
    out = folder / FOLDER
    kw = dict(name=name, reference=False, bundle=False)
    if isinstance(source, tuple):
        model, tokenizer = source
        webexport.export_web(model, tokenizer, out / name, **kw)
    elif source in RECIPES:
        webexport.export_source(source, out / name, **kw)
    else:
        webexport.export_run(folder / source, out / name, **kw)
    shutil.copyfile(SCRIPT, out / SCRIPT.name)
    prefix = "" if str(rel) == "." else quote(rel.as_posix()) + "/"
    base = server.get("base_url") or "/"
    return f"{base.rstrip('/')}/files/{prefix}{FOLDER}/"
