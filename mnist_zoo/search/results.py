"""The search's results table: one row per trial, from the trial folders.

Each finished trial leaves <project>/trial_*/result.json; the table
<out>/experiment_results.csv is rebuilt from them after every trial (so a resumed
or distributed search lists each trial exactly once), ranked, printed, and its
best trials exported as .keras and SavedModel. The table's rules (ranking direction,
repeats, grid points) live in mnist_zoo.search.table, the folder's in
mnist_zoo.search.project.
"""

from __future__ import annotations

import fcntl
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np

from mnist_zoo.axes import AXES, REPEAT_AXIS
from mnist_zoo.files import atomic_write_text, inside
from mnist_zoo.order import best_first
from mnist_zoo.search.table import (METRIC_COLUMNS, SUMMARY_CSV, has_repeats, lower_is_better,
                                    ranked, summarize)


def write_results_csv(project_dir: Path, csv_path: Path, new_row: dict | None = None,
                      trial_dir: Path | None = None):
    """Rebuild the CSV from every trial's result.json, replacing the file atomically;
    new_row is first recorded in trial_dir.

    The lock keeps concurrent workers from replacing a newer table with an older one,
    and gives each new row its own count in the progress lines.
    """
    import pandas as pd

    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path.with_name(f".{csv_path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if new_row is not None:
            record_trial(new_row, trial_dir)
        rows = [row for p in sorted(project_dir.glob("trial_*/result.json"))
                if (row := read_result(p)) is not None]
        table = pd.DataFrame(rows)
        if not table.empty:
            # By number: a search grown past 10 trials numbers its new ones "10", "11", after
            # "0" to "9" (keras-tuner pads the ids to the width of the planned count).
            table = table.sort_values("trial_id", kind="stable",
                                      key=lambda ids: pd.to_numeric(ids, errors="coerce")
                                      ).reset_index(drop=True)
        atomic_write_text(csv_path, table.to_csv(index=False))
        atomic_write_text(csv_path.with_name(SUMMARY_CSV), summarize(table).to_csv(index=False))
    return table


def read_result(path: Path) -> dict | None:
    """A trial's row, or None where the file is missing or damaged (the trial then counts
    as unfinished, and the next run of the search trains it again)."""
    try:
        row = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return row if isinstance(row, dict) and "trial_id" in row and "status" in row else None


def is_finished(row: dict | None, retrain_pruned: bool) -> bool:
    """Whether a trial's (or a run's) record means it is done: there, not failed, and not
    pruned where pruned trials are trained again (a rerun with --prune none)."""
    if row is None or row.get("status") == "failed":
        return False
    return not (retrain_pruned and row.get("status") == "pruned")


def record_trial(row: dict, trial_dir: Path) -> None:
    """Write one trial's row to its folder; written last, it marks the trial done."""
    for column in METRIC_COLUMNS:
        row.setdefault(column, math.nan)
    trial_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(trial_dir / "result.json", json.dumps(row, indent=1))


def finite(value) -> bool:
    return value is not None and math.isfinite(value)


def objective_values(row: dict) -> dict:
    """The metrics keras-tuner ranks by; it cannot rank NaN, so a diverged or failed trial
    counts as the worst."""
    accuracy = lambda v: v if finite(v) else 0.0  # noqa: E731
    loss = lambda v: v if finite(v) else 1e9  # noqa: E731
    return {"val_accuracy": accuracy(row.get("val_accuracy")),
            "val_loss": loss(row.get("val_loss")),
            "accuracy": accuracy(row.get("train_accuracy")),
            "loss": loss(row.get("train_loss")),
            "test_accuracy": accuracy(row.get("test_accuracy")),
            "test_loss": loss(row.get("test_loss"))}


def progress_line(row: dict, done: int, total: int, session_seconds: list[float]) -> str:
    settings = " ".join(str(row[key]) for key in ("model", "activation", "optimizer"))
    eta = np.mean(session_seconds) * max(total - done, 0)
    outcome = (f"val_acc {row['val_accuracy']:.4f}" if row["status"] == "completed"
               else row["status"].upper() + (f" ({row['error'][:80]})" if row.get("error") else ""))
    if row["status"] == "pruned":
        outcome += f" by {row['pruned_by']} after epoch {row['epochs_run']}"
    return (f"[{done}/{total}] {settings} lr={row['learning_rate']:g} bs={row['batch_size']} "
            f"ep={row['epochs']} -> {outcome} ({row['seconds']:.0f} s), "
            f"ETA {time.strftime('%H:%M:%S', time.gmtime(eta))}")


def print_top(table, objective: str, k: int) -> None:
    columns = ["trial_id", *[c for c in AXES if c in table.columns],
               "val_accuracy", "test_accuracy", "seconds"]
    best = ranked(table, objective).head(k)
    counts = table["status"].value_counts().to_dict()
    summary = f"\n{len(table)} trials ({', '.join(f'{n} {s}' for s, n in counts.items())})"
    if k == 0:
        print(summary)
        return
    if best.empty:
        print(f"{summary}; none completed, so none is ranked: the CSV's status and error "
              "columns say why")
        return
    if has_repeats(table):
        _print_top_points(table, objective, k, summary)
        return
    print(f"{summary}; best {len(best)} by {objective}:")
    # An empty setting is one that does not apply (SGD's for Adam): "none", as the charts say.
    print(best[columns].to_string(index=False, na_rep="none"))


def _print_top_points(table, objective: str, k: int, summary: str) -> None:
    """With repeats, the best grid points by their mean, with the spread over the repeats."""
    points = summarize(table)
    mean, std = f"{objective}_mean", f"{objective}_std"
    if mean not in points:
        print(f"{summary}; {objective} has no values to rank by")
        return
    best = best_first(points, mean, not lower_is_better(objective)).head(k)
    varying = [a for a in AXES if a in points and points[a].nunique() > 1] or \
        [a for a in AXES if a in points][:1]
    print(f"{summary}; best {len(best)} grid points by mean {objective} over "
          f"{table[REPEAT_AXIS].nunique()} repeats:")
    print(best[[*varying, mean, std, "completed", "runs"]].round(4).to_string(
        index=False, na_rep="none"))


def export_top_models(table, out: Path, objective: str, k: int) -> list[Path]:
    """Copy the top-k trials' .keras files to <out>/models/ and export each as a SavedModel."""
    import keras

    exported = []
    shutil.rmtree(out / "models", ignore_errors=True)  # an earlier, now outranked top-k
    for rank, row in enumerate(ranked(table, objective).head(k).itertuples(), start=1):
        source = inside(out, row.model_path)
        if source is None:
            if isinstance(row.model_path, str) and row.model_path:
                print(f"warning: trial {row.trial_id}'s model_path {row.model_path!r} leads "
                      f"outside {out}; not exported")
            continue
        target = out / "models" / f"top{rank}_trial_{row.trial_id}"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target / "model.keras")
        model = keras.models.load_model(target / "model.keras")
        model.export(str(target / "saved_model"), format="tf_saved_model", verbose=False)
        exported.append(target)
    if exported:
        print(f"exported top {len(exported)} models to {out / 'models'}")
    return exported
