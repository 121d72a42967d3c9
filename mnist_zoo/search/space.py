"""Search files beyond the grid: the [search] table (which strategy, and its budget) and
axes given as ranges. No TensorFlow: the command checks a search file before it starts.

    [search]
    strategy = "hyperband"      # "grid" (default), "random", "bayesian" or "hyperband"
    max_trials = 30             # random, bayesian: how many trials (default 10)
    max_epochs = 3              # hyperband: the most epochs a trial trains (default: the
    factor = 3                  #   epochs axis); factor: 1/factor of a round goes on
    iterations = 1              # hyperband: how many times its brackets run
    prune = "median"            # grid, random: stop trials behind the others (default
                                #   "none"; also "percentile:25", prune_warmup,
                                #   prune_min_trials: mnist_zoo.search.pruning)

    [axes]
    learning_rate = { min = 1e-4, max = 0.1, log = true }   # a range: random, bayesian, hyperband
    batch_size = { min = 16, max = 128, step = 16 }          # an integer range
"""

from __future__ import annotations

import math
from pathlib import Path

from mnist_zoo.axes import REPEAT_AXIS
from mnist_zoo.errors import GridError
from mnist_zoo.search.pruning import PRUNE_KEYS, check_prune_keys
from mnist_zoo.settings import RANGE_AXES, SETTINGS

STRATEGIES = ("grid", "random", "bayesian", "hyperband")
# The [search] table's keys, their type, and the strategies they belong to.
SEARCH_KEYS = {"strategy": (str, STRATEGIES), "max_trials": (int, ("random", "bayesian")),
               "max_epochs": (int, ("hyperband",)), "factor": (int, ("hyperband",)),
               "iterations": (int, ("hyperband",))}
DEFAULTS = {"max_trials": 10, "factor": 3, "iterations": 1}  # keras-tuner's own defaults
RANGE_KEYS = {"min", "max", "log", "step"}


def is_range(values) -> bool:
    return isinstance(values, dict)


def check_range(path: Path, axis: str, spec: dict, check_value) -> dict:
    """A range axis, e.g. {min = 1e-4, max = 0.1, log = true}, checked; floats as floats."""
    kind = SETTINGS[axis].kind if axis in RANGE_AXES else None
    example = f"{axis} = {{ min = 1e-4, max = 0.1, log = true }}"
    if kind is None:
        raise GridError(f"{path}: axis {axis} cannot be a range (only "
                        f"{', '.join(RANGE_AXES)} can); give a list of values")
    if set(spec) - RANGE_KEYS or not {"min", "max"} <= set(spec):
        raise GridError(f"{path}: range {axis} needs min and max (and optionally log, step), "
                        f"e.g. {example}; got keys {sorted(spec)}")
    for key in ("min", "max"):
        problem = check_value(kind(spec[key]) if _is_number(spec[key]) else spec[key])
        if problem or (kind is int and not isinstance(spec[key], int)):
            raise GridError(f"{path}: {axis} range {key} = {spec[key]!r} is not allowed: "
                            f"{problem or 'expected an integer'}")
    low, high = spec["min"], spec["max"]
    if not low < high:
        raise GridError(f"{path}: {axis} range needs min < max, got min = {low}, max = {high}")
    if not isinstance(spec.get("log", False), bool):
        raise GridError(f"{path}: {axis} range: log must be true or false")
    step = spec.get("step")
    if step is not None and (not _is_number(step) or not step > 0
                             or (kind is int and not isinstance(step, int))):
        raise GridError(f"{path}: {axis} range: step must be a number > 0 "
                        f"({'an integer ' if kind is int else ''}for {axis}), got {step!r}")
    return {"min": kind(low), "max": kind(high), "log": spec.get("log", False),
            **({"step": kind(step)} if step is not None else {})}


class AxisValues(list):
    """An axis's list of values that also says where the search file's [when] table lets
    it apply ({parent axis: values}); it travels with the axes as a list does."""

    def __init__(self, values, when: dict):
        super().__init__(values)
        self.when = when


def conditions_of(axis: str, values) -> dict[str, tuple]:
    """Where `axis` applies, {parent axis: values}: the settings table's rule (SGD and
    RMSprop, say), narrowed by the search file's [when] (SGD only)."""
    rule = dict(SETTINGS[axis].applies) if axis in SETTINGS else {}
    narrowed = values.get("when", {}) if is_range(values) else getattr(values, "when", {})
    for parent, allowed in narrowed.items():
        rule[parent] = tuple(v for v in rule.get(parent, allowed) if v in allowed)
    return rule


def check_when(path: Path, table, axes: dict) -> dict:
    """The axes with a search file's [when] table attached: {axis = {parent = [values]}},
    each {parent = [values]}, e.g. { optimizer = ["sgd"] } (the parents' values checked)."""
    if not isinstance(table, dict):
        raise GridError(f"{path}: [when] must be a table of axes, each a table such as "
                        "{ optimizer = [\"sgd\"] }")
    for axis, rule in table.items():
        if axis not in axes or axis not in SETTINGS:
            raise GridError(f"{path}: [when] names {axis!r}, which is no axis of this file's "
                            f"[axes] ({', '.join(axes)})")
        if not isinstance(rule, dict) or not rule:
            raise GridError(f"{path}: [when] {axis} must be a table of axes and values, e.g. "
                            f"{axis} = {{ optimizer = [\"sgd\"] }}")
        for parent, allowed in rule.items():
            if parent == axis or parent not in axes or is_range(axes[parent]):
                raise GridError(f"{path}: [when] {axis}: {parent!r} must be another axis of "
                                "the file given as a list")
            if not isinstance(allowed, list) or not allowed or any(
                    SETTINGS[parent].check(value) for value in allowed):
                raise GridError(f"{path}: [when] {axis}: {parent} = {allowed!r} must be a "
                                f"non-empty list of {parent} values")
        values = axes[axis]
        axes[axis] = ({**values, "when": rule} if is_range(values)
                      else AxisValues(values, rule))
    return axes


def check_conditions(path: Path, axes: dict) -> None:
    """Refuse an axis that applies to none of the grid's values of its parents (an
    SGD-only setting with optimizer = ["adam"]): it would silently be left out of every
    trial."""
    for axis, values in axes.items():
        for parent, allowed in conditions_of(axis, values).items():
            parents = axes.get(parent, [SETTINGS[parent].default])
            if not is_range(parents) and not set(parents) & set(allowed):
                where = " or ".join(map(str, allowed)) or "none ([when] leaves none)"
                raise GridError(f"{path}: axis {axis} applies only to {parent} {where}, and "
                                f"the grid's {parent} is {', '.join(map(str, parents))}; "
                                f"remove {axis} or add {parent} {where}")


def add_axes(hp, axes: dict, strategy: str = "grid"):
    """Register `axes` in keras-tuner's HyperParameters `hp`: a list is a Choice (one
    value: Fixed; a grid's default is its first), a range an Int or a Float (log-sampled
    with log = true). A setting that applies only to some values of another axis is
    registered under keras-tuner's conditional_scope (conditions_of: the table's rule
    and the file's [when]), so that its random, Bayesian and Hyperband draws leave it out
    where it does not apply. Hyperband sets the epochs."""
    for axis, values in axes.items():
        if axis == "epochs" and strategy == "hyperband":
            continue
        scopes = [hp.conditional_scope(parent, [v for v in allowed if v in axes[parent]])
                  for parent, allowed in conditions_of(axis, values).items()
                  if parent in axes and not is_range(axes[parent])]
        for scope in scopes:
            scope.__enter__()
        try:
            _add_axis(hp, axis, values, strategy)
        finally:
            for scope in reversed(scopes):
                scope.__exit__(None, None, None)
    return hp


def _add_axis(hp, axis: str, values, strategy: str) -> None:
    if is_range(values):
        kind = hp.Float if isinstance(values["min"], float) else hp.Int
        kind(axis, values["min"], values["max"], step=values.get("step"),
             sampling="log" if values["log"] else "linear")
    elif all(isinstance(value, bool) for value in values) and len(values) == 2:
        hp.Boolean(axis, default=values[0])  # a Choice would turn them into 0 and 1
    elif strategy == "grid":
        hp.Choice(axis, values, default=values[0])
    elif len(values) == 1:
        hp.Fixed(axis, values[0])
    else:
        hp.Choice(axis, values)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_search_table(path: Path, table) -> dict:
    """The [search] table checked (values only; resolve_search applies the strategy)."""
    if not isinstance(table, dict):
        raise GridError(f"{path}: [search] must be a table, e.g. [search] strategy = \"random\"")
    check_prune_keys(path, table)
    for key, value in table.items():
        if key in PRUNE_KEYS:
            continue  # checked above; mnist_zoo.search.pruning applies them
        if key not in SEARCH_KEYS:
            raise GridError(f"{path}: unknown [search] key {key!r}; allowed: "
                            f"{', '.join([*SEARCH_KEYS, *PRUNE_KEYS])}")
        kind, allowed = SEARCH_KEYS[key]
        if key == "strategy":
            if value not in STRATEGIES:
                raise GridError(f"{path}: strategy = {value!r} is not allowed: choose from "
                                f"{', '.join(STRATEGIES)}")
        elif not isinstance(value, int) or isinstance(value, bool) or value < (
                2 if key == "factor" else 1):
            raise GridError(f"{path}: [search] {key} = {value!r} must be an integer >= "
                            f"{2 if key == 'factor' else 1}")
    return dict(table)


def resolve_search(spec: dict, strategy: str | None = None, max_trials: int | None = None,
                   epochs: int | None = None) -> dict:
    """The search's settings: the file's [search] with --strategy and --max-trials over
    it, checked against the axes (a grid takes lists only; Hyperband sets the epochs,
    up to --epochs when given)."""
    path, axes = spec["path"], spec["axes"]
    repeats = len(axes.get(REPEAT_AXIS, [0]))
    # The pruning keys are no strategy's: mnist_zoo.search.pruning.split_prune reads them.
    search = {key: value for key, value in spec.get("search", {}).items()
              if key not in PRUNE_KEYS}
    if strategy:  # --strategy: the file's settings of another strategy do not apply
        search = {key: value for key, value in search.items()
                  if strategy in SEARCH_KEYS[key][1]}
        search["strategy"] = strategy
    if max_trials:
        search["max_trials"] = max_trials
    name = search.setdefault("strategy", "grid")
    if name == "grid":
        for axis, values in axes.items():
            if is_range(values):
                raise GridError(f"{path}: axis {axis} is a range; a grid needs a list of "
                                "values, or set strategy = \"random\"")
    if name in ("random", "bayesian"):
        search.setdefault("max_trials", DEFAULTS["max_trials"])
    if name == "hyperband":
        max_epochs, epochs = epochs, axes.get("epochs", [])
        if is_range(epochs) or len(epochs) > 1:
            raise GridError(f"{path}: hyperband sets each trial's epochs itself (up to "
                            "max_epochs): give epochs one value or none, and max_epochs in "
                            "[search]")
        search["max_epochs"] = max_epochs or search.get("max_epochs") or (
            epochs[0] if epochs else 3)
        search.setdefault("factor", DEFAULTS["factor"])
        search.setdefault("iterations", DEFAULTS["iterations"])
        if repeats > 1:
            raise GridError(f"{path}: --repeats needs strategy grid, random or bayesian: "
                            "Hyperband keeps a trial by its one run; use repeats = 1")
    for key in search:
        if key != "strategy" and name not in SEARCH_KEYS[key][1]:
            raise GridError(f"{path}: {key} does not apply to strategy {name!r} (only to "
                            f"{', '.join(SEARCH_KEYS[key][1])}); remove it or choose another "
                            "strategy")
    return search

