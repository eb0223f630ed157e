"""Loss curves: drawn live during training, and compared across past runs.

The only file of labkit.train that imports plotly (the loop itself never
plots). ``LiveLossPlot()`` is an ``on_eval`` hook: in JupyterLab it redraws
one figure in place at each evaluation, and the executed notebook keeps the
last drawing, so the static book shows the finished curves.
``compare_runs(run_folders)`` overlays the curves of past runs, each labelled
by the settings that differ between them.
Built in: notebooks/11_training_loop.ipynb.
"""

import json
from pathlib import Path

import plotly.graph_objects as go

from labkit.train.runlog import differing_settings, read_run


class LiveLossPlot:
    """An on_eval hook drawing train and val loss (nats/token) per evaluation.

    ``floor`` draws a dashed line at a known best loss (e.g. the corpus's
    entropy rate in nats per token).
    """

    def __init__(self, floor: float | None = None, title: str = "loss"):
        self.floor, self.title = floor, title
        self.steps: list[int] = []
        self.train: list[float] = []
        self.val: list[float] = []
        self._handle = None

    def __call__(self, step: int, record: dict) -> None:
        self.steps.append(step)
        self.train.append(round(record["train_loss"], 4))
        self.val.append(round(record["val_loss"], 4))
        self.show()

    def figure(self) -> go.Figure:
        fig = go.Figure()
        fig.add_scatter(x=self.steps, y=self.train, name="train", mode="lines+markers")
        fig.add_scatter(x=self.steps, y=self.val, name="val", mode="lines+markers")
        if self.floor is not None:
            fig.add_hline(
                y=self.floor, line_dash="dash", annotation_text="entropy floor"
            )
        fig.update_layout(
            title=self.title, xaxis_title="step", yaxis_title="loss (nats/token)",
            height=360, margin=dict(l=50, r=20, t=50, b=40),
        )  # fmt: skip
        return fig

    def show(self) -> None:
        from IPython.display import display

        # a raw bundle: display(fig, display_id=...) ignores the id (plotly's
        # figure displays itself), so every update would add a new figure
        bundle = {"application/vnd.plotly.v1+json": json.loads(self.figure().to_json())}
        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)


def _short(value):
    """A setting as a legend shows it: floats to 4 significant digits."""
    return f"{value:.4g}" if isinstance(value, float) else value


def compare_runs(run_folders, metric: str = "val_loss") -> go.Figure:
    """One figure with ``metric`` against step for each run folder.

    Each curve is named by its folder and the settings in which the runs
    differ (from their run.json), so the legend reads as the experiment.
    """
    folders = [Path(f) for f in run_folders]
    diff = differing_settings(folders)
    fig = go.Figure()
    for i, folder in enumerate(folders):
        rows = [m for m in read_run(folder)["metrics"] if metric in m]
        label = ", ".join(f"{k.split('.')[-1]}={_short(v[i])}" for k, v in diff.items())
        fig.add_scatter(
            x=[m["step"] for m in rows],
            y=[round(m[metric], 4) for m in rows],
            name=f"{folder.name} ({label})" if label else folder.name,
            mode="lines+markers",
        )
    fig.update_layout(
        title=f"{metric} by run", xaxis_title="step", yaxis_title=metric,
        height=360, margin=dict(l=50, r=20, t=50, b=40),
    )  # fmt: skip
    return fig
