"""Local processes: `--jobs N` runs a chief and N workers on this machine through
keras-tuner's distributed mode on 127.0.0.1, and supervises them: a process that dies
stops the others, and the search ends in one line saying why and how to go on.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

from mnist_zoo.search.grid import REPEAT_AXIS, grid_size, load_grid, with_repeats
from mnist_zoo.search.project import (check_out_folder, claim_results, project_dir,
                                      repair_and_warn)
from mnist_zoo.search.results import read_result
from mnist_zoo.search.space import resolve_search

# Set by --jobs for its processes: where one that must stop the search writes its one
# line (the first one wins), for the parent to print once instead of one per process.
STOP_FILE_ENV = "MNIST_ZOO_STOP_FILE"


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
    mode; the chief prints the best trials and exports them when all are done."""
    import socket
    import tempfile

    spec = load_grid(args.grid)  # a bad grid or folder fails here, once, not in N processes
    out = Path(args.out)
    project = project_dir(out, spec["name"])
    check_out_folder(out)
    # --overwrite is done here once, before any process can start on the folder.
    claim_results(out, spec["name"], args.overwrite)
    repair_and_warn(project)  # here, before the chief and workers read it
    stop_dir = tempfile.TemporaryDirectory(prefix="mnist_zoo_stop_")  # not in --out: it
    stop_file = Path(stop_dir.name) / "reason"  # may be the folder that cannot be written
    env = {**os.environ, STOP_FILE_ENV: str(stop_file)}
    with socket.socket() as sock:  # a free port for the chief, on loopback only
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    passed_on = drop_options(argv, ["--overwrite"],
                             ["--jobs", "--threads", "--split-groups", "--workers"])
    base = [sys.executable, "-m", "mnist_zoo.search", *passed_on, "--oracle", address]
    threads = args.threads or max(1, usable_cores() // args.jobs)
    chief = subprocess.Popen([*base, "--chief"], preexec_fn=_die_with_parent, env=env)
    time.sleep(2)  # let the chief open its port before the workers ask for trials
    split = ["--split-groups", str(args.split_groups)] if args.split_groups else []
    workers = [subprocess.Popen([*base, "--worker", str(i), "--threads", str(threads),
                                 "--workers", str(args.jobs), *split],
                                preexec_fn=_die_with_parent, env=env)
               for i in range(args.jobs)]
    try:
        return wait_for_jobs(chief, workers, stop_file=stop_file, project=project)
    finally:  # Ctrl-C, or a process that died: no process outlives this one
        for process in (*workers, chief):
            if process.poll() is None:
                process.terminate()
        for process in (*workers, chief):
            process.wait()
        stop_dir.cleanup()


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
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: Ctrl-C still reaches the whole group
        pass


def _exit_reason(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exit status {code}"


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
