"""mnist_zoo.plot: charts and report from a search CSV, a lab CSV, and the errors."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import pytest

import plot_tables
from mnist_zoo import plot
from mnist_zoo.plot import PlotError, format_value, load_results, plot_results

# Six settings, two values each: a search's CSV in its own columns, built here (charts need
# a table, not training). sgd with the small learning rate is far worse: an interaction.
SIX_AXES = {"model": ["mlp_bp", "lenet5"], "activation": ["relu", "tanh"],
            "learning_rate": [0.01, 0.001], "optimizer": ["adam", "sgd"],
            "batch_size": [32, 64], "epochs": [1, 2]}
FIXED_CHARTS = {"ranking.png", "importance.png", "lines_by_epochs.png", "parallel_coordinates.png",
                "optimizer_x_activation.png", "what_matters.png", "training_curves.png",
                "optimisation_history.png"}
LAB_CHARTS = {"ranking.png", "importance.png", "lines_by_batch_size.png", "heatmap_learning_rate_x_batch_size.png",
              "parallel_coordinates.png", "optimizer_x_activation.png", "what_matters.png"}


def six_axes_accuracy(settings):
    slow_sgd = settings["optimizer"] == "sgd" and settings["learning_rate"] == 0.001
    return 0.95 - 0.3 * slow_sgd - 0.01 * (settings["model"] == "mlp_bp")


@pytest.fixture(scope="module")
def zoo_search_csv(tmp_path_factory):
    """64 completed trials with per-epoch histories, a diverged trial (NaN metrics) and a
    failed one, in mnist_zoo.search's columns."""
    table = plot_tables.results_table(SIX_AXES, six_axes_accuracy)
    table = plot_tables.failed(table, [60], "diverged", "loss became NaN")
    table = plot_tables.failed(table, [61])
    return plot_tables.write(table, tmp_path_factory.mktemp("zoo_search"), histories=True)


def heatmap_names(res):
    return {f"heatmap_{rows}_x_{cols}.png" for rows, cols, _ in plot.chosen_pairs(res)}


def synthetic_grid(path, seed=0):
    """81 trials: 3 activations x 3 learning rates x 3 optimizers x 3 batch sizes."""
    rng = np.random.default_rng(seed)
    rows = []
    for number, (act, lr, opt, bs) in enumerate(itertools.product(
            ["relu", "tanh", "sigmoid"], [0.1, 0.01, 0.001], ["sgd", "adam", "rmsprop"],
            [32, 64, 128])):
        accuracy = 0.97 - (0.3 if opt != "sgd" and lr == 0.1 else 0) - bs / 10_000
        rows.append({"trial_id": f"{number:04d}", "model": "lenet5", "activation": act,
                     "learning_rate": lr, "optimizer": opt, "batch_size": bs, "epochs": 5,
                     "val_accuracy": accuracy + rng.normal(0, 0.003), "status": "completed"})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def image_links(report):
    return set(re.findall(r'<img src="([^"]+)"', report.read_text()))


# --------------------------------------------------------------------------- charts
def test_search_csv_gives_every_chart_and_report(zoo_search_csv, tmp_path, zoo_check_image):
    written = plot_results(zoo_search_csv, tmp_path / "plots", threshold=0.2)

    names = {path.name for path in written}
    charts = FIXED_CHARTS | heatmap_names(load_results(zoo_search_csv))
    assert len(charts) == len(FIXED_CHARTS) + 3  # the 3 pairs that interact most
    assert names == charts | {"report.html"}
    assert all(path.parent == tmp_path / "plots" for path in written)
    for path in written:
        if path.suffix == ".png":
            zoo_check_image(path)
    report = tmp_path / "plots" / "report.html"
    assert image_links(report) == charts
    text = report.read_text()
    assert "1 diverged" in text and "1 failed" in text
    assert "ResourceExhaustedError" in text  # the excluded trials are listed with their error
    assert "0.001" in text and "e-0" not in text  # learning rates as people write them


def test_only_completed_trials_are_charted(zoo_search_csv):
    res = load_results(zoo_search_csv)

    assert set(res.trials["trial_id"]) == {f"{i:04d}" for i in range(64)} - {"0060", "0061"}
    assert res.axes == list(plot.AXES[:6])  # all six settings vary
    assert list(res.trials["learning_rate"].cat.categories) == ["0.001", "0.01"]
    assert list(res.trials["batch_size"].cat.categories) == ["32", "64"]


def test_training_curves_come_from_the_best_trials_histories(zoo_search_csv):
    res = load_results(zoo_search_csv)

    histories = plot.read_histories(res, top=3)

    assert [trial["trial_id"] for trial, _ in histories] == list(res.ranked()["trial_id"][:3])
    for trial, history in histories:
        assert len(history) == int(trial["epochs"])
        assert {"accuracy", "loss", "val_accuracy", "val_loss"} <= set(history.columns)


def test_loss_metric_ranks_lowest_first(zoo_search_csv, tmp_path, zoo_check_image):
    written = plot_results(zoo_search_csv, tmp_path, metric="val_loss", fmt="png", top=2)

    res = load_results(zoo_search_csv, "val_loss")
    assert not res.higher_is_better
    assert res.ranked()["val_loss"].is_monotonic_increasing
    assert {p.name for p in written} == FIXED_CHARTS | heatmap_names(res) | {"report.html"}
    zoo_check_image(tmp_path / "ranking.png")


def test_lab_format_csv(lab_csv, tmp_path, zoo_check_image):
    written = plot_results(lab_csv, tmp_path, threshold=0.5)

    res = load_results(lab_csv)
    charts = LAB_CHARTS | heatmap_names(res)
    assert "heatmap_learning_rate_x_batch_size.png" in charts  # the lab's view stays
    assert {p.name for p in written} == charts | {"report.html"}
    for path in written[:-1]:
        zoo_check_image(path)
    assert res.axes == ["activation", "learning_rate", "optimizer", "batch_size"]  # grid.AXES
    assert len(res.trials) == 16
    assert image_links(tmp_path / "report.html") == charts


def test_81_combinations_get_a_tall_readable_ranking(tmp_path, zoo_check_image):
    csv = synthetic_grid(tmp_path / "grid.csv")

    plot_results(csv, tmp_path / "plots")

    ranking = zoo_check_image(tmp_path / "plots" / "ranking.png")
    assert 81 * 20 < ranking.height <= 2000  # every bar gets a label's height, under the cap
    heatmap = zoo_check_image(tmp_path / "plots" / "heatmap_learning_rate_x_batch_size.png")
    assert heatmap.width > 600 and heatmap.height > 500  # nine panels, three by three


def test_svg_format(lab_csv, tmp_path):
    written = plot_results(lab_csv, tmp_path, fmt="svg")

    charts = [p for p in written if p.suffix == ".svg"]
    expected = LAB_CHARTS | heatmap_names(load_results(lab_csv))
    assert {p.stem for p in charts} == {name[:-4] for name in expected}
    assert all(p.read_text().lstrip().startswith("<?xml") for p in charts)
    assert image_links(tmp_path / "report.html") == {p.name for p in charts}


@pytest.mark.parametrize("value, label", [
    (0.001, "0.001"), (1e-4, "0.0001"), (0.1 + 0.2, "0.3"), (64.0, "64"), (32, "32"),
    (float("nan"), "none"), ("relu", "relu"), (True, "True"),
])
def test_format_value(value, label):
    assert format_value(value) == label


# --------------------------------------------------------------------------- errors
def test_missing_csv_is_a_clear_error(tmp_path):
    with pytest.raises(PlotError, match="no such results file"):
        plot_results(tmp_path / "nope.csv", tmp_path)


@pytest.mark.parametrize("content, message", [
    ("", "is empty"),
    ("trial_id,activation,val_accuracy\n", "no trials"),
    ("trial_id,activation,val_loss\n0000,relu,0.2\n", "no 'val_accuracy' column"),
    ("trial_id,activation,val_accuracy,status\n0000,relu,,failed\n", "no completed trial"),
])
def test_unusable_csv_is_a_clear_error(tmp_path, content, message):
    csv = tmp_path / "results.csv"
    csv.write_text(content)

    with pytest.raises(PlotError, match=message):
        plot_results(csv, tmp_path / "plots")


def test_cli_reports_errors_with_exit_status_2(tmp_path, capsys):
    csv = tmp_path / "results.csv"
    csv.write_text("trial_id,activation,val_loss\n0000,relu,0.2\n")

    assert plot.main([str(csv), "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert plot.main([str(tmp_path / "missing.csv")]) == 2
    assert "no such results file" in capsys.readouterr().err


def test_cli_writes_charts(lab_csv, tmp_path, capsys):
    assert plot.main([str(lab_csv), "--out", str(tmp_path / "out"), "--threshold", "0.5"]) == 0

    printed = capsys.readouterr().out.split()
    assert printed[-1].endswith("report.html")
    assert (tmp_path / "out" / "what_matters.png").is_file()


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        plot.main(["--help"])
    assert exit_info.value.code == 0
    assert "--threshold" in capsys.readouterr().out
