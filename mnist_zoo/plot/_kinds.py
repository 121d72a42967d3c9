"""Which settings are continuous (drawn on a number line: slices, contours, bins) and which
are categories (a box, a line or a heatmap row per value); their bins; Hyperband's rounds.

A numeric setting is continuous when it came from a range of the search file (the
`grid.json` the search keeps beside its CSV says so), or when it has more than
CONTINUOUS_VALUES distinct values: more than the colour cycle has colours, so that a box,
a line or a heatmap row per value would no longer read. Everything else is a category.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from mnist_zoo.plot._axes import is_log_spaced, numeric_values, short_number

CONTINUOUS_VALUES = 10  # more distinct numbers than this: a continuous setting
BINS = 5  # bins of a continuous setting where charts need categories (what_matters, heatmaps)
# Hyperband's own columns: a table with them is a Hyperband search, whose epochs are each
# trial's budget, not a setting.
HYPERBAND_COLUMNS = ("bracket", "round")
BUDGET = "epochs"


def range_axes(csv_path) -> dict[str, bool]:
    """axis -> log flag of each setting that the search drew from a range, read from the
    search's own record beside the CSV (<folder>/tuner/<grid>/grid.json); {} without one."""
    ranges = {}
    for marker in sorted(Path(csv_path).parent.glob("tuner/*/grid.json")):
        try:
            axes = json.loads(marker.read_text()).get("axes", {})
        except (OSError, ValueError, AttributeError):
            continue  # a damaged record only costs the hint; the values still decide
        if not isinstance(axes, dict):
            continue
        for axis, spec in axes.items():
            if isinstance(spec, dict) and "min" in spec:
                ranges[axis] = ranges.get(axis, False) or bool(spec.get("log", False))
    return ranges


def continuous_axes(points: pd.DataFrame, axes: list[str],
                    ranges: dict[str, bool] | None = None) -> dict[str, bool]:
    """axis -> log-spaced, for each of `axes` (ordered categorical labels in `points`) that
    is continuous: numeric, and drawn from a range or with more than CONTINUOUS_VALUES
    distinct values. Log where the range says so, else where the values are log-spaced."""
    ranges = ranges or {}
    continuous = {}
    for axis in axes:
        numbers = numeric_values(points[axis].cat.categories)
        if numbers is None or len(numbers) < 2:
            continue
        if axis in ranges or len(numbers) > CONTINUOUS_VALUES:
            log = ranges[axis] if axis in ranges else is_log_spaced(numbers)
            continuous[axis] = bool(log and numbers.min() > 0)
    return continuous


def as_numbers(labels: pd.Series) -> np.ndarray:
    """A setting's labels as floats ('none' as NaN)."""
    return pd.to_numeric(labels.astype(str), errors="coerce").to_numpy(dtype=float)


def bin_labels(labels: pd.Series, bins: int = BINS) -> pd.Series:
    """A continuous setting's labels as ordered categories of at most `bins` quantile bins
    ('0.0001–0.00063'), each holding about as many runs; a bin of one value is named by it,
    and none is empty.
    Quantiles of log-spaced draws are log bins, so one rule serves both."""
    values = as_numbers(labels)
    finite = np.isfinite(values)
    edges = np.unique(np.quantile(values[finite], np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        edges = np.array([values[finite].min(), values[finite].max()])
    codes = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
    names = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = values[finite][(values[finite] >= low) & (values[finite] <= high)]
        one = len(np.unique(inside)) == 1
        names.append(short_number(inside[0]) if one else
                     f"{short_number(low)}–{short_number(high)}")
    names = _distinct(names)
    binned = [names[c] if ok else "none" for c, ok in zip(codes, finite)]
    categories = names + (["none"] if not finite.all() else [])
    binned = pd.Categorical(binned, categories=categories, ordered=True)
    # Few distinct values leave bins between them empty: a box or a row of nothing.
    return pd.Series(binned, index=labels.index).cat.remove_unused_categories()


def _distinct(names: list[str]) -> list[str]:
    """Bin names that 3 significant digits made alike, told apart by their place."""
    if len(set(names)) == len(names):
        return names
    return [f"{i + 1}: {n}" for i, n in enumerate(names)]


def is_hyperband(table: pd.DataFrame) -> bool:
    return all(column in table for column in HYPERBAND_COLUMNS) and BUDGET in table


def last_rounds(trials: pd.DataFrame, settings: list[str]) -> pd.DataFrame:
    """Hyperband: each configuration (equal `settings`) once, at the most epochs it reached
    (its last round; a later round goes on training the earlier round's model)."""
    if not settings:
        return trials.loc[[pd.to_numeric(trials[BUDGET], errors="coerce").idxmax()]]
    budget = pd.to_numeric(trials[BUDGET].astype(str), errors="coerce")
    order = trials.assign(_budget=budget).sort_values("_budget", kind="stable")
    last = order.groupby(settings, observed=True, dropna=False, sort=False).tail(1)
    return trials[trials.index.isin(last.index)]
