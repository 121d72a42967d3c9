"""mnist_zoo.plot with repeats: grid points as mean ± std over their runs, and the
within-noise test of report.html; without repeats the charts stay as they were."""

from __future__ import annotations

import re

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.container import BarContainer

import plot_tables
from mnist_zoo import plot
from mnist_zoo.plot import load_results
from mnist_zoo.search.table import SUMMARY_CSV, summarize

# Captions of the lab CSV's charts before repeats existed (tests/test_plot.py's lab_csv).
LAB_CAPTIONS = [
    "All 16 completed trials, best on top; colours show optimizer, whose values differ most "
    "on average.",
    "Importance of each setting: a random forest learns validation accuracy from the settings "
    "of the 16 trials; a setting's bar is how much worse it predicts when that setting's "
    "values are shuffled, as a share of all settings' together (scikit-learn's permutation "
    "importance, as Weights and Biases ranks parameters). It says what decides the result, "
    "not in which direction: the slice, what-matters and heatmap charts show that.",
    "Each line is one batch size; along the x axis every combination of activation, learning "
    "rate, optimizer, best first; trials past the threshold (50.0%) are left out, so lines "
    "break where a setting failed.",
    *[f"Chosen by its interaction: interaction 10.2 points, rank {rank} of 6 pairs (the root "
      f"mean square of the cells' means minus what {rows} and {cols} predict on their own, an "
      "additive fit of a row and a column effect; 0 when each acts alone). Mean validation "
      f"accuracy for each {rows} and {cols}, one panel per {panels}; brighter is better."
      # The three interactions are equal in exact arithmetic (10.2 points): they rank by name,
      # whatever the CPU's rounding (mnist_zoo.order).
      for rank, rows, cols, panels in [
          (1, "activation", "learning rate", "optimizer / batch size"),
          (2, "activation", "optimizer", "learning rate / batch size"),
          (3, "learning rate", "optimizer", "activation / batch size")]],
    "The lab's learning rate x batch size view: interaction 0.0 points, rank 5 of 6 pairs (the "
    "root mean square of the cells' means minus what learning rate and batch size predict on "
    "their own, an additive fit of a row and a column effect; 0 when each acts alone). Mean "
    "validation accuracy for each learning rate and batch size, one panel per optimizer / "
    "activation; brighter is better.",
    "Parallel coordinates: one line per completed trial (16), across an axis per varying "
    "setting (least important on the left, the one that matters most beside the metric) and "
    "its validation accuracy; coloured by validation accuracy, brighter is better, the best "
    "drawn on top. Grey: past the threshold 50.0%.",
    "Left: the best trial of each optimizer and activation pairing; right: their mean over "
    "learning rate · batch size, which shows how forgiving a pairing is of its other settings.",
    "For each setting, the spread of every trial (dots, boxes) and the mean (red) per value; "
    "panels run from the setting whose means lie furthest apart.",
]


@pytest.fixture(scope="module")
def repeats_search_csv(tmp_path_factory):
    """What a search of mlp_bp with learning rates 0.1 and 0.001, run 3 times each, writes:
    its results CSV (in the search's columns, with histories) and experiment_summary.csv
    from mnist_zoo.search.table.summarize."""
    table = plot_tables.results_table(
        {"model": ["mlp_bp"], "learning_rate": [0.1, 0.001], "optimizer": ["sgd"],
         "epochs": [1]}, lambda s: 0.9 if s["learning_rate"] == 0.1 else 0.6, repeats=3,
        noise=0.01)
    csv = plot_tables.write(table, tmp_path_factory.mktemp("repeats_search"), histories=True)
    summarize(table).to_csv(csv.with_name(SUMMARY_CSV), index=False)
    return csv


def synthetic_repeats(path, repeat=True):
    """learning_rate x batch_size, 3 repeats each: (0.01, 32) is best, (0.001, 32) overlaps
    it, (0.01, 64) is far worse, and (0.001, 64) has one completed repeat of three."""
    values = {("0.01", 32): [0.90, 0.92, 0.91], ("0.001", 32): [0.91, 0.89, 0.90],
              ("0.01", 64): [0.70, 0.71, 0.72], ("0.001", 64): [0.60, np.nan, np.nan]}
    rows = []
    for (lr, bs), runs in values.items():
        for number, value in enumerate(runs):
            rows.append({"trial_id": f"{len(rows):04d}", "model": "lenet5", "activation": "relu",
                         "learning_rate": float(lr), "optimizer": "adam", "batch_size": bs,
                         "epochs": 2, "repeat": number, "seed": number, "val_accuracy": value,
                         "status": "completed" if value == value else "failed"})
    table = pd.DataFrame(rows)
    if not repeat:  # one run per point, as a search without repeats writes it
        table = table[table["repeat"] == 0].assign(val_accuracy=[0.91, 0.90, 0.71, 0.60],
                                                   seed=0)
    table.to_csv(path, index=False)
    return path


def texts(chart):
    return [text.get_text() for ax in chart.figure.axes for text in ax.texts]


def draw(chart_function, res, tmp_path, *args):
    with matplotlib.rc_context(plot.STYLE):
        return chart_function(res, tmp_path, "png", *args)


# --------------------------------------------------------------------------- a search's CSV
def test_points_are_the_mean_std_and_n_of_each_grid_points_runs(repeats_search_csv):
    res = load_results(repeats_search_csv)

    assert res.repeats
    assert res.axes == ["learning_rate"]  # repeat and seed are never settings
    table = pd.read_csv(repeats_search_csv)
    expected = (table[table["status"] == "completed"].groupby("learning_rate")["val_accuracy"]
                .agg(["mean", "std", "count"]))
    points = res.points.set_index("learning_rate")
    for rate, row in expected.iterrows():
        point = points.loc[plot.format_value(rate)]
        assert point["val_accuracy"] == pytest.approx(row["mean"])
        assert point[plot.STD] == pytest.approx(row["std"])
        assert point[plot.N] == row["count"] == 3
    summary = pd.read_csv(repeats_search_csv.with_name(SUMMARY_CSV))
    assert sorted(res.points["val_accuracy"]) == pytest.approx(
        sorted(summary["val_accuracy_mean"]))  # the search's own summary agrees


def test_report_names_the_test_and_the_worse_rate_is_not_within_noise(repeats_search_csv,
                                                                       tmp_path, capsys):
    assert plot.main([str(repeats_search_csv), "--out", str(tmp_path)]) == 0

    report = (tmp_path / "report.html").read_text()
    assert "<h2>Within noise of the best</h2>" in report
    assert "Welch's t-test" in report and "equal_var=False" in report and "p ≥ 0.05" in report
    assert "None of the others is within noise of the best." in report
    tests = plot.noise_tests(load_results(repeats_search_csv))
    assert list(tests["setting"]) == ["lr 0.1", "lr 0.001"]
    assert list(tests["verdict"]) == ["best", "worse"]
    assert tests["p"].iloc[1] < 0.05
    assert {"ranking.png", "what_matters.png", "training_curves.png"} <= {
        line.rsplit("/", 1)[-1] for line in capsys.readouterr().out.split()}


# --------------------------------------------------------------------------- synthetic repeats
def test_overlapping_points_are_within_noise(tmp_path):
    csv = synthetic_repeats(tmp_path / "results.csv")

    tests = plot.noise_tests(load_results(csv))

    assert list(tests["verdict"]) == ["best", "within noise", "worse",
                                      "cannot be tested (n < 2)"]
    assert list(tests["setting"]) == ["lr 0.01 · bs 32", "lr 0.001 · bs 32", "lr 0.01 · bs 64",
                                      "lr 0.001 · bs 64"]
    plot.plot_results(csv, tmp_path / "plots")
    report = (tmp_path / "plots" / "report.html").read_text()
    assert "Within noise of the best: rank 2." in report
    assert "The 4 best grid points by mean val_accuracy" in report


def test_heatmap_cells_read_mean_plus_minus_std(tmp_path):
    res = load_results(synthetic_repeats(tmp_path / "results.csv"))

    [chart] = draw(plot.plot_heatmaps, res, tmp_path, "learning_rate", "batch_size")

    # rows: learning rate 0.001, 0.01; columns: batch size 32, 64; in percent
    assert texts(chart) == ["90.0 ± 1.0", "60.0", "91.0 ± 1.0", "71.0 ± 1.0"]
    assert "mean ± standard deviation over its repeats (n = 1–3), in percent" in chart.caption


def test_ranking_bars_are_means_with_std_whiskers(tmp_path):
    res = load_results(synthetic_repeats(tmp_path / "results.csv"))

    [chart] = draw(plot.plot_ranking, res, tmp_path)

    [bars] = [c for c in chart.figure.axes[0].containers if isinstance(c, BarContainer)]
    assert [bar.get_width() for bar in bars.patches] == pytest.approx([0.91, 0.90, 0.71, 0.60])
    whiskers = bars.errorbar.lines[2][0].get_segments()
    assert [(right - left) / 2 for (left, _), (right, _) in whiskers] == pytest.approx(
        [0.01, 0.01, 0.01, 0])
    assert texts(chart) == ["91.0% ± 1.0%", "90.0% ± 1.0%", "71.0% ± 1.0%", "60.0% (n=1)"]
    assert "mean validation accuracy over its completed repeats (n = 1–3)" in chart.caption
    assert "whisker ±1 standard deviation" in chart.caption


def test_lines_have_std_bands_and_what_matters_uses_point_means(tmp_path):
    res = load_results(synthetic_repeats(tmp_path / "results.csv"))

    [lines] = draw(plot.plot_lines, res, tmp_path)

    bands = [c for c in lines.figure.axes[0].collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2  # one per batch size
    assert "shaded bands ±1 standard deviation" in lines.caption
    # batch size 64: points 0.71 and 0.60 (one run) average 0.655, its four runs 0.6825
    effects = res.effects()
    assert effects["batch_size"] == pytest.approx((0.91 + 0.90) / 2 - (0.71 + 0.60) / 2)


# --------------------------------------------------------------------------- no repeats
def test_without_repeats_the_charts_are_as_before(tmp_path, lab_csv):
    res = load_results(synthetic_repeats(tmp_path / "results.csv", repeat=False))

    assert not res.repeats and res.points is res.trials
    [heatmap] = draw(plot.plot_heatmaps, res, tmp_path, "learning_rate", "batch_size")
    [ranking] = draw(plot.plot_ranking, res, tmp_path)
    assert texts(heatmap) == ["90.0", "60.0", "91.0", "71.0"]
    assert texts(ranking) == ["91.0%", "90.0%", "71.0%", "60.0%"]
    [bars] = ranking.figure.axes[0].containers
    assert isinstance(bars, BarContainer) and bars.errorbar is None
    assert ranking.caption == ("All 4 completed trials, best on top; colours show batch size, "
                               "whose values differ most on average.")
    plot.plot_results(lab_csv, tmp_path / "lab", threshold=0.5)
    report = (tmp_path / "lab" / "report.html").read_text()
    assert re.findall(r"<figcaption>(.*?)</figcaption>", report) == [
        caption.replace("'", "&#x27;") for caption in LAB_CAPTIONS]
    assert "Within noise" not in report and "The 10 best trials by val_accuracy" in report


def test_equal_settings_with_several_seeds_are_repeats(tmp_path):
    """An older CSV without a repeat column: rows with equal settings and different seeds."""
    csv = tmp_path / "results.csv"
    table = pd.read_csv(synthetic_repeats(tmp_path / "with_repeat.csv")).drop(columns="repeat")
    table.to_csv(csv, index=False)

    assert load_results(csv).repeats
    table.assign(seed=0).to_csv(csv, index=False)  # nothing tells them apart: separate trials
    assert not load_results(csv).repeats


