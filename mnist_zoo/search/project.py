"""The search's folders: <out> holds one grid's table and exports, <out>/tuner/<grid>/
(the project) that grid's keras-tuner state, trial records and runs.

Here are the checks made before a search starts: --out can be written, it holds this
grid's results or none (`claim_results`), the project was searched with this grid and
data (`check_same_grid`, `check_same_data`), keras-tuner's state in it is readable
(`repair_tuner_state`); and the one clean-up of --overwrite (`clear_results`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import time
from pathlib import Path

from mnist_zoo import data as data_lib
from mnist_zoo.errors import GridError, ResultsError
from mnist_zoo.files import atomic_write_text
from mnist_zoo.search.table import RESULTS_CSV, SUMMARY_CSV

RESULTS_OWNER = ".results_grid"  # which grid's table and exports <out> holds
SEARCH_LOCK = ".search_running"  # locked by the search that runs on <out>, for its lifetime
# Set by a process that holds <out>'s lock for the processes it starts (--jobs' chief).
LOCK_HELD_ENV = "MNIST_ZOO_SEARCH_LOCK_HELD"


def project_dir(out: Path, grid_name: str) -> Path:
    return Path(out) / "tuner" / grid_name


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


@contextlib.contextmanager
def search_lock(out: Path):
    """Hold <out>'s search lock while the block runs: a second search on the same --out
    (an --overwrite would delete the first one's trials, then both would train into one
    folder) is refused in one line naming the running one. An flock: the kernel lets it
    go when the holder dies, however it dies. Processes started by the holder (--jobs'
    chief and workers, LOCK_HELD_ENV) run under its lock."""
    if os.environ.get(LOCK_HELD_ENV) == str(Path(out).resolve()):
        yield
        return
    lock = open(Path(out) / SEARCH_LOCK, "a+")
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            running = lock.read().strip() or "another process"
            raise ResultsError(f"another search is running on --out {out} ({running}); wait "
                               "for it to end or stop it, or choose another --out") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M')}: "
                   f"{' '.join(sys.argv[1:])[:200] or sys.argv[0]}\n")
        lock.flush()
        yield
    finally:
        lock.close()  # releases the flock


def claim_results(out: Path, grid_name: str, overwrite: bool) -> None:
    """Make <out>'s table and exports this grid's, refusing to replace another grid's.

    experiment_results.csv and models/ hold one grid's results: a second grid run into the
    same folder would silently replace the first one's table and exports. The claim is
    made under a lock and marks the folder at once (tuner/<grid>/), so a second grid
    started at the same moment, before the first has a table, is refused too.
    overwrite: take the folder whoever holds it, and start this grid afresh.
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
        if overwrite:
            clear_results(out, grid_name)
        if owner != grid_name:
            atomic_write_text(owner_file, grid_name + "\n")
        (out / "tuner" / grid_name).mkdir(parents=True, exist_ok=True)


def clear_results(out: Path, grid_name: str) -> None:
    """--overwrite: remove the table, its summary, the exports and the grid's project
    (trials, runs, keras-tuner's state), before any process starts on the folder."""
    for name in (RESULTS_CSV, SUMMARY_CSV):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "models", ignore_errors=True)
    shutil.rmtree(project_dir(out, grid_name), ignore_errors=True)


def check_same_grid(project: Path, axes: dict, settings: dict, dataset: str) -> None:
    """Refuse to resume a project made from a different grid, naming what changed
    (--overwrite clears it first, in claim_results). A random or Bayesian search may grow
    (a larger max_trials), a Hyperband one run more iterations: the search goes on, its
    finished trials kept."""
    fingerprint = json.loads(json.dumps({"axes": axes, "settings": settings,
                                         "dataset": dataset}, sort_keys=True))
    marker = project / "grid.json"
    earlier = _read_json(marker) if marker.exists() else None
    # Only finished trials are worth protecting: a search that failed before its first
    # trial (a grid keras-tuner refused, say) must not block the corrected grid.
    if (earlier is not None and earlier != fingerprint
            and any(project.glob("trial_*/result.json"))):
        _check_growth(project, earlier, fingerprint)
    project.mkdir(parents=True, exist_ok=True)
    if earlier != fingerprint:
        # Atomic: with --jobs the chief and the workers all check this file at start-up,
        # and a half-written one would read as a different grid.
        atomic_write_text(marker, json.dumps(fingerprint, sort_keys=True))


# What a search may grow by, per strategy: more draws, or more of Hyperband's iterations.
GROWING_BUDGET = {"random": "max_trials", "bayesian": "max_trials", "hyperband": "iterations"}
GROWING_OPTION = {"max_trials": "--max-trials", "iterations": "[search] iterations ="}


def _check_growth(project: Path, earlier: dict, now: dict) -> None:
    """Allow a search that only grew its budget (GROWING_BUDGET); else a GridError naming
    what changed."""
    changes = grid_changes(earlier, now)
    search_now = now["settings"].get("search", {})
    budget = GROWING_BUDGET.get(search_now.get("strategy"))
    budget_only = budget and all(change.startswith(f"{budget} ") for change in changes)
    before = earlier["settings"].get("search", {}).get(budget)
    if budget_only and before is not None and search_now.get(budget, 0) > before:
        return
    if budget_only:
        raise GridError(f"{project} holds a {search_now['strategy']} search with {budget} "
                        f"{before}; it can grow, not shrink (its trials are drawn already): "
                        f"give {GROWING_OPTION[budget]} {before} or more, --overwrite to start "
                        "afresh, or another --out")
    raise GridError(f"{project} holds a search of another grid: {'; '.join(changes)}; rerun "
                    "it as it was, pass --overwrite to start afresh, or another --out")


def grid_changes(earlier: dict, now: dict) -> list[str]:
    """What differs between two grid.json fingerprints, one phrase each: 'strategy random
    -> bayesian', 'axis learning_rate [0.01, 0.1] -> [0.01]', 'dataset mnist -> ...'."""
    pairs = [("dataset", earlier.get("dataset"), now.get("dataset"))]
    for part, prefix in (("axes", "axis "), ("settings", "")):
        old, new = earlier.get(part, {}), now.get(part, {})
        for key in sorted(set(old) | set(new)):
            if key == "search" and part == "settings":
                old_search, new_search = old.get(key, {}), new.get(key, {})
                pairs += [(name, old_search.get(name), new_search.get(name))
                          for name in sorted(set(old_search) | set(new_search))]
            else:
                pairs.append((prefix + key, old.get(key), new.get(key)))
    return [f"{name} {_short(old)} -> {_short(new)}" for name, old, new in pairs if old != new]


def _short(value) -> str:
    text = "none" if value is None else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_same_data(project: Path, data: data_lib.DigitData) -> None:
    """Refuse to resume on other data than the trials so far saw (one table, one dataset)."""
    identity = data_lib.data_identity(data)
    marker = project / "data.json"
    if marker.exists():
        earlier = json.loads(marker.read_text())
        same = lambda a, b: {**a, "source": ""} == {**b, "source": ""}  # noqa: E731
        if not same(earlier, identity):  # the same digits from another folder are fine
            raise GridError(
                f"{project} was searched on other data ({_describe(earlier)}) than this run "
                f"loaded ({_describe(identity)}); pass the same --dataset/--data-dir, "
                "--overwrite to start afresh, or another --out")
    else:
        atomic_write_text(marker, json.dumps(identity, sort_keys=True))


def _describe(identity: dict) -> str:
    return (f"{identity['dataset']} from {identity['source']}, {identity['train']}/"
            f"{identity['val']}/{identity['test']} images, checksum {identity['sha1']}")


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


def repair_and_warn(project: Path, tuner_file: str | None = None) -> None:
    """repair_tuner_state, saying what was damaged."""
    damaged = repair_tuner_state(project, tuner_file)
    if damaged:
        print(f"warning: keras-tuner's state in {project} was damaged ({damaged}); rebuilt "
              "it from the trial records", flush=True)
