"""optimizer_x_activation: the lab's pairing chart, the best and the mean result of each
optimizer and activation (per model), drawn when both vary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from mnist_zoo.plot import _style as style
from mnist_zoo.plot._data import Results
from mnist_zoo.plot._heatmaps import draw_heatmap


def plot_optimizer_activation(res: Results, out: Path, fmt: str) -> list[style.Chart]:
    """Optimizer x activation: the best and the mean trial of each pairing, per model."""
    if "optimizer" not in res.axes or "activation" not in res.axes:
        return []
    models = (list(res.points.groupby("model", observed=True)) if "model" in res.axes
              else [(None, res.points)])
    n_models = len(models)
    if n_models > style.LINES_PANELS:  # one row per model: the best few keep the figure readable
        models = style.best_groups(res, models)[:style.LINES_PANELS]
    shown = f"the best {len(models)} of {n_models} models" if len(models) < n_models else ""
    best = "max" if res.higher_is_better else "min"
    pooled = [a for a in res.axes if a not in ("optimizer", "activation", "model")]
    grids = []
    for model, sub in models:
        grouped = sub.groupby(["optimizer", "activation"], observed=False)[res.metric]
        grids.append((model, grouped.agg(best).unstack(), grouped.mean().unstack()))
    norm = style.metric_norm(res, np.concatenate([g.to_numpy(dtype=float).ravel()
                                      for _, b, m in grids for g in (b, m)]))
    n_opt = len(res.points["optimizer"].cat.categories)
    n_act = len(res.points["activation"].cat.categories)
    fig = Figure(figsize=(2 * (0.75 * n_act + 1.2) + 1.6, len(grids) * (0.5 * n_opt + 1.1) + 1.3),
                 layout="constrained")
    axes = fig.subplots(len(grids), 2, squeeze=False)
    over = f" over {' · '.join(map(style.name, pooled))}" if pooled else ""
    empty_cells = False
    for row, (model, best_grid, mean_grid) in zip(axes, grids):
        for ax, cells, what in ((row[0], best_grid, "best"), (row[1], mean_grid, "mean")):
            empty_cells |= draw_heatmap(ax, res, cells, norm)
            ax.set_title((f"{model}: " if model is not None else "") + what + over, fontsize=10)
            ax.set_xlabel("activation")
            ax.set_ylabel("optimizer")
    for ax in axes.ravel():
        ax.label_outer()
    style.metric_colorbar(fig, axes.ravel().tolist(), res, norm)
    style.heatmap_note(fig, res, empty_cells, shown)
    style.title(fig, res, f"{res.metric_label}: optimizer x activation")
    caption = (f"Left: the best {res.unit} of each optimizer and activation pairing; right: "
               f"their mean{over}, which shows how forgiving a pairing is of its other settings."
               + (f" Grid points count by their mean over repeats ({res.n_text()})."
                  if res.repeats else "")
               + (f" Shown: {shown}." if shown else ""))
    return [style.Chart(style.save(fig, out, "optimizer_x_activation", fmt), caption, fig)]
