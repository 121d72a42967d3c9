"""Reading a results CSV (the search's, or the old lab format) into Results."""

from __future__ import annotations

import hashlib
import math
import numbers
import re
from pathlib import Path

import numpy as np
import pandas as pd

from mnist_zoo.axes import AXES
from mnist_zoo.search.table import RESULTS_CSV, has_repeats, point_groups
from mnist_zoo.plot._data import N, RUNS, STD, PlotError, Results
from mnist_zoo.plot._kinds import BUDGET, continuous_axes, is_hyperband, last_rounds, range_axes
from mnist_zoo.plot._style import MISSING

# A setting's value as a chart shows it: longer ones are cut (issue #29: values of 2,000 to
# 200,000 characters took 7 s to minutes to draw).
LABEL_CHARS = 40


def normalise_column(column: str) -> str:
    """'Learning Rate' -> 'learning_rate', 'Validation Accuracy' -> 'val_accuracy'."""
    column = re.sub(r"[\s\-]+", "_", column.strip().lower())
    return re.sub(r"^validation_", "val_", column)


def read_results(csv_path) -> pd.DataFrame:
    """The CSV as a table with normalised column names, a trial_id and a status."""
    path = Path(csv_path)
    if path.is_dir():
        inside = path / RESULTS_CSV
        hint = f"; did you mean {inside}?" if inside.is_file() else ""
        raise PlotError(f"{path} is a folder, not a results CSV file{hint}")
    if not path.is_file():
        raise PlotError(f"{path}: no such results file; run `python -m mnist_zoo.search` "
                        "first, or pass the CSV it wrote")
    try:
        table = pd.read_csv(path, dtype={"trial_id": str}, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise PlotError(f"{path} is empty: no header and no trials") from None
    except PermissionError:
        raise PlotError(f"{path} cannot be read (permission denied)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as err:
        raise PlotError(f"{path} is not a readable CSV file ({err})") from err
    # The header as written, for messages: normalised names and added columns are ours.
    table.attrs["file_columns"] = [str(column).strip() for column in table.columns]
    table.columns = [normalise_column(str(column)) for column in table.columns]
    if table.empty:
        raise PlotError(f"{path} has a header but no trials")
    if "trial_id" not in table:
        table.insert(0, "trial_id", [f"{i:04d}" for i in range(len(table))])
    if "status" not in table:  # the lab format listed finished runs only
        table["status"] = "completed"
    return table


def load_results(csv_path, metric: str = "val_accuracy",
                 threshold: float | None = None) -> Results:
    """The CSV's completed trials with a finite metric; the other rows stay in .table, and
    left_out(res) says why each one is not charted."""
    table = read_results(csv_path)
    metric = normalise_column(metric)
    if metric not in table:
        found = table.attrs["file_columns"]
        metrics = [c for c in found if re.search(r"accuracy|loss", c, re.IGNORECASE)]
        hint = (f"; choose one of its metric columns with --metric: {', '.join(metrics)}"
                if metrics else "; it has no accuracy or loss column")
        raise PlotError(f"{csv_path} has no {metric!r} column (the metric to chart){hint} "
                        f"(found columns: {', '.join(found)})")
    table[metric] = pd.to_numeric(table[metric], errors="coerce")
    finite = np.isfinite(table[metric])
    # Lab sheets kept percentages; an infinite value must not decide that for the others.
    if "accuracy" in metric and table.loc[finite, metric].max() > 1:
        table[metric] = table[metric] / 100
    completed = table["status"].astype(str).str.strip().str.lower() == "completed"
    trials = table[completed & finite].copy()
    if trials.empty:
        raise PlotError(f"{csv_path}: no completed trial has a finite {metric} value, so there "
                        f"is nothing to chart (statuses: {table['status'].value_counts().to_dict()}"
                        f"; {int((completed & ~finite).sum())} completed without one)")
    hyperband = is_hyperband(trials)
    axes, constant = [], {}
    for axis in AXES:
        if hyperband and axis == BUDGET:
            continue  # each trial's budget, charted as the epochs it reached
        if axis in trials:
            trials[axis] = as_labels(trials[axis])
            values = trials[axis].unique()
            if len(values) > 1:
                axes.append(axis)
            else:
                constant[axis] = str(values[0])
            trials[axis] = trials[axis].cat.remove_unused_categories()
    if hyperband:
        trials = last_rounds(trials, axes)
    repeats = has_repeats(trials, axes)
    points = summarize_points(trials, axes, metric) if repeats else None
    continuous = continuous_axes(trials, axes, range_axes(csv_path))
    return Results(Path(csv_path), table, trials, metric, axes, constant, threshold,
                   points, repeats, continuous, BUDGET if hyperband else None)


def left_out(res: Results) -> pd.Series:
    """Why each row of the CSV that is not charted was left out ('failed', 'val_accuracy is
    infinite', ...), indexed like res.table. (Hyperband's earlier rounds are not left out:
    each is charted in its configuration's last round.)"""
    status = res.table["status"].fillna("no status").astype(str)
    completed = status.str.strip().str.lower() == "completed"
    charted = completed & np.isfinite(res.table[res.metric])
    rows, status, completed = res.table[~charted], status[~charted], completed[~charted]
    values = rows[res.metric]
    reason = np.where(np.isinf(values), f"{res.metric} is infinite",
                      f"no {res.metric} value")
    return status.where(~completed, pd.Series(reason, index=rows.index))


def summarize_points(trials: pd.DataFrame, axes: list[str], metric: str) -> pd.DataFrame:
    """One row per grid point (combination of the varying `axes`) from its completed runs:
    the metric's mean (in the metric's own column), STD (NaN for a single run), N, RUNS (the
    runs' values) and the trial_id of its first run. The charts' counterpart of
    mnist_zoo.search.table.summarize (which the tests check it against): it keeps the settings as
    ordered labels and the runs' values for the noise test."""
    keys = list(axes) if axes else np.zeros(len(trials), dtype=int)
    grouped = point_groups(trials, keys, sort=True)
    points = grouped.agg(**{metric: (metric, "mean"), STD: (metric, "std"),
                            N: (metric, "count"), "trial_id": ("trial_id", "first")})
    points[RUNS] = grouped[metric].agg(lambda values: values.to_numpy(dtype=float))
    return points.reset_index(drop=not axes)


def format_value(value) -> str:
    """0.001 rather than 1e-03, 64 rather than 64.0, 'none' for an empty cell."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Number):
        if math.isnan(value):
            return MISSING
        if math.isinf(value):
            return str(value)
        if float(value).is_integer():
            return str(int(value))
        return np.format_float_positional(float(f"{value:.6g}"), trim="-")
    return str(value)


def readable(label: str) -> str:
    """A label cut to LABEL_CHARS: a setting's value of 200,000 characters would take
    minutes to lay out and fill a chart; a short digest of the whole keeps cut values
    that begin alike apart."""
    if len(label) <= LABEL_CHARS:
        return label
    digest = hashlib.blake2s(label.encode("utf-8", "replace"), digest_size=3).hexdigest()
    return f"{label[:LABEL_CHARS - 8]}…#{digest}"


def as_labels(values: pd.Series) -> pd.Series:
    """A setting as an ordered categorical of readable labels: numbers sort as numbers."""
    present = pd.unique(values.dropna())
    numeric = pd.to_numeric(pd.Series(present), errors="coerce")
    if len(present) and numeric.notna().all():
        ordered = [present[i] for i in np.argsort(numeric.to_numpy(), kind="stable")]
    else:
        ordered = sorted(present, key=str)
    categories = list(dict.fromkeys(readable(format_value(v)) for v in ordered))
    if values.isna().any() and MISSING not in categories:
        categories.append(MISSING)
    labels = [readable(format_value(v)) for v in values]
    return pd.Series(pd.Categorical(labels, categories=categories, ordered=True),
                     index=values.index)
