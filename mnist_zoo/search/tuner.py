"""The Tuner: loops over the oracle's trials; each trial's row comes from its run.

`ZooTuner` builds its oracle (mnist_zoo.search.oracle) and hands the work to its parts:
`run_trial` asks the GroupTrainer (trainer.py) for the point's run, which trains the
point's whole group when it has to (grouping.py, runs.py), and records the trial's row
(results.py); `on_trial_end` lets the memory watch (memory.py) restart a process that
has grown. A trial's own failure becomes a failed row and the grid goes on; an
environment failure stops the search (failures.py).
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path

import keras_tuner as kt
import tensorflow as tf

from mnist_zoo import data as data_lib
from mnist_zoo.errors import first_line
from mnist_zoo.files import print_line
from mnist_zoo.search import _keras_tuner
from mnist_zoo.search.board import BoardLog
from mnist_zoo.search.failures import (ENVIRONMENT_ERRORS, TRIAL_ERROR_FILE,
                                       EnvironmentFailure, describe_failure)
from mnist_zoo.search.grid import REPEAT_AXIS, grid_points, grid_size, repeat_of
from mnist_zoo.search.grouping import Plan
from mnist_zoo.search.hypermodel import ZooHyperModel
from mnist_zoo.search.memory import MemoryWatch
from mnist_zoo.search.plan import Batches, run_values, trial_columns
from mnist_zoo.search.pruner import Pruning
from mnist_zoo.search.pruning import PruneRule
from mnist_zoo.search.results import (is_finished, objective_values, progress_line, read_result,
                                      write_results_csv)
from mnist_zoo.search.runs import RunFolders
from mnist_zoo.search.strategies import make_oracle, total_trials
from mnist_zoo.search.trainer import GroupTrainer

# Each trial is a new model, so TensorFlow's "retracing" warning is expected noise here.
tf.get_logger().setLevel("ERROR")
_keras_tuner.quiet_failed_trials()


class ZooTuner(kt.Tuner):
    """A tuner whose trials train with their own batch size and epochs, fused with the
    points that share their batches when `fuse` is on; one bad trial never stops the
    search. `search` names the strategy (mnist_zoo.search.space; default the grid)."""

    def __init__(self, axes: dict, objective, *, results_csv: Path, seed: int,
                 search: dict | None = None, fuse: bool = True,
                 max_memory_growth: float | None = None, tensorboard: bool = True,
                 split_groups: int = 1, workers: int = 1, prune: PruneRule | None = None,
                 **kwargs):
        search = search or {"strategy": "grid"}
        size = grid_size(axes) if search["strategy"] == "grid" else search.get("max_trials", 10)
        oracle = make_oracle(
            axes, search, objective=objective, seed=seed,
            # A failed trial is recorded and the grid goes on; only an unbroken run
            # of failures (a broken setup rather than a bad setting) stops it.
            max_failures=max(3, min(10, size)))
        self.total_trials = total_trials(oracle, search)
        # Without --prune, trials pruned before are handed out again and trained afresh.
        oracle.retrain_pruned = prune is None
        hypermodel = ZooHyperModel()
        hypermodel.schedule_epochs = search.get("max_epochs")
        super().__init__(oracle, hypermodel, **kwargs)
        # In a worker self.oracle is now keras-tuner's gRPC client; pause on its answers too.
        _keras_tuner.pause_when_idle(self.oracle)
        self.results_csv, self.seed = results_csv, seed
        self.runs = RunFolders(Path(self.project_dir), results_csv.parent,
                               retrain_pruned=prune is None)
        # A grid's points are all known; other strategies' come as their oracle hands
        # them out (the batches it publishes).
        self.points = grid_points(axes) if search["strategy"] == "grid" else None
        plan = Plan(self.points, Batches(Path(self.project_dir) / "batches"), fuse=fuse,
                    split_groups=split_groups, workers=workers)
        pruning = prune and Pruning(prune, Path(self.project_dir), objective.name,
                                    objective.direction == "max")
        self.trainer = GroupTrainer(self.runs, plan, self.hypermodel, seed, pruning)
        self.board = (BoardLog(Path(self.project_dir) / "tensorboard", list(axes),
                               results_csv.parent) if tensorboard else None)
        self.memory = MemoryWatch(max_memory_growth)
        self.session_seconds: list[float] = []
        self.trials_done = 0

    @property
    def board_seconds(self) -> float:
        """What writing for TensorBoard has cost this process."""
        return self.board.seconds if self.board else 0.0

    def search(self, *fit_args, **fit_kwargs):
        if _keras_tuner.is_chief():  # keras-tuner's chief, with a faster exit
            self.oracle.verbose = fit_kwargs.get("verbose", 1)
            self.save()
            _keras_tuner.serve_trials(self.oracle)
            return
        super().search(*fit_args, **fit_kwargs)

    def run_trial(self, trial, data: data_lib.DigitData, fit_verbose: int = 0, **_):
        values = run_values(trial.hyperparameters.values)
        try:
            return self._run_and_record(trial, values, data, fit_verbose)
        except ENVIRONMENT_ERRORS as err:  # see mnist_zoo.search.failures
            what = f"{values['model']} (batch size {values['batch_size']})"
            raise EnvironmentFailure(describe_failure(err, self.results_csv.parent,
                                                      what)) from err

    def on_trial_end(self, trial):
        super().on_trial_end(trial)  # the oracle hears of the trial first: nothing is lost
        if self.trainer.trained_here and self.trials_done < self.total_trials:
            self.memory.check(self.trainer.work_left)

    def _run_and_record(self, trial, values: dict, data, fit_verbose: int) -> dict:
        trial_dir = Path(self.get_trial_dir(trial.trial_id))
        recorded = read_result(trial_dir / "result.json")
        if is_finished(recorded, self.runs.retrain_pruned) and all(
                recorded.get(axis) == value for axis, value in values.items()):
            return objective_values(recorded)  # finished before a kill; the oracle never heard
        (trial_dir / TRIAL_ERROR_FILE).unlink(missing_ok=True)
        row = {"trial_id": trial.trial_id, **values, REPEAT_AXIS: repeat_of(values),
               **trial_columns(trial.hyperparameters.values)}
        try:
            row.update(self.trainer.run_of(values, data, fit_verbose))
        except (EnvironmentFailure, *ENVIRONMENT_ERRORS):
            raise
        except Exception as err:  # the trial's own: record it, and the grid goes on
            (trial_dir / TRIAL_ERROR_FILE).write_text(traceback.format_exc())
            row.update({"status": "failed", "error": first_line(err), "seconds": 0.0,
                        "dataset": data.name, "seed": self.seed + repeat_of(values)})
            self._record(row, trial_dir)
            raise kt.errors.FailedTrialError(row["error"]) from err
        self._record(row, trial_dir)
        return objective_values(row)

    def _record(self, row: dict, trial_dir: Path) -> None:
        row["finished_at"] = round(time.time(), 2)  # when the search knew it (bench, plot)
        table = write_results_csv(Path(self.project_dir), self.results_csv, row, trial_dir)
        if self.board:
            self.board.log(row)
        self.trials_done = len(table)
        self.session_seconds.append(row["seconds"])
        # One write per line: under --jobs the workers share the terminal (or pipe).
        print_line(progress_line(row, len(table), self.total_trials, self.session_seconds))
