"""training_curves: loss and accuracy per epoch of the best trials, from their history CSVs."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, PercentFormatter

from mnist_zoo.plot import _style as style
from mnist_zoo.plot._axes import trial_labels
from mnist_zoo.plot._data import Results
from mnist_zoo.files import inside


def read_histories(res: Results, top: int) -> list[tuple[pd.Series, pd.DataFrame]]:
    """The per-epoch history of the best `top` trials that have a readable one."""
    if "history_path" not in res.trials or top <= 0:
        return []
    found = []
    folder = res.csv_path.parent.resolve()
    ranked = res.ranked()
    given = ranked["history_path"].astype("string").str.strip().fillna("") != ""
    for _, trial in ranked[given].iterrows():
        # A CSV is data, not instructions: follow only paths inside its own results folder,
        # so that a shared or edited CSV cannot make plot read files elsewhere.
        path = inside(folder, trial["history_path"].strip())
        if path is None:
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


def plot_curves(res: Results, out: Path, fmt: str, top: int = 5) -> list[style.Chart]:
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
            for prefix, dashes in (("", "-"), ("val_", "--")):
                if prefix + key in history:
                    ax.plot(epochs, history[prefix + key], linestyle=dashes, color=colour,
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
    style.title(fig, res, f"Training curves of the {len(histories)} best trials")
    caption = (f"Loss and accuracy per epoch of the {len(histories)} best trials: solid lines "
               "on the training images, dashed on the validation images.")
    if res.repeats:
        caption += " Single runs, not means: repeats of one grid point are separate curves."
    return [style.Chart(style.save(fig, out, "training_curves", fmt), caption, fig)]
