"""Issue #18: charts for any grid. Tables of 1-5 varying settings, with and without
repeats, built here; which charts come out, what the heatmaps hold, which pair of
settings interacts most, how many-valued numbers read, and tables that are partly broken."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import LogNorm

import plot_tables
from mnist_zoo import plot
from mnist_zoo.plot import _style

# Settings no chart names: lines and heatmaps must find their places from the data.
FIVE_AXES = {"learning_rate": [0.1, 0.01, 0.001], "momentum": [0.0, 0.5, 0.9],
             "dropout": [0.0, 0.25], "batch_size": [32, 64, 128, 256], "epochs": [1, 2]}


def effective_rate(settings):
    """Learning rate and momentum act as one number, lr / (1 - momentum): an interaction.
    The other settings add main effects only."""
    step = settings.get("learning_rate", 0.01) / (1 - settings.get("momentum", 0.0))
    return (0.97 - 0.08 * abs(math.log10(step) + 1.5) - 0.02 * settings.get("dropout", 0)
            - settings.get("batch_size", 64) / 20_000 + 0.01 * settings.get("epochs", 1))


@pytest.fixture
def no_rendering(monkeypatch):
    """Charts are built but not saved: which charts come out, fast."""
    monkeypatch.setattr(_style, "save", lambda fig, out, stem, fmt: out / f"{stem}.{fmt}")


def grid_csv(folder: Path, n_axes: int, repeats: int = 1, accuracy=effective_rate) -> Path:
    axes = dict(list(FIVE_AXES.items())[:n_axes])
    table = plot_tables.results_table(axes, accuracy, repeats=repeats)
    return plot_tables.write(table, folder)


# --------------------------------------------------------------------------- which charts
@pytest.mark.parametrize("repeats", [1, 3])
@pytest.mark.parametrize("n_axes", [1, 2, 3, 4, 5])
def test_charts_of_grids_with_1_to_5_settings(n_axes, repeats, tmp_path, no_rendering):
    csv = grid_csv(tmp_path, n_axes, repeats)

    written, notes = plot.run_plot(csv, tmp_path / "plots", top=0)

    res = plot.load_results(csv)
    assert len(res.axes) == n_axes and res.repeats == (repeats > 1)
    names = {path.stem for path in written}
    heatmaps = {name for name in names if name.startswith("heatmap_")}
    assert len(heatmaps) == min(math.comb(n_axes, 2), 3)  # every pair, at most the top 3
    if n_axes == 1:
        assert names == {"ranking", "what_matters", "optimisation_history", "report"}
        assert any(note.startswith("slice: no setting is continuous") for note in notes)
        assert any("need two settings that vary" in note and "only learning rate" in note
                   for note in notes)
    else:
        colour, _, _ = plot._axes.line_roles(res)
        assert names == {"ranking", "importance", f"lines_by_{colour}", "parallel_coordinates",
                         "what_matters", "optimisation_history", "report", *heatmaps}
        counts = {axis: res.trials[axis].nunique() for axis in res.axes}
        assert counts[colour] == min(counts.values())  # the fewest lines
    report = (tmp_path / "plots" / "report.html").read_text()
    assert report.count("<figcaption>") == len(written) - 1  # every chart with its caption


def test_two_settings_with_repeats_give_a_table_of_mean_and_std(tmp_path):
    """12 runs, learning rate x optimizer, 3 repeats: the 2 x 2 heatmap of means ± std."""
    table = plot_tables.results_table(
        {"learning_rate": [0.01, 0.001], "optimizer": ["sgd", "adam"]},
        lambda s: 0.95 - 0.2 * (s["optimizer"] == "sgd" and s["learning_rate"] == 0.001),
        repeats=3, noise=0.01)
    csv = plot_tables.write(table, tmp_path)
    written = plot.plot_results(csv, tmp_path / "plots", top=0)

    assert {p.name for p in written} >= {"heatmap_learning_rate_x_optimizer.png",
                                         "parallel_coordinates.png"}
    res = plot.load_results(csv)
    [(key, cells, spread)], panel_axes, pooled = plot.heatmap_data(
        res, "learning_rate", "optimizer")
    assert panel_axes == [] and pooled == []
    points = res.points.set_index(["learning_rate", "optimizer"])
    for (rate, optimizer), mean in cells.stack().items():
        assert mean == pytest.approx(points.loc[(rate, optimizer), res.metric])
        assert spread.loc[rate, optimizer] == pytest.approx(points.loc[(rate, optimizer), "std"])
        runs = table[(table["learning_rate"] == float(rate)) & (table["optimizer"] == optimizer)]
        assert mean == pytest.approx(runs["val_accuracy"].mean())


@pytest.mark.parametrize("repeats", [1, 2])
def test_heatmap_cells_are_the_grid_points_means(repeats, tmp_path):
    res = plot.load_results(grid_csv(tmp_path, 3, repeats))

    panels, panel_axes, pooled = plot.heatmap_data(res, "learning_rate", "momentum")

    assert panel_axes == ["dropout"] and pooled == []  # one panel per dropout
    assert len(panels) == 2
    points = res.points.set_index(["dropout", "learning_rate", "momentum"])
    for (dropout,), cells, spread in panels:
        assert cells.shape == (3, 3)
        for (rate, momentum), mean in cells.stack().items():
            assert mean == pytest.approx(points.loc[(dropout, rate, momentum), res.metric])
            if repeats > 1:
                assert spread.loc[rate, momentum] == pytest.approx(
                    points.loc[(dropout, rate, momentum), "std"])
        assert (spread is None) == (repeats == 1)


# --------------------------------------------------------------------------- interactions
def test_a_planted_interaction_ranks_first(tmp_path, no_rendering):
    res = plot.load_results(grid_csv(tmp_path, 5))

    ranking = plot.interaction_ranking(res)

    assert len(ranking) == math.comb(5, 2)
    assert {ranking["rows"][0], ranking["columns"][0]} == {"learning_rate", "momentum"}
    assert ranking["interaction"][0] > 5 * ranking["interaction"][1]
    # dropout, batch size and epochs add main effects only: nothing left beyond the noise
    others = ranking[~ranking["rows"].isin(["learning_rate", "momentum"])
                     & ~ranking["columns"].isin(["learning_rate", "momentum"])]
    assert (others["interaction"] < 0.003).all()
    [chart, *_] = plot.plot_interactions(res, tmp_path, "png")
    assert chart.path.name == "heatmap_learning_rate_x_momentum.png"
    assert "rank 1 of 10 pairs" in chart.caption and "additive fit" in chart.caption


def test_pairs_asks_for_a_heatmap(tmp_path, capsys, no_rendering):
    csv = grid_csv(tmp_path, 3)

    assert plot.main([str(csv), "--out", str(tmp_path / "p"), "--pairs", "dropout:momentum",
                      "--top", "0"]) == 0
    heatmaps = [line for line in capsys.readouterr().out.split() if "heatmap_" in line]
    assert [Path(line).name for line in heatmaps] == ["heatmap_dropout_x_momentum.png"]

    assert plot.main([str(csv), "--out", str(tmp_path / "p"), "--pairs", "dropout:optimizer"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: --pairs dropout:optimizer: optimizer is not a setting that "
                            "varies") and len(error.splitlines()) == 1
    assert "choose two of learning_rate, momentum, dropout" in error


def test_the_lab_grid_keeps_its_learning_rate_x_batch_size_heatmap(tmp_path):
    table = plot_tables.results_table(
        {"activation": ["tanh", "relu", "sigmoid"], "learning_rate": [0.01, 0.001, 0.0001],
         "optimizer": ["sgd", "adam", "rmsprop"], "batch_size": [16, 32, 64]},
        lambda s: 0.95 - 0.3 * (s["optimizer"] == "sgd" and s["learning_rate"] == 0.0001))
    res = plot.load_results(plot_tables.write(table, tmp_path))

    pairs = [(rows, cols) for rows, cols, _ in plot.chosen_pairs(res)]

    assert pairs[0] == ("learning_rate", "optimizer") and len(pairs) == 4
    assert pairs[-1] == ("learning_rate", "batch_size")


# --------------------------------------------------------------------------- numbers
def test_many_log_spaced_rates_read_as_numbers(tmp_path):
    """25 log-spaced learning rates x 2 optimizers, 2 repeats: results 97.9-98.8 %."""
    rates = np.logspace(-4, -2, 25)
    table = plot_tables.results_table(
        {"learning_rate": list(rates), "optimizer": ["sgd", "adam"]},
        lambda s: 0.979 + 0.009 * (np.log10(s["learning_rate"]) + 4) / 2, repeats=2,
        noise=0.0005)
    res = plot.load_results(plot_tables.write(table, tmp_path))

    [ranking] = plot.plot_ranking(res, tmp_path, "png")

    ax = ranking.figure.axes[0]
    assert ax.get_legend() is None or not ax.get_legend().get_patches()  # no 10-colour legend
    [colour_bar] = [a for a in ranking.figure.axes[1:] if a.get_ylabel().startswith("learning")]
    assert colour_bar.get_ylabel() == "learning rate (log scale)"
    colours = plot._axes.axis_colours("learning_rate", res.points["learning_rate"].cat.categories)
    assert isinstance(colours.scale.norm, LogNorm)
    assert len(set(colours.palette.values())) == 25  # one colour per rate
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert any("lr 0.000681 " in label for label in labels)  # 3 significant digits
    assert not any("0.000681292" in label for label in labels)
    low = ax.get_xlim()[0]
    assert 0.9 < low < res.points[res.metric].min()  # the axis starts near the bars
    assert f"the axis starts at {res.format(low)}, not at 0" in ranking.caption


def test_display_labels_keep_distinct_values_distinct():
    assert plot.display_labels(["0.000749894", "0.001", "64"]) == {
        "0.000749894": "0.00075", "0.001": "0.001", "64": "64"}
    assert plot.display_labels(["0.00101", "0.00102"]) == {"0.00101": "0.00101",
                                                           "0.00102": "0.00102"}
    assert plot.display_labels(["0.0010001", "0.0010002"]) == {  # 3 digits would merge them
        "0.0010001": "0.0010001", "0.0010002": "0.0010002"}


# --------------------------------------------------------------------------- broken tables
def test_an_infinite_accuracy_is_left_out_and_said(tmp_path, capsys, no_rendering):
    table = plot_tables.results_table(FIVE_AXES_2 := dict(list(FIVE_AXES.items())[:2]),
                                      effective_rate)
    table.loc[3, "val_accuracy"] = np.inf
    table.loc[4, "val_accuracy"] = -np.inf
    table.loc[5, "val_accuracy"] = np.nan
    csv = plot_tables.write(table, tmp_path)

    assert plot.main([str(csv), "--out", str(tmp_path / "plots"), "--top", "0"]) == 0

    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert ("note: 3 of 9 rows left out of the charts (2 val_accuracy is infinite, 1 no "
            "val_accuracy value); report.html lists them") in err.splitlines()
    res = plot.load_results(csv)
    assert len(res.trials) == 6 and len(FIVE_AXES_2) == len(res.axes)
    report = (tmp_path / "plots" / "report.html").read_text()
    assert report.count("<td>val_accuracy is infinite</td>") == 2


def test_a_lab_sheet_in_percent_with_an_infinite_value(tmp_path):
    csv = tmp_path / "lab.csv"
    csv.write_text("Activation,Learning Rate,Validation Accuracy\nrelu,0.01,97.5\n"
                   "relu,0.001,96.5\ntanh,0.01,inf\ntanh,0.001,95.0\n")

    res = plot.load_results(csv)

    assert sorted(res.trials["val_accuracy"]) == pytest.approx([0.95, 0.965, 0.975])


def test_only_failed_rows_is_one_error_line(tmp_path, capsys):
    table = plot_tables.failed(plot_tables.results_table(FIVE_AXES), range(3 * 3 * 2 * 4 * 2))
    csv = plot_tables.write(table, tmp_path)

    assert plot.main([str(csv), "--out", str(tmp_path / "plots")]) == 2

    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("error: ")
    assert "no completed trial has a finite val_accuracy value" in error
    assert "'failed': 144" in error


# --------------------------------------------------------------------------- the package
def test_one_module_per_chart_none_over_300_lines():
    folder = Path(plot.__file__).parent
    modules = {path.name: len(path.read_text().splitlines()) for path in folder.glob("*.py")}
    assert {"_ranking.py", "_lines.py", "_heatmaps.py", "_interactions.py",
            "_parallel_coordinates.py", "_what_matters.py", "_curves.py", "_report.py",
            "_read.py", "_style.py", "__main__.py"} <= set(modules)
    assert max(modules.values()) <= 300, modules


def test_plot_imports_no_tensorflow_and_runs_as_a_module(tmp_path):
    check = "import mnist_zoo.plot, sys; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", check], check=True)
    done = subprocess.run([sys.executable, "-m", "mnist_zoo.plot", "--help"], check=True,
                          capture_output=True, text=True)
    assert "--pairs ROWS:COLUMNS" in done.stdout and "parallel_coordinates" in done.stdout
