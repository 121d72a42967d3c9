"""TensorBoard's copy of the search: the grid's axes and metrics for the HParams
dashboard (table, parallel coordinates, scatter plots) and each trial's settings, epoch
curves and final metrics: `tensorboard --logdir <out>/tuner/<grid>/tensorboard`."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import tensorflow as tf

BOARD_METRICS = ("val_accuracy", "test_accuracy", "train_accuracy", "val_loss", "test_loss",
                 "train_loss", "epochs_run", "seconds")


def write_board_config(board_dir: Path, axes: dict, strategy: str = "grid") -> None:
    """The search's axes and metrics, written once per search: a list's values, a range's
    interval (Hyperband's epochs: none, it sets them itself)."""
    from tensorboard.plugins.hparams import api as hparams

    def domain(axis, values):
        if axis == "epochs" and strategy == "hyperband":
            return None
        if isinstance(values, dict):
            interval = (hparams.RealInterval if isinstance(values["min"], float)
                        else hparams.IntInterval)
            return interval(values["min"], values["max"])
        return hparams.Discrete(values)

    writer = tf.summary.create_file_writer(str(board_dir))
    with writer.as_default():
        hparams.hparams_config(
            hparams=[hparams.HParam(axis, domain(axis, values)) for axis, values in axes.items()],
            metrics=[hparams.Metric(name) for name in BOARD_METRICS])
    writer.close()  # on disk now, not when the garbage collector gets to it


def write_board_trial(board_dir: Path, row: dict, values: dict, history: pd.DataFrame) -> None:
    """One trial: its settings, its epoch curves and its final metrics (at the last epoch)."""
    from tensorboard.plugins.hparams import api as hparams

    writer = tf.summary.create_file_writer(str(board_dir / f"trial_{row['trial_id']}"))
    with writer.as_default():
        hparams.hparams(values, trial_id=row["trial_id"])
        for epoch, logs in history.iterrows():
            for name, value in logs.items():
                tf.summary.scalar(f"epoch_{name}", float(value), step=int(epoch))
        for name in BOARD_METRICS:
            if isinstance(row.get(name), (int, float)):
                tf.summary.scalar(name, float(row[name]), step=int(row.get("epochs_run") or 0))
    writer.close()


class BoardLog:
    """Logs each recorded trial under board_dir; `seconds` is what that has cost."""

    def __init__(self, board_dir: Path, axes: list[str], results_folder: Path):
        self.board_dir, self.axes, self.results_folder = board_dir, axes, results_folder
        self.seconds = 0.0

    def log(self, row: dict) -> None:
        """A failure here costs the view, not the result: a warning, and the search goes on."""
        if row.get("status") == "failed":
            return
        started = time.perf_counter()
        try:
            values = {axis: row[axis] for axis in self.axes if axis in row}
            history = pd.read_csv(self.results_folder / row["history_path"], index_col=0)
            write_board_trial(self.board_dir, row, values, history)
        except Exception as err:  # noqa: BLE001 (any error: the search goes on)
            print(f"warning: no TensorBoard log for trial {row['trial_id']}: {err}")
        self.seconds += time.perf_counter() - started
