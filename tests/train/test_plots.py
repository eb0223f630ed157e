"""labkit.train.plots: live curves and runs compared by what differs."""

from labkit.train import train
from labkit.train.plots import LiveLossPlot, compare_runs
from labkit.train.runlog import differing_settings


def test_compare_runs_overlays_curves_labelled_by_the_differing_setting(
    data, model, cfg, tmp_path
):
    for lr in (1e-2, 3e-3):
        train(model(), data, cfg(out_dir=str(tmp_path / f"lr{lr}"), lr=lr))
    folders = [tmp_path / "lr0.01", tmp_path / "lr0.003"]
    assert differing_settings(folders) == {"train.lr": [1e-2, 3e-3]}
    fig = compare_runs(folders)
    assert [t.name for t in fig.data] == ["lr0.01 (lr=0.01)", "lr0.003 (lr=0.003)"]
    assert list(fig.data[0].x) == [4, 8]


def test_live_plot_keeps_one_figure_per_evaluation(data, model, cfg, monkeypatch):
    plot = LiveLossPlot(floor=0.5)
    monkeypatch.setattr(plot, "show", lambda: None)
    train(model(), data, cfg(), on_eval=plot)
    fig = plot.figure()
    assert list(fig.data[1].x) == [4, 8] and len(fig.data[1].y) == 2
    assert fig.data[1].y[-1] < fig.data[1].y[0]  # the val curve went down
    assert fig.layout.shapes[0].y0 == 0.5  # the floor line


def test_compare_runs_legend_rounds_floats(data, model, cfg, tmp_path):
    for lr in (3e-3, 3e-4):
        folder = str(tmp_path / f"lr{lr}")
        train(model(), data, cfg(out_dir=folder, lr=lr, min_lr=lr / 10))
    fig = compare_runs([tmp_path / "lr0.003", tmp_path / "lr0.0003"])
    assert fig.data[0].name == "lr0.003 (lr=0.003, min_lr=0.0003)"
    assert fig.data[1].name == "lr0.0003 (lr=0.0003, min_lr=3e-05)"


def test_live_plot_updates_one_display_in_place(monkeypatch):
    import IPython.display

    calls = []

    class Handle:
        def update(self, obj, **kw):
            calls.append(("update", obj, kw))

    def display(obj, **kw):
        calls.append(("display", obj, kw))
        return Handle()

    monkeypatch.setattr(IPython.display, "display", display)
    plot = LiveLossPlot()
    for step in (1, 2, 3):
        plot(step, {"train_loss": 1.0 / step, "val_loss": 1.1 / step})
    assert [c[0] for c in calls] == ["display", "update", "update"]
    assert calls[0][2] == {"raw": True, "display_id": True}
    assert "application/vnd.plotly.v1+json" in calls[-1][1]
