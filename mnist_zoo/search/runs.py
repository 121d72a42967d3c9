"""Run folders and the row format: <project>/runs/<values key>/ holds one grid point's
trained run (history.csv, model.keras, run.json, written last); a lock file per group
keeps two processes from training the same group.

A run is the training; a trial is keras-tuner's bookkeeping of one point. A fused group
trains many runs at once, and each of their trials then finds its run done and copies
run.json into its row (mnist_zoo.search.tuner).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
from pathlib import Path

import pandas as pd

from mnist_zoo.files import atomic_write_text, inside
from mnist_zoo.search.grid import values_key
from mnist_zoo.search.results import is_finished, read_result
from mnist_zoo.train.fit import Fit


class RunFolders:
    """The run folders of a project; paths in a row are relative to results_folder
    (the folder of experiment_results.csv)."""

    def __init__(self, project_dir: Path, results_folder: Path, retrain_pruned: bool = True):
        self.root, self.results_folder = Path(project_dir) / "runs", results_folder
        # Without --prune a pruned run counts as not done: a rerun trains it (afresh).
        self.retrain_pruned = retrain_pruned

    def trial_file(self, trial_id: str, column: str) -> Path | None:
        """A file a finished trial's row names (its model_path, history_path), if there is
        one inside the results folder."""
        row = read_result(self.root.parent / f"trial_{trial_id}" / "result.json") or {}
        path = inside(self.results_folder, row.get(column))
        return path if path is not None and path.is_file() else None

    def trial_history(self, trial_id: str) -> dict:
        """A finished trial's history, {'loss': [...], ...} ({} without one)."""
        path = self.trial_file(trial_id, "history_path")
        return {} if path is None else pd.read_csv(path, index_col=0).to_dict("list")

    def run_dir(self, values: dict) -> Path:
        return self.root / values_key(values)

    def is_done(self, values: dict) -> bool:
        path = self.run_dir(values) / "run.json"
        if not self.retrain_pruned or not path.exists():  # its presence says it (no parsing)
            return path.exists()
        try:
            return is_finished(self.read(values), self.retrain_pruned)
        except (OSError, ValueError):  # unreadable: done, as its presence always said
            return True

    def read(self, values: dict) -> dict:
        return json.loads((self.run_dir(values) / "run.json").read_text())

    @contextlib.contextmanager
    def lock(self, group: list[dict], wait: bool):
        """Hold the lock of a group's run folders; yields False when another process
        holds it and wait is False."""
        lock_path = self.root / f"{values_key(group[0])}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True

    def save(self, values: dict, fit: Fit, *, group_size: int, dataset: str, seed: int,
             pruned_by: str | None = None) -> None:
        """Write one trained run; run.json last, atomically: its presence marks it done.
        pruned_by: the rule that stopped it (no model kept: a rerun without --prune trains
        it from the start)."""
        run_dir = self.run_dir(values)
        run_dir.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(fit.history).rename_axis("epoch").to_csv(run_dir / "history.csv")
        if not fit.diverged and not pruned_by:
            fit.model.save(run_dir / "model.keras")
        row = self.run_row(fit, group_size, dataset, seed, run_dir)
        if pruned_by and not fit.diverged:
            row.update(status="pruned", pruned_by=pruned_by)
        atomic_write_text(run_dir / "run.json", json.dumps(row, indent=1))

    def run_row(self, fit: Fit, group_size: int, dataset: str, seed: int,
                run_dir: Path) -> dict:
        """The run's columns of experiment_results.csv (the trial adds its id and values)."""
        last = {key: float(series[-1]) for key, series in fit.history.items()}
        relative = lambda name: str((run_dir / name).relative_to(self.results_folder))  # noqa: E731
        scored = not fit.diverged and fit.test is not None  # a pruned run is not scored
        return {
            # train_* are the last epoch's running figures, as Keras reports them.
            "train_loss": last.get("loss"), "train_accuracy": last.get("accuracy"),
            "val_loss": last.get("val_loss", math.nan),
            "val_accuracy": last.get("val_accuracy", math.nan),
            "test_loss": float(fit.test["loss"]) if scored else math.nan,
            "test_accuracy": float(fit.test["accuracy"]) if scored else math.nan,
            "epochs_run": fit.epochs_run, "params": fit.model.count_params(),
            "status": "completed" if scored else "diverged", "error": "",
            # A fused group's wall time is shared out evenly among its trials.
            "seconds": round(fit.seconds, 2), "trained_with": group_size,
            "dataset": dataset, "seed": seed,
            "history_path": relative("history.csv"),
            "model_path": relative("model.keras") if scored else "",
        }
