"""Local processes: `--jobs N` runs a chief and N workers on this machine through
keras-tuner's distributed mode on 127.0.0.1, and supervises them: a process that dies
stops the others, and the search ends in one line saying why and how to go on.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from mnist_zoo import data as data_lib
from mnist_zoo.search.api import BoardCost
from mnist_zoo.search.grid import REPEAT_AXIS, grid_size, load_grid, with_repeats
from mnist_zoo.search.project import (LOCK_HELD_ENV, check_out_folder, claim_results,
                                      project_dir, repair_and_warn, search_lock)
from mnist_zoo.search.results import read_result
from mnist_zoo.search.space import resolve_search

# Set by --jobs for its processes: where one that must stop the search writes its one
# line (the first one wins), for the parent to print once instead of one per process.
STOP_FILE_ENV = "MNIST_ZOO_STOP_FILE"
# How long a stopped --jobs process has to end on SIGTERM before it is killed.
CHILD_STOP_SECONDS = 10


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def resolve_jobs(jobs: str | int, grid: str, repeats: int | None, out=None,
                 strategy: str | None = None, max_trials: int | None = None,
                 epochs: int | None = None) -> int:
    """'auto': one training process per core (no more than the grid has trials; the groups
    of trials trained together are cut into one part per process). A grid whose trials
    in `out` are all finished needs no training process. A bad search file or strategy
    is refused here, once, before any process starts."""
    spec = load_grid(grid)
    axes = with_repeats(spec["axes"], repeats or spec["settings"].get("repeats", 1))
    search = resolve_search({**spec, "axes": axes}, strategy, max_trials, epochs)
    size = grid_size(axes) if search["strategy"] == "grid" else (
        search.get("max_trials", math.inf) * len(axes.get(REPEAT_AXIS, [0])))
    if out is not None and finished_trials(project_dir(out, spec["name"])) >= size:
        return 1  # nothing left to train: report in this process, start no workers
    return jobs if jobs != "auto" else max(1, min(usable_cores(), size))


def finished_trials(project: Path) -> int:
    rows = (read_result(path) for path in project.glob("trial_*/result.json"))
    return sum(1 for row in rows if row is not None and row["status"] != "failed")


def drop_options(argv: list[str], flags: list[str], valued: list[str] = ()) -> list[str]:
    """argv less `flags` and less the options in `valued` with their values ("--jobs 2" or
    "--jobs=2"): what a restarted process or a worker must not be given again."""
    kept, skip_value = [], False
    for arg in argv:
        if skip_value:
            skip_value = False
        elif arg in valued:
            skip_value = True
        elif arg not in flags and arg.split("=", 1)[0] not in valued:
            kept.append(arg)
    return kept


def run_local_jobs(args, argv: list[str]) -> int:
    """--jobs N: a chief and N workers on this machine, through keras-tuner's distributed
    mode; the chief prints the best trials and exports them when all are done. This
    process holds --out's search lock for them all, and its jobs folder (see JobsFolder)."""
    spec = load_grid(args.grid)  # a bad grid or folder fails here, once, not in N processes
    out = Path(args.out)
    project = project_dir(out, spec["name"])
    check_out_folder(out)
    with search_lock(out), JobsFolder() as jobs_folder:
        # --overwrite is done here once, before any process can start on the folder.
        claim_results(out, spec["name"], args.overwrite)
        repair_and_warn(project)  # here, before the chief and workers read it
        check_data_once(args, spec)
        env = {**os.environ, STOP_FILE_ENV: str(jobs_folder.stop_file),
               LOCK_HELD_ENV: str(out.resolve())}
        code = _start_and_wait(args, argv, env, project, jobs_folder.stop_file)
        board_cost = BoardCost.total(jobs_folder.path) if code == 0 else None
        if board_cost:
            print(board_cost.line(project / "tensorboard"))
        return code


def _start_and_wait(args, argv: list[str], env: dict, project: Path, stop_file: Path) -> int:
    """Start the chief and the workers, wait for them (wait_for_jobs), and leave none
    running, however this ends (an error, Ctrl-C, SIGTERM)."""
    import socket

    with socket.socket() as sock:  # a free port for the chief, on loopback only
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    passed_on = drop_options(argv, ["--overwrite"],
                             ["--jobs", "--threads", "--split-groups", "--workers"])
    base = [sys.executable, "-m", "mnist_zoo.search", *passed_on, "--oracle", address]
    threads = args.threads or max(1, usable_cores() // args.jobs)
    chief = subprocess.Popen([*base, "--chief"], preexec_fn=_die_with_parent, env=env)
    workers = []
    try:
        time.sleep(2)  # let the chief open its port before the workers ask for trials
        split = ["--split-groups", str(args.split_groups)] if args.split_groups else []
        workers = [subprocess.Popen([*base, "--worker", str(i), "--threads", str(threads),
                                     "--workers", str(args.jobs), *split],
                                    preexec_fn=_die_with_parent, env=env)
                   for i in range(args.jobs)]
        return wait_for_jobs(chief, workers, stop_file=stop_file, project=project)
    finally:  # Ctrl-C, or a process that died: no process outlives this one
        for process in (*workers, chief):
            if process.poll() is None:
                process.terminate()
        for process in (*workers, chief):
            # A process inside a C call (a gRPC wait on a chief that is going too) may not
            # end on SIGTERM for minutes: what it has finished is saved, so kill it.
            try:
                process.wait(timeout=CHILD_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def check_data_once(args, spec: dict) -> None:
    """Load the search's data here, once, before any process starts: no data, a bad data
    folder or bad settings for it are then one error, not one per worker (and a download
    is made once). Skipped where Keras' cache holds the data already: loading it from
    there would cost this process TensorFlow's start-up (seconds) for nothing."""
    from mnist_zoo.search.api import grid_with_overrides

    folder = args.data_dir or os.environ.get(data_lib.DATA_DIR_ENV)
    if not folder and keras_cache_has(args.dataset):
        return
    _, settings = grid_with_overrides(spec, subset=args.subset, seed=args.seed)
    data_lib.load_dataset(args.dataset, args.data_dir, subset=settings.get("subset"),
                          validation_size=settings.get("validation_size"),
                          seed=settings.get("seed", 0))


def keras_cache_has(dataset: str) -> bool:
    """Whether keras.datasets' cache (KERAS_HOME, else ~/.keras, else /tmp/.keras) holds
    `dataset`; not where the data come from Debian's Fashion-MNIST folder instead."""
    if dataset == "fashion_mnist" and data_lib.DEBIAN_FASHION_DIR.is_dir():
        return False  # read without TensorFlow: cheap to check here
    names = {"mnist": "mnist.npz", "fashion_mnist": "fashion-mnist"}
    homes = [os.environ.get("KERAS_HOME") or Path.home() / ".keras", "/tmp/.keras"]
    return any((Path(home) / "datasets" / names[dataset]).exists() for home in homes)


class JobsFolder:
    """--jobs' folder in the temp folder (not in --out: that may be the folder that cannot
    be written): the stop file (STOP_FILE_ENV) and what workers leave for the parent.
    Named after the owning process, so that a later search removes one a kill -9 left
    behind (its owner gone), which no clean-up code could."""

    PREFIX = "mnist_zoo_stop_"

    def __enter__(self):
        import tempfile

        remove_stale_jobs_folders(Path(tempfile.gettempdir()))
        self.path = Path(tempfile.mkdtemp(prefix=f"{self.PREFIX}{os.getpid()}_"))
        self.stop_file = self.path / "reason"
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)


def remove_stale_jobs_folders(temp: Path) -> list[Path]:
    """Remove the jobs folders whose owning process is gone; returns them."""
    removed = []
    for folder in temp.glob(f"{JobsFolder.PREFIX}*_*"):
        owner = folder.name[len(JobsFolder.PREFIX):].split("_", 1)[0]
        if owner.isdigit() and not _alive(int(owner)) and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def wait_for_jobs(chief, workers, poll_seconds: float = 0.5, stop_file: Path | None = None,
                   project: Path | None = None) -> int:
    """Wait until every worker and then the chief are done. A worker that dies (killed,
    out of memory, an error) leaves its trial RUNNING, and keras-tuner would wait for it
    forever: stop the others then, and say why and how to go on."""
    while True:
        # Every worker is polled each round: any() stopped at the first live one, so a
        # dead worker behind it went unnoticed and the search hung.
        running = [worker.poll() is None for worker in workers]
        if chief.poll() == 0:
            # The chief ends once every trial has ended: the grid is done. Workers get a
            # moment to finish their last words; one that had not yet asked for a trial
            # would only find the chief gone.
            for worker in workers:
                try:
                    worker.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    break
            return 0
        dead = [(i, w.returncode) for i, w in enumerate(workers) if w.returncode]
        if dead or chief.returncode is not None:
            who = (", ".join(f"worker {i} ({_exit_reason(code)})" for i, code in dead)
                   or f"the chief ({_exit_reason(chief.returncode)})")
            print(f"error: {_why_stopped(who, stop_file, project)}", file=sys.stderr)
            return 1
        if not any(running):  # all exited 0 before the chief: it serves nobody now
            return chief.wait()
        time.sleep(poll_seconds)


def _why_stopped(who: str, stop_file: Path | None, project: Path | None) -> str:
    """The line for a search that stopped: the reason a process left in stop_file (it
    names the cause and the fix), else who stopped and whether a rerun can help."""
    try:
        reason = stop_file.read_text().strip() if stop_file else ""
    except OSError:
        reason = ""
    if reason:
        return f"{reason} (the other processes were stopped)"
    finished = finished_trials(project) if project else 0
    if finished:
        return (f"{who} stopped; the other processes were stopped too. {finished} finished "
                "trials are saved: rerun the same command to resume")
    if "signal 9" in who:  # SIGKILL from nowhere in the search: the kernel's OOM killer?
        fix = ("if nobody killed it, the system ran out of memory: use fewer --jobs or a "
               "smaller batch_size")
    else:
        fix = "its messages above say why"
    return (f"{who} stopped before any trial finished, and the other processes were stopped "
            f"too; {fix}; change that, then rerun the same command")


def _die_with_parent() -> None:
    """In a child: ask Linux to kill it when its parent dies, so `kill -9` of the command
    the user started leaves no chief or worker behind to write into --out."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: Ctrl-C still reaches the whole group
        pass


def _exit_reason(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exit status {code}"


class Terminated(KeyboardInterrupt):
    """SIGTERM (kill, timeout, systemd, a batch scheduler): stops the search as Ctrl-C does,
    with the same clean-up (no process left, the jobs folder removed) and message."""


def _raise_terminated(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def sigterm_as_interrupt():
    """While the block runs, SIGTERM raises Terminated (a KeyboardInterrupt): Python's
    default ended the process at once, its --jobs processes SIGKILLed by Linux
    (_die_with_parent) and its jobs folder left behind."""
    if threading.current_thread() is not threading.main_thread() or os.environ.get(STOP_FILE_ENV):
        # Handlers can only be set from the main thread. A --jobs chief or worker keeps
        # SIGTERM's default, to end at once when its parent stops it (the parent speaks for
        # it): raised as an exception anywhere, even in a weakref callback, it printed
        # "Exception ignored" tracebacks and could wait out a gRPC call first.
        yield
        return
    before = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def interrupted(stop: KeyboardInterrupt) -> int:
    """Say (once: under --jobs the parent speaks for its processes) that the search was
    stopped; the exit status of the signal (130 for Ctrl-C, 143 for SIGTERM)."""
    signum = signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT
    if not os.environ.get(STOP_FILE_ENV):
        how = " (SIGTERM)" if signum == signal.SIGTERM else ""
        print(f"\ninterrupted{how}: finished trials are saved; rerun the same command to resume",
              file=sys.stderr)
    return 128 + signum


def stop_search(message: str) -> int:
    """Say in one line why the search stops: on stderr, or under --jobs in the stop file,
    which the parent prints once (several processes often stop for the same reason)."""
    stop_file = os.environ.get(STOP_FILE_ENV)
    if stop_file:
        try:
            with open(stop_file, "x") as first:  # exclusive: the first reason wins
                first.write(message + "\n")
            return 1
        except FileExistsError:
            return 1
        except OSError:
            pass
    print(f"error: {message}", file=sys.stderr)
    return 1
