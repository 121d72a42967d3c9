"""The keras-tuner pieces of the grid search: hypermodel, resumable oracle, tuner.

`ZooTuner.run_trial` trains the trial's grid point (with the other points that share
its batches, fused, when `fuse` is on) through `mnist_zoo.train.fit_models`, writes
the run to <project>/runs/<values key>/ and the trial's row to its trial folder.
Run folders are claimed with file locks, so keras-tuner's distributed workers (and
`--jobs`) never train the same group twice.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import logging
import math
import os
import time
import traceback
from pathlib import Path

import keras
import keras_tuner as kt
import pandas as pd
import tensorflow as tf
from keras_tuner.src import config as kt_config
from keras_tuner.src.distribute import utils as kt_dist

from mnist_zoo import data as data_lib
from mnist_zoo.fused import can_fuse
from mnist_zoo.grid import REPEAT_AXIS, batches_key, grid_points, values_key
from mnist_zoo.models import build_model, model_settings
from mnist_zoo.results import (atomic_write_text, objective_values, progress_line,
                               read_result, write_results_csv)
from mnist_zoo.train import STEPS_PER_EXECUTION, Fit, fit_models

TrialStatus = kt.engine.trial.TrialStatus
# keras-tuner asks again at once when the oracle has no trial free (others still run):
# without a pause, every waiting worker spins a core on gRPC calls.
IDLE_PAUSE_SECONDS = 0.5
# Each trial is a new model, so TensorFlow's "retracing" warning is expected noise here.
tf.get_logger().setLevel("ERROR")
# keras-tuner (1.4.8 ships DEBUG = True) prints every failed trial's traceback; a failed
# trial's row holds a one-line error and its folder the trace (ZooTuner.run_trial).
kt_config.DEBUG = False


class MemoryRestart(Exception):
    """Raised after a trial when this process has grown past its memory allowance.

    TensorFlow keeps a few MiB of every model a process has built, whatever
    clear_session() says, so a long search climbs trial by trial. The search resumes
    from its trial folders, so the cure is cheap: a fresh process (mnist_zoo.search)."""


# Why a trial failed decides what the search does next:
#  - it diverged (NaN loss): not a failure at all; the run is recorded as "diverged".
#  - the environment failed: the same failure would hit every later trial, so the search
#    stops at once with one line naming the cause and the fix (the trial stays unfinished
#    and a rerun after the fix trains it): a TensorFlow kernel that refuses these models
#    on this machine (InvalidArgument, Unimplemented, Internal: the data were checked when
#    they loaded, so the kernel, not the trial, is at fault), out of memory, a missing
#    library, or a folder the search cannot write (read-only, disk full).
#  - anything else is the trial's own (a setting its model refuses): its row is recorded
#    as failed with a one-line error, the full trace goes to its folder's error.txt, and
#    the grid goes on.
# A fused group that fails with a kernel or memory error is first retried one model at a
# time, which avoids the grouped kernels and needs a fraction of the memory.
KERNEL_ERRORS = (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError,
                 tf.errors.InternalError)
MEMORY_ERRORS = (tf.errors.ResourceExhaustedError, MemoryError)
ENVIRONMENT_ERRORS = (*KERNEL_ERRORS, *MEMORY_ERRORS, ImportError, OSError)
TRIAL_ERROR_FILE = "error.txt"
# At most this many models in one fused graph: wider groups are cut into parts (1,000
# repeats of one point fused at once built for minutes and grew past 6 GB).
FUSE_LIMIT = 32


class EnvironmentFailure(kt.errors.FatalError):
    """The search cannot go on here (see ENVIRONMENT_ERRORS); the message is one line
    naming the cause and the fix. A keras-tuner FatalError, so it ends the search."""


def first_line(err: BaseException, limit: int = 200) -> str:
    """The exception as one line: its type and the first line of its message."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    text = f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return text if len(text) <= limit else text[:limit] + "..."


def describe_failure(err: BaseException, out: Path, what: str = "") -> str:
    """One line for an environment failure: what failed, why, and what to change."""
    if isinstance(err, OSError) and not isinstance(err, tf.errors.OpError):
        where = err.filename or out
        reason = err.strerror or str(err)
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            fix = f"free some space under {out}"
        elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            fix = f"make {out} writable (or pass another --out)"
        else:
            fix = f"fix {where}"
        return f"cannot write {where} ({reason}); {fix}, then rerun the same command"
    if isinstance(err, MEMORY_ERRORS):
        return (f"out of memory training {what or 'a trial'} ({first_line(err)}); free memory, "
                "lower batch_size in the grid or use fewer --jobs, then rerun the same command")
    if isinstance(err, ImportError):
        return (f"a library is missing ({first_line(err)}); install it (pip install -e .), "
                "then rerun the same command")
    return (f"TensorFlow cannot train {what or 'this trial'} on this machine "
            f"({first_line(err)}); leave that model out of the grid or use another "
            "TensorFlow build, then rerun the same command")


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


# ----------------------------------------------------------------------------- TensorBoard
BOARD_METRICS = ("val_accuracy", "test_accuracy", "train_accuracy", "val_loss", "test_loss",
                 "train_loss", "epochs_run", "seconds")


def write_board_config(board_dir: Path, axes: dict) -> None:
    """The grid's axes and metrics for TensorBoard's HParams dashboard (table, parallel
    coordinates and scatter plots): `tensorboard --logdir <project>/tensorboard`."""
    from tensorboard.plugins.hparams import api as hparams

    writer = tf.summary.create_file_writer(str(board_dir))
    with writer.as_default():
        hparams.hparams_config(
            hparams=[hparams.HParam(axis, hparams.Discrete(values))
                     for axis, values in axes.items()],
            metrics=[hparams.Metric(name) for name in BOARD_METRICS])
    writer.close()  # on disk now, not when the garbage collector gets to it


def write_board_trial(board_dir: Path, row: dict, values: dict, history: pd.DataFrame) -> None:
    """One trial: its settings, its epoch curves and its final metrics (at the last epoch)."""
    from tensorboard.plugins.hparams import api as hparams

    writer = tf.summary.create_file_writer(str(board_dir / f"trial_{row['trial_id']}"))
    with writer.as_default():
        hparams.hparams(values, trial_id=row["trial_id"])
        for epoch, logs in history.iterrows():
            for name, value in logs.items():
                tf.summary.scalar(f"epoch_{name}", float(value), step=int(epoch))
        for name in BOARD_METRICS:
            if isinstance(row.get(name), (int, float)):
                tf.summary.scalar(name, float(row[name]), step=int(row.get("epochs_run") or 0))
    writer.close()


def make_hyperparameters(axes: dict) -> kt.HyperParameters:
    """Register every axis up front (default = first value), so that trial 1 has them all."""
    hp = kt.HyperParameters()
    for axis, values in axes.items():
        hp.Choice(axis, values, default=values[0])
    return hp


def repeat_of(values: dict) -> int:
    return values.get(REPEAT_AXIS, 0)


@functools.cache
def fusable(model_name: str) -> bool:
    return can_fuse(build_model(model_name, compile=False))


@functools.cache
def _model_size(model_name: str) -> tuple[int, int]:
    """(weights, activation values per image) of a zoo model."""
    model = build_model(model_name, compile=False)
    activations = sum(math.prod(layer.output.shape[1:]) for layer in model.layers
                      if hasattr(layer, "output") and layer.output is not None)
    return model.count_params(), activations


def member_bytes(model_name: str, batch_size: int) -> int:
    """A rough figure for one member of a fused group: its weights, gradients and two
    optimizer slots, and its activations kept for the backward pass (about three copies
    of each layer's output per image): 12.5 MiB for a LeNet-5 at batch 64 (1,000 of
    them fused at once had passed 6.3 GB, still building, after 240 s)."""
    weights, activations = _model_size(model_name)
    return 4 * (4 * weights + 3 * batch_size * activations)


def memory_bytes() -> int | None:
    """The machine's memory, MemTotal of /proc/meminfo (None where there is none). Not
    what is free now: every process of a search must cut the same groups, since a
    group's lock is named by its first point."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def fused_width(model_name: str, batch_size: int) -> int:
    """How many models of this kind one fused graph may hold: FUSE_LIMIT, or fewer when
    a quarter of the machine's memory would not hold them (with room for the data, the
    other --jobs processes and what TensorFlow keeps)."""
    memory = memory_bytes()
    if memory is None:
        return FUSE_LIMIT
    return max(1, min(FUSE_LIMIT, memory // 4 // member_bytes(model_name, batch_size)))


class ZooHyperModel(kt.HyperModel):
    """Builds a registry model from a trial's values.

    train_size (set once the data is loaded) lets a decaying learning rate span
    exactly the trial's epochs * steps per epoch.
    """

    train_size: int | None = None

    def build(self, hp):
        return self.build_values(hp.values)

    def build_values(self, values: dict) -> keras.Model:
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


class ResumableGridOracle(kt.Oracle):
    """Hands out the grid's points in the grid file's order, resumably.

    keras-tuner's GridSearchOracle (1.4.8) keeps its walk through the grid in memory
    only: after a reload it fails with KeyError on the interrupted trial. Here the next
    point is simply the first one no trial has taken yet, which the reloaded trial
    files tell.
    """

    def __init__(self, points: list[dict], **kwargs):
        super().__init__(**kwargs)
        self.points = points

    def reload(self):
        """Reload, and hand out again every trial that failed or left no readable result:
        a rerun after fixing the cause (data, disk) retries them, keeping the others.
        keras-tuner queues the trials that were running when the search stopped; a
        failed result.json of theirs goes too, or the rerun would take it for done."""
        super().reload()
        unfinished = [trial_id for trial_id in sorted(self.trials)
                      if not self._has_result(trial_id)]
        if unfinished:
            print(f"retrying {len(unfinished)} trial(s) that failed or left no result: "
                  f"{', '.join(unfinished)}", flush=True)
        self._retry_queue.extend(t for t in unfinished if t not in self._retry_queue)

    def _has_result(self, trial_id: str) -> bool:
        path = Path(self._get_trial_dir(trial_id)) / "result.json"
        row = read_result(path)
        if row is None or row["status"] == "failed":
            path.unlink(missing_ok=True)  # damaged or failed: its rerun writes a new one
            return False
        return True

    def populate_space(self, trial_id):
        taken = {self._compute_values_hash(t.hyperparameters.values)
                 for t in self.trials.values()}
        for values in self.points:
            if self._compute_values_hash(values) not in taken:
                return {"status": TrialStatus.RUNNING, "values": values}
        # IDLE: other workers' trials are still running; STOPPED: the grid is done.
        return {"status": TrialStatus.IDLE if self.ongoing_trials else TrialStatus.STOPPED,
                "values": None}


def serve_trials(oracle, poll_seconds: float = IDLE_PAUSE_SECONDS) -> None:
    """keras-tuner's chief (oracle_chief.start_server, 1.4.8) but for how it ends: once a
    worker is told the grid is done, keras-tuner checks every 20 s whether the others
    are too, so a finished grid waited up to 20 s for its report. This checks twice a
    second."""
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    # A call that fails here (the chief cannot save its state: a read-only or full
    # --out) reaches the worker as an error, which stops the search in one line; gRPC's
    # own log of it would add a traceback per call.
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    server.add_insecure_port(f"{os.environ['KERASTUNER_ORACLE_IP']}:"
                             f"{os.environ['KERASTUNER_ORACLE_PORT']}")
    server.start()
    while not (servicer.stop_triggered and oracle_chief.exit_chief(oracle)):
        time.sleep(poll_seconds)
    server.stop(grace=1)


def _pause_when_idle(create_trial):
    def create(tuner_id):
        trial = create_trial(tuner_id)
        if trial.status == TrialStatus.IDLE:
            time.sleep(IDLE_PAUSE_SECONDS)
        return trial
    return create


class ZooTuner(kt.Tuner):
    """A grid tuner whose run_trial trains with the trial's batch size and epochs,
    records everything about the trial, and never lets one bad trial stop the grid.

    With fuse=True the first trial of a group of grid points that share their batches
    trains the whole group at once; the group's other trials then find their run done.
    """

    def __init__(self, axes: dict, objective, *, results_csv: Path, seed: int,
                 fuse: bool = True, max_memory_growth: float | None = None,
                 tensorboard: bool = True, split_groups: int = 1, workers: int = 1,
                 **kwargs):
        self.points = grid_points(axes)
        self.total_trials = len(self.points)
        self.oracle_axes = list(axes)
        oracle = ResumableGridOracle(
            self.points, objective=objective, seed=seed,
            hyperparameters=make_hyperparameters(axes),
            # A failed trial is recorded and the grid goes on; only an unbroken run
            # of failures (a broken setup rather than a bad setting) stops it.
            max_consecutive_failed_trials=max(3, min(10, self.total_trials)))
        super().__init__(oracle, ZooHyperModel(), **kwargs)
        # In a worker self.oracle is now keras-tuner's gRPC client; pause on its answers too.
        self.oracle.create_trial = _pause_when_idle(self.oracle.create_trial)
        self.results_csv, self.seed, self.fuse = results_csv, seed, fuse
        self.split_groups, self.workers = split_groups, workers
        # The points sharing their batches, by batches_key, in the grid's order.
        self.groups: dict[str, list[dict]] = {}
        for values in self.points:
            self.groups.setdefault(batches_key(values), []).append(values)
        self.tail_groups = self._find_tail_groups()
        self.board_dir = Path(self.project_dir) / "tensorboard" if tensorboard else None
        self.board_seconds = 0.0  # what writing for TensorBoard has cost this process
        self.session_seconds: list[float] = []
        # Memory after the first trial this process trained; a later trial that ends
        # max_memory_growth (a fraction) above it raises MemoryRestart.
        self.max_memory_growth, self.baseline_mib = max_memory_growth, None
        self.trained_here, self.trials_done = False, 0

    # ------------------------------------------------------------------- trials
    def run_trial(self, trial, data: data_lib.DigitData, fit_verbose: int = 0, **_):
        values = dict(trial.hyperparameters.values)
        try:
            return self._run_and_record(trial, values, data, fit_verbose)
        except ENVIRONMENT_ERRORS as err:  # see the rule above ENVIRONMENT_ERRORS
            what = f"{values['model']} (batch size {values['batch_size']})"
            raise EnvironmentFailure(describe_failure(err, self.results_csv.parent,
                                                      what)) from err

    def _run_and_record(self, trial, values: dict, data, fit_verbose: int) -> dict:
        trial_dir = Path(self.get_trial_dir(trial.trial_id))
        result_path = trial_dir / "result.json"
        recorded = read_result(result_path)
        if recorded is not None and recorded["status"] != "failed" and all(
                recorded.get(axis) == value for axis, value in values.items()):
            return objective_values(recorded)  # finished before a kill; the oracle never heard
        (trial_dir / TRIAL_ERROR_FILE).unlink(missing_ok=True)
        row = {"trial_id": trial.trial_id, **values, REPEAT_AXIS: repeat_of(values)}
        try:
            row.update(self._run_of(values, data, fit_verbose))
        except (EnvironmentFailure, *ENVIRONMENT_ERRORS):
            raise
        except Exception as err:  # the trial's own: record it, and the grid goes on
            (trial_dir / TRIAL_ERROR_FILE).write_text(traceback.format_exc())
            row.update({"status": "failed", "error": first_line(err), "seconds": 0.0,
                        "dataset": data.name, "seed": self.seed + repeat_of(values)})
            self._record(row, trial_dir)
            raise kt.errors.FailedTrialError(row["error"]) from err
        self._record(row, trial_dir)
        return objective_values(row)

    def search(self, *fit_args, **fit_kwargs):
        if kt_dist.is_chief_oracle():  # keras-tuner's chief, with a faster exit
            self.oracle.verbose = fit_kwargs.get("verbose", 1)
            self.save()
            serve_trials(self.oracle)
            return
        super().search(*fit_args, **fit_kwargs)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)  # the oracle hears of the trial first: nothing is lost
        if not (self.max_memory_growth and self.trained_here):
            return
        now = resident_mib()
        if now is None or self.trials_done >= self.total_trials:
            return
        if self.baseline_mib is None:
            self.baseline_mib = now
        # A process with nothing left to train has no use for a fresh start.
        elif now > self.baseline_mib * (1 + self.max_memory_growth) and self._work_left():
            raise MemoryRestart(f"memory grew from {self.baseline_mib:.0f} to {now:.0f} MiB "
                                f"(+{now / self.baseline_mib - 1:.1%}) since the first trial")

    def _record(self, row: dict, trial_dir: Path) -> None:
        table = write_results_csv(Path(self.project_dir), self.results_csv, row, trial_dir)
        self._log_to_board(row)
        self.trials_done = len(table)
        self.session_seconds.append(row["seconds"])
        print(progress_line(row, len(table), self.total_trials, self.session_seconds),
              flush=True)

    def _log_to_board(self, row: dict) -> None:
        """TensorBoard's copy of the trial; a failure here costs the view, not the result."""
        if self.board_dir is None or row.get("status") == "failed":
            return
        started = time.perf_counter()
        try:
            values = {axis: row[axis] for axis in self.oracle_axes if axis in row}
            history = pd.read_csv(self.results_csv.parent / row["history_path"], index_col=0)
            write_board_trial(self.board_dir, row, values, history)
        except Exception as err:  # noqa: BLE001 (any error: the search goes on)
            print(f"warning: no TensorBoard log for trial {row['trial_id']}: {err}")
        self.board_seconds += time.perf_counter() - started

    # ------------------------------------------------------------------- runs
    def _run_dir(self, values: dict) -> Path:
        return Path(self.project_dir) / "runs" / values_key(values)

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
        """Train the unfinished points of values' group, holding the group's lock;
        False when another process holds it and wait is False."""
        group = self._group_of(values)
        with self._group_lock(group, wait) as locked:
            if not locked:
                return False
            group = [p for p in group if not (self._run_dir(p) / "run.json").exists()]
            if group:
                self._train_together(group, data, verbose)
        return True

    @contextlib.contextmanager
    def _group_lock(self, group: list[dict], wait: bool):
        """Hold the lock of a group's run folders; yields False when another process
        holds it and wait is False."""
        lock_path = Path(self.project_dir) / "runs" / f"{values_key(group[0])}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True

    def _work_left(self) -> bool:
        """Whether some grid point is neither trained nor being trained by another process."""
        for values in self.points:
            if not (self._run_dir(values) / "run.json").exists():
                with self._group_lock(self._group_of(values), wait=False) as free:
                    if free:
                        return True
        return False

    def _train_some_other_group(self, data, verbose: int) -> bool:
        for values in self.points:
            if (self._run_dir(values) / "run.json").exists():
                continue
            try:
                if self._train_group_of(values, data, verbose, wait=False):
                    return True
            except (EnvironmentFailure, *ENVIRONMENT_ERRORS):
                raise  # the search stops
            except Exception:  # its own trial will run it again and record the error
                return False
        return False

    def _group_of(self, values: dict) -> list[dict]:
        """The grid points trained together with values: those sharing its batches, cut
        into consecutive parts: split_groups parts, or one per worker for the groups at
        the grid's end (see _find_tail_groups)."""
        if not self.fuse or not fusable(values["model"]):
            return [values]
        key = batches_key(values)
        group = self.groups[key]
        width = fused_width(values["model"], values["batch_size"])
        parts = max(self.split_groups, self.workers if key in self.tail_groups else 1,
                    math.ceil(len(group) / width))
        size = math.ceil(len(group) / min(parts, len(group)))
        start = group.index(values) // size * size
        return group[start:start + size]

    def _find_tail_groups(self) -> frozenset:
        """The groups that would leave workers idle at the end of the grid: with 9 groups
        and 2 workers the last one, trained by one worker while the other has nothing
        left. Each is cut into one part per worker, so all of them work until the end;
        the others stay whole, since a group trains faster per trial the wider it is."""
        keys = [key for key, group in self.groups.items() if fusable(group[0]["model"])]
        leftover = len(keys) % self.workers
        return frozenset(keys[len(keys) - leftover:] if leftover else [])

    def _train_together(self, group: list[dict], data, verbose: int) -> None:
        self.trained_here = True
        self.hypermodel.train_size = len(data.x_train)
        first = group[0]
        fit = functools.partial(fit_models, data=data, batch_size=first["batch_size"],
                                epochs=first["epochs"], augment=first.get("augment"),
                                seed=self.seed, verbose=verbose)
        if len(group) > 1:
            try:
                fits = fit(self._build_models(group))
            except (*KERNEL_ERRORS, *MEMORY_ERRORS) as err:
                print(f"warning: training {len(group)} trials together failed here "
                      f"({first_line(err)}); training one at a time from now on (--no-fuse "
                      "does so from the start)", flush=True)
                self.fuse = False
            else:
                for values, one in zip(group, fits):
                    self._save_run(values, one, len(group), data)
                return
        for values in group:
            what = f"{values['model']} (batch size {values['batch_size']})"
            try:
                (one,) = fit(self._build_models([values]))
            except (*KERNEL_ERRORS, *MEMORY_ERRORS) as err:
                raise EnvironmentFailure(describe_failure(err, self.results_csv.parent,
                                                          what)) from err
            self._save_run(values, one, 1, data)

    def _build_models(self, group: list[dict]) -> list[keras.Model]:
        keras.backend.clear_session()  # graphs of earlier trials would pile up in this process
        models = []
        for values in group:
            # Each starts as it would alone; a repeat with its own initial weights.
            keras.utils.set_random_seed(self.seed + repeat_of(values))
            models.append(self.hypermodel.build_values(values))
        return models

    def _save_run(self, values: dict, fit: Fit, group_size: int, data) -> None:
        run_dir = self._run_dir(values)
        run_dir.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(fit.history).rename_axis("epoch").to_csv(run_dir / "history.csv")
        if not fit.diverged:
            fit.model.save(run_dir / "model.keras")
        row = self._run_row(fit, group_size, data, run_dir)
        row["seed"] = self.seed + repeat_of(values)
        atomic_write_text(run_dir / "run.json", json.dumps(row, indent=1))  # last: run complete

    def _run_row(self, fit: Fit, group_size: int, data, run_dir: Path) -> dict:
        last = {key: float(series[-1]) for key, series in fit.history.items()}
        relative = lambda name: str((run_dir / name).relative_to(self.results_csv.parent))  # noqa: E731
        scored = not fit.diverged
        return {
            # train_* are the last epoch's running figures, as Keras reports them.
            "train_loss": last.get("loss"), "train_accuracy": last.get("accuracy"),
            "val_loss": last.get("val_loss", math.nan),
            "val_accuracy": last.get("val_accuracy", math.nan),
            "test_loss": float(fit.test["loss"]) if scored else math.nan,
            "test_accuracy": float(fit.test["accuracy"]) if scored else math.nan,
            "epochs_run": fit.epochs_run, "params": fit.model.count_params(),
            "status": "completed" if scored else "diverged", "error": "",
            # A fused group's wall time is shared out evenly among its trials.
            "seconds": round(fit.seconds, 2), "trained_with": group_size,
            "dataset": data.name, "seed": self.seed,
            "history_path": relative("history.csv"),
            "model_path": relative("model.keras") if scored else "",
        }
