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


def random_table(rows: int = 100, accuracy=None, seed: int = 0, **categories) -> pd.DataFrame:
    """What a random search over learning_rate = {min 1e-4, max 0.1, log} and momentum =
    {min 0, max 0.95} writes: `rows` completed trials, rates log-uniform, momentum uniform,
    and each of `categories` (name=[values]) drawn uniformly.

    accuracy(learning_rate, momentum, row) -> validation accuracy (default: the rate alone
    decides, best near 0.01, and momentum adds nothing)."""
    rng = np.random.default_rng(seed)
    drawn = {"learning_rate": 10 ** rng.uniform(-4, -1, rows),
             "momentum": rng.uniform(0, 0.95, rows),
             **{name: rng.choice(values, rows) for name, values in categories.items()}}
    table = results_table({})
    table = table.loc[[0] * rows].reset_index(drop=True)
    table["trial_id"] = [f"{i:04d}" for i in range(rows)]
    for name, values in drawn.items():
        table[name] = values
    accuracy = accuracy or (lambda lr, momentum, row: 0.97 - 0.1 * (np.log10(lr) + 2) ** 2)
    values = np.array([accuracy(lr, m, row) for lr, m, row in
                       zip(table["learning_rate"], table["momentum"], table.to_dict("records"))])
    table["val_accuracy"] = np.clip(values + rng.normal(0, 0.003, rows), 0, 1)
    table["seed"] = 0
    return table


def hyperband_table() -> pd.DataFrame:
    """A Hyperband search's rows: 6 configurations (learning_rate x optimizer) run for 1
    epoch in round 0; the best 2 go on to 3 epochs in round 1 (rows of their own, continued
    from the earlier trial), a higher accuracy each."""
    rows = []
    configurations = [(0.1, "sgd", 0.80), (0.01, "sgd", 0.90), (0.001, "sgd", 0.70),
                      (0.1, "adam", 0.60), (0.01, "adam", 0.85), (0.001, "adam", 0.95)]
    for number, (rate, optimizer, accuracy) in enumerate(configurations):
        rows.append({"trial_id": f"{number:04d}", "learning_rate": rate, "optimizer": optimizer,
                     "epochs": 1, "bracket": 1, "round": 0, "initial_epoch": 0,
                     "continued_from": "", "val_accuracy": accuracy})
    for number, earlier in ((6, 5), (7, 1)):
        rate, optimizer, accuracy = configurations[earlier]
        rows.append({"trial_id": f"{number:04d}", "learning_rate": rate, "optimizer": optimizer,
                     "epochs": 3, "bracket": 1, "round": 1, "initial_epoch": 1,
                     "continued_from": f"{earlier:04d}", "val_accuracy": accuracy + 0.03})
    table = pd.DataFrame(rows)
    table["status"], table["seconds"] = "completed", 2.0
    return table
