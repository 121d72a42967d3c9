"""The Oracle: hands out the grid's points in the grid file's order, resumably.

keras-tuner's GridSearchOracle (1.4.8) keeps its walk through the grid in memory only:
after a reload it fails with KeyError on the interrupted trial. Here the next point is
simply the first one no trial has taken yet, which the reloaded trial files tell.
"""

from __future__ import annotations

import keras_tuner as kt

from mnist_zoo.search import _keras_tuner
from mnist_zoo.search._keras_tuner import TrialStatus
from mnist_zoo.search.results import is_finished, read_result
from mnist_zoo.search.space import add_axes


def make_hyperparameters(axes: dict) -> kt.HyperParameters:
    """Register every axis up front (default = first value), so that trial 1 has them all
    (a setting that applies only beside some values of another, conditionally)."""
    return add_axes(kt.HyperParameters(), axes)


class ResumeFromRecords:
    """An oracle mixin: on reload, the trials without a finished record are handed out
    again (the trial records, not keras-tuner's state, say what is done). A pruned
    trial counts as done unless `retrain_pruned` (a rerun without --prune)."""

    retrain_pruned = False

    def reload(self):
        """Reload, and hand out again every trial that failed or left no readable result:
        a rerun after fixing the cause (data, disk) retries them, keeping the others.
        keras-tuner queues the trials that were running when the search stopped; a
        failed result.json of theirs goes too, or the rerun would take it for done."""
        super().reload()
        # keras-tuner writes a new trial's file, then its own state: a kill between the
        # two leaves a trial its state never handed out (nor its seed, brackets or draws
        # moved on for). Forget it: the same state hands out the same trial again.
        for trial_id in set(self.trials) - set(self.start_order):
            del self.trials[trial_id]
        self._pruned_again = []
        unfinished = [trial_id for trial_id in sorted(self.trials)
                      if not self._has_result(trial_id)]
        retried = [trial_id for trial_id in unfinished if trial_id not in self._pruned_again]
        if retried:
            print(f"retrying {len(retried)} trial(s) that failed or left no result: "
                  f"{', '.join(retried)}", flush=True)
        if self._pruned_again:
            print(f"finishing {len(self._pruned_again)} pruned trial(s) from the start "
                  f"(--prune none): {', '.join(self._pruned_again)}", flush=True)
        _keras_tuner.retry_later(self, unfinished)

    def _has_result(self, trial_id: str) -> bool:
        path = _keras_tuner.trial_dir(self, trial_id) / "result.json"
        row = read_result(path)
        if is_finished(row, self.retrain_pruned):
            return True
        path.unlink(missing_ok=True)  # damaged, failed or pruned: a rerun writes anew
        if row is not None and row["status"] == "pruned":
            self._pruned_again.append(trial_id)
        return False


class ResumableGridOracle(ResumeFromRecords, kt.Oracle):
    """Hands out `points` (dicts of axis values) in order; see the module's docstring."""

    def __init__(self, points: list[dict], **kwargs):
        super().__init__(**kwargs)
        self.points = points

    def populate_space(self, trial_id):
        taken = {_keras_tuner.values_hash(self, t.hyperparameters.values)
                 for t in self.trials.values()}
        for values in self.points:
            if _keras_tuner.values_hash(self, values) not in taken:
                return {"status": TrialStatus.RUNNING, "values": values}
        # IDLE: other workers' trials are still running; STOPPED: the grid is done.
        return {"status": TrialStatus.IDLE if self.ongoing_trials else TrialStatus.STOPPED,
                "values": None}
