"""importance: how much each setting decides the metric, one bar per setting, for grids and
ranges alike (W&B's parameter importance; Optuna's plot_param_importances).

A random forest learns the metric from the settings (a category as its place in the
setting's order, a number as its rank: the trees split on order alone); a setting's
importance is how much worse the forest predicts when that setting's column is shuffled
(scikit-learn's permutation importance), as a share of all settings' together. Measured
against Optuna's fANOVA on the same tables (docs/benchmarks.md): the same order on the lab's
grids and on a random search, but fANOVA took 568 s on 5,000 rows against 2 s here.
With repeats the forest learns each grid point's mean, so a point counts once.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mnist_zoo.order import largest_first
from mnist_zoo.plot import _style as style
from mnist_zoo.plot._data import Results

# 32 trees and 3 shuffles give the lab grids' order as 64 and 5 do, in a quarter of the
# time (0.5 s of CPU on 5,000 rows).
TREES = 32
SHUFFLES = 3  # permutations per setting: the score's mean over them
SEED = 0  # the same table gives the same scores
MAX_RUNS = 2000  # points the forest learns from (a sample of them past this)


class Importance(NamedTuple):
    shares: dict[str, float]  # setting -> share (0-1), largest first, ties by name
    # How much of the metric's variance the settings explain on runs each tree did not
    # see (the forest's out-of-bag R², NaN for too few runs): near 0, the shares are noise.
    explained: float


def importance_data(res: Results) -> Importance:
    """Each setting's share of the importance (0 to 1, summing to 1 unless nothing
    matters), largest first (ties by name), and the variance the settings explain."""
    from sklearn.ensemble import RandomForestRegressor  # only plot's import pays for it
    from sklearn.inspection import permutation_importance

    if len(res.axes) < 2:
        return Importance({axis: 1.0 for axis in res.axes}, float("nan"))
    points = res.points
    if len(points) > MAX_RUNS:  # as good an estimate, in a fraction of the time
        points = points.sample(MAX_RUNS, random_state=SEED)
    settings = pd.DataFrame({axis: points[axis].cat.codes for axis in res.axes})
    metric = points[res.metric].to_numpy(dtype=float)
    forest = RandomForestRegressor(n_estimators=TREES, random_state=SEED, n_jobs=1,
                                   oob_score=len(metric) >= 20)
    with warnings.catch_warnings():  # a few runs: some left in every bootstrap sample
        warnings.simplefilter("ignore", UserWarning)
        forest.fit(settings, metric)
    scores = permutation_importance(forest, settings, metric, n_repeats=SHUFFLES,
                                    random_state=SEED, n_jobs=1).importances_mean
    scores = np.clip(scores, 0, None)  # a shuffle that helps is noise, not importance
    total = scores.sum()
    shares = scores / total if total > 0 else scores
    explained = float(forest.oob_score_) if len(metric) >= 20 else float("nan")
    return Importance(largest_first(dict(zip(res.axes, map(float, shares)))), explained)


def plot_importance(res: Results, out: Path, fmt: str,
                    importance: Importance | None = None) -> list[style.Chart]:
    """A bar per setting, the most important on top."""
    importance = importance_data(res) if importance is None else importance
    if len(importance.shares) < 2:
        return []
    names, shares = list(importance.shares), np.array(list(importance.shares.values()))
    fig = Figure(figsize=(7.5, 1.6 + 0.42 * len(names)), layout="constrained")
    ax = fig.subplots()
    positions = np.arange(len(names))
    bars = ax.barh(positions, shares, color=["#4c72b0" if s > 0 else "#b0b0b0" for s in shares],
                   height=0.7)
    ax.bar_label(bars, [f"{s:.0%}" for s in shares], padding=3, fontsize=9)
    kinds = [" (continuous)" if axis in res.continuous else "" for axis in names]
    ax.set_yticks(positions, [style.name(a) + k for a, k in zip(names, kinds)])
    ax.set_ylim(len(names) - 0.4, -0.6)
    ax.set_xlim(0, 1.1)
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_xlabel(f"share of the importance for {res.metric_label}")
    ax.grid(axis="x")
    ax.set_axisbelow(True)
    style.title(fig, res, f"Which settings decide {res.metric_label}"
                + (f" (they explain {explained_text(importance)} of its variance)"
                   if np.isfinite(importance.explained) else ""))
    what = (f"grid points' means over their repeats ({res.n_text()})" if res.repeats
            else f"the {len(res.points):,} {res.unit}s")
    caption = (f"Importance of each setting: a random forest learns {res.metric_label} from "
               f"the settings of {what}; a setting's bar is how much worse it predicts when "
               "that setting's values are shuffled, as a share of all settings' together "
               "(scikit-learn's permutation importance, as Weights and Biases ranks "
               "parameters). It says what decides the result, not in which direction: the "
               "slice, what-matters and heatmap charts show that.")
    if np.isfinite(importance.explained):
        caption += (f" The settings explain {explained_text(importance)} of the variance of "
                    f"{res.metric_label} on the runs each tree did not see (out-of-bag R²)"
                    + ("; so little that the shares say little." if importance.explained < 0.2
                       else "."))
    if res.budget:
        caption += hyperband_note(res)
    return [style.Chart(style.save(fig, out, "importance", fmt), caption, fig)]


def hyperband_note(res: Results) -> str:
    """How a chart shows Hyperband's rounds."""
    return (f" Hyperband: each configuration counts once, at the last round it reached "
            f"({res.budget} {_budget_range(res)}); its earlier rounds trained the same model "
            "for fewer epochs, and the epochs it reached are not compared as a setting.")


def _budget_range(res: Results) -> str:
    budgets = pd.to_numeric(res.trials[res.budget], errors="coerce").dropna()
    low, high = int(budgets.min()), int(budgets.max())
    return f"{low}" if low == high else f"{low} to {high}"


def explained_text(importance: Importance) -> str:
    return f"{max(importance.explained, 0):.0%}"
