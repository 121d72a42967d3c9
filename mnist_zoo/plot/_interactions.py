"""Which settings act together: every pair of varying settings ranked by its interaction,
the strongest few drawn as heatmaps (heatmap_<rows>_x_<cols>).

A pair's interaction is how far the mean metric of its cells (each pair of values, averaged
over the other settings) lies from what the two settings predict on their own: a weighted
least-squares fit of one effect per row and one per column, whose residuals' root mean
square is the interaction, in the metric's units. 0 means each setting acts alone (the
heatmap's rows are parallel); learning rate x momentum, whose effect is one number
lr / (1 - momentum), scores high.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from mnist_zoo.order import best_first
from mnist_zoo.plot import _style as style
from mnist_zoo.plot._axes import pair_orientation
from mnist_zoo.plot._data import PlotError, Results
from mnist_zoo.plot._contour import plot_contour
from mnist_zoo.plot._heatmaps import plot_heatmaps
from mnist_zoo.plot._kinds import BINS

TOP_PAIRS = 3
# The lab's own view, how the learning rate should follow the batch size, which its
# reports and docs/ show: drawn for the lab's grid (settings among LAB_AXES) besides the
# strongest pairs; other grids get it when it is one of them.
LAB_PAIR = ("learning_rate", "batch_size")
LAB_AXES = ("activation", "learning_rate", "optimizer", "batch_size")


def additive_misfit(means: pd.Series, weights: pd.Series) -> float:
    """The weighted root mean square of `means` (indexed by two settings' values) minus
    their best additive fit, row effect + column effect; cells may be missing."""
    rows, _ = pd.factorize(means.index.get_level_values(0))
    cols, _ = pd.factorize(means.index.get_level_values(1))
    design = np.column_stack([np.ones(len(means)),
                              np.eye(rows.max() + 1)[rows][:, 1:],
                              np.eye(cols.max() + 1)[cols][:, 1:]])
    y, w = means.to_numpy(dtype=float), weights.to_numpy(dtype=float)
    root = np.sqrt(w)
    coefficients = np.linalg.lstsq(design * root[:, None], y * root, rcond=None)[0]
    residuals = y - design @ coefficients
    return float(np.sqrt(np.sum(w * residuals ** 2) / np.sum(w)))


def interaction_ranking(res: Results) -> pd.DataFrame:
    """One row per pair of varying settings, strongest interaction first: rows and columns
    (as the heatmap draws them) and the interaction in the metric's units (continuous
    settings by their bins: a cell per pair of draws would fit any table exactly)."""
    res = res.binned()
    ranking = []
    for first, second in itertools.combinations(res.axes, 2):
        cells = res.points.groupby([first, second], observed=True)[res.metric].agg(
            ["mean", "count"])
        rows, cols = pair_orientation(res, first, second)
        ranking.append({"rows": rows, "columns": cols,
                        "interaction": additive_misfit(cells["mean"], cells["count"])})
    table = pd.DataFrame(ranking, columns=["rows", "columns", "interaction"])
    # Equal interactions (in exact arithmetic) rank by name, whatever the CPU's rounding.
    return best_first(table, "interaction", higher_is_better=True,
                      then=["rows", "columns"]).reset_index(drop=True)


def chosen_pairs(res: Results, pairs: list[tuple[str, str]] | None = None,
                 top: int = TOP_PAIRS) -> list[tuple[str, str, str]]:
    """(rows, columns, why) of each heatmap to draw: the pairs asked for (as asked), else the
    `top` strongest interactions (at least one), for the lab's grid the lab's pair, and the
    two continuous settings that matter most (a contour)."""
    ranking = interaction_ranking(res)
    if ranking.empty:
        return []
    rank = {frozenset(pair): (i + 1, value) for i, pair, value in
            zip(ranking.index, zip(ranking["rows"], ranking["columns"]), ranking["interaction"])}

    def why(rows: str, cols: str, opening: str) -> str:
        place, value = rank[frozenset((rows, cols))]
        return (f"{opening}: interaction {res.format_difference(value)}, rank {place} of "
                f"{len(ranking)} pairs (the root mean square of the cells' means minus what "
                f"{style.name(rows)} and {style.name(cols)} predict on their own, an additive "
                "fit of a row and a column effect; 0 when each acts alone).")

    if pairs:
        for pair in pairs:
            unknown = [axis for axis in pair if axis not in res.axes]
            if unknown or pair[0] == pair[1]:
                raise PlotError(f"--pairs {pair[0]}:{pair[1]}: "
                                + (f"{unknown[0]} is not a setting that varies in "
                                   f"{res.csv_path.name}" if unknown else "name two settings")
                                + f"; choose two of {', '.join(res.axes)}")
        return [(rows, cols, why(rows, cols, "Asked for with --pairs")) for rows, cols in pairs]
    chosen = [(rows, cols, why(rows, cols, "Chosen by its interaction"))
              for rows, cols in zip(ranking["rows"], ranking["columns"])][:max(top, 1)]
    lab_grid = set(LAB_PAIR) <= set(res.axes) <= set(LAB_AXES)
    if lab_grid and frozenset(LAB_PAIR) not in {
            frozenset(pair[:2]) for pair in chosen}:
        rows, cols = pair_orientation(res, *LAB_PAIR)
        chosen.append((rows, cols, why(rows, cols, "The lab's learning rate x batch size view")))
    continuous = [axis for axis in res.effects() if axis in res.continuous][:2]
    if len(continuous) == 2 and frozenset(continuous) not in {
            frozenset(pair[:2]) for pair in chosen}:
        rows, cols = sorted(continuous, key=res.axes.index)
        chosen.append((rows, cols, why(rows, cols, "The two continuous settings that matter "
                                                   "most (their means by bin lie furthest "
                                                   "apart)")))
    return chosen


def plot_interactions(res: Results, out: Path, fmt: str,
                      pairs: list[tuple[str, str]] | None = None,
                      top: int = TOP_PAIRS) -> list[style.Chart]:
    """A heatmap of each chosen pair (a contour where both settings are continuous); the
    captions say why it was chosen."""
    charts = []
    for rows, cols, why in chosen_pairs(res, pairs, top):
        if rows in res.continuous and cols in res.continuous:
            charts += plot_contour(res, out, fmt, rows, cols, about=why)
            continue
        binned = [style.name(a) for a in (rows, cols) if a in res.continuous]
        if binned:
            why += (f" {' and '.join(binned).capitalize()} is continuous: its rows or columns "
                    f"are {BINS} quantile bins, each holding about as many {res.unit}s.")
        charts += plot_heatmaps(res.binned(), out, fmt, rows, cols, about=why)
    return charts
