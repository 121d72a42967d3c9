"""optimisation_history: the best result so far against trials and against training
seconds (Optuna's optimisation history), for any strategy: grid, random, Bayesian or
Hyperband, from a CSV with a seconds column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mnist_zoo.plot import _style as style
from mnist_zoo.plot._data import Results

TRIAL, SECONDS, BEST = "trial", "elapsed_seconds", "best_so_far"


def history_data(res: Results) -> pd.DataFrame | None:
    """Every row of the CSV in the order the search learnt of it (finished_at where the
    CSV has it, else trial_id): its trial number, the training seconds spent up to it
    (the sum of `seconds`: one process' time, or all processes' together), its metric
    (NaN where it has no finite value, or did not complete) and the best so far. None
    without a seconds column."""
    table = res.table
    if "seconds" not in table:
        return None
    order = ["finished_at", "trial_id"] if "finished_at" in table else ["trial_id"]
    rows = table.sort_values(order, kind="stable")
    value = pd.to_numeric(rows[res.metric], errors="coerce").where(
        rows.index.isin(res.trials.index))
    spent = pd.to_numeric(rows["seconds"], errors="coerce").fillna(0).clip(lower=0)
    signed = value if res.higher_is_better else -value
    best = signed.cummax() if res.higher_is_better else -signed.cummax()
    return pd.DataFrame({"trial_id": rows["trial_id"].to_numpy(),
                         TRIAL: np.arange(1, len(rows) + 1), SECONDS: spent.cumsum().to_numpy(),
                         res.metric: value.to_numpy(), BEST: best.to_numpy()})


def plot_history(res: Results, out: Path, fmt: str) -> list[style.Chart]:
    """Each trial's result (dots) and the best so far (a step line), against the trials
    run and the training seconds spent."""
    data = history_data(res)
    if data is None or data[BEST].isna().all():
        return []
    fig = Figure(figsize=(12, 4.8), layout="constrained")
    for ax, x, label in zip(fig.subplots(1, 2, sharey=True), (TRIAL, SECONDS),
                            ("trials", "training seconds spent")):
        ax.scatter(data[x], data[res.metric], s=14, color="#4c72b0", alpha=0.6, linewidths=0,
                   zorder=3, label="trial")
        ax.step(data[x], data[BEST], where="post", color="#cf222e", linewidth=2,
                label="best so far")
        ax.set_xlabel(label)
        ax.yaxis.set_major_formatter(res.axis_formatter())
        ax.grid(True)
        style.threshold_line(ax, res)
    ax.set_ylim(*_limits(data, res))
    fig.axes[0].set_ylabel(res.metric_label)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(handles), frameon=False)
    final = data[BEST].dropna().iloc[-1]
    style.title(fig, res, f"Optimisation history: best {res.metric_label} so far "
                          f"({res.format(final)} after {len(data)} trials)")
    caption = ("Each trial's result (dots) and the best so far (red), against the trials in "
               "the order they finished and against the training seconds they took (summed "
               "over every process). Failed and diverged trials count as trials, not results.")
    return [style.Chart(style.save(fig, out, "optimisation_history", fmt), caption, fig)]


def _limits(data: pd.DataFrame, res: Results) -> tuple[float, float]:
    """Near the best results: a run at chance would flatten the climb to nothing."""
    values = data[res.metric].dropna()
    best = data[BEST].dropna()
    low, high = float(values.min()), float(values.max())
    span = float(best.max() - best.min()) or abs(high) * 0.01 or 0.01
    if res.higher_is_better:
        low = max(low, float(best.min()) - 3 * span)
    else:
        high = min(high, float(best.max()) + 3 * span)
    pad = (high - low) * 0.05 or 0.01
    return low - pad, high + pad
