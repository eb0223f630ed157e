"""Two small pieces that make the static book honest and offline.

1. ``PlotlyMimeRenderer``: plotly 6+ in a kernel stores a figure only as
   ``application/vnd.plotly.v1+json``, which myst-nb does not draw. This renderer
   (registered in pyproject.toml under the ``myst_nb.mime_renderers`` entry point)
   turns that JSON into a ``<div>`` that calls ``Plotly.newPlot`` on the page's
   local plotly.js. No CDN, no MathJax from the network.
2. ``setup(app)``: a Sphinx extension (``sphinx.extra_extensions`` in
   ``_config.yml``) that fails the build, under ``-W``, for a chapter that stores
   an error output, naming the notebook and the cell. Without it a chapter that
   raised would still publish, traceback and all.
3. The live model (labkit/live.py): the same renderer draws a chapter's
   ``application/vnd.labkit.live+json`` output as a ``.labkit-live`` element
   (a markdown page may hold one as raw HTML, as book/intro.md does); pages
   that hold one load ``_static/live/labkit-live.js``; and when the build
   finishes, every model a page names is exported with labkit into
   ``_static/live/<name>/`` (weights, tokenizer, and labkit's reference
   logits for the site check), so the book never carries a stale copy.

Not part of the curriculum; it serves the book build only.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

PLOTLY_MIME = "application/vnd.plotly.v1+json"
RECORD_MIME = "application/vnd.labkit.record+json"  # see labkit.experiments.record
LIVE_MIME = "application/vnd.labkit.live+json"  # see labkit.live
LIVE_ELEMENT = re.compile(r"<div[^>]*\bclass=\"labkit-live\"[^>]*>")


class PlotlyMimeRenderer:
    """Render plotly's JSON output as HTML that draws with local plotly.js."""

    # (builder, mime type, priority): lower numbers win; html builders prefer us
    mime_priority_overrides = [
        (builder, mime, 1)
        for builder in ("html", "dirhtml", "singlehtml")
        for mime in (PLOTLY_MIME, LIVE_MIME)
    ]

    @staticmethod
    def handle_mime(renderer, data, inline):
        from docutils import nodes

        if data.mime_type == RECORD_MIME:
            return []  # results data: the page shows its text/plain twin
        if data.mime_type == LIVE_MIME:
            from labkit.live import live_html

            spec = data.content
            spec = json.loads(spec) if isinstance(spec, str) else spec
            html = live_html(spec, book=True)
            return [nodes.raw(text=html, format="html", classes=["output", "live"])]
        if data.mime_type != PLOTLY_MIME:
            return None
        import plotly.io as pio

        spec = data.content
        if isinstance(spec, str):
            spec = json.loads(spec)
        html = pio.to_html(
            spec,
            include_plotlyjs=False,
            include_mathjax=False,
            full_html=False,
            config={"responsive": True, "displaylogo": False},
        )
        return [nodes.raw(text=html, format="html", classes=["output", "plotly"])]


def _cell_index(node) -> str:
    """The notebook cell a docutils node came from, as myst-nb marks it."""
    while node is not None:
        for key in ("cell_index", "nb_cell_index"):
            if node.get(key) is not None if hasattr(node, "get") else False:
                return str(node.get(key))
        node = node.parent
    return "?"


def _check_stored_errors(app, doctree) -> None:
    """Warn (an error under -W) for each traceback output in a notebook page."""
    from docutils import nodes
    from sphinx.util import logging

    docname = app.env.docname
    source = app.env.doc2path(docname)
    if not str(source).endswith(".ipynb"):
        return
    logger = logging.getLogger(__name__)
    for node in doctree.findall(nodes.literal_block):
        if "traceback" not in node.get("classes", []):
            continue
        cell = _cell_index(node)
        if _allowed_to_raise(node):
            continue
        first = node.astext().strip().splitlines()
        last = first[-1] if first else "error"
        logger.warning(
            f"{source}: cell {cell} raised: {last[:200]} "
            "(fix the chapter, or tag the cell 'raises-exception' if intended)",
            type="labkit",
            subtype="notebook_error",
            location=node,
        )


def _allowed_to_raise(node) -> bool:
    while node is not None:
        tags = (
            node.get("cell_metadata", {}).get("tags", [])
            if hasattr(node, "get")
            else []
        )
        if "raises-exception" in tags:
            return True
        node = node.parent
    return False


def _loads_widget_manager(app, pagename) -> bool:
    """True when myst-nb will add require.js to this page (it does so for any
    notebook that stores widget state, after this page's script list is made).
    """
    from myst_nb.sphinx_ import NbMetadataCollector

    js_files = NbMetadataCollector.get_js_files(app.env, pagename)
    return any(str(path).endswith("require.js") for path, _ in js_files.values())


def _page_scripts(app, pagename, templatename, context, doctree) -> None:
    """Load only what a page needs, and nothing that reaches for the network.

    - plotly.min.js (4.6 MB) only on pages that hold a plotly figure;
    - the widget manager's fonts from the book's own ``_static/`` on every
      page that loads require.js (any notebook with saved widget state);
    - no thebe (live code through Binder needs a network and loads its
      configuration twice, a console error on every page).
    Sphinx resets the script list after each page, so these stay page-local.
    """
    body = context.get("body", "")
    scripts = context.get("script_files", [])
    scripts[:] = [
        js
        for js in scripts
        if "thebe" not in str(js).lower()
        and "THEBE" not in str(getattr(js, "attributes", {}).get("body", ""))
    ]
    css = context.get("css_files", [])
    css[:] = [c for c in css if "thebe" not in str(c).lower()]
    if "plotly-graph-div" in body:
        app.add_js_file("plotly.min.js", priority=200)
    if LIVE_ELEMENT.search(body):
        app.add_js_file("live/labkit-live.js", priority=500, loading_method="defer")
    if _loads_widget_manager(app, pagename):
        # myst-nb loads the widget manager on every page whose notebook stores
        # widget state, shown or not. require.js reads a global ``require``
        # object as its configuration when it loads; with baseUrl at _static/
        # the widget bundles find their fonts in _static/@jupyter-widgets/
        # (copied there by scripts/setup.sh).
        static = context["pathto"]("_static/", 1)
        app.add_js_file(
            None,
            body=f"var require = {{baseUrl: new URL({static!r}, document.baseURI)"
            ".href};",
            priority=100,
        )


def _attribute(tag: str, name: str) -> str:
    found = re.search(rf'\b{name}="([^"]*)"', tag)
    return found.group(1) if found else ""


def _collect_live_models(app, doctree) -> None:
    """Note the live models a page shows: {docname: {name: (source, folder)}}.

    The source is "small", "sft" or "run:PATH" (webexport.export_source);
    PATH is relative to the page's own folder.
    """
    from docutils import nodes

    docname = app.env.docname
    folder = Path(app.env.doc2path(docname)).parent
    found = {}
    for node in doctree.findall(nodes.raw):
        for tag in LIVE_ELEMENT.findall(node.astext()):
            name = _attribute(tag, "data-model")
            found[name] = (_attribute(tag, "data-source") or name, str(folder))
    models = app.env.__dict__.setdefault("labkit_live", {})
    models.pop(docname, None)
    if found:
        models[docname] = found


def _purge_live(app, env, docname) -> None:
    env.__dict__.get("labkit_live", {}).pop(docname, None)


def _merge_live(app, env, docnames, other) -> None:
    env.__dict__.setdefault("labkit_live", {}).update(
        other.__dict__.get("labkit_live", {})
    )


def _export_live_models(app, exception) -> None:
    """Copy labkit-live.js and export each model the pages name into
    _static/live/ (a warning, an error under -W, for one that cannot be)."""
    from sphinx.util import logging

    if exception is not None or app.builder.format != "html":
        return
    logger = logging.getLogger(__name__)
    wanted: dict[str, tuple[str, str, str]] = {}
    for docname, models in sorted(app.env.__dict__.get("labkit_live", {}).items()):
        for name, (source, folder) in models.items():
            if name in wanted and wanted[name][0] != source:
                logger.warning(
                    f"{docname}: live model {name!r} from {source!r}, but "
                    f"{wanted[name][2]} names it from {wanted[name][0]!r}",
                    type="labkit",
                    subtype="live_model",
                )
            wanted.setdefault(name, (source, folder, docname))
    if not wanted:
        return
    from labkit import webexport

    live = Path(app.outdir) / "_static" / "live"
    live.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(webexport.SCRIPT, live / webexport.SCRIPT.name)
    for name, (source, folder, docname) in sorted(wanted.items()):
        # (the first build on a machine trains labkit's small model: a minute;
        # and, for "sft", its instruction-tuned version)
        logger.info(f"labkit: exporting live model {name!r} ({source}) to {live}")
        try:
            webexport.export_source(source, live / name, base=Path(folder), name=name)
        except (OSError, ValueError) as err:
            logger.warning(
                f"{docname}: live model {name!r} (source {source!r}) could not "
                f"be exported: {err}",
                type="labkit",
                subtype="live_model",
            )


def setup(app):
    app.connect("doctree-read", _check_stored_errors)
    app.connect("doctree-read", _collect_live_models)
    app.connect("env-purge-doc", _purge_live)
    app.connect("env-merge-info", _merge_live)
    app.connect("html-page-context", _page_scripts, priority=900)
    app.connect("build-finished", _export_live_models)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
