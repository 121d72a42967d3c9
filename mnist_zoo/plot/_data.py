"""What every chart draws: the completed trials of a results CSV, their grid points, and how
the metric reads (its direction, its format, the spread of each setting's means)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
from matplotlib.ticker import FuncFormatter

from mnist_zoo.errors import PlotError  # noqa: F401  (plot's modules import it from here)
from mnist_zoo.order import best_first, largest_first
from mnist_zoo.plot._kinds import bin_labels
from mnist_zoo.plot._style import name
from mnist_zoo.search.table import lower_is_better

# Results.points beside the metric (the mean over a grid point's repeats): the standard
# deviation, the number of completed runs and, for the noise test, the runs' values.
STD, N, RUNS = "std", "n", "runs"


@dataclasses.dataclass
class Results:
    """What the charts draw: completed trials with their settings as ordered labels."""

    csv_path: Path
    table: pd.DataFrame  # every row of the CSV
    trials: pd.DataFrame  # completed rows with a finite metric value
    metric: str
    axes: list[str]  # settings that vary among `trials`
    constant: dict[str, str]  # settings that do not: shown in titles instead
    threshold: float | None
    # What the charts draw: one row per grid point with repeats (see summarize_points),
    # else `trials` itself, so that a CSV without repeats charts exactly as before.
    points: pd.DataFrame | None = None
    repeats: bool = False
    # Settings drawn on a number line (slices, contours), each with its log flag; the
    # others are categories (_kinds has the rule).
    continuous: dict[str, bool] = dataclasses.field(default_factory=dict)
    # Hyperband: the column of each trial's budget (epochs), charted instead of compared
    # as a setting; each configuration is charted once, at its last round.
    budget: str | None = None

    def __post_init__(self):
        if self.points is None:
            self.points = self.trials

    @property
    def categorical(self) -> list[str]:
        return [axis for axis in self.axes if axis not in self.continuous]

    def binned(self) -> "Results":
        """These results with each continuous setting cut into quantile bins (ordered
        categories), for the charts that need a few values per setting; itself without one."""
        if not self.continuous:
            return self
        if getattr(self, "_binned", None) is None:
            def cut(frame):
                return frame.assign(**{axis: bin_labels(frame[axis]) for axis in self.continuous})
            self._binned = dataclasses.replace(
                self, trials=cut(self.trials),
                points=cut(self.points) if self.points is not self.trials else None,
                continuous={})
        return self._binned

    @property
    def unit(self) -> str:
        return "grid point" if self.repeats else "trial"

    def n_text(self) -> str:
        """'n = 3' (completed repeats per grid point), or 'n = 2–3' where some failed."""
        low, high = int(self.points[N].min()), int(self.points[N].max())
        return f"n = {low}" if low == high else f"n = {low}–{high}"

    @property
    def higher_is_better(self) -> bool:
        return not lower_is_better(self.metric)

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
        return best_first(self.trials, self.metric, self.higher_is_better)

    def ranked_points(self) -> pd.DataFrame:
        """What the charts draw (grid points by mean with repeats, else trials), best first."""
        return best_first(self.points, self.metric, self.higher_is_better)

    def format(self, value: float) -> str:
        if value is None or pd.isna(value):
            return "–"
        return f"{value:.1%}" if self.is_accuracy else f"{value:.4g}"

    def format_spread(self, mean: float, std: float) -> str:
        """'87.4% ± 0.3%': a grid point's mean and standard deviation (the mean alone for n=1)."""
        return self.format(mean) + ("" if pd.isna(std) else f" ± {self.format(std)}")

    def format_difference(self, difference: float) -> str:
        """A gap between two results: '1.5 points' of accuracy, else 3 significant digits."""
        return f"{difference * 100:.1f} points" if self.is_accuracy else f"{difference:.3g}"

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
        (over grid points' means with repeats, so a point counts once however often it ran;
        continuous settings by their bins)."""
        if self.continuous:  # a value per run would make every spread the range of runs
            return self.binned().effects()
        spreads = {}
        for axis in self.axes:
            means = self.points.groupby(axis, observed=True)[self.metric].mean()
            spreads[axis] = float(means.max() - means.min())
        return largest_first(spreads)

    def subtitle(self) -> str:
        fixed = ", ".join(f"{name(axis)} {value}" for axis, value in self.constant.items())
        return f"all trials: {fixed}" if fixed else ""
