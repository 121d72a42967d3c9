"""Which setting goes where, by rules on the data rather than by the settings' names, and
how a setting's values read: numbers at 3 significant digits, a continuous colour scale
(log where the values are log-spaced) once there are more values than colours."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, LogNorm, Normalize
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, NullFormatter

from mnist_zoo.plot import _style as style
from mnist_zoo.plot._style import MISSING, SHORT_NAMES

CYCLE = colormaps["tab10"].colors
# More values than the colour cycle has colours: one colour would mean several values.
MANY_VALUES = len(CYCLE)
# The continuous scale of a setting: plasma without its light yellow end, lost on white.
SETTING_CMAP = ListedColormap(colormaps["plasma"](np.linspace(0, 0.85, 256)), name="setting")


# --------------------------------------------------------------------------- values
def numeric_values(labels) -> np.ndarray | None:
    """The labels as numbers (MISSING left out), or None unless every one is a number."""
    present = [label for label in labels if label != MISSING]
    values = pd.to_numeric(pd.Series(present, dtype=object), errors="coerce")
    if not present or values.isna().any():
        return None
    return values.to_numpy(dtype=float)


def is_log_spaced(values: np.ndarray) -> bool:
    """Positive values whose ratios are more even than their differences (0.1, 0.01, 0.001;
    16, 32, 64), or two values a factor of 10 or more apart."""
    values = np.unique(values)
    if len(values) < 2 or values[0] <= 0:
        return False
    if len(values) == 2:
        return values[1] / values[0] >= 10
    logs, steps = np.diff(np.log(values)), np.diff(values)
    return logs.std() / logs.mean() < steps.std() / steps.mean()


def short_number(value: float) -> str:
    """64 as 64, 0.000749894 as 0.00075: 3 significant digits, never an exponent."""
    if float(value).is_integer():
        return str(int(value))
    return np.format_float_positional(float(f"{value:.3g}"), trim="-")


def display_labels(labels) -> dict:
    """label -> the text a chart shows: numbers at 3 significant digits, unless that would
    make two values read alike; other labels as they are."""
    labels = list(labels)
    values = numeric_values(labels)
    if values is None:
        return {label: str(label) for label in labels}
    numbers = iter(values)
    texts = {label: str(label) if label == MISSING else short_number(next(numbers))
             for label in labels}
    return texts if len(set(texts.values())) == len(texts) else {lab: str(lab) for lab in labels}


def value_text(axis: str, text: str) -> str:
    return f"{SHORT_NAMES[axis]} {text}" if axis in SHORT_NAMES else text


def trial_labels(trials: pd.DataFrame, axes: list[str], align: bool = False,
                 unique: bool = True) -> list[str]:
    """'relu · adam · lr 0.001 · bs 64'; with align, padded into columns for a monospace font.

    unique: tell trials with the same settings (several seeds) apart by their trial_id.
    """
    columns = {}
    for axis in axes:
        texts = display_labels(trials[axis].cat.categories if hasattr(trials[axis], "cat")
                               else pd.unique(trials[axis]))
        columns[axis] = [value_text(axis, texts[v]) for v in trials[axis]]
    parts = pd.DataFrame(columns, index=trials.index)
    if align:
        parts = parts.apply(lambda column: column.str.pad(column.str.len().max(), side="right"))
    separator = "  " if align else " · "
    if axes:
        labels = parts.iloc[:, 0].str.cat(parts.iloc[:, 1:], sep=separator).tolist()
    else:
        labels = ["all"] * len(trials)
    if unique and len(set(labels)) < len(labels):
        labels = [f"{label}{separator}#{trial}" for label, trial in zip(labels, trials["trial_id"])]
    return labels


# --------------------------------------------------------------------------- colours
@dataclasses.dataclass
class AxisColours:
    """A colour per value of a setting: the 10-colour cycle for few values, a continuous
    scale (with a colour bar instead of a legend) for a numeric setting with many."""

    axis: str
    palette: dict
    scale: ScalarMappable | None = None

    def legend_handles(self) -> list[Patch]:
        if self.scale is not None:
            return []
        texts = display_labels(self.palette)
        return [Patch(color=colour, label=texts[value]) for value, colour in self.palette.items()]

    def colorbar(self, fig, ax, **kwargs):
        """The scale's colour bar, labelled with the setting (None without a scale)."""
        if self.scale is None:
            return None
        bar = fig.colorbar(self.scale, ax=ax, **kwargs)
        bar.set_label(self.axis.replace("_", " ") +
                      (" (log scale)" if isinstance(self.scale.norm, LogNorm) else ""))
        bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: short_number(v)))
        bar.ax.yaxis.set_minor_formatter(NullFormatter())
        return bar


def axis_colours(axis: str, labels, continuous: bool = False) -> AxisColours:
    """A colour per value: a cycle of distinct colours for a few categories; a colour scale
    for many numeric values, or for a continuous setting (drawn from a range) however few
    of its draws a chart shows, whose values would otherwise read as categories."""
    labels = list(labels)
    values = numeric_values(labels)
    if values is None or (len(labels) <= MANY_VALUES and not continuous):
        return AxisColours(axis, {label: CYCLE[i % len(CYCLE)] for i, label in enumerate(labels)})
    norm_type = LogNorm if is_log_spaced(values) else Normalize
    scale = ScalarMappable(norm_type(values.min(), values.max()), SETTING_CMAP)
    numbers = iter(values)
    palette = {label: "#9a9a9a" if label == MISSING else scale.to_rgba(next(numbers))
               for label in labels}
    return AxisColours(axis, palette, scale)


# --------------------------------------------------------------------------- roles
def value_counts(res) -> dict[str, int]:
    return {axis: len(res.points[axis].cat.categories) for axis in res.axes}


def line_roles(res) -> tuple[str, str | None, list[str]] | None:
    """(colour, panel, across) of the line chart, or None with fewer than 2 settings.

    colour: the setting with the fewest values (fewest lines); on a tie the later in the
    grid's order (settings run from the model out to its training, so the lab's batch size).
    panel: only when the other settings make more than LINES_TOP combinations, the one that
    matters most, so that each panel's lines share a level. across: the rest, along x.
    Continuous settings take none of these places (a line per draw, or draws as categories
    along x, would hide the shape the slice chart shows): the lines average over them."""
    categorical = [axis for axis in res.axes if axis not in res.continuous]
    if len(categorical) < 2:
        return None
    counts = value_counts(res)
    colour = min(categorical, key=lambda axis: (counts[axis], -res.axes.index(axis)))
    others = [axis for axis in categorical if axis != colour]
    panel = None
    if len(others) > 1 and math.prod(counts[axis] for axis in others) > style.LINES_TOP:
        effects = res.effects()
        panel = max(others, key=lambda axis: effects[axis])
    return colour, panel, [axis for axis in others if axis != panel]


def pair_orientation(res, first: str, second: str) -> tuple[str, str]:
    """(rows, columns) of a heatmap: the setting with fewer values across, since cells are
    wider than tall ("87.4 ± 0.3"); on a tie the later in the grid's order across."""
    counts = value_counts(res)
    a, b = sorted((first, second), key=res.axes.index)
    return (b, a) if counts[a] < counts[b] else (a, b)


def facets(res, pair: tuple[str, str]) -> tuple[list[str], list[str]]:
    """(panel settings, pooled settings) of a heatmap of `pair`: one panel per combination of
    the other settings, those that matter most first, as long as they make at most
    MAX_PANELS panels; cells average over the settings left (pooled)."""
    counts, effects = value_counts(res), res.effects()
    others = [a for a in effects if a not in pair]  # effects: largest first, ties by name
    panels, pooled, n_panels = [], [], 1
    for axis in others:
        if n_panels * counts[axis] <= style.MAX_PANELS:
            panels.append(axis)
            n_panels *= counts[axis]
        else:
            pooled.append(axis)
    return panels, pooled
