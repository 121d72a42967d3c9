"""Training the grid's runs: a group at a time under its lock, fused when it can be, and
stealing work while another process holds the group a trial needs.

`GroupTrainer.run_of(values)` returns the point's finished run, training its group
first if needed. A fused group that fails with a kernel or memory error falls back to
one model at a time for the rest of the search (mnist_zoo.search.failures says why).
"""

from __future__ import annotations

import functools

import keras

from mnist_zoo.errors import first_line
from mnist_zoo.search.failures import (ENVIRONMENT_ERRORS, KERNEL_ERRORS, MEMORY_ERRORS,
                                       EnvironmentFailure, describe_failure)
from mnist_zoo.search.grid import repeat_of
from mnist_zoo.search.grouping import Grouping
from mnist_zoo.search.hypermodel import ZooHyperModel
from mnist_zoo.search.runs import RunFolders
from mnist_zoo.train.fit import fit_models


class GroupTrainer:
    def __init__(self, points: list[dict], runs: RunFolders, grouping: Grouping,
                 hypermodel: ZooHyperModel, seed: int):
        self.points, self.runs, self.grouping = points, runs, grouping
        self.hypermodel, self.seed = hypermodel, seed
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
        for values in self.points:
            if not self.runs.is_done(values):
                with self.runs.lock(self.grouping.group_of(values), wait=False) as free:
                    if free:
                        return True
        return False

    def _train_group_of(self, values: dict, data, verbose: int, wait: bool) -> bool:
        """Train the unfinished points of values' group, holding the group's lock;
        False when another process holds it and wait is False."""
        group = self.grouping.group_of(values)
        with self.runs.lock(group, wait) as locked:
            if not locked:
                return False
            group = [p for p in group if not self.runs.is_done(p)]
            if group:
                self._train_together(group, data, verbose)
        return True

    def _train_some_other_group(self, data, verbose: int) -> bool:
        for values in self.points:
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
        first = group[0]
        fit = functools.partial(fit_models, data=data, batch_size=first["batch_size"],
                                epochs=first["epochs"], augment=first.get("augment"),
                                seed=self.seed, verbose=verbose)
        if len(group) > 1:
            try:
                fits = fit(self._build_models(group))
            except (*KERNEL_ERRORS, *MEMORY_ERRORS) as err:
                print(f"warning: training {len(group)} trials together failed here "
                      f"({first_line(err)}); training one at a time from now on (--no-fuse "
                      "does so from the start)", flush=True)
                self.grouping.fuse = False
            else:
                for values, one in zip(group, fits):
                    self._save(values, one, len(group), data)
                return
        for values in group:
            what = f"{values['model']} (batch size {values['batch_size']})"
            try:
                (one,) = fit(self._build_models([values]))
            except (*KERNEL_ERRORS, *MEMORY_ERRORS) as err:
                raise EnvironmentFailure(describe_failure(err, self.runs.results_folder,
                                                          what)) from err
            self._save(values, one, 1, data)

    def _build_models(self, group: list[dict]) -> list[keras.Model]:
        keras.backend.clear_session()  # graphs of earlier trials would pile up in this process
        models = []
        for values in group:
            # Each starts as it would alone; a repeat with its own initial weights.
            keras.utils.set_random_seed(self.seed + repeat_of(values))
            models.append(self.hypermodel.build_values(values))
        return models

    def _save(self, values: dict, fit, group_size: int, data) -> None:
        self.runs.save(values, fit, group_size=group_size, dataset=data.name,
                       seed=self.seed + repeat_of(values))
