"""lines_by_<setting>: one line per value of a setting across the combinations of the others.

Which setting colours the lines, which (if any) splits the panels and which run along the
x axis is _axes.line_roles' rule; the lab grid's batch-size lines are one case of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from mnist_zoo.order import best_first
from mnist_zoo.plot import _style as style
from mnist_zoo.plot._axes import axis_colours, display_labels, line_roles, trial_labels
from mnist_zoo.plot._data import STD, Results

SETTING = "setting"  # the column of a point's combination of the settings along x


def lines_data(res: Results):
    """(colour, panel, across, panels, past): each panel a (value, metric table, std table
    or None) with one row per combination (best first) and one column per line, best panel
    first; past counts the points left out past the threshold. None when the CSV has fewer
    than two settings varying or nothing passes the threshold."""
    roles = line_roles(res)
    kept = res.points[res.passes(res.points[res.metric])].copy()
    if roles is None or kept.empty:
        return None
    colour, panel, across = roles
    kept[SETTING] = trial_labels(kept, across, align=True, unique=False)
    groups = list(kept.groupby(panel, observed=True)) if panel else [(None, kept)]
    panels = []
    for value, sub in style.best_groups(res, groups):
        table = _pivot(sub, res.metric, colour)
        # Best combination first, so the lines fall from left to right.
        means = table.mean(axis=1).rename("mean").to_frame()
        order = best_first(means.assign(name=means.index.astype(str)), "mean",
                           res.higher_is_better, then=["name"]).index
        spread = _pivot(sub, STD, colour).loc[order] if res.repeats else None
        panels.append((value, table.loc[order], spread))
    return colour, panel, across, panels, len(res.points) - len(kept)


def _pivot(sub: pd.DataFrame, column: str, colour: str) -> pd.DataFrame:
    """`column` of each combination (rows) and value of the colour setting (columns)."""
    return sub.groupby([SETTING, colour], observed=True)[column].mean().unstack(colour)


def plot_lines(res: Results, out: Path, fmt: str) -> list[style.Chart]:
    data = lines_data(res)
    if data is None:
        return []
    colour, panel, across, panels, past = data
    n_panels = len(panels)
    panels = panels[:style.LINES_PANELS]
    widest = max(min(len(table), style.LINES_TOP) for _, table, _ in panels)
    panel_height = min(4.6, (style.MAX_INCHES - 1.2) / len(panels))
    fig = Figure(figsize=(min(max(8.0, 0.3 * widest + 2.5), style.MAX_INCHES),
                          panel_height * len(panels) + 1.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(panels), 1, sharey=True))
    colours = axis_colours(colour, res.points[colour].cat.categories)
    texts = display_labels(res.points[colour].cat.categories)
    notes = []
    for ax, (value, table, spread) in zip(axes, panels):
        if len(table) > style.LINES_TOP:
            notes.append(f"{style.name(panel) + ' ' + str(value) + ': ' if panel else ''}"
                         f"best {style.LINES_TOP} of {len(table)} combinations")
            table = table.head(style.LINES_TOP)
        x = np.arange(len(table))
        for line in table.columns:
            means = table[line].to_numpy(dtype=float)
            ax.plot(x, means, marker="o", markersize=4, linewidth=1.6,
                    color=colours.palette[line], label=f"{style.name(colour)} {texts[line]}")
            if spread is not None:  # +-1 std of each point's repeats
                stds = spread.loc[table.index, line].to_numpy(dtype=float)
                ax.fill_between(x, means - stds, means + stds, color=colours.palette[line],
                                alpha=0.18, linewidth=0)
        # Upright, equally padded labels read as the columns of a table.
        ax.set_xticks(x, table.index, rotation=90, fontfamily="monospace", fontsize=8)
        ax.set_xlim(-0.5, len(x) - 0.5)
        ax.yaxis.set_major_formatter(res.axis_formatter())
        ax.set_ylabel(res.metric_label)
        ax.grid(True)
        if panel:
            ax.set_title(f"{style.name(panel)} {value}", loc="left")
        style.threshold_line(ax, res)
    handles = [] if colours.scale is not None else axes[0].get_legend_handles_labels()[0]
    if res.repeats:
        handles.append(Patch(color="grey", alpha=0.3, label=f"±1 std ({res.n_text()})"))
    if handles:
        axes[0].legend(handles=handles, frameon=False,
                       loc="lower left" if res.higher_is_better else "upper left")
    colours.colorbar(fig, axes.tolist(), shrink=0.6, aspect=30)
    if n_panels > len(panels):
        notes.append(f"the best {len(panels)} of {n_panels} values of {style.name(panel)}")
    if notes:
        fig.supxlabel("shown: " + "; ".join(notes), fontsize=9, color=style.NOTE_COLOUR)
    left_out = (f"\n{past} {res.unit}s past the threshold left out"
                if res.threshold is not None else "")
    style.title(fig, res, f"{res.metric_label} by {' · '.join(map(style.name, across))}, "
                          f"one line per {style.name(colour)}{left_out}")
    caption = (f"Each line is one {style.name(colour)}; along the x axis every combination of "
               f"{', '.join(map(style.name, across))}, best first" +
               (f"; trials past the threshold ({res.format(res.threshold)}) are left out, so "
                "lines break where a setting failed." if res.threshold is not None else "."))
    if panel:
        caption += (f" One panel per {style.name(panel)}, the setting that matters most, so "
                    "that each panel's lines share a level.")
    if res.continuous:
        caption += (f" Each point averages over the continuous "
                    f"{' and '.join(map(style.name, res.continuous))} (the slice chart "
                    "shows them on their own axes).")
    if res.repeats:
        caption += (" Points are grid points' means over their repeats "
                    f"({res.n_text()}); shaded bands ±1 standard deviation.")
    if notes:
        caption += f" Shown: {'; '.join(notes)}."
    return [style.Chart(style.save(fig, out, f"lines_by_{colour}", fmt), caption, fig)]
