"""heatmap_<rows>_x_<cols>: the metric over two settings, one panel per combination of the
others (those that matter most, up to MAX_PANELS panels; cells average over the rest).

Which two settings is _interactions' choice; here is how one pair is drawn.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from mnist_zoo.plot import _style as style
from mnist_zoo.plot._axes import display_labels, facets, value_text
from mnist_zoo.plot._data import STD, Results
from mnist_zoo.plot._pruned import hatch_pruned, pruned_cells, with_pruned_points
from mnist_zoo.plot._style import metric_cmap, text_colour


def heatmap_data(res: Results, rows_axis: str, cols_axis: str):
    """(panels, panel settings, pooled settings): each panel a (key, cells, spread) where
    cells is the mean metric of each rows x cols cell and spread its grid point's standard
    deviation (None without repeats, or where a cell averages several points)."""
    panel_axes, pooled = facets(res, (rows_axis, cols_axis))
    groups = (list(res.points.groupby(panel_axes, observed=True)) if panel_axes
              else [((), res.points)])
    panels = []
    for key, sub in groups:
        cells = sub.groupby([rows_axis, cols_axis], observed=False)
        spread = (cells[STD].mean().unstack(cols_axis) if res.repeats and not pooled else None)
        panels.append((key if isinstance(key, tuple) else (key,),
                       cells[res.metric].mean().unstack(cols_axis), spread))
    return panels, panel_axes, pooled


def plot_heatmaps(res: Results, out: Path, fmt: str, rows_axis: str, cols_axis: str,
                  about: str = "") -> list[style.Chart]:
    """rows_axis x cols_axis heatmaps; `about` opens the caption (why this pair)."""
    if rows_axis not in res.axes or cols_axis not in res.axes:
        return []
    res = with_pruned_points(res)  # every cell of the table, the pruned ones hatched
    panels, panel_axes, pooled = heatmap_data(res, rows_axis, cols_axis)
    norm = style.metric_norm(res, np.concatenate([cells.to_numpy(dtype=float).ravel()
                                                  for _, cells, _ in panels]))
    fig = _heatmap_grid(res, panels, rows_axis, cols_axis, panel_axes, norm, bool(pooled))
    what = f"{res.metric_label}: {style.name(rows_axis)} x {style.name(cols_axis)}"
    style.title(fig, res, what + (f" (panels: {' · '.join(map(style.name, panel_axes))})"
                                  if panel_axes else ""))
    caption = (f"Mean {res.metric_label} for each {style.name(rows_axis)} and "
               f"{style.name(cols_axis)}"
               + (f", one panel per {' / '.join(map(style.name, panel_axes))}" if panel_axes
                  else "") + "; brighter is better.")
    if pooled:
        caption += (f" Each cell averages the {res.unit}s over "
                    f"{', '.join(map(style.name, pooled))}, which would make more than "
                    f"{style.MAX_PANELS} panels.")
    elif res.repeats:
        caption += (f" Each cell is one grid point: mean ± standard deviation over its "
                    f"repeats ({res.n_text()})" + (", in percent." if res.is_accuracy else "."))
    if sum(cells.size for _, cells, _ in panels) > style.MAX_CELL_TEXTS:
        caption += (f" More than {style.MAX_CELL_TEXTS} cells: they show their colour "
                    "without a number.")
    caption = f"{about} {caption}" if about else caption
    stem = f"heatmap_{rows_axis}_x_{cols_axis}"
    return [style.Chart(style.save(fig, out, stem, fmt), caption, fig)]


def _heatmap_grid(res: Results, panels: list, rows_axis: str, cols_axis: str,
                  panel_axes: list[str], norm: Normalize, pooled: bool) -> Figure:
    across = res.points[panel_axes[-1]].nunique() if panel_axes else 0
    if len(panel_axes) >= 2 and across <= 6:
        ncols = across  # last facet across, the others down: a readable table of panels
    else:
        ncols = min(len(panels), 4)
    nrows = math.ceil(len(panels) / ncols)
    n_rows_cells = len(res.points[rows_axis].cat.categories)
    n_cols_cells = len(res.points[cols_axis].cat.categories)
    cell_width = 0.95 if res.repeats and not pooled else 0.62  # room for "87.4 ± 0.3"
    cell_height = 0.42
    # Many cells: smaller ones, without numbers, inside MAX_INCHES (the colour still reads).
    annotate = sum(cells.size for _, cells, _ in panels) <= style.MAX_CELL_TEXTS
    cell_width = min(cell_width, (style.MAX_INCHES - 1.6 - ncols) / (ncols * n_cols_cells))
    cell_height = min(cell_height, (style.MAX_INCHES - 1.2 - nrows) / (nrows * n_rows_cells))
    fig = Figure(figsize=(ncols * (cell_width * n_cols_cells + 1.0) + 1.6,
                          nrows * (cell_height * n_rows_cells + 1.0) + 1.2), layout="constrained")
    fig.get_layout_engine().set(hspace=0.04, wspace=0.03)
    axes = np.atleast_2d(fig.subplots(nrows, ncols, squeeze=False))
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    empty_cells = any_pruned = False
    for ax, (key, cells, spread) in zip(axes.ravel(), panels):
        pruned = pruned_cells(res, cells, rows_axis, cols_axis, dict(zip(panel_axes, key)))
        empty_cells |= draw_heatmap(ax, res, cells, norm, spread, annotate, pruned)
        any_pruned |= hatch_pruned(ax, pruned)
        ax.set_title(" · ".join(value_text(axis, str(value))
                                for axis, value in zip(panel_axes, key)), fontsize=10)
        ax.set_xlabel(style.name(cols_axis))
        ax.set_ylabel(style.name(rows_axis))
    for ax in axes.ravel()[:len(panels)]:
        ax.label_outer()  # axis names and ticks once per row and column
    style.metric_colorbar(fig, axes.ravel()[:len(panels)].tolist(), res, norm)
    style.heatmap_note(fig, res, empty_cells, pruned=any_pruned)
    return fig


def draw_heatmap(ax, res, cells: pd.DataFrame, norm: Normalize,
                 spread: pd.DataFrame | None = None, annotate: bool = True,
                 pruned: pd.DataFrame | None = None) -> bool:
    """One annotated heatmap panel of `cells` (rows x columns); True if a cell is empty.

    spread: the standard deviation of each cell, written as "87.4 ± 0.3".
    annotate: False leaves the cells' numbers out (too many to read).
    pruned: a label for the empty cells whose trials were pruned (hatch_pruned draws them)."""
    cmap = metric_cmap(res)
    values = cells.to_numpy(dtype=float)
    stds = spread.to_numpy(dtype=float) if spread is not None else np.full(values.shape, np.nan)
    ax.imshow(np.ma.masked_invalid(values), cmap=cmap, norm=norm, aspect="auto")
    for (i, j), value in np.ndenumerate(values if annotate else np.empty((0, 0))):
        if np.isnan(value):
            if pruned is None or not pruned.iat[i, j]:
                ax.text(j, i, "–", ha="center", va="center", color="grey", fontsize=8)
            continue
        ax.text(j, i, res.cell_text(value, stds[i, j]), ha="center", va="center",
                fontsize=8 if spread is None else 7, color=text_colour(cmap(norm(value))))
    columns, rows = display_labels(cells.columns), display_labels(cells.index)
    ax.set_xticks(range(cells.shape[1]), [columns[c] for c in cells.columns])
    ax.set_yticks(range(cells.shape[0]), [rows[r] for r in cells.index])
    ax.tick_params(length=0)
    for spine in ax.spines.values():  # a faint frame keeps sparse panels apart
        spine.set_visible(True)
        spine.set_edgecolor("#c8c8c8")
    return bool(np.isnan(values).any())


