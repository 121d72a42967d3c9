"""slice: the metric against each continuous setting on its own number line, one dot per run
(Optuna's plot_slice): log axes where the setting is log-spaced, each dot coloured by the
most important of the other settings, the best run marked."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from mnist_zoo.order import best_first
from mnist_zoo.plot import _style as style
from mnist_zoo.plot._axes import axis_colours
from mnist_zoo.plot._data import Results
from mnist_zoo.plot._importance import hyperband_note
from mnist_zoo.plot._kinds import as_numbers
from mnist_zoo.plot._read import as_labels

X = "x"


def slice_data(res: Results, importance: dict[str, float]) -> list[tuple[str, str | None,
                                                                          pd.DataFrame]]:
    """(setting, colour setting, runs) for each continuous setting, the most important
    first: runs holds every completed run's value of the setting (X), its metric and its
    colour setting's label; the colour setting is the most important other setting (the
    epochs reached, for Hyperband), None when nothing else varies."""
    order = [axis for axis in importance if axis in res.continuous]
    panels = []
    for axis in order:
        if res.budget:
            colour = res.budget
        else:
            colour = next((other for other in importance if other != axis), None)
        runs = pd.DataFrame({X: as_numbers(res.trials[axis]),
                             res.metric: res.trials[res.metric].to_numpy(dtype=float)},
                            index=res.trials.index)
        if colour:
            runs[colour] = (as_labels(res.trials[colour]) if colour == res.budget
                            else res.trials[colour])
        panels.append((axis, colour, runs[np.isfinite(runs[X])]))
    return panels


def plot_slice(res: Results, out: Path, fmt: str,
               importance: dict[str, float]) -> list[style.Chart]:
    panels = slice_data(res, importance)
    if not panels:
        return []
    ncols = min(len(panels), 3)
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(ncols * 4.6 + 1.4, nrows * 3.8 + 1.2), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    best = best_first(res.trials, res.metric, res.higher_is_better).index[0]
    colourings = {}
    for ax, (axis, colour, runs) in zip(axes.ravel(), panels):
        colours = colourings.setdefault(
            colour, axis_colours(colour, runs[colour].cat.categories,
                                 continuous=colour in res.continuous) if colour else None)
        _draw_panel(ax, res, axis, runs, colours, best)
    for ax in axes[:, 0]:
        ax.set_ylabel(res.metric_label)
    handles = [Line2D([], [], marker="*", color="#cf222e", markeredgecolor="black",
                      linestyle="", markersize=12,
                      label=f"best: {res.format(res.trials.loc[best, res.metric])}")]
    for colour, colours in colourings.items():
        if colours is None:
            continue
        if colours.scale is not None:
            colours.colorbar(fig, axes.ravel()[:len(panels)].tolist(), shrink=0.8, aspect=30)
            if style.MISSING in colours.palette:  # e.g. momentum for Adam: off the scale
                handles.append(Line2D([], [], marker="o", linestyle="",
                                      color=colours.palette[style.MISSING],
                                      label=f"{style.name(colour)}: does not apply"))
        else:
            handles += [Line2D([], [], marker="o", linestyle="", color=p.get_facecolor(),
                               label=f"{style.name(colour)} {p.get_label()}")
                        for p in colours.legend_handles()]
    fig.legend(handles=handles[:12], loc="outside lower center", ncols=min(len(handles), 6),
               frameon=False)
    style.title(fig, res, f"{res.metric_label} against each continuous setting")
    return [style.Chart(style.save(fig, out, "slice", fmt), _caption(res, panels), fig)]


def _draw_panel(ax, res: Results, axis: str, runs: pd.DataFrame, colours, best) -> None:
    colour = colours.axis if colours else None
    dots = ([colours.palette[label] for label in runs[colour]] if colours
            else ["#4c72b0"] * len(runs))
    ok = res.passes(runs[res.metric]).to_numpy()
    dots = [c if good else style.BELOW for c, good in zip(dots, ok)]
    size = 22 if len(runs) < 500 else 8
    ax.scatter(runs[X], runs[res.metric], c=dots, s=size, alpha=0.85, linewidths=0, zorder=3)
    if best in runs.index:
        ax.scatter([runs.loc[best, X]], [runs.loc[best, res.metric]], marker="*", s=220,
                   color="#cf222e", edgecolors="black", linewidths=0.8, zorder=4)
    if res.continuous[axis]:
        ax.set_xscale("log")
    ax.set_xlabel(style.name(axis) + (" (log scale)" if res.continuous[axis] else ""))
    ax.yaxis.set_major_formatter(res.axis_formatter())
    ax.grid(True)
    style.threshold_line(ax, res)


def _caption(res: Results, panels: list) -> str:
    settings = ", ".join(style.name(axis) + (" (log axis)" if res.continuous[axis] else "")
                         for axis, _, _ in panels)
    colours = {colour for _, colour, _ in panels if colour}
    caption = (f"{res.metric_label} of every completed run (a dot) against each continuous "
               f"setting, the most important first: {settings}. The red star is the best run.")
    if res.budget:
        caption += (" Dots are coloured by the epochs each configuration reached."
                    + hyperband_note(res))
    elif colours:
        caption += (" Dots are coloured by the most important other setting ("
                    + ", ".join(sorted(map(style.name, colours))) + "), so a band of one "
                    "colour shows where that setting decides.")
    if res.repeats:
        caption += " Repeats are separate dots."
    if res.threshold is not None:
        caption += f" Grey: past the threshold {res.format(res.threshold)}."
    return caption
