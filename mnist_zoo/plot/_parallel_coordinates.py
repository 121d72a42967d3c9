"""parallel_coordinates: every run as one line across an axis per varying setting and one
for the metric, coloured by the metric, the best drawn last (on top): the static form of
TensorBoard's HParams, Optuna's and W&B's parallel-coordinates view."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, MaxNLocator

from mnist_zoo.order import best_first
from mnist_zoo.plot import _style as style
from mnist_zoo.plot._axes import display_labels, short_number
from mnist_zoo.plot._data import Results
from mnist_zoo.plot._kinds import as_numbers

MAX_LABELS = 12  # value labels on one setting's axis; more are thinned to every k-th


def parallel_data(res: Results) -> pd.DataFrame:
    """One row per completed run, worst first (so the best is drawn on top): a column per
    setting, least important first, then the metric, each as a height from 0 to 1 (a
    setting's values evenly spaced in their order, a continuous one's by value, log where
    log-spaced; the metric from its lowest to its highest value)."""
    effects = res.effects()
    settings = list(reversed(effects))
    runs = best_first(res.trials, res.metric, res.higher_is_better).iloc[::-1]
    heights = pd.DataFrame(index=runs.index)
    for axis in settings:
        if axis in res.continuous:  # by value on a number line (log where log-spaced)
            heights[axis] = _scaled(res, axis, as_numbers(runs[axis]))
            continue
        codes = runs[axis].cat.codes.to_numpy(dtype=float)
        heights[axis] = codes / max(len(runs[axis].cat.categories) - 1, 1)
    values = runs[res.metric].to_numpy(dtype=float)
    low, high = values.min(), values.max()
    heights[res.metric] = (values - low) / (high - low) if high > low else 0.5
    return heights


def _scaled(res: Results, axis: str, values: np.ndarray) -> np.ndarray:
    """A continuous setting's values as heights 0-1 from its lowest to its highest run."""
    numbers = as_numbers(res.trials[axis])
    if res.continuous[axis]:
        values, numbers = np.log10(values), np.log10(numbers)
    low, high = np.nanmin(numbers), np.nanmax(numbers)
    return (values - low) / (high - low) if high > low else np.full(len(values), 0.5)


def _number_line(ax, res: Results, axis: str, position: float) -> None:
    """Round numbers along a continuous setting's axis (powers of ten on a log one)."""
    numbers = as_numbers(res.trials[axis])
    low, high = np.nanmin(numbers), np.nanmax(numbers)
    locator = (LogLocator(subs=(1.0, 3.0), numticks=12) if res.continuous[axis]
               else MaxNLocator(nbins=6))
    ticks = [t for t in locator.tick_values(low, high) if low <= t <= high] or [low, high]
    for tick, height in zip(ticks, _scaled(res, axis, np.array(ticks, dtype=float))):
        ax.text(position - 0.03, height, short_number(tick), ha="right", va="center",
                fontsize=8, zorder=4,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.7, "pad": 0.5})


def plot_parallel_coordinates(res: Results, out: Path, fmt: str) -> list[style.Chart]:
    if len(res.axes) < 2:
        return []
    heights = parallel_data(res)
    settings = list(heights.columns[:-1])
    n_runs, n_axes = heights.shape
    values = res.trials.loc[heights.index, res.metric].to_numpy(dtype=float)
    norm = style.metric_norm(res, values)
    x = np.arange(n_axes, dtype=float)
    segments = np.stack([np.broadcast_to(x, heights.shape), heights.to_numpy()], axis=-1)
    fig = Figure(figsize=(max(7.0, 1.7 * n_axes + 2.0), 5.6), layout="constrained")
    ax = fig.subplots()
    # Thousands of runs stay readable as a density; a few stay solid.
    alpha = float(np.clip(8 / np.sqrt(n_runs), 0.15, 0.9))
    lines = LineCollection(segments, array=values, cmap=style.metric_cmap(res), norm=norm,
                           linewidths=1.4 if n_runs < 200 else 0.7, alpha=alpha)
    ax.add_collection(lines)
    for position, axis in enumerate(settings):
        ax.axvline(position, color="#555555", linewidth=1, zorder=3)
        if axis in res.continuous:
            _number_line(ax, res, axis, position)
            continue
        labels = list(res.trials[axis].cat.categories)
        texts = display_labels(labels)
        step = int(np.ceil(len(labels) / MAX_LABELS))
        for code, label in list(enumerate(labels))[::step]:
            ax.text(position - 0.03, code / max(len(labels) - 1, 1), texts[label], ha="right",
                    va="center", fontsize=8, zorder=4,
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.7, "pad": 0.5})
    metric_at = n_axes - 1
    ax.axvline(metric_at, color="#555555", linewidth=1, zorder=3)
    low, high = values.min(), values.max()
    ticks = [t for t in MaxNLocator(nbins=6).tick_values(low, high) if low <= t <= high]
    for value in ticks if high > low else [low]:
        height = (value - low) / (high - low) if high > low else 0.5
        ax.text(metric_at + 0.03, height, res.axis_formatter()(value, None), ha="left",
                va="center", fontsize=8)
    ax.set_xlim(-0.45, metric_at + 0.35)
    ax.set_ylim(-0.05, 1.05)
    ax.set_yticks([])
    ax.spines[["left", "bottom"]].set_visible(False)
    ax.set_xticks(x, [style.name(axis) for axis in settings] + [res.metric_label])
    ax.tick_params(axis="x", length=0)
    bar = fig.colorbar(ScalarMappable(norm, style.metric_cmap(res)), ax=ax, shrink=0.85,
                       aspect=30, format=res.axis_formatter(),
                       extend="neither" if res.threshold is None else
                       ("min" if res.higher_is_better else "max"))
    bar.set_label(res.metric_label)
    runs = "run" if res.repeats else "completed trial"
    style.title(fig, res, f"Every {runs} across its settings and {res.metric_label} "
                          f"({n_runs:,} lines)")
    caption = (f"Parallel coordinates: one line per {runs} ({n_runs:,}), across an axis per "
               f"varying setting (least important on the left, the one that matters most "
               f"beside the metric) and its {res.metric_label}; coloured by "
               f"{res.metric_label}, brighter is better, the best drawn on top.")
    if res.repeats:
        caption += " Repeats are separate lines, not means."
    if res.threshold is not None:
        caption += f" Grey: past the threshold {res.format(res.threshold)}."
    return [style.Chart(style.save(fig, out, "parallel_coordinates", fmt), caption, fig)]
