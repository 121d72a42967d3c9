"""Issue #20 item 4: the optimisation history (best so far against trials and seconds) for
any strategy's CSV: built tables, no training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import plot_tables
from mnist_zoo import plot


def search_csv(tmp_path, order=None, seconds=True):
    """A random search's rows: learning rates drawn, a failed and a diverged trial,
    finished in `order` (finished_at), 2.5 s each."""
    rates = [0.05, 0.002, 0.02, 0.0005, 0.008, 0.03, 0.001, 0.004]
    table = plot_tables.results_table(
        {"learning_rate": rates},
        accuracy=lambda settings: 0.99 - abs(np.log10(settings["learning_rate"]) + 2.2) / 10)
    table.loc[3, ["status", "val_accuracy"]] = ["failed", np.nan]
    table.loc[5, ["status", "val_accuracy"]] = ["diverged", 0.999]  # not a result
    table["finished_at"] = 1_000.0 + np.asarray(order if order is not None else range(len(table)))
    if not seconds:
        table = table.drop(columns=["seconds"])
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "experiment_results.csv"
    table.to_csv(path, index=False)
    return path, table


def test_best_so_far_climbs_over_the_trials_in_the_order_they_finished(tmp_path):
    order = [0, 7, 1, 2, 3, 4, 5, 6]  # trial 0001 finished last
    path, table = search_csv(tmp_path, order)
    data = plot.history_data(plot.load_results(path))
    finished = table.sort_values("finished_at")
    assert data["trial_id"].tolist() == finished["trial_id"].tolist()
    assert data["trial"].tolist() == list(range(1, 9))
    assert data["elapsed_seconds"].tolist() == pytest.approx([2.5 * n for n in range(1, 9)])
    values = finished["val_accuracy"].where(finished["status"] == "completed").to_numpy()
    np.testing.assert_allclose(data["val_accuracy"], values)  # failed, diverged: NaN
    expected = pd.Series(values).cummax().to_numpy()
    np.testing.assert_allclose(data["best_so_far"], expected)
    completed = table.query("status == 'completed'")
    assert data["best_so_far"].iloc[-1] == completed["val_accuracy"].max()


def test_a_loss_is_best_lowest(tmp_path):
    """Written-out losses against a written-out answer (#30: the expectation was computed
    as the code computes it). Trial 4 failed, trial 6 diverged: neither counts (nor has a
    point on the step line)."""
    path, table = search_csv(tmp_path)
    table["val_loss"] = [0.30, 0.42, 0.25, np.nan, 0.28, 0.01, 0.20, 0.22]
    table.to_csv(path, index=False)
    data = plot.history_data(plot.load_results(path, metric="val_loss"))
    np.testing.assert_allclose(data["best_so_far"],
                               [0.30, 0.30, 0.25, np.nan, 0.25, np.nan, 0.20, 0.20])


def test_the_chart_is_drawn_for_any_csv_with_seconds(tmp_path, zoo_check_image):
    path, table = search_csv(tmp_path)
    written, notes = plot.run_plot(path, tmp_path / "plots", top=0)
    chart = tmp_path / "plots" / "optimisation_history.png"
    assert chart in written and zoo_check_image(chart)
    (drawn,) = plot.plot_history(plot.load_results(path), tmp_path, "png")
    steps = [line.get_ydata() for ax in drawn.figure.axes for line in ax.get_lines()
             if line.get_label() == "best so far"]
    assert len(steps) == 2  # against trials and against seconds
    np.testing.assert_allclose(steps[0], table["val_accuracy"].where(
        table["status"] == "completed").cummax())
    assert "optimisation_history.png" in (tmp_path / "plots" / "report.html").read_text()

    old, _ = search_csv(tmp_path / "old", seconds=False)
    written, notes = plot.run_plot(old, tmp_path / "old_plots", top=0)
    assert not any(p.name == "optimisation_history.png" for p in written)
    assert "optimisation history: the CSV has no seconds column" in notes
