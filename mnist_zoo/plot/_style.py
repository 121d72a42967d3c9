"""The look every chart shares: sizes, colours, labels, saving, and the heatmap panel."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from mnist_zoo import settings
from mnist_zoo.order import tie_key

FORMATS = ("png", "svg")
MISSING = "none"  # label of an empty setting: one that does not apply (SGD's for Adam)
DPI = 110
# Values such as "0.001" or "64" need their setting's name to be read; "relu" does not:
# the settings table's short labels (mnist_zoo.settings).
SHORT_NAMES = settings.SHORT_NAMES
# Large searches (thousands of trials) still get charts a person can read, in seconds:
RANKING_TOP = 100  # bars in the ranking; the 81-trial lab grid still shows whole
LINES_TOP = 60  # combinations along the x axis of each line-chart panel
LINES_PANELS = 8  # line-chart panels, the best first
MAX_PANELS = 12  # heatmap panels in one figure (readable, and quick to draw); settings
# beyond them are averaged over
# No chart over about 2,000 px on a side (MAX_INCHES at DPI), nor more annotated heatmap
# cells than a reader can take in (the others keep their colour, without a number).
MAX_INCHES = 18.0
MAX_CELL_TEXTS = 400
EXCLUDED_ROWS = 200  # failed or diverged trials listed in report.html
BELOW = "#d0d0d0"  # cells, bars and lines on the wrong side of --threshold
WHISKER = {"ecolor": "#333333", "elinewidth": 1, "capsize": 2}  # error bars of repeats
NOTE_COLOUR = "dimgrey"
STYLE = {
    "axes.spines.top": False, "axes.spines.right": False, "axes.titlesize": 11,
    "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9, "legend.fontsize": 9,
    "figure.titlesize": 13, "grid.alpha": 0.35, "grid.linestyle": ":",
    "savefig.facecolor": "white",
}


@dataclasses.dataclass
class Chart:
    path: Path
    caption: str
    # The drawn figure, for tests and callers that inspect what a chart shows.
    figure: Figure | None = dataclasses.field(default=None, repr=False, compare=False)


def name(axis: str) -> str:
    return axis.replace("_", " ")


def save(fig: Figure, out: Path, stem: str, fmt: str) -> Path:
    """The figure as out/stem.fmt, shrunk to MAX_INCHES on its longer side if a chart asked
    for more (each chart sizes itself under it; this is the backstop)."""
    width, height = fig.get_size_inches()
    if max(width, height) > MAX_INCHES:
        scale = MAX_INCHES / max(width, height)
        fig.set_size_inches(width * scale, height * scale)
    path = out / f"{stem}.{fmt}"
    fig.savefig(path, dpi=DPI)
    return path


def title(fig: Figure, res, text: str) -> None:
    """A suptitle wrapped to the figure: constrained layout makes room for it but never widens."""
    fontsize = 12
    chars = int(fig.get_figwidth() * 72 / (fontsize * 0.6))
    lines = [textwrap.fill(line, chars) for line in text.split("\n") + [res.subtitle()] if line]
    fig.suptitle("\n".join(lines), fontsize=fontsize)


def threshold_line(ax, res, vertical: bool = False) -> None:
    if res.threshold is None:
        return
    draw = ax.axvline if vertical else ax.axhline
    draw(res.threshold, color="#cf222e", linestyle="--", linewidth=1,
         label=f"threshold {res.format(res.threshold)}")


def metric_cmap(res):
    """Bright means good whatever the metric; results past the threshold are grey."""
    cmap_name = "viridis" if res.higher_is_better else "viridis_r"
    return colormaps[cmap_name].with_extremes(under=BELOW, over=BELOW, bad="white")


def metric_norm(res, values) -> Normalize:
    values = np.asarray(values, dtype=float)
    low, high = np.nanmin(values), np.nanmax(values)
    if res.threshold is not None:  # the colour scale starts where results start to count
        if res.higher_is_better:
            low = min(res.threshold, high)
        else:
            high = max(res.threshold, low)
    if high - low < 1e-9:
        low, high = low - 0.01, high + 0.01
    return Normalize(low, high)


def metric_colorbar(fig: Figure, axes, res, norm: Normalize):
    extend = "neither"
    if res.threshold is not None:
        extend = "min" if res.higher_is_better else "max"
    bar = fig.colorbar(ScalarMappable(norm, metric_cmap(res)), ax=axes, shrink=0.85, aspect=30,
                       extend=extend, format=res.axis_formatter())
    bar.set_label(res.metric_label)
    return bar


def text_colour(rgba) -> str:
    luminance = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]
    return "black" if luminance > 0.55 else "white"


def heatmap_note(fig: Figure, res, empty_cells: bool, shown: str = "",
                 pruned: bool = False) -> None:
    notes = (["–: no completed trial"] if empty_cells else []) + (
        ["hatched: pruned (@ the epoch reached)"] if pruned else []) + (
        [f"grey: past the threshold {res.format(res.threshold)}"] if res.threshold is not None
        else []) + ([f"shown: {shown}"] if shown else [])
    if notes:
        fig.supxlabel(" · ".join(notes), fontsize=9, color=NOTE_COLOUR)


def best_groups(res, groups: list) -> list:
    """(key, frame) groups ordered by their best result, best first."""
    best = [sub[res.metric].max() if res.higher_is_better else -sub[res.metric].min()
            for _, sub in groups]
    order = sorted(range(len(groups)), key=lambda i: (-tie_key(best[i]), str(groups[i][0])))
    return [groups[i] for i in order]
