"""Rules for a chapter's plotly figures: sliders that teach, axes that are named.

- ``slider``: a slider is there to show what its knob changes. Two steps that
  show the same data, or neighbouring steps whose numbers differ by less than
  ``ALIKE_FRACTION`` of the data's range (and whose text is the same), teach
  nothing: a slider whose steps change only the title is the common case.
- ``axis``: every axis a cartesian trace is drawn on has a title.

Figures are read from the stored ``application/vnd.plotly.v1+json`` outputs,
including plotly 6's base64 typed arrays.
"""

from __future__ import annotations

import base64
import json

import numpy as np

PLOTLY_MIME = "application/vnd.plotly.v1+json"
ALIKE_FRACTION = 0.01
CARTESIAN = {
    "scatter",
    "scattergl",
    "bar",
    "histogram",
    "histogram2d",
    "heatmap",
    "contour",
    "box",
    "violin",
    "waterfall",
    "funnel",
    "image",
}
# trace keys that do not change what the data looks like
COSMETIC = {"visible", "name", "legendgroup", "showlegend", "uid", "hovertemplate"}


def decode_arrays(value):
    """Plotly JSON with typed arrays ({'dtype', 'bdata', 'shape'}) as lists."""
    if isinstance(value, dict):
        if "bdata" in value and "dtype" in value:
            array = np.frombuffer(base64.b64decode(value["bdata"]), value["dtype"])
            if "shape" in value:
                shape = [int(s) for s in str(value["shape"]).split(",")]
                array = array.reshape(shape)
            return array.tolist()
        return {k: decode_arrays(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_arrays(v) for v in value]
    return value


def _numbers_and_skeleton(value, numbers: dict[str, list[float]], path: str = ""):
    """Collect the numbers of ``value`` by path ("0.y"); return the rest."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        numbers.setdefault(path, []).append(float(value))
        return 0
    if isinstance(value, dict):
        return {
            k: _numbers_and_skeleton(v, numbers, f"{path}.{k}")
            for k, v in sorted(value.items())
        }
    if isinstance(value, list):
        if value and not isinstance(value[0], dict | list):
            return [_numbers_and_skeleton(v, numbers, path) for v in value]
        return [
            _numbers_and_skeleton(v, numbers, f"{path}.{i}")
            for i, v in enumerate(value)
        ]
    return str(value)


def _step_state(fig: dict, step: dict):
    """(numbers, skeleton): the data a slider step shows."""
    traces = fig.get("data", [])
    method = step.get("method", "restyle")
    args = step.get("args", [])
    shown: list = []
    if method == "animate" and args:
        names = args[0] if isinstance(args[0], list) else [args[0]]
        frames = {f.get("name"): f for f in fig.get("frames", [])}
        shown = [frames.get(name, {}).get("data", []) for name in names]
    else:
        change = args[0] if args and isinstance(args[0], dict) else {}
        visible = change.get("visible")
        for index, trace in enumerate(traces):
            if isinstance(visible, list) and index < len(visible):
                on = visible[index]
            elif visible is not None and not isinstance(visible, list):
                on = visible
            else:
                on = trace.get("visible", True)
            if on is True:
                shown.append({k: v for k, v in trace.items() if k not in COSMETIC})
        if method in ("update", "restyle"):
            shown.append({k: v for k, v in change.items() if k not in COSMETIC})
    numbers: dict[str, list[float]] = {}
    skeleton = _numbers_and_skeleton(shown, numbers)
    return numbers, json.dumps(skeleton, sort_keys=True)


def slider_problems(fig: dict) -> list[str]:
    problems = []
    for slider in fig.get("layout", {}).get("sliders", []):
        steps = slider.get("steps", [])
        if len(steps) < 2:
            problems.append("a slider with fewer than 2 steps")
            continue
        states = [_step_state(fig, step) for step in steps]
        labels = [str(step.get("label", i)) for i, step in enumerate(steps)]
        seen: dict[tuple, int] = {}
        for i, (numbers, skeleton) in enumerate(states):
            key = (json.dumps(numbers, sort_keys=True), skeleton)
            if key in seen:
                problems.append(
                    f"slider steps {labels[seen[key]]!r} and {labels[i]!r} show "
                    "the same data"
                )
                break
            seen[key] = i
        else:
            problems += _alike(states, labels)
    return problems


def _alike(states, labels) -> list[str]:
    """Neighbouring steps with the same text whose every number array moves
    by less than ALIKE_FRACTION of that array's range over all steps."""
    spread: dict[str, float] = {}
    for numbers, _ in states:
        for path, values in numbers.items():
            finite = [v for v in values if np.isfinite(v)]
            if finite:
                low, high = spread.get(path, (np.inf, -np.inf))
                spread[path] = (min(low, min(finite)), max(high, max(finite)))
    for i in range(1, len(states)):
        (a, sa), (b, sb) = states[i - 1], states[i]
        if sa != sb or a.keys() != b.keys():
            continue
        moved = False
        for path in a:
            low, high = spread.get(path, (0.0, 0.0))
            if len(a[path]) != len(b[path]) or high == low:
                moved = moved or len(a[path]) != len(b[path])
                continue
            change = np.nanmax(np.abs(np.subtract(a[path], b[path])))
            if change >= ALIKE_FRACTION * (high - low):
                moved = True
        if not moved:
            return [
                f"slider steps {labels[i - 1]!r} and {labels[i]!r} look alike: "
                f"no number moves by {ALIKE_FRACTION:.0%} of its range"
            ]
    return []


def _title_text(title) -> str:
    if isinstance(title, dict):
        return str(title.get("text") or "")
    return str(title or "")


def _axis_titled_in_steps(fig: dict, axis: str) -> bool:
    for slider in fig.get("layout", {}).get("sliders", []):
        for step in slider.get("steps", []):
            for arg in step.get("args", [])[1:]:
                if isinstance(arg, dict) and (
                    arg.get(f"{axis}.title.text") or arg.get(f"{axis}.title")
                ):
                    return True
    return False


def axis_problems(fig: dict) -> list[str]:
    layout = fig.get("layout", {})
    missing = []
    for trace in fig.get("data", []):
        if trace.get("type", "scatter") not in CARTESIAN:
            continue
        for letter in ("x", "y"):
            ref = trace.get(f"{letter}axis", letter)
            axis = f"{letter}axis{ref[1:]}"
            spec = layout.get(axis, {})
            if spec.get("visible") is False or axis in missing:
                continue
            if not _title_text(spec.get("title")).strip():
                if not _axis_titled_in_steps(fig, axis):
                    missing.append(axis)
    return [f"{axis} has no title" for axis in missing]


def figure_label_texts(spec: dict) -> list[str]:
    """Text a figure shows as labels: titles, trace names, annotations, steps."""
    layout = spec.get("layout", {})
    texts = [_title_text(layout.get("title"))]
    texts += [str(t.get("name", "")) for t in spec.get("data", [])]
    texts += [str(a.get("text", "")) for a in layout.get("annotations", [])]
    for key, value in layout.items():
        if key.startswith(("xaxis", "yaxis")) and isinstance(value, dict):
            texts.append(_title_text(value.get("title")))
    for slider in layout.get("sliders", []):
        texts += [str(step.get("label", "")) for step in slider.get("steps", [])]
        for step in slider.get("steps", []):
            for arg in step.get("args", [])[1:]:
                if isinstance(arg, dict):
                    texts.append(_title_text(arg.get("title")))
    return [t for t in texts if t]


def figure_findings(nb: dict) -> list[tuple[int, str, str]]:
    """(cell, rule, message) for every slider and axis problem in a notebook."""
    findings = []
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        for output in cell.get("outputs", []):
            spec = output.get("data", {}).get(PLOTLY_MIME)
            if spec is None:
                continue
            fig = decode_arrays(spec)
            findings += [(index, "slider", p) for p in slider_problems(fig)]
            findings += [(index, "axis", p) for p in axis_problems(fig)]
    return findings
