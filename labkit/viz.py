"""Plotting helpers the chapters share: one slider, two renderings.

A chapter explores one knob. It writes one function, ``make_traces(value)``, that
draws the picture for one setting of the knob, and gets

- ``slider_figure``: a plotly figure holding the traces for every value, with a
  slider whose steps switch which are visible. Everything is precomputed, so it
  works in the static book with no kernel;
- ``slider_widget``: the same picture driven live by an ipywidgets slider in
  JupyterLab, calling ``make_traces`` again on every move (so it can reach values
  that were not precomputed).

``live_model`` (labkit/live.py) shows a GPT running in the page itself: the
reader types a prompt and the page computes the next-token bars, samples and
attention maps, in the book as in JupyterLab.

Built in: notebooks/01_text_as_numbers.ipynb. Core modules never import this one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.basedatatypes import BaseTraceType

from labkit.live import live_model  # noqa: F401 (one call from a chapter)

Traces = Sequence[BaseTraceType]


def _as_traces(drawn: Traces | go.Figure) -> tuple[list, str | None]:
    """Traces and an optional title from what ``make_traces`` returned."""
    if isinstance(drawn, go.Figure):
        title = drawn.layout.title.text if drawn.layout.title else None
        return list(drawn.data), title
    return list(drawn), None


def _label(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def slider_figure(
    make_traces: Callable[[Any], Traces | go.Figure],
    values: Sequence[Any],
    *,
    label: str,
    title: Callable[[Any], str] | str | None = None,
    active: int = 0,
    **layout: Any,
) -> go.Figure:
    """A plotly figure with one slider step per value, all states precomputed.

    Args:
        make_traces: draws one state: value -> list of traces (or a go.Figure,
            whose title is used when ``title`` is not given).
        values: the slider's values, in order.
        label: what the slider changes, shown as "label: value".
        title: a fixed title, or value -> title.
        active: index of the value shown first.
        **layout: passed to ``fig.update_layout`` (axis titles, height, ...).

    Each step uses plotly's ``update`` method to switch trace visibility and the
    title, so the page needs only plotly.js to redraw it.
    """
    if not values:
        raise ValueError("slider_figure needs at least one value")
    if not 0 <= active < len(values):
        raise ValueError(f"active={active} is outside 0..{len(values) - 1}")
    fig = go.Figure()
    owner: list[int] = []  # owner[i] = index of the value trace i belongs to
    titles: list[str | None] = []
    for index, value in enumerate(values):
        traces, own_title = _as_traces(make_traces(value))
        for trace in traces:
            trace.visible = index == active
            fig.add_trace(trace)
            owner.append(index)
        titles.append(title(value) if callable(title) else title or own_title)
    steps = []
    for index, value in enumerate(values):
        step_layout = {"title": {"text": titles[index]}} if titles[index] else {}
        steps.append(
            {
                "method": "update",
                "label": _label(value),
                "args": [{"visible": [o == index for o in owner]}, step_layout],
            }
        )
    fig.update_layout(
        sliders=[
            {
                "active": active,
                "currentvalue": {"prefix": f"{label}: "},
                "pad": {"t": 40},
                "steps": steps,
            }
        ],
        margin={"t": 60, "b": 20},
        **layout,
    )
    if titles[active]:
        fig.update_layout(title={"text": titles[active]})
    return fig


def slider_widget(
    make_traces: Callable[[Any], Traces | go.Figure],
    values: Sequence[Any],
    *,
    label: str,
    title: Callable[[Any], str] | str | None = None,
    active: int = 0,
    **layout: Any,
):
    """The live twin of ``slider_figure`` for JupyterLab (needs a kernel).

    A ``SelectionSlider`` over ``values`` redraws the figure by calling
    ``make_traces`` on each change. Tag the cell that displays it
    ``remove-output``: the static book shows the precomputed figure instead.
    Returns an ``ipywidgets.VBox`` (slider above, figure below).
    """
    import ipywidgets as widgets

    slider = widgets.SelectionSlider(
        options=[(_label(v), v) for v in values],
        value=values[active],
        description=label,
        continuous_update=False,
        style={"description_width": "initial"},
        layout={"width": "60%"},
    )
    out = widgets.Output()

    def redraw(change=None):
        value = slider.value
        traces, own_title = _as_traces(make_traces(value))
        fig = go.Figure(traces)
        text = title(value) if callable(title) else title or own_title
        fig.update_layout(title={"text": text} if text else None, **layout)
        # set the Output's content directly: capturing display() inside
        # ``with out:`` can hang a kernel run by nbclient on a loaded machine
        bundle = {"application/vnd.plotly.v1+json": json.loads(fig.to_json())}
        out.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)

    slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([slider, out])


def heatmap(
    matrix, *, x=None, y=None, zmin=None, zmax=None, colorscale="Blues", **kwargs
) -> go.Heatmap:
    """A heatmap trace with rows drawn top to bottom (as a matrix is read).

    Per-cell ``text`` and ``customdata`` (row by row, like ``matrix``) are
    flipped with the rows, so each label stays on its own cell.
    """
    import numpy as np

    z = np.asarray(matrix, dtype=float)
    rows = [str(i) for i in range(z.shape[0])] if y is None else [str(r) for r in y]
    for key in ("text", "customdata"):
        if kwargs.get(key) is not None and not isinstance(kwargs[key], str):
            kwargs[key] = list(kwargs[key])[::-1]
    return go.Heatmap(
        z=np.round(z, 4)[::-1],
        x=x,
        y=rows[::-1],
        zmin=zmin,
        zmax=zmax,
        colorscale=colorscale,
        **kwargs,
    )
