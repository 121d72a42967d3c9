"""contour_<x>_x_<y>: the metric over two continuous settings, interpolated between the runs
(Optuna's plot_contour), drawn for the pairs that matter instead of a heatmap of categories
(a heatmap of 30 random draws is a 30 x 30 grid with one filled cell per row)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.tri import LinearTriInterpolator, Triangulation

from mnist_zoo.order import best_first
from mnist_zoo.plot import _style as style
from mnist_zoo.plot._data import Results
from mnist_zoo.plot._importance import hyperband_note
from mnist_zoo.plot._kinds import as_numbers

STEPS = 60  # interpolation grid per side: smooth at any size, quick to draw
LEVELS = 12
MAX_NODES = 400  # runs interpolated between one by one; more are averaged in cells first
CELLS = 16


def contour_data(res: Results, x_axis: str, y_axis: str):
    """(places, grid) or None: places holds one row per distinct (x, y) pair, the mean
    metric of the grid points there (over the other settings and repeats); grid is (xs, ys,
    zs), the metric interpolated linearly on a STEPS x STEPS grid (in log units along a log
    axis; between cell means past MAX_NODES places), NaN outside the runs' hull. None with
    fewer than 3 places, or all on a line."""
    values = pd.DataFrame({"x": as_numbers(res.points[x_axis]),
                           "y": as_numbers(res.points[y_axis]),
                           res.metric: res.points[res.metric].to_numpy(dtype=float)})
    places = values.dropna().groupby(["x", "y"], as_index=False)[res.metric].mean()
    if len(places) < 3:
        return None
    scaled = []
    for axis, column in ((x_axis, "x"), (y_axis, "y")):
        numbers = places[column].to_numpy(dtype=float)
        scaled.append(np.log10(numbers) if res.continuous.get(axis) else numbers)
    lines = [np.linspace(s.min(), s.max(), STEPS) for s in scaled]
    if any(line[0] == line[-1] for line in lines):
        return None
    # Each axis scaled to 0-1 so that distances weigh both settings alike.
    unit = [(s - line[0]) / (line[-1] - line[0]) for s, line in zip(scaled, lines)]
    nodes, heights = _nodes(np.column_stack(unit), places[res.metric].to_numpy(dtype=float))
    mesh = np.meshgrid(np.linspace(0, 1, STEPS), np.linspace(0, 1, STEPS))
    try:
        triangles = Triangulation(nodes[:, 0], nodes[:, 1])
    except (ValueError, RuntimeError):  # every place on one line: nothing to interpolate
        return None
    zs = np.ma.filled(LinearTriInterpolator(triangles, heights)(*mesh).astype(float), np.nan)
    xs, ys = [10 ** line if res.continuous.get(axis) else line
              for axis, line in zip((x_axis, y_axis), lines)]
    return places, (xs, ys, zs)


def _nodes(unit: np.ndarray, metric: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The places to interpolate between: the runs themselves, or past MAX_NODES runs the
    mean place and metric of each of CELLS x CELLS cells (thousands of noisy runs would
    give a noisy surface, and a slow one)."""
    if len(metric) <= MAX_NODES:
        return unit, metric
    cells = np.minimum((unit * CELLS).astype(int), CELLS - 1)
    key = cells[:, 0] * CELLS + cells[:, 1]
    frame = pd.DataFrame({"u": unit[:, 0], "v": unit[:, 1], "m": metric, "key": key})
    means = frame.groupby("key").mean()
    return means[["u", "v"]].to_numpy(), means["m"].to_numpy()


def plot_contour(res: Results, out: Path, fmt: str, x_axis: str, y_axis: str,
                 about: str = "") -> list[style.Chart]:
    data = contour_data(res, x_axis, y_axis)
    if data is None:
        return []
    places, (xs, ys, zs) = data
    norm = style.metric_norm(res, places[res.metric])
    cmap = style.metric_cmap(res)
    fig = Figure(figsize=(7.6, 5.8), layout="constrained")
    ax = fig.subplots()
    levels = np.linspace(norm.vmin, norm.vmax, LEVELS + 1)
    ax.contourf(xs, ys, np.clip(zs, norm.vmin, norm.vmax), levels=levels, cmap=cmap, norm=norm,
                alpha=0.9)
    many = len(places) > MAX_NODES
    ax.scatter(places["x"], places["y"], c=places[res.metric], cmap=cmap, norm=norm,
               s=6 if many else 26, edgecolors="none" if many else "black", linewidths=0.6,
               zorder=3, label="runs")
    best = best_first(places, res.metric, res.higher_is_better).iloc[0]
    ax.scatter([best["x"]], [best["y"]], marker="*", s=260, color="#cf222e",
               edgecolors="black", linewidths=0.8, zorder=4,
               label=f"best: {res.format(best[res.metric])}")
    for axis, scale, label in ((x_axis, ax.set_xscale, ax.set_xlabel),
                               (y_axis, ax.set_yscale, ax.set_ylabel)):
        if res.continuous.get(axis):
            scale("log")
        label(style.name(axis) + (" (log scale)" if res.continuous.get(axis) else ""))
    for axis, line, limits in ((x_axis, xs, ax.set_xlim), (y_axis, ys, ax.set_ylim)):
        limits(*_padded(line[0], line[-1], res.continuous.get(axis)))  # edge runs whole
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncols=2, frameon=False)
    style.metric_colorbar(fig, ax, res, norm)
    style.title(fig, res, f"{res.metric_label}: {style.name(x_axis)} x {style.name(y_axis)}")
    others = [style.name(a) for a in res.axes if a not in (x_axis, y_axis)]
    caption = (f"{res.metric_label} over {style.name(x_axis)} and {style.name(y_axis)}: each "
               "dot is a run (a grid point's mean with repeats), the colour between them "
               "interpolated linearly" + (" in log units along a log axis" if any(
                   res.continuous.get(a) for a in (x_axis, y_axis)) else "")
               + "; white outside the runs; brighter is better, the star the best.")
    if len(places) > MAX_NODES:
        caption += (f" With {len(places):,} runs the colour is interpolated between the mean "
                    f"of each of {CELLS} x {CELLS} cells, not between single noisy runs.")
    if others:
        caption += f" Runs at the same place average over {', '.join(others)}."
    if res.budget:
        caption += hyperband_note(res)
    caption = f"{about} {caption}" if about else caption
    stem = f"contour_{x_axis}_x_{y_axis}"
    return [style.Chart(style.save(fig, out, stem, fmt), caption, fig)]


def _padded(low: float, high: float, log: bool) -> tuple[float, float]:
    """low..high widened by 4 % on each side (of the log span on a log axis)."""
    if log:
        pad = (np.log10(high) - np.log10(low)) * 0.04
        return low / 10 ** pad, high * 10 ** pad
    pad = (high - low) * 0.04
    return low - pad, high + pad
