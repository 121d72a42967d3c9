"""The oracles of the strategies beyond the grid: keras-tuner's own RandomSearchOracle,
BayesianOptimizationOracle and HyperbandOracle, each with the smallest fixes that make
it resume exactly and let the trainer fuse what it hands out together:

- all three resume from the trial records (oracle.ResumeFromRecords), take seed 0 for a
  seed (keras-tuner took it for none, drawing other points on each fresh start), and
  hand out each point `repeats` times in a row (random, Bayesian; repeat 0, 1, ...);
- (Bayesian optimisation's RandomState, which keras-tuner does not save, only seeds the
  starts of its 50 L-BFGS runs: the best of them came out the same whatever the state,
  so a resumed search proposes what an unbroken one does; tests/test_search_strategies.)
- random search and Hyperband publish what they will hand out (mnist_zoo.search.plan):
  the random search all its draws at its first trial, Hyperband each round when its
  first trial is picked (a round's first epochs from fresh draws, a later round's from
  the best of the round before, once that one has ended).

- a search may grow: rerun with a larger max_trials (random, Bayesian: keras-tuner's
  state does not hold it) or more iterations (Hyperband: set_state keeps the new ones),
  it goes on from the trials so far and proposes what a search of that size from the
  start does (tests/test_search_strategies; project.check_same_grid allows it).

`make_oracle` builds the oracle a search file's [search] table names.
"""

from __future__ import annotations

import keras_tuner as kt

from mnist_zoo.errors import GridError
from mnist_zoo.search import _keras_tuner
from mnist_zoo.search._keras_tuner import TrialStatus
from mnist_zoo.search.grid import REPEAT_AXIS, grid_points
from mnist_zoo.search.oracle import ResumableGridOracle, ResumeFromRecords, make_hyperparameters
from mnist_zoo.search.plan import Batches, run_values
from mnist_zoo.search.space import add_axes


def search_space(axes: dict, strategy: str) -> kt.HyperParameters:
    """keras-tuner's space (mnist_zoo.search.space.add_axes): a list is a Choice (one
    value: Fixed), a range an Int or a Float; a setting that applies only beside some
    values of another is drawn only there. Hyperband sets the epochs itself."""
    return add_axes(kt.HyperParameters(), axes, strategy)


class RepeatsMixin:
    """Hands out every point `repeats` times in a row, as repeat 0, 1, ... (the grid has
    them as an axis; a random or Bayesian point is only known once drawn)."""

    repeats = 1

    def _start_repeats(self):
        self._pending: list[dict] = []

    def _next_pending(self):
        taken = {_keras_tuner.values_hash(self, t.hyperparameters.values)
                 for t in self.trials.values()} if self._pending else set()
        while self._pending:  # one already handed out before a kill is skipped
            values = self._pending.pop(0)
            if _keras_tuner.values_hash(self, values) not in taken:
                return {"status": TrialStatus.RUNNING, "values": values}
        return None

    def _with_repeats(self, response: dict) -> dict:
        if response["status"] == TrialStatus.RUNNING and self.repeats > 1:
            values = response["values"]
            self._pending = [{**values, REPEAT_AXIS: r} for r in range(1, self.repeats)]
            response["values"] = {**values, REPEAT_AXIS: 0}
        return response

    def get_state(self):
        return {**super().get_state(), "pending_repeats": self._pending}

    def set_state(self, state):
        super().set_state(state)
        self._pending = state.get("pending_repeats", [])


class RandomOracle(RepeatsMixin, ResumeFromRecords, kt.oracles.RandomSearchOracle):
    def __init__(self, *, seed: int, repeats: int = 1, max_trials: int = 10, **kwargs):
        super().__init__(seed=seed, max_trials=max_trials * repeats, **kwargs)
        _keras_tuner.seed_oracle(self, seed)
        self.repeats, self.points = repeats, max_trials
        self._start_repeats()

    def populate_space(self, trial_id):
        pending = self._next_pending()
        if pending:
            return pending
        response = super().populate_space(trial_id)
        batches = Batches(batches_folder(self))
        if response["status"] == TrialStatus.RUNNING and not batches.knows(
                self._repeat(response["values"], 0)):
            first = response["values"]
            left = self.points - len(self.trials) // self.repeats - 1
            draws = [first, *_keras_tuner.draws_ahead(self, first, max(left, 0))]
            batches.publish([self._repeat(d, r) for d in draws for r in range(self.repeats)])
        return self._with_repeats(response)

    def _repeat(self, values: dict, repeat: int) -> dict:
        return {**values, REPEAT_AXIS: repeat} if self.repeats > 1 else values


class BayesianOracle(RepeatsMixin, ResumeFromRecords, kt.oracles.BayesianOptimizationOracle):
    def __init__(self, *, seed: int, repeats: int = 1, max_trials: int = 10, **kwargs):
        super().__init__(seed=seed, max_trials=max_trials * repeats, **kwargs)
        _keras_tuner.seed_oracle(self, seed)
        self.repeats = repeats
        self._start_repeats()

    def populate_space(self, trial_id):
        pending = self._next_pending()
        if pending:
            return pending
        return self._with_repeats(super().populate_space(trial_id))


class HyperbandOracle(ResumeFromRecords, kt.oracles.HyperbandOracle):
    def __init__(self, *, seed: int, **kwargs):
        super().__init__(seed=seed, **kwargs)
        _keras_tuner.seed_oracle(self, seed)

    def set_state(self, state):
        """keras-tuner's state holds the iterations it was started with: keep the ones
        asked for now, so that a rerun with more iterations goes on (project.py allows
        a search to grow, not to shrink)."""
        iterations = self.hyperband_iterations
        super().set_state(state)
        self.hyperband_iterations = iterations

    def populate_space(self, trial_id):
        response = super().populate_space(trial_id)
        if response["status"] == TrialStatus.RUNNING:
            Batches(batches_folder(self)).publish(self._round_ahead(trial_id, response["values"]))
        return response

    def _round_ahead(self, trial_id: str, values: dict) -> list[dict]:
        """The runs of the round `values` was just picked for, when it is its first and the
        rest are known; else none."""
        found = _keras_tuner.hyperband_round(self, trial_id)
        if found is None or len(found[1]) != 1:
            return []
        _, _, earlier, size = found
        budget = {key: value for key, value in values.items() if key.startswith("tuner/")}
        if values["tuner/round"] == 0:
            draws = _keras_tuner.draws_ahead(self, values, size - 1)
            return [run_values(values)] + [run_values({**draw, **budget}) for draw in draws]
        ended = [self.trials[entry["id"]] for entry in earlier]
        if any(t.status not in (TrialStatus.COMPLETED, TrialStatus.FAILED, TrialStatus.INVALID)
               for t in ended):
            return []  # keras-tuner picks as soon as a trial is sure to be among the best
        picked = values["tuner/trial_id"]
        rest = sorted((t for t in ended if t.status == TrialStatus.COMPLETED
                       and t.trial_id != picked),
                      key=lambda t: t.score, reverse=self.objective.direction == "max")
        return [run_values(values)] + [
            run_values({**t.hyperparameters.values, **budget, "tuner/trial_id": t.trial_id})
            for t in rest[:size - 1]]


def batches_folder(oracle):
    return _keras_tuner.project_dir(oracle) / "batches"


def make_oracle(axes: dict, search: dict, *, objective, seed: int, max_failures: int):
    """The oracle of the strategy `search` names (see mnist_zoo.search.space)."""
    strategy = search["strategy"]
    common = {"objective": objective, "seed": seed,
              "max_consecutive_failed_trials": max_failures}
    if strategy == "grid":
        return ResumableGridOracle(grid_points(axes), hyperparameters=make_hyperparameters(axes),
                                   **common)
    repeats = len(axes.get(REPEAT_AXIS, [0]))
    axes = {axis: values for axis, values in axes.items() if axis != REPEAT_AXIS}
    space = search_space(axes, strategy)
    if strategy == "random":
        return RandomOracle(hyperparameters=space, max_trials=search["max_trials"],
                            repeats=repeats, **common)
    if strategy == "bayesian":
        try:
            return BayesianOracle(hyperparameters=space, max_trials=search["max_trials"],
                                  repeats=repeats, **common)
        except ImportError as err:  # keras-tuner's Bayesian needs scikit-learn and scipy
            raise GridError(f"strategy bayesian needs scikit-learn and scipy ({err}); "
                            "pip install scikit-learn scipy, or choose another strategy") from None
    return HyperbandOracle(hyperparameters=space, max_epochs=search["max_epochs"],
                           factor=search["factor"], hyperband_iterations=search["iterations"],
                           **common)


def total_trials(oracle, search: dict) -> int:
    """How many trials the search runs at most."""
    if search["strategy"] == "grid":
        return len(oracle.points)
    if search["strategy"] == "hyperband":
        return _keras_tuner.hyperband_size(oracle)
    return oracle.max_trials
