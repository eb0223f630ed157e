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
        tags = node.get("cell_metadata", {}).get("tags", []) if hasattr(
            node, "get"
        ) else []
        if "raises-exception" in tags:
            return True
        node = node.parent
    return False


def setup(app):
    app.connect("doctree-read", _check_stored_errors)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
