"""labkit.viz: slider figures whose precomputed steps switch the right traces."""

import plotly.graph_objects as go
import pytest

from labkit.viz import heatmap, slider_figure, slider_widget


def line_for(k):
    return [go.Scatter(x=[0, 1], y=[0, k], name=f"k={k}"), go.Bar(x=[k], y=[1])]


def test_slider_figure_has_one_step_per_value_showing_its_traces():
    fig = slider_figure(line_for, [1, 2, 3], label="k", title=lambda k: f"k is {k}")
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["1", "2", "3"]
    assert len(fig.data) == 6  # two traces per value
    assert steps[1].args[0]["visible"] == [False, False, True, True, False, False]
    assert steps[2].args[1] == {"title": {"text": "k is 3"}}
    assert [t.visible for t in fig.data] == [True, True] + [False] * 4
    assert fig.layout.title.text == "k is 1"
    assert fig.layout.sliders[0].currentvalue.prefix == "k: "


def test_slider_figure_takes_figures_and_their_titles():
    def draw(k):
        return go.Figure(line_for(k), layout={"title": {"text": f"T{k}"}})

    fig = slider_figure(draw, [0.5, 0.25], label="p", active=1)
    assert fig.layout.title.text == "T0.25"
    assert fig.layout.sliders[0].active == 1
    assert [s.label for s in fig.layout.sliders[0].steps] == ["0.5", "0.25"]


def test_slider_figure_rejects_bad_arguments():
    with pytest.raises(ValueError, match="at least one value"):
        slider_figure(line_for, [], label="k")
    with pytest.raises(ValueError, match="active=5 is outside 0..1"):
        slider_figure(line_for, [1, 2], label="k", active=5)


def test_slider_widget_redraws_on_change():
    calls = []

    def draw(k):
        calls.append(k)
        return line_for(k)

    box = slider_widget(draw, [1, 2, 3], label="k")
    slider, out = box.children
    assert slider.value == 1 and calls == [1]
    (shown,) = out.outputs
    assert shown["data"]["application/vnd.plotly.v1+json"]["data"][0]["y"] == [0, 1]
    slider.value = 3
    assert calls == [1, 3]
    (shown,) = out.outputs  # the new figure replaces the old one
    assert shown["data"]["application/vnd.plotly.v1+json"]["data"][0]["y"] == [0, 3]


def test_heatmap_draws_first_row_at_the_top():
    trace = heatmap([[1, 2], [3, 4]], y=["a", "b"])
    assert trace.z[0].tolist() == [3, 4] and list(trace.y) == ["b", "a"]


def test_heatmap_keeps_each_cell_label_on_its_cell():
    trace = heatmap([[1, 2], [3, 4]], y=["a", "b"], text=[["p", "q"], ["r", "s"]])
    # the row drawn first (bottom of the stored arrays) is b: values 3, 4, r, s
    assert trace.z[0].tolist() == [3, 4] and list(trace.text[0]) == ["r", "s"]
    assert list(trace.y) == ["b", "a"] and list(trace.text[1]) == ["p", "q"]
