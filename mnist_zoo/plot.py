"""Charts and an HTML report from a search results CSV.

    python -m mnist_zoo.plot results/experiment_results.csv --threshold 0.5

reads the CSV written by `python -m mnist_zoo.search` (or an old lab CSV with columns
Activation, Learning Rate, Optimizer, Batch Size, Validation Accuracy) and writes into
--out (default results/plots/), each chart only where the CSV has its settings varying:

  ranking                 every trial as a bar, best on top
  lines_by_batch_size     one line per batch size across the other settings,
                          leaving out trials worse than --threshold
  heatmap_learning_rate_x_batch_size
                          one panel per model / optimizer / activation
  heatmap_epochs_x_batch_size
                          the same when the number of epochs varies
  optimizer_x_activation  best and mean result of each pairing
  what_matters            spread of the metric for each value of each setting
  training_curves         loss and accuracy per epoch of the --top trials
  report.html             the ten best trials and all the charts

Only trials with status "completed" are charted; the report counts the others.

With repeats (a `repeat` column with several values, or equal settings run with several
seeds) the charts draw grid points: each the mean of its completed repeats, with +-1
standard deviation as error bars (ranking), bands (lines) and "87.4 ± 0.3" cells
(heatmaps); report.html then tests which of the best points are within noise of the best.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import math
import numbers
import re
import sys
import textwrap
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from mnist_zoo import grid
from mnist_zoo.cli import output_folder

# Settings a search can vary, in the order charts list them: the grid's own vocabulary.
AXES = grid.AXES
# Heatmap panels group by these first: they change results the most, and a reader
# looks for "which model" before "which dropout".
FACET_ORDER = ("model", "optimizer", "activation")
# Values such as "0.001" or "64" need their setting's name to be read; "relu" does not.
SHORT_NAMES = {"learning_rate": "lr", "batch_size": "bs", "epochs": "ep", "momentum": "mom",
               "dropout": "drop", "pooling": "pool", "augment": "aug", "lr_schedule": "sched"}
TABLE_COLUMNS = ("val_accuracy", "test_accuracy", "val_loss", "test_loss", "epochs_run",
                 "seconds", "params")
FORMATS = ("png", "svg")
MISSING = "none"  # label of an empty setting, e.g. momentum for adam
MAX_PANELS = 12  # more heatmap panels than this are split into one file per model
# Large searches (thousands of trials) still get charts a person can read, in seconds:
RANKING_TOP = 100  # bars in the ranking; the 81-trial lab grid still shows whole
LINES_TOP = 60  # combinations along the x axis of each line-chart panel
LINES_PANELS = 8  # line-chart panels (models), the best first
PANELS_PER_FILE = 36  # heatmap panels in one file, the best first
EXCLUDED_ROWS = 200  # failed or diverged trials listed in report.html
# Results.points beside the metric (the mean over a grid point's repeats): the standard
# deviation, the number of completed runs and, for the noise test, the runs' values.
STD, N, RUNS = "std", "n", "runs"
NOISE_TOP = 10  # best grid points tested against the best in report.html
NOISE_P = 0.05  # Welch's t-test: p at or above this is "within noise of the best"
DPI = 110
BELOW = "#d0d0d0"  # cells and bars on the wrong side of --threshold
WHISKER = {"ecolor": "#333333", "elinewidth": 1, "capsize": 2}  # error bars of repeats
STYLE = {
    "axes.spines.top": False, "axes.spines.right": False, "axes.titlesize": 11,
    "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9, "legend.fontsize": 9,
    "figure.titlesize": 13, "grid.alpha": 0.35, "grid.linestyle": ":",
    "savefig.facecolor": "white",
}


class PlotError(ValueError):
    """Raised when the results CSV cannot be charted (missing, empty, lacking the metric)."""


@dataclasses.dataclass
class Chart:
    path: Path
    caption: str
    # The drawn figure, for tests and callers that inspect what a chart shows.
    figure: Figure | None = dataclasses.field(default=None, repr=False, compare=False)


# --------------------------------------------------------------------------- reading
def normalise_column(name: str) -> str:
    """'Learning Rate' -> 'learning_rate', 'Validation Accuracy' -> 'val_accuracy'."""
    name = re.sub(r"[\s\-]+", "_", name.strip().lower())
    return re.sub(r"^validation_", "val_", name)


def read_results(csv_path) -> pd.DataFrame:
    """The CSV as a table with normalised column names, a trial_id and a status."""
    path = Path(csv_path)
    if path.is_dir():
        inside = path / "experiment_results.csv"
        hint = f"; did you mean {inside}?" if inside.is_file() else ""
        raise PlotError(f"{path} is a folder, not a results CSV file{hint}")
    if not path.is_file():
        raise PlotError(f"{path}: no such results file; run `python -m mnist_zoo.search` "
                        "first, or pass the CSV it wrote")
    try:
        table = pd.read_csv(path, dtype={"trial_id": str}, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise PlotError(f"{path} is empty: no header and no trials") from None
    except PermissionError:
        raise PlotError(f"{path} cannot be read (permission denied)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as err:
        raise PlotError(f"{path} is not a readable CSV file ({err})") from err
    # The header as written, for messages: normalised names and added columns are ours.
    table.attrs["file_columns"] = [str(column).strip() for column in table.columns]
    table.columns = [normalise_column(str(column)) for column in table.columns]
    if table.empty:
        raise PlotError(f"{path} has a header but no trials")
    if "trial_id" not in table:
        table.insert(0, "trial_id", [f"{i:04d}" for i in range(len(table))])
    if "status" not in table:  # the lab format listed finished runs only
        table["status"] = "completed"
    return table


@dataclasses.dataclass
class Results:
    """What the charts draw: completed trials with their settings as ordered labels."""

    csv_path: Path
    table: pd.DataFrame  # every row of the CSV
    trials: pd.DataFrame  # completed rows with a metric value
    metric: str
    axes: list[str]  # settings that vary among `trials`
    constant: dict[str, str]  # settings that do not: shown in titles instead
    threshold: float | None
    # What the charts draw: one row per grid point with repeats (see summarize_points),
    # else `trials` itself, so that a CSV without repeats charts exactly as before.
    points: pd.DataFrame | None = None
    repeats: bool = False

    def __post_init__(self):
        if self.points is None:
            self.points = self.trials

    @property
    def unit(self) -> str:
        return "grid point" if self.repeats else "trial"

    def n_text(self) -> str:
        """'n = 3' (completed repeats per grid point), or 'n = 2–3' where some failed."""
        low, high = int(self.points[N].min()), int(self.points[N].max())
        return f"n = {low}" if low == high else f"n = {low}–{high}"

    @property
    def higher_is_better(self) -> bool:
        return "loss" not in self.metric and self.metric != "seconds"

    @property
    def is_accuracy(self) -> bool:
        return "accuracy" in self.metric

    @property
    def metric_label(self) -> str:
        return self.metric.replace("val_", "validation ").replace("_", " ")

    def passes(self, values: pd.Series) -> pd.Series:
        """True where a value is on the good side of the threshold (all True without one)."""
        if self.threshold is None:
            return pd.Series(True, index=values.index)
        return values >= self.threshold if self.higher_is_better else values <= self.threshold

    def ranked(self) -> pd.DataFrame:
        """Completed trials (single runs), best first."""
        return self.trials.sort_values(self.metric, ascending=not self.higher_is_better,
                                       kind="stable")

    def ranked_points(self) -> pd.DataFrame:
        """What the charts draw (grid points by mean with repeats, else trials), best first."""
        return self.points.sort_values(self.metric, ascending=not self.higher_is_better,
                                       kind="stable")

    def format(self, value: float) -> str:
        if value is None or pd.isna(value):
            return "–"
        return f"{value:.1%}" if self.is_accuracy else f"{value:.4g}"

    def format_spread(self, mean: float, std: float) -> str:
        """'87.4% ± 0.3%': a grid point's mean and standard deviation (the mean alone for n=1)."""
        return self.format(mean) + ("" if pd.isna(std) else f" ± {self.format(std)}")

    def cell_text(self, value: float, std: float | None = None) -> str:
        """Short enough for a heatmap cell: 98.2 (percent) or 0.0734; with a standard
        deviation 98.2 ± 0.3."""
        text = f"{value * 100:.1f}" if self.is_accuracy else f"{value:.3g}"
        if std is None or pd.isna(std):
            return text
        return text + " ± " + (f"{std * 100:.1f}" if self.is_accuracy else f"{std:.2g}")

    def axis_formatter(self):
        if self.is_accuracy:  # 90% and 97.5%, not 90.0% and 97.5%
            return FuncFormatter(lambda v, _: f"{round(v * 100, 2):g}%")
        return FuncFormatter(lambda v, _: f"{v:g}")

    def effects(self) -> dict[str, float]:
        """How far apart the mean metric of each setting's values lie, largest first
        (over grid points' means with repeats, so a point counts once however often it ran)."""
        spreads = {}
        for axis in self.axes:
            means = self.points.groupby(axis, observed=True)[self.metric].mean()
            spreads[axis] = float(means.max() - means.min())
        return dict(sorted(spreads.items(), key=lambda item: -item[1]))

    def subtitle(self) -> str:
        fixed = ", ".join(f"{_name(axis)} {value}"
                          for axis, value in self.constant.items())
        return f"all trials: {fixed}" if fixed else ""


def load_results(csv_path, metric: str = "val_accuracy",
                 threshold: float | None = None) -> Results:
    table = read_results(csv_path)
    metric = normalise_column(metric)
    if metric not in table:
        found = table.attrs["file_columns"]
        metrics = [c for c in found if re.search(r"accuracy|loss", c, re.IGNORECASE)]
        hint = (f"; choose one of its metric columns with --metric: {', '.join(metrics)}"
                if metrics else "; it has no accuracy or loss column")
        raise PlotError(f"{csv_path} has no {metric!r} column (the metric to chart){hint} "
                        f"(found columns: {', '.join(found)})")
    table[metric] = pd.to_numeric(table[metric], errors="coerce")
    if "accuracy" in metric and table[metric].max() > 1:  # lab sheets kept percentages
        table[metric] = table[metric] / 100
    completed = table["status"].astype(str).str.strip().str.lower() == "completed"
    trials = table[completed & table[metric].notna()].copy()
    if trials.empty:
        raise PlotError(f"{csv_path}: no completed trial has a {metric} value "
                        f"(statuses: {table['status'].value_counts().to_dict()})")
    axes, constant = [], {}
    for axis in AXES:
        if axis in trials:
            trials[axis] = as_labels(trials[axis])
            values = trials[axis].unique()
            if len(values) > 1:
                axes.append(axis)
            else:
                constant[axis] = str(values[0])
            trials[axis] = trials[axis].cat.remove_unused_categories()
    repeats = has_repeats(trials, axes)
    points = summarize_points(trials, axes, metric) if repeats else None
    return Results(Path(csv_path), table, trials, metric, axes, constant, threshold,
                   points, repeats)


def has_repeats(trials: pd.DataFrame, axes: list[str]) -> bool:
    """Whether some grid point ran more than once: a `repeat` column with several values,
    or equal settings run with several seeds. Equal settings without a repeat or seed column
    to tell them apart stay separate trials, as before the search had repeats."""
    if grid.REPEAT_AXIS in trials and trials[grid.REPEAT_AXIS].nunique() > 1:
        return True
    if "seed" not in trials:
        return False
    if not axes:
        return trials["seed"].nunique() > 1
    return bool((trials.groupby(axes, observed=True)["seed"].nunique() > 1).any())


def summarize_points(trials: pd.DataFrame, axes: list[str], metric: str) -> pd.DataFrame:
    """One row per grid point (combination of the varying `axes`) from its completed runs:
    the metric's mean (in the metric's own column), STD (NaN for a single run), N, RUNS (the
    runs' values) and the trial_id of its first run. The one place where runs become points;
    the repeat and seed columns are never axes."""
    keys = list(axes) if axes else np.zeros(len(trials), dtype=int)
    grouped = trials.groupby(keys, observed=True, sort=True)
    points = grouped.agg(**{metric: (metric, "mean"), STD: (metric, "std"),
                            N: (metric, "count"), "trial_id": ("trial_id", "first")})
    points[RUNS] = grouped[metric].agg(lambda values: values.to_numpy(dtype=float))
    return points.reset_index(drop=not axes)


def format_value(value) -> str:
    """0.001 rather than 1e-03, 64 rather than 64.0, 'none' for an empty cell."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Number):
        if math.isnan(value):
            return MISSING
        if float(value).is_integer():
            return str(int(value))
        return np.format_float_positional(float(f"{value:.6g}"), trim="-")
    return str(value)


def as_labels(values: pd.Series) -> pd.Series:
    """A setting as an ordered categorical of readable labels: numbers sort as numbers."""
    present = pd.unique(values.dropna())
    numeric = pd.to_numeric(pd.Series(present), errors="coerce")
    if len(present) and numeric.notna().all():
        ordered = [present[i] for i in np.argsort(numeric.to_numpy(), kind="stable")]
    else:
        ordered = sorted(present, key=str)
    categories = list(dict.fromkeys(format_value(v) for v in ordered))
    if values.isna().any() and MISSING not in categories:
        categories.append(MISSING)
    labels = [format_value(v) for v in values]
    return pd.Series(pd.Categorical(labels, categories=categories, ordered=True),
                     index=values.index)


def trial_labels(trials: pd.DataFrame, axes: list[str], align: bool = False,
                 unique: bool = True) -> list[str]:
    """'relu · adam · lr 0.001 · bs 64'; with align, padded into columns for a monospace font.

    unique: tell trials with the same settings (several seeds) apart by their trial_id.
    """
    parts = pd.DataFrame({axis: [f"{SHORT_NAMES[axis]} {v}" if axis in SHORT_NAMES else str(v)
                                 for v in trials[axis]] for axis in axes}, index=trials.index)
    if align:
        parts = parts.apply(lambda column: column.str.pad(column.str.len().max(), side="right"))
    separator = "  " if align else " · "
    labels = parts.apply(separator.join, axis=1).tolist() if axes else ["all"] * len(trials)
    if unique and len(set(labels)) < len(labels):
        labels = [f"{label}{separator}#{trial}" for label, trial in zip(labels, trials["trial_id"])]
    return labels


# --------------------------------------------------------------------------- helpers
def _name(axis: str) -> str:
    return axis.replace("_", " ")


def _palette(values: list[str]) -> dict[str, tuple]:
    colours = colormaps["tab10"].colors
    return {value: colours[i % len(colours)] for i, value in enumerate(values)}


def _save(fig: Figure, out: Path, stem: str, fmt: str) -> Path:
    path = out / f"{stem}.{fmt}"
    fig.savefig(path, dpi=DPI)
    return path


def _title(fig: Figure, res: Results, title: str) -> None:
    """A suptitle wrapped to the figure: constrained layout makes room for it but never widens."""
    fontsize = 12
    chars = int(fig.get_figwidth() * 72 / (fontsize * 0.6))
    lines = [textwrap.fill(line, chars) for line in title.split("\n") + [res.subtitle()] if line]
    fig.suptitle("\n".join(lines), fontsize=fontsize)


def _threshold_line(ax, res: Results, vertical: bool = False) -> None:
    if res.threshold is None:
        return
    draw = ax.axvline if vertical else ax.axhline
    draw(res.threshold, color="#cf222e", linestyle="--", linewidth=1,
         label=f"threshold {res.format(res.threshold)}")


def _cmap(res: Results):
    """Bright means good whatever the metric; trials past the threshold are grey."""
    name = "viridis" if res.higher_is_better else "viridis_r"
    return colormaps[name].with_extremes(under=BELOW, over=BELOW, bad="white")


def _norm(res: Results, values) -> Normalize:
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


def _text_colour(rgba) -> str:
    luminance = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]
    return "black" if luminance > 0.55 else "white"


def _draw_heatmap(ax, res: Results, grid: pd.DataFrame, norm: Normalize,
                  spread: pd.DataFrame | None = None) -> bool:
    """One annotated heatmap panel of `grid` (rows x columns); True if a cell is empty.

    spread: the standard deviation of each cell, written as "87.4 ± 0.3"."""
    cmap = _cmap(res)
    values = grid.to_numpy(dtype=float)
    stds = spread.to_numpy(dtype=float) if spread is not None else np.full(values.shape, np.nan)
    ax.imshow(np.ma.masked_invalid(values), cmap=cmap, norm=norm, aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        if np.isnan(value):
            ax.text(j, i, "–", ha="center", va="center", color="grey", fontsize=8)
            continue
        ax.text(j, i, res.cell_text(value, stds[i, j]), ha="center", va="center",
                fontsize=8 if spread is None else 7, color=_text_colour(cmap(norm(value))))
    ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [str(r) for r in grid.index])
    ax.tick_params(length=0)
    for spine in ax.spines.values():  # a faint frame keeps sparse panels apart
        spine.set_visible(True)
        spine.set_edgecolor("#c8c8c8")
    return bool(np.isnan(values).any())


def _heatmap_note(fig: Figure, res: Results, empty_cells: bool, shown: str = "") -> None:
    notes = (["–: no completed trial"] if empty_cells else []) + (
        [f"grey: past the threshold {res.format(res.threshold)}"] if res.threshold is not None
        else []) + ([f"shown: {shown}"] if shown else [])
    if notes:
        fig.supxlabel(" · ".join(notes), fontsize=9, color="dimgrey")


def _colorbar(fig: Figure, axes, res: Results, norm: Normalize) -> None:
    extend = "neither"
    if res.threshold is not None:
        extend = "min" if res.higher_is_better else "max"
    bar = fig.colorbar(ScalarMappable(norm, _cmap(res)), ax=axes, shrink=0.85, aspect=30,
                       extend=extend, format=res.axis_formatter())
    bar.set_label(res.metric_label)


# --------------------------------------------------------------------------- charts
def plot_ranking(res: Results, out: Path, fmt: str) -> list[Chart]:
    """The best RANKING_TOP trials as horizontal bars, best on top, coloured by the setting
    that matters most; a note counts the trials left out. With repeats one bar per grid
    point at its mean, its whisker +-1 standard deviation."""
    total = len(res.points)
    ranked = res.ranked_points().head(RANKING_TOP)
    n = len(ranked)
    values = ranked[res.metric].to_numpy(dtype=float)
    effects = res.effects()
    colour_axis = next(iter(effects), None)
    if colour_axis:  # colours of every value, so the legend is the same whatever is shown
        palette = _palette(list(res.points[colour_axis].cat.categories))
        colours = [palette[v] for v in ranked[colour_axis]]
    else:
        colours = ["#4c72b0"] * n
    passing = res.passes(ranked[res.metric]).to_numpy()
    colours = [c if ok else BELOW for c, ok in zip(colours, passing)]

    bar_height = 0.26 if n <= 150 else 0.17
    fig = Figure(figsize=(10, 1.9 + bar_height * n), layout="constrained")
    ax = fig.subplots()
    positions = np.arange(n)
    if res.repeats:
        stds = ranked[STD].to_numpy(dtype=float)
        bars = ax.barh(positions, values, color=colours, height=0.78,
                       xerr=np.nan_to_num(stds), error_kw=WHISKER)
        ax.bar_label(bars, _spread_labels(res, ranked), padding=3, fontsize=7.5)
        reach = np.nanmax(values + np.nan_to_num(stds))
    else:
        bars = ax.barh(positions, values, color=colours, height=0.78)
        ax.bar_label(bars, [res.format(v) for v in values], padding=3, fontsize=7.5)
        reach = np.nanmax(values)
    ax.set_yticks(positions, trial_labels(ranked, res.axes, align=True),
                  fontfamily="monospace", fontsize=8.5)
    ax.set_ylim(n - 0.4, -0.6)  # best on top, no empty band
    top = max(1.0, reach) if res.is_accuracy else reach
    ax.set_xlim(0, top * (1.2 if res.repeats else 1.1))  # room for the value labels
    if res.repeats and res.is_accuracy:  # the room for "mean ± std" is not a 120% tick
        ax.set_xticks(np.linspace(0, 1, 6))
    ax.xaxis.set_major_formatter(res.axis_formatter())
    ax.grid(axis="x")
    ax.set_axisbelow(True)
    ax.set_xlabel(res.metric_label)
    _threshold_line(ax, res, vertical=True)
    handles = [Patch(color=palette[v], label=str(v)) for v in palette] if colour_axis else []
    if res.repeats:
        handles.append(Line2D([], [], color=WHISKER["ecolor"], marker="|", markersize=9,
                              label=f"bar: mean, whisker: ±1 std ({res.n_text()})"))
    if res.threshold is not None:
        handles += [Patch(color=BELOW, label="past the threshold"),
                    Line2D([], [], color="#cf222e", linestyle="--",
                           label=f"threshold {res.format(res.threshold)}")]
    if handles:  # above the bars, where a reader of a tall chart starts
        ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.0),
                  ncols=min(len(handles), 4 if res.repeats else 7), frameon=False,
                  title=f"colour: {_name(colour_axis)}" if colour_axis else None,
                  alignment="left")
    units = "grid points" if res.repeats else "completed trials"
    if n < total:
        what = f"The {n} best of {total:,} {units}"
        fig.supxlabel(f"{total - n:,} more {units.split()[-1]} not shown; the results CSV "
                      "lists them all", fontsize=9, color="dimgrey")
    else:
        what = f"All {n} {units}"
    _title(fig, res, f"{what} ranked by {'mean ' if res.repeats else ''}{res.metric_label}")
    caption = f"{what}, best on top"
    if res.repeats:
        caption += (f"; each bar is a grid point's mean {res.metric_label} over its completed "
                    f"repeats ({res.n_text()}), its whisker ±1 standard deviation")
    if colour_axis:
        caption += f"; colours show {_name(colour_axis)}, whose values differ most on average"
    return [Chart(_save(fig, out, "ranking", fmt), caption + ".", fig)]


def _spread_labels(res: Results, points: pd.DataFrame) -> list[str]:
    """'87.4% ± 0.3%' per grid point, with its n where fewer repeats completed than elsewhere."""
    most = points[N].max()
    return [res.format_spread(mean, std) + (f" (n={n})" if n < most else "")
            for mean, std, n in zip(points[res.metric], points[STD], points[N])]


def plot_lines(res: Results, out: Path, fmt: str) -> list[Chart]:
    """One line per batch size across every combination of the other settings."""
    if "batch_size" not in res.axes:
        return []
    panel_axis = "model" if "model" in res.axes else None  # models differ too much to share x
    across = [a for a in res.axes if a not in ("batch_size", panel_axis)]
    kept = res.points[res.passes(res.points[res.metric])].copy()
    if not across or kept.empty:
        return []
    kept["setting"] = trial_labels(kept, across, align=True, unique=False)
    panels = list(kept.groupby(panel_axis, observed=True)) if panel_axis else [(None, kept)]
    n_panels = len(panels)
    if n_panels > LINES_PANELS:
        panels = _best_groups(res, panels)[:LINES_PANELS]
    tables = [(panel, _lines_table(res, sub)) for panel, sub in panels]
    spreads = {panel: _pivot(sub, STD) for panel, sub in panels} if res.repeats else {}
    widest = max(min(len(table), LINES_TOP) for _, table in tables)
    fig = Figure(figsize=(max(8.0, 0.34 * widest + 2.5), 4.6 * len(panels)),
                 layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(panels), 1, sharey=True))
    palette = _palette(list(kept["batch_size"].cat.categories))
    notes = []
    for ax, (panel, table) in zip(axes, tables):
        if len(table) > LINES_TOP:
            notes.append(f"{'model ' + str(panel) + ': ' if panel is not None else ''}"
                         f"best {LINES_TOP} of {len(table)} combinations")
            table = table.head(LINES_TOP)
        x = np.arange(len(table))
        spread = spreads[panel].reindex_like(table) if res.repeats else None
        for batch_size in table.columns:
            means = table[batch_size].to_numpy(dtype=float)
            ax.plot(x, means, marker="o", markersize=4,
                    linewidth=1.6, color=palette[batch_size], label=f"batch size {batch_size}")
            if spread is not None:  # +-1 std of each point's repeats
                stds = spread[batch_size].to_numpy(dtype=float)
                ax.fill_between(x, means - stds, means + stds, color=palette[batch_size],
                                alpha=0.18, linewidth=0)
        # Upright, equally padded labels read as the columns of a table.
        ax.set_xticks(x, table.index, rotation=90, fontfamily="monospace", fontsize=8)
        ax.set_xlim(-0.5, len(x) - 0.5)
        ax.yaxis.set_major_formatter(res.axis_formatter())
        ax.set_ylabel(res.metric_label)
        ax.grid(True)
        if panel is not None:
            ax.set_title(f"model {panel}", loc="left")
        _threshold_line(ax, res)
    handles, _ = axes[0].get_legend_handles_labels()
    if res.repeats:
        handles.append(Patch(color="grey", alpha=0.3, label=f"±1 std ({res.n_text()})"))
    axes[0].legend(handles=handles, loc="lower left" if res.higher_is_better else "upper left",
                   frameon=False)
    if n_panels > len(panels):
        notes.append(f"best {len(panels)} of {n_panels} models")
    if notes:
        fig.supxlabel("shown: " + "; ".join(notes), fontsize=9, color="dimgrey")
    left_out = (f"\n{len(res.points) - len(kept)} {res.unit}s past the threshold left out"
                if res.threshold is not None else "")
    _title(fig, res, f"{res.metric_label} by {' · '.join(map(_name, across))}, "
                     f"one line per batch size{left_out}")
    caption = ("Each line is one batch size; along the x axis every combination of "
               f"{', '.join(map(_name, across))}, best first" +
               (f"; trials past the threshold ({res.format(res.threshold)}) are left out, so "
                "lines break where a setting failed." if res.threshold is not None else "."))
    if res.repeats:
        caption += (" Points are grid points' means over their repeats "
                    f"({res.n_text()}); shaded bands ±1 standard deviation.")
    if notes:
        caption += f" Shown: {'; '.join(notes)}."
    return [Chart(_save(fig, out, "lines_by_batch_size", fmt), caption, fig)]


def _best_groups(res: Results, groups: list) -> list:
    """(key, frame) groups ordered by their best trial, best first."""
    best = [sub[res.metric].max() if res.higher_is_better else -sub[res.metric].min()
            for _, sub in groups]
    order = np.argsort(-np.asarray(best, dtype=float), kind="stable")
    return [groups[i] for i in order]


def _lines_table(res: Results, sub: pd.DataFrame) -> pd.DataFrame:
    """Mean metric of each combination (rows) and batch size (columns), best combination first."""
    table = _pivot(sub, res.metric)
    # Best combination first, so the lines fall from left to right.
    return table.loc[table.mean(axis=1).sort_values(ascending=not res.higher_is_better).index]


def _pivot(sub: pd.DataFrame, column: str) -> pd.DataFrame:
    """`column` of each combination (rows) and batch size (columns)."""
    return sub.groupby(["setting", "batch_size"], observed=True)[column].mean().unstack(
        "batch_size")


def plot_heatmaps(res: Results, out: Path, fmt: str, rows_axis: str,
                  cols_axis: str) -> list[Chart]:
    """rows_axis x cols_axis heatmaps, one panel per combination of the other settings."""
    if rows_axis not in res.axes or cols_axis not in res.axes:
        return []
    others = [a for a in res.axes if a not in (rows_axis, cols_axis)]
    facets = [a for a in FACET_ORDER if a in others] + [a for a in others
                                                         if a not in FACET_ORDER]
    cells = (res.points.groupby(facets + [rows_axis, cols_axis], observed=True)[res.metric]
             .mean())
    norm = _norm(res, cells.to_numpy())
    stem = f"heatmap_{rows_axis}_x_{cols_axis}"
    n_panels = (res.points[facets].drop_duplicates().shape[0]) if facets else 1
    if n_panels > MAX_PANELS and len(facets) > 1:  # one file per value of the first facet
        files = [(f"{stem}_{facets[0]}-{value}", sub, facets[1:], f"{facets[0]} {value}")
                 for value, sub in res.points.groupby(facets[0], observed=True)]
    else:
        files = [(stem, res.points, facets, "")]
    charts = []
    for name, frame, panel_axes, label in files:
        fig, shown = _heatmap_grid(res, frame, rows_axis, cols_axis, panel_axes, norm)
        what = f"{res.metric_label}: {_name(rows_axis)} x {_name(cols_axis)}"
        _title(fig, res, what + (f", {label}" if label else "") +
               (f" (panels: {' · '.join(map(_name, panel_axes))})" if panel_axes else ""))
        caption = (f"Mean {res.metric_label} for each {_name(rows_axis)} and {_name(cols_axis)}"
                   + (f" ({label})" if label else "")
                   + (f", one panel per {' / '.join(map(_name, panel_axes))}" if panel_axes else "")
                   + "; brighter is better." + (f" Shown: {shown}." if shown else ""))
        if res.repeats:
            caption += (f" Each cell is one grid point: mean ± standard deviation over its "
                        f"repeats ({res.n_text()})"
                        + (", in percent." if res.is_accuracy else "."))
        charts.append(Chart(_save(fig, out, name, fmt), caption, fig))
    return charts


def _heatmap_grid(res: Results, frame: pd.DataFrame, rows_axis: str, cols_axis: str,
                  panel_axes: list[str], norm: Normalize) -> tuple[Figure, str]:
    """The figure, and a note of the panels left out ("" when all are drawn)."""
    panels = list(frame.groupby(panel_axes, observed=True)) if panel_axes else [((), frame)]
    shown = ""
    if len(panels) > PANELS_PER_FILE:  # a readable figure of the best panels, not a mural
        shown = f"the best {PANELS_PER_FILE} of {len(panels)} panels"
        panels = _best_groups(res, panels)[:PANELS_PER_FILE]
    across = frame[panel_axes[-1]].nunique() if panel_axes else 0
    if len(panel_axes) >= 2 and not shown and across <= 6:
        ncols = across  # last facet across, the others down: a readable table of panels
    else:
        ncols = min(len(panels), 4)
    nrows = math.ceil(len(panels) / ncols)
    n_rows_cells = len(res.points[rows_axis].cat.categories)
    n_cols_cells = len(res.points[cols_axis].cat.categories)
    cell_width = 0.95 if res.repeats else 0.62  # room for "87.4 ± 0.3"
    fig = Figure(figsize=(ncols * (cell_width * n_cols_cells + 1.0) + 1.6,
                          nrows * (0.42 * n_rows_cells + 1.0) + 1.2), layout="constrained")
    fig.get_layout_engine().set(hspace=0.04, wspace=0.03)
    axes = np.atleast_2d(fig.subplots(nrows, ncols, squeeze=False))
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    empty_cells = False
    for ax, (key, sub) in zip(axes.ravel(), panels):
        cells = sub.groupby([rows_axis, cols_axis], observed=False)
        grid = cells[res.metric].mean().unstack(cols_axis)
        spread = cells[STD].mean().unstack(cols_axis) if res.repeats else None
        empty_cells |= _draw_heatmap(ax, res, grid, norm, spread)
        key = key if isinstance(key, tuple) else (key,)
        ax.set_title(" · ".join(f"{SHORT_NAMES[a]} {v}" if a in SHORT_NAMES else str(v)
                                for a, v in zip(panel_axes, key)), fontsize=10)
        ax.set_xlabel(_name(cols_axis))
        ax.set_ylabel(_name(rows_axis))
    for ax in axes.ravel()[:len(panels)]:
        ax.label_outer()  # axis names and ticks once per row and column
    _colorbar(fig, axes.ravel()[:len(panels)].tolist(), res, norm)
    _heatmap_note(fig, res, empty_cells, shown)
    return fig, shown


def plot_optimizer_activation(res: Results, out: Path, fmt: str) -> list[Chart]:
    """Optimizer x activation: the best and the mean trial of each pairing, per model."""
    if "optimizer" not in res.axes or "activation" not in res.axes:
        return []
    models = (list(res.points.groupby("model", observed=True)) if "model" in res.axes
              else [(None, res.points)])
    n_models = len(models)
    if n_models > LINES_PANELS:  # one row per model: the best few keep the figure readable
        models = _best_groups(res, models)[:LINES_PANELS]
    shown = f"the best {len(models)} of {n_models} models" if len(models) < n_models else ""
    best = "max" if res.higher_is_better else "min"
    pooled = [a for a in res.axes if a not in ("optimizer", "activation", "model")]
    grids = []
    for model, sub in models:
        grouped = sub.groupby(["optimizer", "activation"], observed=False)[res.metric]
        grids.append((model, grouped.agg(best).unstack(), grouped.mean().unstack()))
    norm = _norm(res, np.concatenate([g.to_numpy(dtype=float).ravel()
                                      for _, b, m in grids for g in (b, m)]))
    n_opt = len(res.points["optimizer"].cat.categories)
    n_act = len(res.points["activation"].cat.categories)
    fig = Figure(figsize=(2 * (0.75 * n_act + 1.2) + 1.6, len(grids) * (0.5 * n_opt + 1.1) + 1.3),
                 layout="constrained")
    axes = fig.subplots(len(grids), 2, squeeze=False)
    over = f" over {' · '.join(map(_name, pooled))}" if pooled else ""
    empty_cells = False
    for row, (model, best_grid, mean_grid) in zip(axes, grids):
        for ax, cells, what in ((row[0], best_grid, "best"), (row[1], mean_grid, "mean")):
            empty_cells |= _draw_heatmap(ax, res, cells, norm)
            ax.set_title((f"{model}: " if model is not None else "") + what + over, fontsize=10)
            ax.set_xlabel("activation")
            ax.set_ylabel("optimizer")
    for ax in axes.ravel():
        ax.label_outer()
    _colorbar(fig, axes.ravel().tolist(), res, norm)
    _heatmap_note(fig, res, empty_cells, shown)
    _title(fig, res, f"{res.metric_label}: optimizer x activation")
    caption = (f"Left: the best {res.unit} of each optimizer and activation pairing; right: "
               f"their mean{over}, which shows how forgiving a pairing is of its other settings."
               + (f" Grid points count by their mean over repeats ({res.n_text()})."
                  if res.repeats else "")
               + (f" Shown: {shown}." if shown else ""))
    return [Chart(_save(fig, out, "optimizer_x_activation", fmt), caption, fig)]


def plot_what_matters(res: Results, out: Path, fmt: str) -> list[Chart]:
    """Each setting's spread of the metric per value; the widest gap between means matters most."""
    effects = res.effects()
    if not effects:
        return []
    ncols = 2 if len(effects) == 4 else min(len(effects), 3)
    nrows = math.ceil(len(effects) / ncols)
    widest = max(len(res.points[a].cat.categories) for a in effects)
    fig = Figure(figsize=(ncols * max(3.4, 0.62 * widest + 1.4), nrows * 3.5 + 1.0),
                 layout="constrained")
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
        labels = [label for label, _ in groups]
        long = sum(map(len, labels)) > 28
        ax.set_xticks(positions, labels, rotation=30 if long else 0,
                      ha="right" if long else "center")
        ax.set_title(f"{_name(axis)}: means {_spread_text(res, spread)} apart")
        ax.yaxis.set_major_formatter(res.axis_formatter())
        ax.grid(axis="y")
        _threshold_line(ax, res)
    for ax in axes[:, 0]:
        ax.set_ylabel(res.metric_label)
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(handles), frameon=False)
    _title(fig, res, f"What matters for {res.metric_label}: settings ordered by effect")
    every = (f"every grid point's mean over its repeats ({res.n_text()})" if res.repeats
             else "every trial")
    caption = (f"For each setting, the spread of {every} (dots, boxes) and the mean (red) "
               "per value; panels run from the setting whose means lie furthest apart.")
    return [Chart(_save(fig, out, "what_matters", fmt), caption, fig)]


def _spread_text(res: Results, spread: float) -> str:
    return f"{spread * 100:.1f} points" if res.is_accuracy else f"{spread:.3g}"


def read_histories(res: Results, top: int) -> list[tuple[pd.Series, pd.DataFrame]]:
    """The per-epoch history of the best `top` trials that have a readable one."""
    if "history_path" not in res.trials or top <= 0:
        return []
    found = []
    folder = res.csv_path.parent.resolve()
    for _, trial in res.ranked().iterrows():
        if not isinstance(trial["history_path"], str) or not trial["history_path"].strip():
            continue
        # A CSV is data, not instructions: follow only paths inside its own results folder,
        # so that a shared or edited CSV cannot make plot read files elsewhere.
        path = (folder / trial["history_path"].strip()).resolve()
        if not path.is_relative_to(folder):
            print(f"warning: trial {trial['trial_id']}: history_path {trial['history_path']!r} "
                  f"is outside the results folder {folder}; its curve is skipped",
                  file=sys.stderr)
            continue
        try:
            history = pd.read_csv(path)
        except (OSError, pd.errors.EmptyDataError, pd.errors.ParserError):
            continue  # a missing history costs one curve, not the whole report
        if {"epoch", "loss"} <= set(history.columns) and len(history):
            found.append((trial, history))
        if len(found) == top:
            break
    return found


def plot_curves(res: Results, out: Path, fmt: str, top: int = 5) -> list[Chart]:
    """Loss and accuracy per epoch of the best trials: train solid, validation dashed."""
    histories = read_histories(res, top)
    if not histories:
        return []
    fig = Figure(figsize=(12, 5.4), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    colours = colormaps["tab10"].colors
    handles = []
    labels = trial_labels(pd.DataFrame([t for t, _ in histories]), res.axes)
    for rank, ((trial, history), label, colour) in enumerate(zip(histories, labels, colours), 1):
        epochs = history["epoch"].to_numpy() + 1  # CSVLogger counts from 0
        marker = "o" if len(epochs) < 12 else None  # a one-epoch run is still visible
        for ax, key in ((loss_ax, "loss"), (acc_ax, "accuracy")):
            for prefix, style in (("", "-"), ("val_", "--")):
                if prefix + key in history:
                    ax.plot(epochs, history[prefix + key], linestyle=style, color=colour,
                            marker=marker, markersize=4)
        handles.append(Line2D([], [], color=colour, linewidth=2,
                              label=f"{rank}. {label}  ({res.format(trial[res.metric])})"))
    handles += [Line2D([], [], color="grey", linestyle="-", label="train"),
                Line2D([], [], color="grey", linestyle="--", label="validation")]
    last_epoch = max(len(history) for _, history in histories)
    for ax, key in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        ax.set_title(key)
        ax.set_xlabel("epoch")
        # Whole epochs only; a fixed range keeps a one-epoch grid from zooming to 0.99-1.01.
        ax.set_xlim(0.5, last_epoch + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(True)
    acc_ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
    _title(fig, res, f"Training curves of the {len(histories)} best trials")
    caption = (f"Loss and accuracy per epoch of the {len(histories)} best trials: solid lines "
               "on the training images, dashed on the validation images.")
    if res.repeats:
        caption += " Single runs, not means: repeats of one grid point are separate curves."
    return [Chart(_save(fig, out, "training_curves", fmt), caption, fig)]


# --------------------------------------------------------------------------- report
def write_report(res: Results, charts: list[Chart], out: Path) -> Path:
    """report.html beside the charts: summary, top-10 table, charts, excluded trials; with
    repeats the top-10 table lists grid points and a section tests them against the best."""
    top = _points_table(res) if res.repeats else _trials_table(res)
    formatters = {c: _cell_formatter(c) for c in top.columns}
    excluded = res.table[~res.table.index.isin(res.trials.index)]
    statuses = excluded["status"].fillna("no status").astype(str).value_counts()
    parts = [f"<h1>Search results: {html.escape(res.csv_path.name)}</h1>", "<p>",
             f"{len(res.table)} trials in <code>{html.escape(str(res.csv_path))}</code>; "
             f"{len(res.trials)} completed with a {html.escape(res.metric)} value are charted."]
    if len(excluded):
        counts = ", ".join(f"{n} {html.escape(s)}" for s, n in statuses.items())
        parts.append(f" <strong>{len(excluded)} left out</strong> ({counts}), listed at the end.")
    if res.repeats:
        parts.append(f" They are {len(res.points)} grid points run several times "
                     f"({res.n_text()} completed repeats each): the charts show each point's "
                     "mean, with ±1 standard deviation as error bars, bands and "
                     "“mean ± std” heatmap cells.")
    if res.threshold is not None:
        past = int((~res.passes(res.points[res.metric])).sum())
        what = "grid points (by their mean)" if res.repeats else "completed trials"
        parts.append(f" Threshold {res.format(res.threshold)}: {past} {what} past it "
                     "are left out of the line chart and greyed elsewhere.")
    if res.constant:
        parts.append(f" {html.escape(res.subtitle().capitalize())}.")
    heading = (f"The {len(top)} best grid points by mean {html.escape(res.metric)}"
               if res.repeats else f"The {len(top)} best trials by {html.escape(res.metric)}")
    parts += ["</p>", f"<h2>{heading}</h2>",
              top.to_html(index=False, formatters=formatters, na_rep="–", border=0,
                          classes="trials")]
    if res.repeats:
        parts += noise_section(res)
    parts.append("<h2>Charts</h2>")
    for chart in charts:
        name = html.escape(chart.path.name)
        parts.append(f'<figure><a href="{name}"><img src="{name}" alt="{name}"></a>'
                     f"<figcaption>{html.escape(chart.caption)}</figcaption></figure>")
    if not charts:
        parts.append("<p>No chart: the CSV varies no setting the charts use.</p>")
    if len(excluded):
        repeat = (grid.REPEAT_AXIS,) if res.repeats else ()
        shown = [c for c in ("trial_id", *AXES, *repeat, "status", "error") if c in excluded]
        parts += ["<h2>Trials left out of the charts</h2>",
                  excluded[shown].head(EXCLUDED_ROWS).to_html(index=False, na_rep="", border=0,
                                                              classes="trials")]
        if len(excluded) > EXCLUDED_ROWS:
            parts.append(f"<p>… and {len(excluded) - EXCLUDED_ROWS:,} more; the results CSV "
                         "lists them all.</p>")
    path = out / "report.html"
    path.write_text(REPORT_PAGE.format(title=html.escape(f"Search results: {res.csv_path.name}"),
                                       body="\n".join(parts)), encoding="utf-8")
    return path


def _trials_table(res: Results) -> pd.DataFrame:
    """The ten best trials with their settings and metrics."""
    best = res.ranked().head(10)
    columns = ["trial_id", *res.axes, res.metric,
               *[c for c in TABLE_COLUMNS if c in best and c != res.metric]]
    top = best[columns].dropna(axis=1, how="all")  # e.g. test_loss when never measured
    top.insert(0, "rank", range(1, len(top) + 1))
    return top


def _points_table(res: Results) -> pd.DataFrame:
    """The ten best grid points: settings, mean and standard deviation of the metric, n."""
    best = res.ranked_points().head(10)
    top = best[[*res.axes, res.metric, STD, N]].rename(
        columns={res.metric: f"{res.metric} mean", STD: f"{res.metric} std"})
    top.insert(0, "rank", range(1, len(top) + 1))
    return top


def noise_tests(res: Results, top: int = NOISE_TOP) -> pd.DataFrame:
    """The `top` best grid points by mean, each tested against the best one (rank 1) with
    Welch's t-test (two-sided, unequal variances) on the per-repeat values: p >= NOISE_P is
    "within noise", p < NOISE_P "worse"; fewer than 2 runs on either side cannot be tested."""
    from scipy import stats  # only reports with repeats need it

    best = res.ranked_points().head(top)
    reference = best[RUNS].iloc[0]
    rows = []
    for rank, runs in enumerate(best[RUNS], 1):
        p_value = math.nan
        if rank == 1:
            verdict = "best"
        elif min(len(runs), len(reference)) < 2:
            verdict = "cannot be tested (n < 2)"
        else:
            p_value = float(stats.ttest_ind(runs, reference, equal_var=False).pvalue)
            if math.isnan(p_value):
                verdict = "cannot be tested (no spread among the repeats)"
            else:
                verdict = "within noise" if p_value >= NOISE_P else "worse"
        rows.append({"rank": rank, "p": p_value, "verdict": verdict})
    tests = pd.DataFrame(rows, index=best.index)
    tests.insert(1, "setting", trial_labels(best, res.axes, unique=False))
    tests.insert(2, res.metric, [res.format_spread(m, s) for m, s in
                                 zip(best[res.metric], best[STD])])
    tests.insert(3, N, best[N].to_numpy())
    return tests


def noise_section(res: Results) -> list[str]:
    """HTML: which of the best grid points are within noise of the best, and by which test."""
    tests = noise_tests(res)
    within = tests.loc[tests["verdict"] == "within noise", "rank"].tolist()
    summary = ("Only one grid point: nothing to compare it with." if len(tests) == 1 else
               f"Within noise of the best: rank{'s' if len(within) > 1 else ''} "
               f"{', '.join(map(str, within))}." if within
               else "None of the others is within noise of the best.")
    text = (f"Each of the {len(tests)} best grid points by mean {res.metric} is compared "
            "with the best one (rank 1) by Welch's t-test (two-sided, unequal variances: "
            "<code>scipy.stats.ttest_ind(..., equal_var=False)</code>) on the values of their "
            f"repeats. p ≥ {NOISE_P:g}: <strong>within noise</strong> of the best, these repeats "
            f"cannot tell the two apart; p &lt; {NOISE_P:g}: worse. A point with fewer than 2 "
            "completed repeats cannot be tested.")
    table = tests.to_html(index=False, na_rep="–", border=0, classes="trials",
                          formatters={"p": lambda v: "–" if pd.isna(v) else f"{v:.3g}"})
    return ["<h2>Within noise of the best</h2>", f"<p>{text}</p>",
            f"<p>{html.escape(summary)}</p>", table]


def _cell_formatter(column: str):
    if "accuracy" in column:
        return lambda v: "–" if pd.isna(v) else f"{v:.2%}"
    if "loss" in column:
        return lambda v: "–" if pd.isna(v) else f"{v:.4f}"
    if column == "seconds":
        return lambda v: "–" if pd.isna(v) else f"{v:.1f}"
    if column in ("params", "epochs_run", N):
        return lambda v: "–" if pd.isna(v) else f"{int(v):,}"
    return lambda v: "–" if pd.isna(v) else str(v)


REPORT_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #1f2328; }}
table.trials {{ border-collapse: collapse; font-size: 0.9em; margin-bottom: 1em; }}
table.trials th, table.trials td {{ padding: 0.3em 0.8em; text-align: right; }}
table.trials thead {{ border-bottom: 2px solid #888; }}
table.trials tr:nth-child(even) {{ background: #f3f5f7; }}
figure {{ margin: 2em 0; }}
img {{ max-width: 100%; border: 1px solid #e5e7eb; }}
figcaption {{ color: #555; margin-top: 0.4em; }}
</style></head>
<body>
{body}
</body></html>
"""


# --------------------------------------------------------------------------- entry points
def plot_results(csv_path, out_dir="results/plots", metric: str = "val_accuracy",
                 threshold: float | None = None, fmt: str = "png", top: int = 5) -> list[Path]:
    """Write every chart the CSV allows and report.html into out_dir; return their paths."""
    if fmt not in FORMATS:
        raise PlotError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    res = load_results(csv_path, metric, threshold)
    out = output_folder(out_dir, PlotError)
    with matplotlib.rc_context(STYLE):
        charts = [
            *plot_ranking(res, out, fmt),
            *plot_lines(res, out, fmt),
            *plot_heatmaps(res, out, fmt, "learning_rate", "batch_size"),
            *plot_heatmaps(res, out, fmt, "epochs", "batch_size"),
            *plot_optimizer_activation(res, out, fmt),
            *plot_what_matters(res, out, fmt),
            *plot_curves(res, out, fmt, top),
        ]
    report = write_report(res, charts, out)
    return [chart.path for chart in charts] + [report]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mnist_zoo.plot", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", metavar="CSV", help="results CSV of mnist_zoo.search (or a lab CSV)")
    parser.add_argument("--out", default="results/plots", help="output folder")
    parser.add_argument("--metric", default="val_accuracy",
                        help="column to chart, e.g. val_accuracy, test_accuracy or val_loss "
                             "(lower is better for losses)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="leave trials worse than this out of the line chart and grey them "
                             "elsewhere, e.g. 0.5 to hide failed, near-chance runs")
    parser.add_argument("--format", dest="fmt", default="png", choices=FORMATS,
                        help="chart file format")
    parser.add_argument("--top", type=int, default=5, help="trials in the training-curve chart")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        written = plot_results(args.csv, args.out, metric=args.metric, threshold=args.threshold,
                               fmt=args.fmt, top=args.top)
    except PlotError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
