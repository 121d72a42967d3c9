"""what_matters: each setting's spread of the metric per value, the settings whose means lie
furthest apart first."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mnist_zoo.plot import _style as style
from mnist_zoo.plot._axes import display_labels
from mnist_zoo.plot._data import Results
from mnist_zoo.plot._kinds import BINS


def plot_what_matters(res: Results, out: Path, fmt: str) -> list[style.Chart]:
    """Each setting's spread of the metric per value (per bin of a continuous setting); the
    widest gap between means matters most."""
    continuous = list(res.continuous)
    res = res.binned()
    effects = res.effects()
    if not effects:
        return []
    ncols = 2 if len(effects) == 4 else min(len(effects), 3)
    nrows = math.ceil(len(effects) / ncols)
    widest = max(len(res.points[a].cat.categories) for a in effects)
    fig = Figure(figsize=(min(ncols * max(3.4, 0.62 * widest + 1.4), style.MAX_INCHES),
                          min(nrows * 3.5 + 1.0, style.MAX_INCHES)), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    for ax in axes.ravel()[len(effects):]:
        ax.set_visible(False)
    rng = np.random.default_rng(0)  # fixed jitter: the same CSV draws the same chart
    for ax, (axis, spread) in zip(axes.ravel(), effects.items()):
        groups = [(str(value), sub[res.metric].to_numpy(dtype=float))
                  for value, sub in res.points.groupby(axis, observed=True)]
        positions = np.arange(len(groups))
        ax.boxplot([values for _, values in groups], positions=positions, widths=0.55,
                   showfliers=False, patch_artist=True,
                   boxprops={"facecolor": "#dbe6f4", "edgecolor": "#4c72b0"},
                   medianprops={"color": "#4c72b0"}, whiskerprops={"color": "#4c72b0"},
                   capprops={"color": "#4c72b0"})
        for position, (_, values) in zip(positions, groups):
            jitter = rng.uniform(-0.16, 0.16, len(values))
            ok = res.passes(pd.Series(values)).to_numpy()
            ax.scatter(position + jitter, values, s=12, alpha=0.7, zorder=3,
                       c=np.where(ok, "#1f4e79", "#b0b0b0"), linewidths=0)
        ax.scatter(positions, [values.mean() for _, values in groups], marker="D", s=36,
                   color="#cf222e", zorder=4, label="mean")
        texts = display_labels(res.points[axis].cat.categories)
        labels = [texts[label] for label, _ in groups]
        long = sum(map(len, labels)) > 28
        ax.set_xticks(positions, labels, rotation=30 if long else 0,
                      ha="right" if long else "center")
        ax.set_title(f"{style.name(axis)}: means {res.format_difference(spread)} apart")
        ax.yaxis.set_major_formatter(res.axis_formatter())
        ax.grid(axis="y")
        style.threshold_line(ax, res)
    for ax in axes[:, 0]:
        ax.set_ylabel(res.metric_label)
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(handles), frameon=False)
    style.title(fig, res, f"What matters for {res.metric_label}: settings ordered by effect")
    every = (f"every grid point's mean over its repeats ({res.n_text()})" if res.repeats
             else "every trial")
    caption = (f"For each setting, the spread of {every} (dots, boxes) and the mean (red) "
               "per value; panels run from the setting whose means lie furthest apart.")
    if continuous:
        caption += (f" {' and '.join(map(style.name, continuous)).capitalize()} "
                    f"{'is' if len(continuous) == 1 else 'are'} continuous: a box per bin, "
                    f"{BINS} quantile bins with about as many {res.unit}s in each (log-spaced "
                    "draws give log bins), instead of a box per value.")
    return [style.Chart(style.save(fig, out, "what_matters", fmt), caption, fig)]
