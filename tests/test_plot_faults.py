"""mnist_zoo.plot on large, broken or hostile results tables: one clear line or a chart of
what can be charted, never a traceback (issues #13 and #22; moved from test_faults.py)."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def one_error_line(text: str) -> str:
    """The command's stderr must hold exactly one `error:` line and no traceback."""
    assert "Traceback" not in text
    errors = [line for line in text.splitlines() if "error:" in line]
    assert len(errors) == 1, text
    return errors[0]


def big_search_csv(path: Path, rows: int = 5000) -> Path:
    """A 5,000-trial search: 4 models x 3 activations x 4 rates x 3 optimizers x 4 batch sizes
    x 3 dropouts, repeated with new seeds; every 50th trial failed."""
    rng = np.random.default_rng(0)
    grid = list(itertools.product(["lenet5", "mlp_bp", "cnn3", "mlp_simple"],
                                  ["relu", "tanh", "sigmoid"], [0.1, 0.03, 0.01, 0.001],
                                  ["sgd", "adam", "rmsprop"], [32, 64, 128, 256], [0.0, 0.2, 0.5]))
    table = pd.DataFrame([grid[i % len(grid)] for i in range(rows)],
                         columns=["model", "activation", "learning_rate", "optimizer",
                                  "batch_size", "dropout"])
    table.insert(0, "trial_id", [f"{i:04d}" for i in range(rows)])
    table["epochs"] = 2
    table["val_accuracy"] = np.clip(0.9 + rng.normal(0, 0.03, rows), 0, 1)
    table["status"] = np.where(np.arange(rows) % 50, "completed", "failed")
    table["history_path"] = ""
    table.to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_plot_of_5000_trials_is_quick_and_readable(tmp_path, zoo_check_image):
    from mnist_zoo import plot

    csv = big_search_csv(tmp_path / "results.csv")

    # CPU time, not wall time: on a shared 2-core machine other processes can double the
    # wall time, while plot's own work stays put. Every chart of these 5,000 rows takes
    # about 11 s of it on the development machine (issue #18 asks for under 15 s); the bound
    # leaves room for a slower CI machine, and catches a return to uncapped charts (205 s).
    started = time.process_time()
    written = plot.plot_results(csv, tmp_path / "plots")
    seconds = time.process_time() - started

    assert seconds < 30, f"plot took {seconds:.0f} s of CPU time"
    charts = {path.name: path for path in written if path.suffix == ".png"}
    res = plot.load_results(csv)
    heatmaps = {f"heatmap_{rows}_x_{cols}.png" for rows, cols, _ in plot.chosen_pairs(res)}
    # dropout has the fewest values (3, as activation and optimizer, and comes last)
    assert set(charts) == {"ranking.png", "importance.png", "lines_by_dropout.png", "parallel_coordinates.png",
                           "optimizer_x_activation.png", "what_matters.png", *heatmaps}
    assert len(heatmaps) == 3
    for path in charts.values():  # also opens each one: no decompression-bomb warning or error
        zoo_check_image(path, max_size=(10_000, 10_000))
    report = (tmp_path / "plots" / "report.html").read_text()
    assert "The 100 best of 4,900 completed trials" in report
    colour, panel, across, panels, _ = plot.lines_data(res)
    combinations = len(panels[0][1])  # every combination of the settings along x
    assert combinations == np.prod([res.trials[a].nunique() for a in across]) > 60
    assert f"{panel} {panels[0][0]}: best 60 of {combinations} combinations" in report
    assert report.count("<td>failed</td>") == 100  # all 100 failed trials listed


def test_plot_caps_heatmap_panels_and_line_panels(tmp_path, monkeypatch):
    from mnist_zoo import plot
    from mnist_zoo.plot import _style

    csv = big_search_csv(tmp_path / "results.csv", rows=1728)
    monkeypatch.setattr(_style, "MAX_PANELS", 6)
    monkeypatch.setattr(_style, "LINES_PANELS", 2)
    monkeypatch.setattr(_style, "EXCLUDED_ROWS", 10)
    res = plot.load_results(csv)

    [heatmap] = plot.plot_heatmaps(res, tmp_path, "png", "learning_rate", "batch_size")
    [lines] = plot.plot_lines(res, tmp_path, "png")
    [pairings] = plot.plot_optimizer_activation(res, tmp_path, "png")

    panels, panel_axes, pooled = plot.heatmap_data(res, "learning_rate", "batch_size")
    assert 1 < len(panels) <= 6 and pooled  # the settings that would make more are averaged
    assert f"averages the trials over {', '.join(a.replace('_', ' ') for a in pooled)}, " \
           "which would make more than 6 panels" in heatmap.caption
    key, cells, spread = panels[0]
    inside = res.points[(res.points[panel_axes] == list(key)).all(axis=1)]
    expected = inside.groupby(["learning_rate", "batch_size"], observed=True)[res.metric].mean()
    assert cells.stack().to_numpy() == pytest.approx(expected.to_numpy())
    assert spread is None
    colour, panel, _, all_panels, _ = plot.lines_data(res)
    assert f"the best 2 of {len(all_panels)} values of {panel.replace('_', ' ')}" in lines.caption
    assert "the best 2 of 4 models" in pairings.caption
    report = plot.write_report(res, [heatmap], tmp_path).read_text()
    assert report.count("<td>failed</td>") == 10 and "… and 25 more" in report  # 35 failed


def _csv_with_history(folder: Path, history_path: str) -> Path:
    pd.DataFrame({"epoch": [0, 1], "loss": [0.5, 0.3], "accuracy": [0.8, 0.9]}).to_csv(
        folder / "outside.csv", index=False)
    results = folder / "results"
    (results / "trials" / "0000").mkdir(parents=True)
    pd.DataFrame({"epoch": [0, 1], "loss": [0.4, 0.2], "accuracy": [0.85, 0.95]}).to_csv(
        results / "trials" / "0000" / "history.csv", index=False)
    pd.DataFrame({"trial_id": ["0000", "0001"], "activation": ["relu", "tanh"],
                  "val_accuracy": [0.95, 0.9], "status": "completed",
                  "history_path": ["trials/0000/history.csv", history_path]}).to_csv(
        results / "experiment_results.csv", index=False)
    return results / "experiment_results.csv"


@pytest.mark.parametrize("escape", ["../outside.csv", "{folder}/outside.csv"])
def test_plot_reads_histories_only_inside_the_results_folder(escape, tmp_path, capsys):
    from mnist_zoo.plot import load_results, read_histories

    csv = _csv_with_history(tmp_path, escape.format(folder=tmp_path))

    histories = read_histories(load_results(csv), top=5)

    assert [trial["trial_id"] for trial, _ in histories] == ["0000"]
    warning = capsys.readouterr().err.strip()
    assert warning.startswith("warning: trial 0001: history_path")
    assert "outside the results folder" in warning and len(warning.splitlines()) == 1


def test_plot_wrong_metric_names_the_columns_the_file_has(tmp_path, capsys):
    from mnist_zoo import plot

    csv = tmp_path / "lab.csv"
    csv.write_text("Activation,Validation Loss\nrelu,0.2\n")

    assert plot.main([str(csv), "--out", str(tmp_path / "plots")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "no 'val_accuracy' column" in line
    assert "found columns: Activation, Validation Loss" in line
    assert "--metric: Validation Loss" in line
    assert "trial_id" not in line and "status" not in line  # columns plot adds itself


@pytest.mark.parametrize("out", ["results.csv", "results.csv/plots"])
def test_plot_out_that_is_a_file(out, tmp_path, capsys):
    from mnist_zoo import plot

    csv = tmp_path / "results.csv"
    csv.write_text("trial_id,activation,val_accuracy\n0,relu,0.9\n1,tanh,0.8\n")

    assert plot.main([str(csv), "--out", str(tmp_path / out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert ("is a file; --out takes a folder" in line if out == "results.csv"
            else "cannot create the output folder" in line)


def test_plot_a_folder_instead_of_the_csv(tmp_path, capsys):
    from mnist_zoo import plot

    (tmp_path / "experiment_results.csv").write_text("trial_id,val_accuracy\n0,0.9\n")

    assert plot.main([str(tmp_path), "--out", str(tmp_path / "plots")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "is a folder, not a results CSV file" in line
    assert f"did you mean {tmp_path / 'experiment_results.csv'}" in line


