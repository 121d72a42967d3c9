"""The search's results table: one row per trial, from the trial folders.

Each finished trial leaves <project>/trial_*/result.json; the table
<out>/experiment_results.csv is rebuilt from them after every trial (so a resumed
or distributed search lists each trial exactly once), ranked, printed, and its
best trials exported as .keras and SavedModel.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np

from mnist_zoo.grid import AXES, REPEAT_AXIS

RESULTS_CSV = "experiment_results.csv"
SUMMARY_CSV = "experiment_summary.csv"  # one row per grid point: its repeats summarised
RESULTS_OWNER = ".results_grid"  # which grid's table and exports <out> holds
METRIC_COLUMNS = ["train_loss", "train_accuracy", "val_loss", "val_accuracy",
                  "test_loss", "test_accuracy"]
SUMMARY_METRICS = [*METRIC_COLUMNS, "epochs_run", "seconds"]


class ResultsError(RuntimeError):
    """A results folder the search cannot use; the message names the folder and the way out."""


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file so that readers see the old or the new content, never half of it:
    a killed process or a concurrent worker must not leave a torn result."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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
            table = table.sort_values("trial_id", kind="stable")
        atomic_write_text(csv_path, table.to_csv(index=False))
        atomic_write_text(csv_path.with_name(SUMMARY_CSV), summarize(table).to_csv(index=False))
    return table


def summarize(table):
    """One row per grid point: runs, completed, and mean/std/min/max/n of every metric over
    the point's completed repeats (a diverged repeat counts in runs, not in the means)."""
    import pandas as pd

    if table.empty or "status" not in table:
        return pd.DataFrame()
    keys = [axis for axis in AXES if axis in table.columns]
    done = table.assign(completed=table["status"] == "completed")
    grouped = done.groupby(keys, sort=False, dropna=False)
    summary = grouped.agg(runs=("status", "size"), completed=("completed", "sum"))
    metrics = [m for m in SUMMARY_METRICS if m in table.columns]
    stats = (done[done["completed"]].groupby(keys, sort=False, dropna=False)[metrics]
             .agg(["mean", "std", "min", "max", "count"]))
    stats.columns = [f"{metric}_{'n' if stat == 'count' else stat}" for metric, stat in stats.columns]
    return summary.join(stats).reset_index()


def has_repeats(table) -> bool:
    return REPEAT_AXIS in table.columns and table[REPEAT_AXIS].nunique() > 1


def read_result(path: Path) -> dict | None:
    """A trial's row, or None where the file is missing or damaged (the trial then counts
    as unfinished, and the next run of the search trains it again)."""
    try:
        row = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return row if isinstance(row, dict) and "trial_id" in row and "status" in row else None


def claim_results(out: Path, grid_name: str, overwrite: bool) -> None:
    """Make <out>'s table and exports this grid's, refusing to replace another grid's.

    experiment_results.csv and models/ hold one grid's results: a second grid run into the
    same folder would silently replace the first one's table and exports. The claim is
    made under a lock and marks the folder at once (tuner/<grid>/), so a second grid
    started at the same moment, before the first has a table, is refused too.
    """
    owner_file, csv_path = out / RESULTS_OWNER, out / RESULTS_CSV
    with open(out / f"{RESULTS_OWNER}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        owner = owner_file.read_text().strip() if owner_file.is_file() else None
        claimed = owner and (csv_path.exists() or (out / "tuner" / owner).is_dir())
        if claimed and owner != grid_name and not overwrite:
            raise ResultsError(f"{out} holds the results of grid {owner!r} ({RESULTS_CSV}, "
                               f"models/, tuner/{owner}/, or a search of it still running); "
                               f"run grid {grid_name!r} with another --out, or pass "
                               "--overwrite to replace them")
        if owner != grid_name:
            if overwrite:
                csv_path.unlink(missing_ok=True)
                shutil.rmtree(out / "models", ignore_errors=True)
            atomic_write_text(owner_file, grid_name + "\n")
        (out / "tuner" / grid_name).mkdir(parents=True, exist_ok=True)


# keras-tuner's own files in a project folder; everything else there is ours.
OUR_PROJECT_FILES = ("grid.json", "data.json")


def repair_tuner_state(project: Path, tuner_file: str | None = None) -> str | None:
    """Drop keras-tuner's state in `project` when a file of it is damaged; returns what
    was damaged (None when all was well).

    keras-tuner writes oracle.json, trial_*/trial.json and <tuner id>.json in place, so a
    full disk or a kill mid-write leaves one empty or cut, and its reload then fails on
    every rerun. They only mirror the trial records (trial_*/result.json, runs/*/run.json):
    without them the search hands out the grid again, and each trial finished before is
    taken from its record, not trained again. tuner_file: check only this process' own
    tuner file (a worker; the chief or a lone process checks the whole state).
    """
    if not project.is_dir():
        return None
    tuner_files = [tuner_file] if tuner_file else [
        p.name for p in project.glob("*.json") if p.name not in (*OUR_PROJECT_FILES, "oracle.json")]
    damaged = [name for name in tuner_files if (project / name).exists()
               and _read_json(project / name) is None]
    if not tuner_file:
        trial_ids = set()
        for path in sorted(project.glob("trial_*/trial.json")):
            trial = _read_json(path)
            if trial is None or "trial_id" not in trial:
                damaged.append(str(path.relative_to(project)))
            else:
                trial_ids.add(trial["trial_id"])
        oracle = project / "oracle.json"
        state = _read_json(oracle) if oracle.exists() else None
        if oracle.exists() and (state is None or not isinstance(state.get("ongoing_trials"), dict)
                                or not set(state["ongoing_trials"].values()) <= trial_ids):
            damaged.append("oracle.json")
        elif not oracle.exists() and any((project / name).exists() for name in tuner_files):
            damaged.append("oracle.json (missing)")
    if not damaged:
        return None
    for name in tuner_files:
        (project / name).unlink(missing_ok=True)
    if not tuner_file:
        (project / "oracle.json").unlink(missing_ok=True)
        for path in project.glob("trial_*/trial.json"):
            path.unlink()
    return ", ".join(damaged)


def _read_json(path: Path) -> dict | None:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def check_out_folder(out: Path) -> None:
    """A results folder that exists or can be made, and can be written to."""
    if out.exists() and not out.is_dir():
        raise ResultsError(f"--out {out} is a file; give a folder for the results")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write_test.{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise ResultsError(f"cannot write to --out {out} ({err.strerror or err}); "
                           "choose a folder you can write to") from None


def inside(folder: Path, relative: str) -> Path | None:
    """folder/relative if it stays inside folder (a record's path may not point elsewhere)."""
    if not relative or not isinstance(relative, str):
        return None
    path = (folder / relative).resolve()
    return path if path.is_relative_to(folder.resolve()) else None


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
    return (f"[{done}/{total}] {settings} lr={row['learning_rate']:g} bs={row['batch_size']} "
            f"ep={row['epochs']} -> {outcome} ({row['seconds']:.0f} s), "
            f"ETA {time.strftime('%H:%M:%S', time.gmtime(eta))}")


def lower_is_better(metric: str) -> bool:
    """Losses (and times) rank lowest first, accuracies highest first: the one rule of the
    search's ranking and of plot's charts."""
    return metric.endswith("loss") or metric == "seconds"


def ranked(table, objective: str):
    """Completed trials, best first."""
    done = table[table["status"] == "completed"]
    return done.sort_values(objective, ascending=lower_is_better(objective), kind="stable")


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
    print(best[columns].to_string(index=False))


def _print_top_points(table, objective: str, k: int, summary: str) -> None:
    """With repeats, the best grid points by their mean, with the spread over the repeats."""
    points = summarize(table)
    mean, std = f"{objective}_mean", f"{objective}_std"
    if mean not in points:
        print(f"{summary}; {objective} has no values to rank by")
        return
    best = points.sort_values(mean, ascending=lower_is_better(objective), kind="stable").head(k)
    varying = [a for a in AXES if a in points and points[a].nunique() > 1] or \
        [a for a in AXES if a in points][:1]
    print(f"{summary}; best {len(best)} grid points by mean {objective} over "
          f"{table[REPEAT_AXIS].nunique()} repeats:")
    print(best[[*varying, mean, std, "completed", "runs"]].round(4).to_string(index=False))


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
