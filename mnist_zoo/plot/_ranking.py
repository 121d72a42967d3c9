"""ranking: the best trials (or grid points) as horizontal bars, best on top."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from mnist_zoo.plot import _style as style
from mnist_zoo.plot._axes import axis_colours, trial_labels
from mnist_zoo.plot._data import N, STD, Results
from mnist_zoo.plot._importance import hyperband_note
from mnist_zoo.plot._pruned import EPOCHS_RUN, PRUNED_LOOK, merged_labels, pruned_points

# Bars whose spread is under this share of the longest would look equal on an axis from 0.
CLOSE_BARS = 0.25


def ranking_data(res: Results) -> tuple[pd.DataFrame, str | None, float]:
    """The bars (the best RANKING_TOP, best first), the setting that colours them (the one
    whose values differ most on average) and where the value axis starts: 0, or near the
    data when the bars are close."""
    ranked = res.ranked_points().head(style.RANKING_TOP)
    colour_axis = next(iter(res.effects()), None)
    values = ranked[res.metric].to_numpy(dtype=float)
    stds = np.nan_to_num(ranked[STD].to_numpy(dtype=float)) if res.repeats else 0
    low, high = np.min(values - stds), np.max(values + stds)
    start = 0.0
    if low > 0 and high - low < CLOSE_BARS * high:
        below = low - 0.3 * max(high - low, abs(high) * 1e-3)
        ticks = MaxNLocator(nbins=6).tick_values(below, high)
        start = float(max(max([t for t in ticks if t <= below], default=below), 0.0))
    return ranked, colour_axis, start


def plot_ranking(res: Results, out: Path, fmt: str) -> list[style.Chart]:
    """The best RANKING_TOP trials as horizontal bars, coloured by the setting that matters
    most; a note counts the trials left out. With repeats one bar per grid point at its
    mean, its whisker +-1 standard deviation. Pruned points follow as greyed bars, not
    ranked with the completed ones (their values come from an earlier epoch)."""
    total = len(res.points)
    ranked, colour_axis, start = ranking_data(res)
    every_pruned, label_axes = pruned_points(res)
    pruned = every_pruned.head(max(style.RANKING_TOP - len(ranked), 0))
    n, rows = len(ranked), len(ranked) + len(pruned)
    values = ranked[res.metric].to_numpy(dtype=float)
    colours = None
    if colour_axis:  # colours of every value, so the legend is the same whatever is shown
        colours = axis_colours(colour_axis, res.points[colour_axis].cat.categories)
        bar_colours = [colours.palette[v] for v in ranked[colour_axis]]
    else:
        bar_colours = ["#4c72b0"] * n
    passing = res.passes(ranked[res.metric]).to_numpy()
    bar_colours = [c if ok else style.BELOW for c, ok in zip(bar_colours, passing)]

    bar_height = min(0.26, (style.MAX_INCHES - 1.9) / max(rows, 1))  # 100 bars in MAX_INCHES
    label_size = 8.5 if bar_height > 0.17 else 7
    fig = Figure(figsize=(10, 1.9 + bar_height * rows), layout="constrained")
    ax = fig.subplots()
    positions = np.arange(n)
    if res.repeats:
        stds = ranked[STD].to_numpy(dtype=float)
        bars = ax.barh(positions, values, color=bar_colours, height=0.78,
                       xerr=np.nan_to_num(stds), error_kw=style.WHISKER)
        ax.bar_label(bars, _spread_labels(res, ranked), padding=3, fontsize=7.5)
        reach = np.nanmax(values + np.nan_to_num(stds))
    else:
        bars = ax.barh(positions, values, color=bar_colours, height=0.78)
        ax.bar_label(bars, [res.format(v) for v in values], padding=3, fontsize=7.5)
        reach = np.nanmax(values)
    if not res.higher_is_better and len(pruned):  # a pruned loss lies past the best ones
        reach = np.nanmax([reach, *pruned[res.metric].astype(float)])
    shown = label_axes + ([res.budget] if res.budget else [])  # Hyperband: the epochs reached
    ax.set_yticks(np.arange(rows), trial_labels(_label_frame(res, ranked, pruned, shown), shown,
                                                align=True),
                  fontfamily="monospace", fontsize=label_size)
    ax.set_ylim(rows - 0.4, -0.6)  # best on top, no empty band
    room = 0.2 if res.repeats else 0.1  # for the value labels
    if start > 0:
        ax.set_xlim(start, reach + (reach - start) * 2 * room)
    else:
        top = max(1.0, reach) if res.is_accuracy else reach
        ax.set_xlim(0, top * (1 + room))
        if res.repeats and res.is_accuracy:  # the room for "mean ± std" is not a 120% tick
            ax.set_xticks(np.linspace(0, 1, 6))
    _draw_pruned(ax, res, pruned, n, start)
    ax.xaxis.set_major_formatter(res.axis_formatter())
    ax.grid(axis="x")
    ax.set_axisbelow(True)
    ax.set_xlabel(res.metric_label)
    style.threshold_line(ax, res, vertical=True)
    _legend(fig, ax, res, colours, colour_axis, bool(len(pruned)))
    what, zoom = _notes(fig, res, n, total, start, len(every_pruned) - len(pruned))
    style.title(fig, res, f"{what} ranked by {'mean ' if res.repeats else ''}{res.metric_label}")
    caption = _caption(res, what, colour_axis, colours, zoom, len(pruned))
    return [style.Chart(style.save(fig, out, "ranking", fmt), caption, fig)]


def _label_frame(res: Results, ranked: pd.DataFrame, pruned: pd.DataFrame,
                 axes: list[str]) -> pd.DataFrame:
    """The completed and the pruned bars' settings in one frame, so that their labels line
    up in the same columns (a setting only pruned rows vary reads its constant value on the
    completed bars)."""
    if pruned.empty:
        return ranked
    columns = {}
    for axis in axes:
        if axis in ranked:
            done = ranked[axis].astype(str)
            known = (ranked[axis].cat.categories
                     if isinstance(ranked[axis].dtype, pd.CategoricalDtype) else pd.unique(done))
        else:
            done = pd.Series(res.constant[axis], index=ranked.index)
            known = [res.constant[axis]]
        columns[axis] = pd.Categorical([*done, *pruned[axis]],
                                       categories=merged_labels(known, pruned[axis]))
    return pd.DataFrame(columns).assign(trial_id=[*ranked["trial_id"], *pruned["trial_id"]])


def _draw_pruned(ax, res: Results, pruned: pd.DataFrame, n: int, start: float) -> None:
    """The pruned points as greyed, hatched bars below a dotted line under the completed
    ones, each labelled with the epoch it stopped at and its value there. On an axis that
    starts above 0 a bar below the start ends there, so that its label stays in view."""
    if pruned.empty:
        return
    values = pruned[res.metric].to_numpy(dtype=float)
    widths = np.maximum(np.nan_to_num(values, nan=start), start)
    bars = ax.barh(np.arange(n, n + len(pruned)), widths, height=0.78, **PRUNED_LOOK)
    texts = [f"pruned @{int(epoch)}" if epoch == epoch else "pruned"
             for epoch in pruned[EPOCHS_RUN]]
    texts = [text + (f": {res.format(value)}" if np.isfinite(value) else "")
             for text, value in zip(texts, values)]
    ax.bar_label(bars, texts, padding=3, fontsize=7.5, color=style.NOTE_COLOUR)
    if n:
        ax.axhline(n - 0.5, color=style.NOTE_COLOUR, linewidth=0.6, linestyle=":")


def _legend(fig: Figure, ax, res: Results, colours, colour_axis: str | None,
            pruned: bool) -> None:
    """Colours, whiskers, threshold and pruned bars explained above the bars, where a
    reader of a tall chart starts."""
    handles = colours.legend_handles() if colours else []
    if colours and colours.scale is not None:
        colours.colorbar(fig, ax, shrink=0.5, aspect=30, pad=0.01)
    if res.repeats:
        handles.append(Line2D([], [], color=style.WHISKER["ecolor"], marker="|", markersize=9,
                              label=f"bar: mean, whisker: ±1 std ({res.n_text()})"))
    if res.threshold is not None:
        handles += [Patch(color=style.BELOW, label="past the threshold"),
                    Line2D([], [], color="#cf222e", linestyle="--",
                           label=f"threshold {res.format(res.threshold)}")]
    if pruned:
        handles.append(Patch(**PRUNED_LOOK, label="pruned: its value when it stopped"))
    if handles:
        legend_title = (f"colour: {style.name(colour_axis)}"
                        if colours and colours.scale is None else None)
        ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.0),
                  ncols=min(len(handles), 4 if res.repeats else 7), frameon=False,
                  title=legend_title, alignment="left")


def _notes(fig: Figure, res: Results, n: int, total: int, start: float,
           pruned_left_out: int) -> tuple[str, str]:
    """(what the chart shows, the zoom note): the trials left out and a zoomed axis are said
    under the chart."""
    units = "grid points" if res.repeats else "completed trials"
    notes = []
    if n < total:
        what = f"The {n} best of {total:,} {units}"
        notes.append(f"{total - n:,} more {units.split()[-1]} not shown; the results CSV "
                     "lists them all")
    else:
        what = f"All {n} {units}"
    if pruned_left_out:
        notes.append(f"{pruned_left_out:,} pruned {units.split()[-1]} not shown")
    zoom = (f"the axis starts at {res.format(start)}, not at 0, so that close results look "
            "apart") if start > 0 else ""
    if zoom:
        notes.append(zoom)
    if notes:
        fig.supxlabel("; ".join(notes), fontsize=9, color=style.NOTE_COLOUR)
    return what, zoom


def _caption(res: Results, what: str, colour_axis: str | None, colours, zoom: str,
             pruned: int) -> str:
    caption = f"{what}, best on top"
    if pruned:
        caption += (f"; below them, greyed and hatched, the {pruned} {res.unit}s the search "
                    "pruned, at their value when they stopped (an earlier epoch's, so not "
                    "ranked with the completed ones)")
    if res.repeats:
        caption += (f"; each bar is a grid point's mean {res.metric_label} over its completed "
                    f"repeats ({res.n_text()}), its whisker ±1 standard deviation")
    if colour_axis:
        scale = " (a continuous scale: it has many values)" if colours.scale is not None else ""
        caption += (f"; colours show {style.name(colour_axis)}{scale}, whose values differ most "
                    "on average")
    if zoom:
        caption += f"; {zoom}"
    if res.budget:
        caption += "; each label ends with the epochs its configuration reached." + \
            hyperband_note(res)[:-1]
    return caption + "."


def _spread_labels(res: Results, points: pd.DataFrame) -> list[str]:
    """'87.4% ± 0.3%' per grid point, with its n where fewer repeats completed than elsewhere."""
    most = points[N].max()
    return [res.format_spread(mean, std) + (f" (n={n})" if n < most else "")
            for mean, std, n in zip(points[res.metric], points[STD], points[N])]
