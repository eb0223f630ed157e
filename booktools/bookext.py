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

Not part of the curriculum; it serves the book build only.
"""

from __future__ import annotations

import json

PLOTLY_MIME = "application/vnd.plotly.v1+json"
RECORD_MIME = "application/vnd.labkit.record+json"  # see labkit.experiments.record


class PlotlyMimeRenderer:
    """Render plotly's JSON output as HTML that draws with local plotly.js."""

    # (builder, mime type, priority): lower numbers win; html builders prefer us
    mime_priority_overrides = [
        ("html", PLOTLY_MIME, 1),
        ("dirhtml", PLOTLY_MIME, 1),
        ("singlehtml", PLOTLY_MIME, 1),
    ]

    @staticmethod
    def handle_mime(renderer, data, inline):
        if data.mime_type == RECORD_MIME:
            return []  # results data: the page shows its text/plain twin
        if data.mime_type != PLOTLY_MIME:
            return None
        import plotly.io as pio
        from docutils import nodes

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


def setup(app):
    app.connect("doctree-read", _check_stored_errors)
    app.connect("html-page-context", _page_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
