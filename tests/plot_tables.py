"""Results tables for the plot tests, in the columns mnist_zoo.search writes, built in the
test: charts need tables, not training."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from mnist_zoo.axes import CORE_AXES

METRICS = ["train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss",
           "test_accuracy"]


def results_table(axes: dict, accuracy=None, repeats: int = 1, noise: float = 0.002,
                  seed: int = 0) -> pd.DataFrame:
    """One completed row per grid point and repeat, as the search writes them: every core
    axis (the defaults where `axes` leaves one out), the metrics, status, seed and paths.

    accuracy(settings) -> the point's true validation accuracy (default 0.9); each run adds
    normal noise of `noise`."""
    rng = np.random.default_rng(seed)
    axes = {**{axis: [value] for axis, value in CORE_AXES.items()}, **axes}
    rows = []
    for combination in itertools.product(*axes.values()):
        settings = dict(zip(axes, combination))
        true = accuracy(settings) if accuracy else 0.9
        for repeat in range(repeats):
            value = float(np.clip(true + rng.normal(0, noise), 0, 1))
            trial_id = f"{len(rows):04d}"
            rows.append({
                "trial_id": trial_id, **settings, "repeat": repeat,
                "train_loss": 1 - value, "train_accuracy": value, "val_loss": 1.1 - value,
                "val_accuracy": value, "test_loss": 1.1 - value, "test_accuracy": value - 0.001,
                "epochs_run": settings["epochs"], "params": 61706, "status": "completed",
                "error": "", "seconds": 2.5, "dataset": "mnist", "seed": repeat,
                "history_path": f"trials/{trial_id}/history.csv",
                "model_path": f"trials/{trial_id}/model.keras"})
    return pd.DataFrame(rows)


def write(table: pd.DataFrame, folder: Path, histories: bool = False) -> Path:
    """The table as <folder>/experiment_results.csv; with histories, each completed trial's
    per-epoch history.csv where its history_path says."""
    folder.mkdir(parents=True, exist_ok=True)
    if histories:
        for trial in table[table["status"] == "completed"].itertuples():
            epochs = np.arange(int(trial.epochs))
            path = folder / trial.history_path
            path.parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame({"epoch": epochs, "loss": 1.0 / (epochs + 2),
                          "accuracy": trial.val_accuracy - 0.02 / (epochs + 1),
                          "val_loss": 1.1 / (epochs + 2),
                          "val_accuracy": trial.val_accuracy - 0.01 / (epochs + 1)}
                         ).to_csv(path, index=False)
    path = folder / "experiment_results.csv"
    table.to_csv(path, index=False)
    return path


def failed(table: pd.DataFrame, rows, status: str = "failed",
           error: str = "ResourceExhaustedError: out of memory") -> pd.DataFrame:
    """The table with `rows` (positions) turned into failed (or diverged) trials."""
    table = table.copy()
    index = table.index[list(rows)]
    table.loc[index, METRICS] = np.nan
    table.loc[index, ["status", "error", "history_path", "model_path"]] = [status, error, "", ""]
    return table
