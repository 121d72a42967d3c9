"""Pruned trials (search --prune, issue #32) in the charts: never averaged with completed
ones (they are not among Results.trials), but shown as pruned: a heatmap cell with no
completed trial and pruned ones is hatched and labelled with the epoch they reached, the
ranking draws them as greyed bars below the completed ones, and the report counts them and
names the rule that stopped them.
"""

from __future__ import annotations

import dataclasses
import html

import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle

from mnist_zoo.axes import AXES
from mnist_zoo.order import best_first
from mnist_zoo.plot._data import Results
from mnist_zoo.plot._read import format_value, readable
from mnist_zoo.plot._style import NOTE_COLOUR

PRUNED = "pruned"
EPOCHS_RUN = "epochs_run"
# How a pruned trial looks wherever it is drawn: hatched, in greys.
PRUNED_LOOK = {"facecolor": "#ececec", "edgecolor": "#b0b0b0", "hatch": "///", "linewidth": 0}


def pruned_rows(res: Results) -> pd.DataFrame:
    """The table's pruned rows."""
    status = res.table["status"].astype(str).str.strip().str.lower()
    return res.table[status == PRUNED]


def pruned_points(res: Results) -> tuple[pd.DataFrame, list[str]]:
    """The grid points (trials without repeats) that have pruned runs and no completed one,
    and the settings that tell them apart: res.axes, plus any setting that only pruned rows
    vary (all sigmoid trials pruned, the completed ones all relu). One row each: those
    settings as chart labels, the metric's mean over its pruned runs at the epoch they
    reached (NaN for a test metric, which a pruned run never has), EPOCHS_RUN (the latest
    epoch reached) and its first trial_id; best first. They are never ranked among the
    completed points, whose values come from later epochs."""
    rows = pruned_rows(res)
    labels = pd.DataFrame({axis: [readable(format_value(v)) for v in rows[axis]]
                           for axis in AXES if axis in rows}, index=rows.index)
    axes = list(res.axes) + [axis for axis, value in res.constant.items()
                             if axis in labels and (labels[axis] != str(value)).any()]
    if rows.empty or not axes:
        return pd.DataFrame(columns=[*axes, res.metric, EPOCHS_RUN, "trial_id"]), axes
    completed = set(res.points[res.axes].astype(str).itertuples(index=False, name=None))
    pruned_only = [key not in completed for key in labels[res.axes].itertuples(index=False,
                                                                              name=None)]
    rows = rows[pruned_only].assign(**labels[pruned_only][axes])
    epochs = pd.to_numeric(rows[EPOCHS_RUN], errors="coerce") if EPOCHS_RUN in rows else \
        pd.Series(np.nan, index=rows.index)
    points = rows.assign(**{EPOCHS_RUN: epochs}).groupby(axes, sort=True).agg(
        **{res.metric: (res.metric, "mean"), EPOCHS_RUN: (EPOCHS_RUN, "max"),
           "trial_id": ("trial_id", "first")}).reset_index()
    return best_first(points, res.metric, res.higher_is_better, then=axes), axes


def merged_labels(known, more) -> list[str]:
    """A setting's labels: `known` (its categories among completed trials), then those of
    `more` (pruned trials') not among them; numbers in their order, as the charts' are."""
    labels = list(known) + [value for value in pd.unique(pd.Series(list(more)))
                            if value not in set(known)]
    numbers = pd.to_numeric(pd.Series(labels, dtype=object), errors="coerce")
    if numbers.notna().all():
        labels = [labels[i] for i in np.argsort(numbers.to_numpy(), kind="stable")]
    return labels


def with_pruned_points(res: Results) -> Results:
    """res with a row (no metric value) for each grid point that only pruned runs reached,
    their values among the settings' categories: for the heatmaps, which draw every cell
    of the table (a learning rate or an optimizer whose trials were all pruned included),
    and hatch these cells (pruned_cells). res itself when there is none."""
    pruned, axes = pruned_points(res)
    if pruned.empty or axes != list(res.axes):  # a setting only pruned rows vary: no cells
        return res
    completed = res.table.loc[res.trials.index]
    for axis in axes:  # a continuous setting cut into bins: a pruned value has no bin
        if not {readable(format_value(v)) for v in completed[axis]} <= set(
                res.points[axis].cat.categories):
            return res
    points = res.points.copy()
    added = pruned[axes].assign(**{res.metric: np.nan, "trial_id": pruned["trial_id"]})
    for axis in axes:
        labels = merged_labels(points[axis].cat.categories, pruned[axis])
        points[axis] = points[axis].cat.set_categories(labels)
        added[axis] = pd.Categorical(added[axis], categories=labels, ordered=True)
    return dataclasses.replace(res, points=pd.concat([points, added], ignore_index=True))


def pruned_cells(res: Results, cells: pd.DataFrame, rows_axis: str, cols_axis: str,
                 panel: dict) -> pd.DataFrame:
    """For each cell of `cells` (rows x columns of a heatmap panel whose other settings are
    `panel`) with no completed value and pruned trials: 'pruned @E', E the latest epoch
    they reached; '' elsewhere."""
    labels = pd.DataFrame("", index=cells.index, columns=cells.columns)
    rows = pruned_rows(res)
    for axis, value in panel.items():
        rows = rows[rows[axis].map(format_value) == str(value)]
    if rows.empty or rows_axis not in rows or cols_axis not in rows:
        return labels
    for (row, col), sub in rows.groupby([rows[rows_axis].map(format_value),
                                         rows[cols_axis].map(format_value)]):
        if row in labels.index and col in labels.columns and np.isnan(cells.loc[row, col]):
            epochs = pd.to_numeric(sub.get("epochs_run"), errors="coerce").max()
            labels.loc[row, col] = PRUNED + (f" @{int(epochs)}" if epochs == epochs else "")
    return labels


def hatch_pruned(ax, labels: pd.DataFrame) -> bool:
    """Hatch and label the pruned cells of a heatmap panel; True if there was one."""
    for (i, j), label in np.ndenumerate(labels.to_numpy()):
        if label:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False,
                                   **{k: v for k, v in PRUNED_LOOK.items() if k != "facecolor"}))
            ax.text(j, i, label, ha="center", va="center", color=NOTE_COLOUR, fontsize=7,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
    return bool((labels.to_numpy() != "").any())


def report_sentence(res: Results) -> str:
    """The report's sentence on pruned trials ('' without any), in HTML."""
    rows = pruned_rows(res)
    if rows.empty:
        return ""
    rules = rows["pruned_by"].fillna("a rule").astype(str) if "pruned_by" in rows else \
        pd.Series("a rule", index=rows.index)
    by = ", ".join(f"{n} by {html.escape(rule)}" for rule, n in rules.value_counts().items())
    epochs = pd.to_numeric(rows.get("epochs_run"), errors="coerce")
    reached = (f", after epoch {int(epochs.min())}" + (f"–{int(epochs.max())}"
                                                      if epochs.max() > epochs.min() else "")
               if epochs.notna().any() else "")
    return (f" <strong>{len(rows)} pruned</strong> ({by}{reached}): the search stopped them "
            "behind the others, so they are not charted nor averaged with completed trials; "
            "the ranking greys their bars and heatmaps hatch their cells.")
