"""Issue #31: charts for searches over ranges (slices, contours, bins, an importance score),
every chart under the size cap; issue #29 item 7 (long setting values) and issue #35 item 4
(plot writes beside its CSV). Tables built here: a random search's, a grid's, Hyperband's."""

from __future__ import annotations

import json
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import plot_tables
from mnist_zoo import plot
from mnist_zoo.plot import _kinds, _style
from mnist_zoo.plot import contour_data, importance_data, slice_data
from mnist_zoo.plot._read import LABEL_CHARS, readable

CAP_PIXELS = 2000  # no chart over ~2,000 px on a side


@pytest.fixture
def no_rendering(monkeypatch):
    """Charts are built but not saved: which charts come out, fast."""
    monkeypatch.setattr(_style, "save", lambda fig, out, stem, fmt: out / f"{stem}.{fmt}")


def random_csv(folder, rows=100, **kwargs):
    return plot_tables.write(plot_tables.random_table(rows, **kwargs), folder)


# --------------------------------------------------------------------------- data steps
def test_bins_are_quantiles_named_by_their_edges():
    labels = pd.Series([str(v) for v in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]])

    binned = _kinds.bin_labels(labels, bins=5)

    assert list(binned.cat.categories) == ["1–2.8", "2.8–4.6", "4.6–6.4", "6.4–8.2", "8.2–10"]
    assert binned.value_counts(sort=False).tolist() == [2, 2, 2, 2, 2]
    one_value = _kinds.bin_labels(pd.Series(["0.5", "0.5", "none", "2"]), bins=5)
    assert list(one_value.cat.categories) == ["0.5", "2", "none"]  # no empty bin between


def test_a_setting_is_continuous_from_a_range_or_past_ten_numbers():
    eleven = pd.DataFrame({"a": [str(v) for v in range(1, 12)]}).astype("category")
    ten = pd.DataFrame({"a": [str(v) for v in range(1, 11)]}).astype("category")
    log_rates = pd.DataFrame({"a": [str(10.0 ** -k) for k in range(1, 13)]}).astype("category")
    words = pd.DataFrame({"a": [f"w{v}" for v in range(20)]}).astype("category")

    assert _kinds.continuous_axes(eleven, ["a"]) == {"a": False}
    assert _kinds.continuous_axes(ten, ["a"]) == {}
    assert _kinds.continuous_axes(ten, ["a"], ranges={"a": True}) == {"a": True}
    assert _kinds.continuous_axes(log_rates, ["a"]) == {"a": True}
    assert _kinds.continuous_axes(words, ["a"], ranges={"a": False}) == {}


def test_ranges_are_read_from_the_search_record_beside_the_csv(tmp_path):
    project = tmp_path / "tuner" / "random30"
    project.mkdir(parents=True)
    (project / "grid.json").write_text(json.dumps({"axes": {
        "learning_rate": {"min": 1e-4, "max": 0.1, "log": True},
        "momentum": {"min": 0.0, "max": 0.95, "log": False}, "optimizer": ["sgd"]}}))

    assert _kinds.range_axes(tmp_path / "experiment_results.csv") == {
        "learning_rate": True, "momentum": False}
    (project / "grid.json").write_text("{not json")
    assert _kinds.range_axes(tmp_path / "experiment_results.csv") == {}


def test_hyperband_keeps_each_configuration_at_its_last_round():
    table = plot_tables.hyperband_table()

    last = _kinds.last_rounds(table, ["learning_rate", "optimizer"])

    assert last["trial_id"].tolist() == ["0000", "0002", "0003", "0004", "0006", "0007"]
    assert last["epochs"].tolist() == [1, 1, 1, 1, 3, 3]


def test_long_labels_are_cut_and_stay_apart():
    first, second = "a" * 2000 + "x", "a" * 2000 + "y"

    assert readable("relu") == "relu"
    assert len(readable(first)) == LABEL_CHARS and readable(first).startswith("a" * 32 + "…#")
    assert readable(first) != readable(second)


def test_importance_finds_the_setting_that_decides(tmp_path):
    csv = random_csv(tmp_path, optimizer=["sgd", "adam"], batch_size=[32, 64, 128])
    res = plot.load_results(csv)

    importance = importance_data(res)

    assert list(importance.shares)[0] == "learning_rate"
    assert importance.shares["learning_rate"] > 0.8
    assert sum(importance.shares.values()) == pytest.approx(1.0)
    assert importance.explained > 0.8  # the rate explains the accuracy


def test_importance_on_the_labs_grid_agrees_with_what_matters():
    """The lab's full grid, 81 points x 3 repeats (docs/): the forest's order is the order
    of what_matters' spread of means."""
    for csv in ("docs/full_grid_mnist_repeats3.csv", "docs/full_grid_fashion_mnist.csv"):
        res = plot.load_results(csv)
        assert list(importance_data(res).shares) == list(res.effects()), csv


def test_contour_interpolates_between_the_runs():
    """A plane, metric = x + y, is interpolated exactly inside the runs' hull."""
    res = plot.Results(
        csv_path=None, table=None, metric="val_loss", axes=["dropout", "momentum"], constant={},
        threshold=None, continuous={"dropout": False, "momentum": False},
        trials=pd.DataFrame({"dropout": ["0", "1", "0", "1", "0.5"],
                             "momentum": ["0", "0", "1", "1", "0.5"],
                             "val_loss": [0.0, 1.0, 1.0, 2.0, 1.0]}).astype(
                                 {"dropout": "category", "momentum": "category"}))

    places, (xs, ys, zs) = contour_data(res, "dropout", "momentum")

    assert len(places) == 5 and xs[0] == 0 and xs[-1] == 1
    mesh_x, mesh_y = np.meshgrid(xs, ys)
    assert zs == pytest.approx(mesh_x + mesh_y, abs=1e-9)
    on_a_line = res.trials.assign(momentum=res.trials["dropout"])
    assert contour_data(plot.Results(**{**res.__dict__, "trials": on_a_line, "points": None}),
                        "dropout", "momentum") is None


def test_slice_colours_each_setting_by_the_next_most_important(tmp_path):
    res = plot.load_results(random_csv(tmp_path, optimizer=["sgd", "adam"]))

    panels = slice_data(res, {"learning_rate": 0.7, "optimizer": 0.2, "momentum": 0.1})

    assert [(axis, colour) for axis, colour, _ in panels] == [
        ("learning_rate", "optimizer"), ("momentum", "learning_rate")]
    axis, _, runs = panels[0]
    assert runs["x"].to_numpy() == pytest.approx(
        plot_tables.random_table(optimizer=["sgd", "adam"])["learning_rate"], rel=1e-5)


# --------------------------------------------------------------------------- charts drawn
def chart_sizes(written):
    sizes = {}
    for path in written:
        if path.suffix == ".png":
            with Image.open(path) as image:
                sizes[path.stem] = image.size
    return sizes


def test_a_random_search_gets_slices_a_contour_and_bins(tmp_path):
    csv = random_csv(tmp_path)

    written, notes = plot.run_plot(csv, tmp_path / "plots", top=0)

    res = plot.load_results(csv)
    assert res.continuous == {"learning_rate": True, "momentum": False}
    names = {path.stem for path in written}
    assert names == {"ranking", "importance", "slice", "contour_learning_rate_x_momentum",
                     "parallel_coordinates", "what_matters", "optimisation_history", "report"}
    assert not any(name.startswith(("heatmap_", "lines_by_")) for name in names)
    assert any(note.startswith("lines: they need two settings that are categories") for note in
               notes)
    assert all(max(size) <= CAP_PIXELS for size in chart_sizes(written).values())
    report = (tmp_path / "plots" / "report.html").read_text()
    assert "<h2>Which settings matter</h2>" in report and "continuous, log" in report


def test_slice_has_a_log_axis_for_the_rate_and_what_matters_five_bins(tmp_path, no_rendering):
    res = plot.load_results(random_csv(tmp_path))
    importance = importance_data(res)

    [slices] = plot.plot_slice(res, tmp_path, "png", importance.shares)
    [matters] = plot.plot_what_matters(res, tmp_path, "png")

    rate, momentum = slices.figure.axes[:2]
    assert rate.get_xscale() == "log" and momentum.get_xscale() == "linear"
    assert rate.get_xlabel() == "learning rate (log scale)"
    for ax in matters.figure.axes[:2]:
        assert len(ax.get_xticks()) == _kinds.BINS  # 5 boxes, not 100
    assert "5 quantile bins" in matters.caption


def test_continuous_and_categorical_pair_gets_a_binned_heatmap(tmp_path, no_rendering):
    csv = random_csv(tmp_path, optimizer=["sgd", "adam", "rmsprop"])
    res = plot.load_results(csv)

    charts = plot.plot_interactions(res, tmp_path, "png", pairs=[("learning_rate", "optimizer")])

    [heatmap] = charts
    ax = heatmap.figure.axes[0]
    assert len(ax.get_xticks()) * len(ax.get_yticks()) == 3 * _kinds.BINS
    assert "Learning rate is continuous" in heatmap.caption
    colour, panel, across = plot._axes.line_roles(res) or (None, None, [])
    assert colour is None  # only one setting is a category: no lines


def test_lines_never_use_a_continuous_setting(tmp_path, no_rendering):
    rates = list(np.logspace(-4, -1, 12))  # a grid of 12 rates: continuous by count
    table = plot_tables.results_table({"learning_rate": rates, "optimizer": ["sgd", "adam"],
                                       "activation": ["relu", "tanh"]})
    res = plot.load_results(plot_tables.write(table, tmp_path))

    colour, panel, across = plot._axes.line_roles(res)

    assert res.continuous == {"learning_rate": True}
    assert "learning_rate" not in (colour, panel, *across)
    [lines] = plot.plot_lines(res, tmp_path, "png")
    assert "averages over the continuous learning rate" in lines.caption


def test_a_grid_keeps_its_category_charts(tmp_path):
    table = plot_tables.results_table({"learning_rate": [0.1, 0.01, 0.001],
                                       "optimizer": ["sgd", "adam"], "batch_size": [32, 64]})
    written, notes = plot.run_plot(plot_tables.write(table, tmp_path), tmp_path / "plots", top=0)

    names = {path.stem for path in written}
    assert {"importance", "what_matters", "parallel_coordinates"} <= names
    assert not any(name.startswith(("slice", "contour_")) for name in names)
    assert any(name.startswith("heatmap_") for name in names)
    assert any(note.startswith("slice: no setting is continuous") for note in notes)
    assert all(max(size) <= CAP_PIXELS for size in chart_sizes(written).values())


def test_hyperband_charts_by_the_epochs_reached(tmp_path, no_rendering):
    csv = plot_tables.write(plot_tables.hyperband_table(), tmp_path)

    written, notes = plot.run_plot(csv, tmp_path / "plots", top=0)

    res = plot.load_results(csv)
    assert res.budget == "epochs" and "epochs" not in res.axes and "epochs" not in res.constant
    assert len(res.trials) == 6  # each configuration once
    assert not any("left out" in note for note in notes)  # earlier rounds are not failures
    names = {path.stem for path in written}
    assert "importance" in names and "lines_by_optimizer" in names
    report = (tmp_path / "plots" / "report.html").read_text()
    assert "Hyperband: each configuration counts once, at the last round it reached " \
           "(epochs 1 to 3)" in report
    ranking = next(chart for chart in plot.draw_charts(res, tmp_path, top=0)[0]
                   if chart.path.stem == "ranking")
    labels = [t.get_text() for t in ranking.figure.axes[0].get_yticklabels()]
    assert labels[0].split() == ["lr", "0.001", "adam", "ep", "3"]  # the best, at 3 epochs
    assert "the epochs its configuration reached" in ranking.caption


def test_hyperband_over_a_range_colours_the_slice_by_epochs(tmp_path, no_rendering):
    table = plot_tables.random_table(40)
    table["bracket"], table["round"] = 0, 0
    table["epochs"] = np.where(np.arange(40) % 4 == 0, 3, 1)
    res = plot.load_results(plot_tables.write(table, tmp_path))

    [slices] = plot.plot_slice(res, tmp_path, "png", importance_data(res).shares)

    assert [colour for _, colour, _ in slice_data(res, importance_data(res).shares)] == [
        "epochs", "epochs"]
    assert "coloured by the epochs each configuration reached" in slices.caption
    legend = [t.get_text() for t in slices.figure.legends[0].get_texts()]
    assert "epochs 1" in legend and "epochs 3" in legend


# --------------------------------------------------------------------------- sizes, speed
def test_long_setting_values_are_cut_and_quick(tmp_path):
    """Issue #29 item 7: values of 2,000 to 200,000 characters took 7 s to minutes."""
    table = plot_tables.results_table({"activation": ["relu", "tanh"],
                                       "optimizer": ["sgd", "adam"]})
    for length in (2_000, 20_000, 200_000):
        table.loc[table["activation"] == "tanh", "activation"] = "t" * length
        csv = plot_tables.write(table, tmp_path / str(length))
        started = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # matplotlib's warnings about huge texts
            written = plot.plot_results(csv, tmp_path / str(length) / "plots", top=0)
        assert time.process_time() - started < 20
        res = plot.load_results(csv)
        assert max(len(label) for label in res.trials["activation"].cat.categories) \
            == LABEL_CHARS
        assert all(max(size) <= CAP_PIXELS for size in chart_sizes(written).values())


def test_plot_writes_beside_the_csv_it_reads(tmp_path, monkeypatch, capsys):
    """Issue #35 item 4: <csv folder>/plots/ unless --out says otherwise."""
    table = plot_tables.results_table({"optimizer": ["sgd", "adam"], "batch_size": [32, 64]})
    elsewhere = tmp_path / "runs" / "r"
    csv = plot_tables.write(table, elsewhere)
    monkeypatch.chdir(tmp_path)

    assert plot.main([str(csv), "--top", "0"]) == 0

    assert (elsewhere / "plots" / "report.html").is_file()
    assert not (tmp_path / "results").exists()
    plot_tables.write(table, tmp_path / "results")
    assert plot.main(["results/experiment_results.csv", "--top", "0"]) == 0
    assert (tmp_path / "results" / "plots" / "ranking.png").is_file()
    assert plot.main([str(csv), "--top", "0", "--out", "mine"]) == 0
    assert (tmp_path / "mine" / "report.html").is_file()


@pytest.mark.slow
def test_plot_of_5000_random_trials_is_under_15_s(tmp_path):
    """The held-back size: 5,000 trials over two ranges and four lists."""
    table = plot_tables.random_table(5000, optimizer=["sgd", "adam", "rmsprop"],
                                     activation=["relu", "tanh", "sigmoid"],
                                     batch_size=[32, 64, 128, 256], model=["lenet5", "mlp_bp"])
    csv = plot_tables.write(table, tmp_path)

    # CPU time: wall time on a shared 2-core machine doubles with the neighbours' load.
    started = time.process_time()
    written = plot.plot_results(csv, tmp_path / "plots", top=0)
    seconds = time.process_time() - started

    assert seconds < 15, f"plot took {seconds:.1f} s of CPU time"
    sizes = chart_sizes(written)
    assert {"slice", "importance", "contour_learning_rate_x_momentum"} <= set(sizes)
    assert all(max(size) <= CAP_PIXELS for size in sizes.values()), sizes


def test_a_continuous_setting_is_coloured_on_a_scale_however_few_its_draws():
    """Six momentum draws and Adam's empty cell: a colour scale, the empty cell grey (the
    slice chart's legend said 'momentum 0.193', 'momentum 0.388', ... as categories)."""
    from mnist_zoo.plot._axes import axis_colours
    from mnist_zoo.plot._style import MISSING

    labels = ["0.1", "0.25", "0.4", "0.55", "0.7", "0.9", MISSING]
    scaled = axis_colours("momentum", labels, continuous=True)
    assert scaled.scale is not None and scaled.palette[MISSING] == "#9a9a9a"
    assert scaled.palette["0.1"] != scaled.palette["0.9"]
    assert axis_colours("momentum", labels).scale is None  # a few categories: a cycle
