"""Grid search over zoo models with keras-tuner.

    python -m mnist_zoo.search --grid full              # the 81-trial lab grid
    python -m mnist_zoo.search --grid my_grid.toml --data-dir DIR

Grids are TOML files (search/*.toml): an [axes] table of lists, one trial per
combination, and an optional [settings] table (subset, validation_size, seed).
keras-tuner's grid oracle enumerates the grid; each finished trial is written to
<out>/tuner/<grid>/trial_*/result.json (its model and history.csv under runs/) and
the whole table to <out>/experiment_results.csv (atomic replace). Trials that differ
only in optimizer settings are trained together as one wide graph (mnist_zoo.fused;
--no-fuse trains them one by one). Rerunning the same command resumes: only the
trials not yet finished are run. --overwrite starts afresh. The same resuming lets a
training process whose memory has grown past --max-memory-growth (TensorFlow keeps a
little of every model built) replace itself with a fresh one mid-search.

Distributed (keras-tuner's chief/worker mode, sharing one --out folder):
    python -m mnist_zoo.search --grid full --chief  &         # the oracle
    python -m mnist_zoo.search --grid full --worker 0 &       # as many as you like
    python -m mnist_zoo.search --grid full --worker 1
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import hashlib
import itertools
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import numpy as np

from mnist_zoo import data as data_lib
from mnist_zoo.models import ACTIVATIONS, LR_SCHEDULES, OPTIMIZERS, list_models

GRID_DIRS = [
    Path.cwd() / "search",
    Path(__file__).resolve().parent.parent / "search",  # a source checkout / editable install
    Path(sys.prefix) / "share" / "mnist_zoo" / "search",  # installed by setup.cfg data_files
]
RESULTS_CSV = "experiment_results.csv"
# Every trial has these axes, with train's defaults where a grid leaves one out.
CORE_AXES = {"model": "lenet5", "activation": "relu", "learning_rate": 0.001,
             "optimizer": "adam", "batch_size": 64, "epochs": 3}
METRIC_COLUMNS = ["train_loss", "train_accuracy", "val_loss", "val_accuracy",
                  "test_loss", "test_accuracy"]
SETTINGS = {"subset": int, "validation_size": int, "seed": int}
# Axes that only change the optimizer: trials differing in these alone can be fused.
OPTIMIZER_AXES = ("learning_rate", "optimizer", "momentum", "lr_schedule")
# A trial diverged when its loss turned NaN/inf, or rose far above a guess's: cross-entropy
# of a uniform guess over 10 classes is ln 10 = 2.3, and no learning run ends 100x above it.
DIVERGED_LOSS = 100 * math.log(10)


class MemoryRestart(Exception):
    """Raised after a trial when this process has grown past its memory allowance.

    TensorFlow keeps a few MiB of every model a process has built, whatever
    clear_session() says, so a long search climbs trial by trial. The search resumes
    from its trial folders, so the cure is cheap: a fresh process (see main)."""


def resident_mib(pid: int | str = "self") -> float | None:
    """A process' resident memory now, in MiB (None where /proc is missing or it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class GridError(ValueError):
    """A grid file that cannot be run; the message names the file, key and allowed values."""


# --------------------------------------------------------------------------- grid files
def _check_choice(allowed):
    def check(value):
        if value not in allowed:
            return f"choose from {', '.join(map(str, allowed))}"
    return check


def _check_number(kind, low, high=None, low_inclusive=False):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
            return f"expected {'a number' if kind is float else 'an integer'}"
        if value < low or (value == low and not low_inclusive) or (high and value >= high):
            bound = f"{'>=' if low_inclusive else '>'} {low}" + (f" and < {high}" if high else "")
            return f"expected a value {bound}"
    return check


def _check_augment(value):
    try:
        data_lib.parse_augment(value)
    except (ValueError, AttributeError, TypeError):
        return (f"choose 'none', 'all' or a '+'-joined subset of "
                f"{', '.join(data_lib.AUGMENTATIONS)}")


AXIS_CHECKS = {
    "model": _check_choice(list_models()),
    "activation": _check_choice(ACTIVATIONS),
    "learning_rate": _check_number(float, 0),
    "optimizer": _check_choice(OPTIMIZERS),
    "batch_size": _check_number(int, 1, low_inclusive=True),
    "epochs": _check_number(int, 1, low_inclusive=True),
    "momentum": _check_number(float, 0, 1, low_inclusive=True),
    "dropout": _check_number(float, 0, 1, low_inclusive=True),
    "pooling": _check_choice(["avg", "max"]),
    "augment": _check_augment,
    "lr_schedule": _check_choice(LR_SCHEDULES),
}


def find_grid(grid: str) -> Path:
    """A grid's file: a path as given, else NAME.toml in the known grid folders."""
    path = Path(grid)
    if path.suffix == ".toml" or path.is_file():  # (a folder named like a grid is no grid)
        if not path.is_file():
            raise GridError(f"grid file {path} does not exist")
        return path
    for folder in GRID_DIRS:
        if (folder / f"{grid}.toml").is_file():
            return folder / f"{grid}.toml"
    known = sorted({p.stem for folder in GRID_DIRS if folder.is_dir()
                    for p in folder.glob("*.toml")})
    raise GridError(f"unknown grid {grid!r}; built-in grids: {', '.join(known) or 'none found'}; "
                    "or give the path of a .toml file")


def load_grid(grid: str) -> dict:
    """Read and check a grid file: {'name', 'path', 'axes': {axis: [values]}, 'settings'}."""
    path = find_grid(grid)
    try:
        spec = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise GridError(f"{path}: not valid TOML ({err})") from err
    unknown_tables = set(spec) - {"description", "axes", "settings"}
    if unknown_tables:
        raise GridError(f"{path}: unknown key(s) {sorted(unknown_tables)}; a grid has "
                        "'description', an [axes] table and an optional [settings] table")
    axes = spec.get("axes")
    if not isinstance(axes, dict) or not axes:
        raise GridError(f"{path}: no [axes] table; add one, e.g. activation = [\"relu\", \"tanh\"]")
    for axis, values in axes.items():
        if axis not in AXIS_CHECKS:
            raise GridError(f"{path}: unknown axis {axis!r}; allowed axes: "
                            f"{', '.join(AXIS_CHECKS)}")
        if not isinstance(values, list) or not values:
            raise GridError(f"{path}: axis {axis!r} must be a non-empty list, e.g. "
                            f"{axis} = [{CORE_AXES.get(axis, '...')!r}]")
        for value in values:
            problem = AXIS_CHECKS[axis](value)
            if problem:
                raise GridError(f"{path}: {axis} = {value!r} is not allowed: {problem}")
        if len(set(map(str, values))) != len(values):
            raise GridError(f"{path}: axis {axis!r} lists a value twice: {values}")
    settings = spec.get("settings", {})
    for key, value in settings.items():
        if key not in SETTINGS:
            raise GridError(f"{path}: unknown setting {key!r}; allowed settings: "
                            f"{', '.join(SETTINGS)}")
        if not isinstance(value, SETTINGS[key]) or isinstance(value, bool) or value < 0:
            raise GridError(f"{path}: setting {key} = {value!r} must be a non-negative integer")
    # Core axes first, in their usual order, then any extra axes as written.
    full_axes = {axis: axes.get(axis, [default]) for axis, default in CORE_AXES.items()}
    full_axes.update({axis: values for axis, values in axes.items() if axis not in CORE_AXES})
    return {"name": path.stem, "path": path, "axes": full_axes, "settings": settings,
            "description": spec.get("description", "")}


def grid_size(axes: dict) -> int:
    return math.prod(len(values) for values in axes.values())


def grid_points(axes: dict) -> list[dict]:
    """Every combination, as dicts (what the CSV should end up holding)."""
    return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]


# --------------------------------------------------------------------------- results table
def write_results_csv(project_dir: Path, csv_path: Path):
    """Rebuild the CSV from every trial's result.json, replacing the file atomically.

    The trial folders are the source of truth, so a resumed or distributed search
    lists each trial exactly once; the lock keeps concurrent workers from
    replacing a newer table with an older one.
    """
    import pandas as pd

    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path.with_name(f".{csv_path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = [json.loads(p.read_text()) for p in sorted(project_dir.glob("trial_*/result.json"))]
        table = pd.DataFrame(rows)
        if not table.empty:
            table = table.sort_values("trial_id", kind="stable")
        tmp = csv_path.with_name(f".{csv_path.name}.{os.getpid()}.tmp")
        table.to_csv(tmp, index=False)
        os.replace(tmp, csv_path)
    return table


def fusion_key(values: dict) -> str:
    """Trials with equal keys differ only in optimizer settings, so they see the same
    batches and can be trained together."""
    shared = {k: v for k, v in values.items() if k not in OPTIMIZER_AXES}
    return hashlib.sha1(json.dumps(shared, sort_keys=True).encode()).hexdigest()


def _finite(value) -> bool:
    return value is not None and math.isfinite(value)


# --------------------------------------------------------------------------- keras-tuner
def make_hyperparameters(axes: dict):
    """Register every axis up front (default = first value) so GridSearch keeps file order."""
    import keras_tuner as kt

    hp = kt.HyperParameters()
    for axis, values in axes.items():
        hp.Choice(axis, values, default=values[0])
    return hp


def _make_tuner_class():
    """The Tuner subclass, made lazily so importing this module does not import TensorFlow."""
    import keras
    import keras_tuner as kt
    import tensorflow as tf

    import pandas as pd

    from mnist_zoo.fused import can_fuse, evaluate_fused, fit_fused
    from mnist_zoo.models import build_model, model_settings
    from mnist_zoo.train import STEPS_PER_EXECUTION

    TrialStatus = kt.engine.trial.TrialStatus

    @functools.cache
    def fusable(model_name: str) -> bool:
        return can_fuse(build_model(model_name, compile=False))

    # Each trial is a new model, so TensorFlow's "retracing" warning is expected noise here.
    tf.get_logger().setLevel("ERROR")

    class ZooHyperModel(kt.HyperModel):
        """Builds a registry model from a trial's values.

        train_size (set once the data is loaded) lets a decaying learning rate
        span exactly the trial's epochs * steps per epoch.
        """

        train_size: int | None = None

        def build(self, hp):
            return self.build_values(hp.values)

        def build_values(self, values: dict):
            decay_steps = 1000
            if self.train_size:
                decay_steps = math.ceil(self.train_size / values["batch_size"]) * values["epochs"]
            accepted = model_settings(values["model"])
            extras = {key: values[key] for key in ("activation", "dropout", "pooling")
                      if key in values and key in accepted}
            return build_model(values["model"], optimizer=values["optimizer"],
                               learning_rate=values["learning_rate"],
                               momentum=values.get("momentum", 0.0),
                               lr_schedule=values.get("lr_schedule", "constant"),
                               decay_steps=decay_steps,
                               steps_per_execution=STEPS_PER_EXECUTION, **extras)

    class ResumableGridOracle(kt.oracles.GridSearchOracle):
        """keras-tuner's grid oracle, resumable.

        GridSearchOracle (1.4.8) keeps its walk through the grid in memory only: after
        a reload it fails with KeyError on the interrupted trial. Here the next point
        is simply the first grid point (in the grid file's order) that no trial has
        taken yet, which the reloaded trial files tell.
        """

        def __init__(self, points: list[dict], **kwargs):
            super().__init__(**kwargs)
            self.points = points

        def populate_space(self, trial_id):
            taken = {self._compute_values_hash(t.hyperparameters.values)
                     for t in self.trials.values()}
            for values in self.points:
                if self._compute_values_hash(values) not in taken:
                    return {"status": TrialStatus.RUNNING, "values": values}
            # IDLE: other workers' trials are still running; STOPPED: the grid is done.
            return {"status": TrialStatus.IDLE if self.ongoing_trials else TrialStatus.STOPPED,
                    "values": None}

    class ZooTuner(kt.Tuner):
        """A grid tuner whose run_trial trains with the trial's batch size and epochs,
        records everything about the trial, and never lets one bad trial stop the grid.

        With fuse=True the first trial of a fusion group (grid points that differ
        only in optimizer settings) trains the whole group at once (mnist_zoo.fused);
        the group's other trials then find their run already done. Runs live in
        <project>/runs/<values hash>/ (history.csv, model.keras, run.json).
        """

        def __init__(self, axes: dict, objective, *, total_trials: int, results_csv: Path,
                     seed: int, fuse: bool = True, max_memory_growth: float | None = None,
                     **kwargs):
            self.points = grid_points(axes)
            oracle = ResumableGridOracle(
                self.points, objective=objective, seed=seed,
                hyperparameters=make_hyperparameters(axes),
                # A failed trial is recorded and the grid goes on; only an unbroken run
                # of failures (a broken setup rather than a bad setting) stops it.
                max_consecutive_failed_trials=max(3, min(10, total_trials)))
            super().__init__(oracle, ZooHyperModel(), **kwargs)
            self.total_trials, self.results_csv, self.seed = total_trials, results_csv, seed
            self.fuse = fuse
            self.session_seconds: list[float] = []
            # Memory after the first trial this process trained; a later trial that ends
            # max_memory_growth (a fraction) above it raises MemoryRestart.
            self.max_memory_growth, self.baseline_mib = max_memory_growth, None
            self.trained_here, self.trials_done = False, 0

        def on_trial_end(self, trial):
            super().on_trial_end(trial)  # the oracle hears of the trial first: nothing is lost
            if not (self.max_memory_growth and self.trained_here):
                return
            now = resident_mib()
            if now is None or self.trials_done >= self.total_trials:
                return
            if self.baseline_mib is None:
                self.baseline_mib = now
            elif now > self.baseline_mib * (1 + self.max_memory_growth):
                raise MemoryRestart(f"memory grew from {self.baseline_mib:.0f} to {now:.0f} MiB "
                                    f"(+{now / self.baseline_mib - 1:.1%}) since the first trial")

        def run_trial(self, trial, data: data_lib.DigitData, fit_verbose: int = 0, **_):
            trial_dir = Path(self.get_trial_dir(trial.trial_id))
            values = dict(trial.hyperparameters.values)
            result_path = trial_dir / "result.json"
            if result_path.exists():  # finished before a kill, but the oracle never heard
                return self._objective_dict(json.loads(result_path.read_text()))
            row = {"trial_id": trial.trial_id, **values}
            try:
                row.update(self._run_of(values, data, fit_verbose))
            except Exception as err:  # record, then let keras-tuner mark the trial failed
                row.update({"status": "failed", "error": f"{type(err).__name__}: {err}",
                            "seconds": 0.0, "dataset": data.name, "seed": self.seed})
                self._record(row, trial_dir)
                raise kt.errors.FailedTrialError(row["error"]) from err
            self._record(row, trial_dir)
            return self._objective_dict(row)

        # ----------------------------------------------------------------- training
        def _run_dir(self, values: dict) -> Path:
            digest = hashlib.sha1(json.dumps(values, sort_keys=True).encode()).hexdigest()
            return Path(self.project_dir) / "runs" / digest[:16]

        def _run_of(self, values: dict, data, verbose: int) -> dict:
            """The finished run for these values, training it (and its group) if needed."""
            run_json = self._run_dir(values) / "run.json"
            while not run_json.exists():
                if self._train_group_of(values, data, verbose, wait=False):
                    continue
                # Another worker is training this group: rather than wait, train a
                # group nobody has started, then look again.
                if not self._train_some_other_group(data, verbose):
                    self._train_group_of(values, data, verbose, wait=True)
            return json.loads(run_json.read_text())

        def _train_group_of(self, values: dict, data, verbose: int, wait: bool) -> bool:
            """Train the unfinished trials of values' fusion group, holding the group's
            lock; False when another process holds it and wait is False."""
            lock_path = Path(self.project_dir) / "runs" / f"{fusion_key(values)[:16]}.lock"
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            with open(lock_path, "w") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
                except BlockingIOError:
                    return False
                group = [p for p in self._fusion_group(values)
                         if not (self._run_dir(p) / "run.json").exists()]
                if group:
                    self._train_together(group, data, verbose)
            return True

        def _train_some_other_group(self, data, verbose: int) -> bool:
            for values in self.points:
                if (self._run_dir(values) / "run.json").exists():
                    continue
                try:
                    if self._train_group_of(values, data, verbose, wait=False):
                        return True
                except Exception:  # its own trial will run it again and record the error
                    return False
            return False

        def _fusion_group(self, values: dict) -> list[dict]:
            if not self.fuse or not fusable(values["model"]):
                return [values]
            key = fusion_key(values)
            return [p for p in self.points if fusion_key(p) == key]

        def _train_together(self, group: list[dict], data, verbose: int) -> None:
            # Graphs of earlier trials would otherwise pile up in this process.
            keras.backend.clear_session()
            self.trained_here = True
            self.hypermodel.train_size = len(data.x_train)
            models = []
            for values in group:
                keras.utils.set_random_seed(self.seed)  # each starts as it would alone
                models.append(self.hypermodel.build_values(values))
            first = group[0]
            train_batches = data_lib.make_batches(
                data.x_train, data.y_train, first["batch_size"], shuffle=True,
                augment=first.get("augment"), seed=self.seed)
            val_batches = data_lib.make_batches(data.x_val, data.y_val, 1024)
            started = time.perf_counter()
            if len(models) == 1:
                histories = [models[0].fit(
                    train_batches, validation_data=val_batches, epochs=first["epochs"],
                    verbose=verbose, shuffle=False,
                    callbacks=[keras.callbacks.TerminateOnNaN()]).history]
                tests = [models[0].evaluate(data.x_test, data.y_test, batch_size=1024,
                                            verbose=0, return_dict=True)]
            else:
                fused, histories = fit_fused(models, train_batches, val_batches,
                                             first["epochs"], STEPS_PER_EXECUTION, verbose)
                tests = evaluate_fused(fused, data.x_test, data.y_test)
            seconds = (time.perf_counter() - started) / len(models)
            for values, model, history, test in zip(group, models, histories, tests):
                self._save_run(values, model, history, test, seconds, len(models), data)

        def _save_run(self, values, model, history, test, seconds, group_size, data):
            run_dir = self._run_dir(values)
            run_dir.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(history).rename_axis("epoch").to_csv(run_dir / "history.csv")
            last = {key: float(series[-1]) for key, series in history.items()}
            losses = history.get("loss", [])
            diverged = (not losses or not all(map(_finite, losses))
                        or losses[-1] > DIVERGED_LOSS or not _finite(test["loss"]))
            if not diverged:
                model.save(run_dir / "model.keras")
            relative = lambda name: str((run_dir / name).relative_to(self.results_csv.parent))  # noqa: E731
            run = {
                # train_* are the last epoch's running figures, as Keras reports them.
                "train_loss": last.get("loss"), "train_accuracy": last.get("accuracy"),
                "val_loss": last.get("val_loss", math.nan),
                "val_accuracy": last.get("val_accuracy", math.nan),
                "test_loss": float(test["loss"]) if not diverged else math.nan,
                "test_accuracy": float(test["accuracy"]) if not diverged else math.nan,
                "epochs_run": len(losses), "params": model.count_params(),
                "status": "diverged" if diverged else "completed", "error": "",
                # A fused group's wall time is shared out evenly among its trials.
                "seconds": round(seconds, 2), "trained_with": group_size,
                "dataset": data.name, "seed": self.seed,
                "history_path": relative("history.csv"),
                "model_path": "" if diverged else relative("model.keras"),
            }
            tmp = run_dir / "run.json.tmp"
            tmp.write_text(json.dumps(run, indent=1))
            os.replace(tmp, run_dir / "run.json")  # written last: the run is complete

        # ----------------------------------------------------------------- bookkeeping
        def _record(self, row, trial_dir):
            for column in METRIC_COLUMNS:
                row.setdefault(column, math.nan)
            trial_dir.mkdir(parents=True, exist_ok=True)
            tmp = trial_dir / "result.json.tmp"
            tmp.write_text(json.dumps(row, indent=1))
            os.replace(tmp, trial_dir / "result.json")
            table = write_results_csv(Path(self.project_dir), self.results_csv)
            self.trials_done = len(table)
            self.session_seconds.append(row["seconds"])
            print(progress_line(row, len(table), self.total_trials, self.session_seconds),
                  flush=True)

        def _objective_dict(self, row):
            # The oracle cannot rank NaN: a diverged or failed trial counts as the worst.
            acc = lambda v: v if _finite(v) else 0.0  # noqa: E731
            loss = lambda v: v if _finite(v) else 1e9  # noqa: E731
            return {"val_accuracy": acc(row.get("val_accuracy")),
                    "val_loss": loss(row.get("val_loss")),
                    "accuracy": acc(row.get("train_accuracy")),
                    "loss": loss(row.get("train_loss")),
                    "test_accuracy": acc(row.get("test_accuracy")),
                    "test_loss": loss(row.get("test_loss"))}

    return ZooTuner


def progress_line(row: dict, done: int, total: int, session_seconds: list[float]) -> str:
    settings = " ".join(str(row[key]) for key in ("model", "activation", "optimizer"))
    eta = np.mean(session_seconds) * max(total - done, 0)
    outcome = (f"val_acc {row['val_accuracy']:.4f}" if row["status"] == "completed"
               else row["status"].upper() + (f" ({row['error'][:80]})" if row.get("error") else ""))
    return (f"[{done}/{total}] {settings} lr={row['learning_rate']:g} bs={row['batch_size']} "
            f"ep={row['epochs']} -> {outcome} ({row['seconds']:.0f} s), "
            f"ETA {time.strftime('%H:%M:%S', time.gmtime(eta))}")


# --------------------------------------------------------------------------- the search
def search(grid: str = "smoke", *, dataset: str = "mnist", data_dir=None, out="results",
           epochs: int | None = None, subset: int | None = None, seed: int | None = None,
           objective: str = "val_accuracy", overwrite: bool = False, export_top: int = 3,
           show_top: int = 3, data: data_lib.DigitData | None = None, verbose: int | None = None,
           role: str | None = None, fuse: bool = True, max_memory_growth: float | None = None):
    """Run (or resume) a grid search; returns the results table as a pandas DataFrame.

    role: None for a single process, 'chief' or 'worker' in keras-tuner's distributed mode
    (the KERASTUNER_* environment variables must then be set).
    fuse: train trials that differ only in optimizer settings together (mnist_zoo.fused);
    False trains one trial at a time.
    max_memory_growth: raise MemoryRestart after a trial once this process' memory has
    grown by this fraction since its first trial (the command line then restarts it).
    """
    import keras_tuner as kt

    spec = load_grid(grid)
    axes = dict(spec["axes"])
    if epochs:
        axes["epochs"] = [epochs]
    settings = {**spec["settings"], **{k: v for k, v in
                                       (("subset", subset), ("seed", seed)) if v is not None}}
    seed = settings.get("seed", 0)
    out = Path(out)
    project = out / "tuner" / spec["name"]
    results_csv = out / RESULTS_CSV
    _guard_project(project, axes, settings, dataset, overwrite and role != "worker")
    if overwrite and role is None:
        results_csv.unlink(missing_ok=True)

    total = grid_size(axes)
    tuner = _make_tuner_class()(
        axes, kt.Objective(objective, "min" if objective.endswith("loss") else "max"),
        directory=str(out / "tuner"), project_name=spec["name"],
        overwrite=False,  # _guard_project already cleared the folder when asked to
        total_trials=total, results_csv=results_csv, seed=seed, fuse=fuse,
        max_memory_growth=max_memory_growth)
    if role == "chief":
        print(f"chief: serving grid {spec['name']} ({total} trials) on "
              f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}",
              flush=True)
    else:
        if data is None:
            data = data_lib.load_dataset(dataset, data_dir, subset=settings.get("subset"),
                                         validation_size=settings.get("validation_size"),
                                         seed=seed)
        print(f"grid {spec['name']}: {total} trials, {len(data.x_train)} training / "
              f"{len(data.x_val)} validation / {len(data.x_test)} test images from {data.source}",
              flush=True)
    if verbose is None:  # Keras' bar on a terminal; elsewhere our one line per trial is enough
        verbose = 1 if sys.stdout.isatty() else 0
    # verbose=0 silences keras-tuner's own trial tables; our progress line replaces them.
    tuner.search(data=data, fit_verbose=verbose, verbose=0)

    if role == "worker":  # the chief or a later plain run does the exporting
        return write_results_csv(project, results_csv)
    table = write_results_csv(project, results_csv)
    missing = total - len(table)
    if missing:
        print(f"warning: {missing} of {total} trials have no result; rerun to finish them")
    if not table.empty:
        print_top(table, objective, show_top)
        export_top_models(table, out, objective, export_top)
    print(f"results: {results_csv}")
    return table


def _guard_project(project: Path, axes: dict, settings: dict, dataset: str, overwrite: bool):
    """Refuse to resume a project made from a different grid, unless told to overwrite."""
    fingerprint = json.dumps({"axes": axes, "settings": settings, "dataset": dataset},
                             sort_keys=True)
    marker = project / "grid.json"
    if overwrite and project.exists():
        shutil.rmtree(project)
    if marker.exists() and marker.read_text() != fingerprint:
        raise GridError(f"{project} holds a search of a different grid, dataset or settings; "
                        "pass --overwrite to start afresh, or another --out")
    project.mkdir(parents=True, exist_ok=True)
    if not marker.exists():
        # Atomic: with --jobs the chief and the workers all check this file at start-up,
        # and a half-written one would read as a different grid.
        tmp = marker.with_name(f".grid.json.{os.getpid()}")
        tmp.write_text(fingerprint)
        os.replace(tmp, marker)


def ranked(table, objective: str):
    """Completed trials, best first."""
    done = table[table["status"] == "completed"]
    return done.sort_values(objective, ascending=objective.endswith("loss"), kind="stable")


def print_top(table, objective: str, k: int) -> None:
    columns = ["trial_id", *[c for c in table.columns if c in CORE_AXES or c in AXIS_CHECKS],
               "val_accuracy", "test_accuracy", "seconds"]
    best = ranked(table, objective).head(k)
    counts = table["status"].value_counts().to_dict()
    print(f"\n{len(table)} trials ({', '.join(f'{n} {s}' for s, n in counts.items())}); "
          f"best {len(best)} by {objective}:")
    print(best[list(dict.fromkeys(columns))].to_string(index=False))


def export_top_models(table, out: Path, objective: str, k: int) -> list[Path]:
    """Copy the top-k trials' .keras files to <out>/models/ and export each as a SavedModel."""
    import keras

    exported = []
    shutil.rmtree(out / "models", ignore_errors=True)  # an earlier, now outranked top-k
    for rank, row in enumerate(ranked(table, objective).head(k).itertuples(), start=1):
        if not row.model_path:
            continue
        target = out / "models" / f"top{rank}_trial_{row.trial_id}"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / row.model_path, target / "model.keras")
        model = keras.models.load_model(target / "model.keras")
        model.export(str(target / "saved_model"), format="tf_saved_model", verbose=False)
        exported.append(target)
    if exported:
        print(f"exported top {len(exported)} models to {out / 'models'}")
    return exported


# --------------------------------------------------------------------------- command line
def _percent(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a percentage >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mnist_zoo.search", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", default="smoke",
                        help="built-in grid name (full, mlp, quick, smoke) or a .toml file")
    data_lib.add_data_arguments(parser)
    parser.add_argument("--out", default="results", help="results folder (default: results/)")
    parser.add_argument("--epochs", type=int, default=None, help="override the grid's epochs")
    parser.add_argument("--subset", type=int, default=None,
                        help="train on this many training images (overrides the grid's)")
    parser.add_argument("--seed", type=int, default=None, help="seed for data split and weights")
    parser.add_argument("--objective", default="val_accuracy",
                        choices=["val_accuracy", "val_loss", "accuracy", "loss",
                                 "test_accuracy", "test_loss"],
                        help="what ranks the trials")
    parser.add_argument("--overwrite", action="store_true",
                        help="discard earlier results of this grid and start afresh")
    parser.add_argument("--export-top", type=int, default=3, metavar="K",
                        help="export the best K models as SavedModel and .keras (default 3)")
    parser.add_argument("--top", type=int, default=3, help="rows of the best-trials table")
    parser.add_argument("--no-fuse", action="store_true",
                        help="train one trial at a time instead of fusing trials that differ "
                             "only in optimizer settings (slower, same results)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="train in N local processes (keras-tuner's distributed mode on "
                             "127.0.0.1); 2 fills both cores of a 2-core machine")
    parser.add_argument("--threads", type=int, default=None,
                        help="TensorFlow intra-op threads per process (default: TensorFlow's "
                             "choice; with --jobs N: cores / N)")
    parser.add_argument("--max-memory-growth", type=_percent, default=3.0, metavar="PCT",
                        help="restart a training process (the search resumes where it was) "
                             "once its memory has grown PCT %% since its first trial: "
                             "TensorFlow keeps a few MiB of every model built (default 3; "
                             "0 turns it off)")
    parser.add_argument("--list-grids", action="store_true", help="list built-in grids and exit")
    dist = parser.add_argument_group("distributed (keras-tuner chief/worker)")
    role = dist.add_mutually_exclusive_group()
    role.add_argument("--chief", action="store_true", help="run the oracle that hands out trials")
    role.add_argument("--worker", metavar="ID", default=None,
                      help="run trials for the chief; ID unique per worker")
    dist.add_argument("--oracle", default="127.0.0.1:8000", metavar="HOST:PORT",
                      help="the chief's address (default 127.0.0.1:8000)")
    return parser


def without_overwrite(argv: list[str]) -> list[str]:
    """The arguments less --overwrite (or an abbreviation argparse would take for it), for a
    process that must go on with what is already done."""
    return [a for a in argv if not (len(a) >= 4 and "--overwrite".startswith(a))]


def run_local_jobs(args, argv: list[str]) -> int:
    """--jobs N: a chief and N workers on this machine, through keras-tuner's distributed
    mode; the chief prints the best trials and exports them when all are done."""
    import socket
    import subprocess

    if args.overwrite:  # done here once, before any process can start on the folder
        spec = load_grid(args.grid)
        shutil.rmtree(Path(args.out) / "tuner" / spec["name"], ignore_errors=True)
        (Path(args.out) / RESULTS_CSV).unlink(missing_ok=True)
    with socket.socket() as sock:  # a free port for the chief
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    passed_on = without_overwrite(argv)
    for flag in ("--jobs", "--threads"):  # drop "--flag N" and "--flag=N"
        passed_on = [a for i, a in enumerate(passed_on) if not a.startswith(flag + "=")
                     and a != flag and not (i and passed_on[i - 1] == flag)]
    base = [sys.executable, "-m", "mnist_zoo.search", *passed_on, "--oracle", address]
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    chief = subprocess.Popen([*base, "--chief"])
    time.sleep(2)  # let the chief open its port before the workers ask for trials
    workers = [subprocess.Popen([*base, "--worker", str(i), "--threads", str(threads)])
               for i in range(args.jobs)]
    try:
        codes = [w.wait() for w in workers]
        if any(codes):  # the chief would wait forever for trials nobody will run
            chief.terminate()
        codes.append(chief.wait())
    except KeyboardInterrupt:
        for process in (*workers, chief):
            process.terminate()
        raise
    return max(codes)


def list_grids() -> None:
    seen = set()
    for folder in GRID_DIRS:
        for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
            if path.stem not in seen:
                seen.add(path.stem)
                spec = load_grid(str(path))
                print(f"{path.stem:8s} {grid_size(spec['axes']):4d} trials  {spec['description']}")


def main(argv=None, restartable: bool = False) -> int:
    """The command line; restartable=True (python -m) lets a process whose memory grew
    past --max-memory-growth replace itself with a fresh one (os.execv, same PID)."""
    args = build_parser().parse_args(argv)
    if args.list_grids:
        list_grids()
        return 0
    role = "chief" if args.chief else ("worker" if args.worker is not None else None)
    if args.jobs > 1 and role is None:
        return run_local_jobs(args, sys.argv[1:] if argv is None else list(argv))
    if args.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    if role:
        host, _, port = args.oracle.rpartition(":")
        os.environ.update({"KERASTUNER_ORACLE_IP": host, "KERASTUNER_ORACLE_PORT": port,
                           "KERASTUNER_TUNER_ID": "chief" if role == "chief"
                           else f"tuner{args.worker}"})
    try:
        search(args.grid, dataset=args.dataset, data_dir=args.data_dir, out=args.out,
               epochs=args.epochs, subset=args.subset, seed=args.seed, objective=args.objective,
               overwrite=args.overwrite, export_top=args.export_top, show_top=args.top,
               role=role, fuse=not args.no_fuse,
               max_memory_growth=args.max_memory_growth / 100 if restartable else None)
    except MemoryRestart as restart:
        print(f"{restart}: restarting this process to give it back; the search resumes",
              flush=True)
        sys.stderr.flush()
        again = without_overwrite(sys.argv[1:])  # keep what is done
        os.execv(sys.executable, [sys.executable, "-m", "mnist_zoo.search", *again])
    except (GridError, data_lib.DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished trials are saved; rerun the same command to resume",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(restartable=True))
