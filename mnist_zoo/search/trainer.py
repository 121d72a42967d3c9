"""Training the grid's runs: a group at a time under its lock, fused when it can be, and
stealing work while another process holds the group a trial needs.

`GroupTrainer.run_of(values)` returns the point's finished run, training its group
first if needed. A fused group that fails with a kernel or memory error falls back to
one model at a time for the rest of the search (mnist_zoo.search.failures says why).
A run that goes on from an earlier one (Hyperband's later rounds) starts from that run's
model, weights and optimizer state, and trains the epochs left; its history holds the
earlier run's epochs too. One whose earlier run diverged (no model) is recorded as
diverged without training.
"""

from __future__ import annotations

import functools
import math

import keras

from mnist_zoo.errors import first_line
from mnist_zoo.search.failures import (ENVIRONMENT_ERRORS, KERNEL_ERRORS, MEMORY_ERRORS,
                                       EnvironmentFailure, describe_failure)
from mnist_zoo.search.grid import CONTINUED_FROM, INITIAL_EPOCH, repeat_of
from mnist_zoo.search.grouping import Plan
from mnist_zoo.search.hypermodel import ZooHyperModel
from mnist_zoo.search.pruner import Pruning
from mnist_zoo.search.runs import RunFolders
from mnist_zoo.train.fit import Fit, fit_models


class GroupTrainer:
    def __init__(self, runs: RunFolders, plan: Plan, hypermodel: ZooHyperModel, seed: int,
                 pruning: Pruning | None = None):
        self.runs, self.plan = runs, plan
        self.hypermodel, self.seed = hypermodel, seed
        self.pruning = pruning  # --prune: runs that fall behind stop (mnist_zoo.search.pruner)
        self.trained_here = False  # whether this process has trained anything yet

    def run_of(self, values: dict, data, verbose: int) -> dict:
        """The finished run for these values, training it (and its group) if needed."""
        while not self.runs.is_done(values):
            if self._train_group_of(values, data, verbose, wait=False):
                continue
            # Another worker is training this group: rather than wait, train a
            # group nobody has started, then look again.
            if not self._train_some_other_group(data, verbose):
                self._train_group_of(values, data, verbose, wait=True)
        return self.runs.read(values)

    def work_left(self) -> bool:
        """Whether some point is neither trained nor being trained by another process."""
        for values in self.plan.known():
            if not self.runs.is_done(values):
                with self.runs.lock(self.plan.group_of(values), wait=False) as free:
                    if free:
                        return True
        return False

    def _train_group_of(self, values: dict, data, verbose: int, wait: bool) -> bool:
        """Train the unfinished points of values' group, holding the group's lock;
        False when another process holds it and wait is False."""
        group = self.plan.group_of(values)
        with self.runs.lock(group, wait) as locked:
            if not locked:
                return False
            group = [p for p in group if not self.runs.is_done(p)]
            if group:
                self._train_together(group, data, verbose)
        return True

    def _train_some_other_group(self, data, verbose: int) -> bool:
        for values in self.plan.known():
            if self.runs.is_done(values):
                continue
            try:
                if self._train_group_of(values, data, verbose, wait=False):
                    return True
            except (EnvironmentFailure, *ENVIRONMENT_ERRORS):
                raise  # the search stops
            except Exception:  # its own trial will run it again and record the error
                return False
        return False

    def _train_together(self, group: list[dict], data, verbose: int) -> None:
        self.trained_here = True
        self.hypermodel.train_size = len(data.x_train)
        orphans = [values for values in group if self._parent_model(values) is False]
        for values in orphans:
            self._save_diverged_continuation(values, data)
        group = [values for values in group if values not in orphans]
        if not group:
            return
        first = group[0]
        fit = functools.partial(fit_models, data=data, batch_size=first["batch_size"],
                                epochs=first["epochs"] - first.get(INITIAL_EPOCH, 0),
                                augment=first.get("augment"), seed=self.seed, verbose=verbose)
        if len(group) > 1:
            try:
                fits = fit(self._build_models(group), stopper=self._stopper(group))
            except (*KERNEL_ERRORS, *MEMORY_ERRORS) as err:
                print(f"warning: training {len(group)} trials together failed here "
                      f"({first_line(err)}); training one at a time from now on (--no-fuse "
                      "does so from the start)", flush=True)
                self.plan.fuse = False
            else:
                for values, one in zip(group, fits):
                    self._save(values, one, len(group), data)
                return
        for values in group:
            what = f"{values['model']} (batch size {values['batch_size']})"
            try:
                (one,) = fit(self._build_models([values]), stopper=self._stopper([values]))
            except (*KERNEL_ERRORS, *MEMORY_ERRORS) as err:
                raise EnvironmentFailure(describe_failure(err, self.runs.results_folder,
                                                          what)) from err
            self._save(values, one, 1, data)

    def _stopper(self, group: list[dict]):
        """The pruning callback for training these runs; None without --prune, and for a
        run that goes on from another (Hyperband's rounds prune by themselves)."""
        if self.pruning is None or group[0].get(CONTINUED_FROM):
            return None
        return self.pruning.stopper(group, group[0]["epochs"])

    def _build_models(self, group: list[dict]) -> list[keras.Model]:
        keras.backend.clear_session()  # graphs of earlier trials would pile up in this process
        models = []
        for values in group:
            # Each starts as it would alone; a repeat with its own initial weights.
            keras.utils.set_random_seed(self.seed + repeat_of(values))
            model = self.hypermodel.build_values(values)
            parent = self._parent_model(values)
            if parent:  # its weights and its optimizer's state (the optimizer built first)
                model.optimizer.build(model.trainable_variables)
                model.load_weights(parent)
            models.append(model)
        return models

    def _parent_model(self, values: dict):
        """The model file of the run values go on from: None for a fresh run, False when
        that run has no model (it diverged)."""
        parent = values.get(CONTINUED_FROM)
        if not parent:
            return None
        return self.runs.trial_file(parent, "model_path") or False

    def _save_diverged_continuation(self, values: dict, data) -> None:
        keras.backend.clear_session()
        model = self.hypermodel.build_values(values)
        nan = {"loss": math.nan, "accuracy": math.nan}
        self._save(values, Fit(model, {}, nan, 0.0), 1, data)

    def _save(self, values: dict, fit, group_size: int, data) -> None:
        parent = values.get(CONTINUED_FROM)
        if parent:  # the history from the first epoch, the earlier run's epochs first
            earlier = self.runs.trial_history(parent)
            fit.history = {key: [*earlier.get(key, []), *series]
                           for key, series in fit.history.items()} if fit.history else earlier
        self.runs.save(values, fit, group_size=group_size, dataset=data.name,
                       seed=self.seed + repeat_of(values),
                       pruned_by=self.pruning.rule.name if fit.stopped else None)
