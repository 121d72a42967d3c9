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

# Where the rest of the search lives: mnist_zoo.grid (axes, grid files), mnist_zoo.tuner
# (keras-tuner's hypermodel, oracle and tuner), mnist_zoo.results (the CSV, ranking,
# export); mnist_zoo.train.fit_models does the training. This module is the command line.

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from mnist_zoo import data as data_lib
from mnist_zoo.cli import non_negative_int, positive_int
from mnist_zoo.grid import GridError, builtin_grids, grid_size, load_grid, with_repeats
from mnist_zoo.results import (RESULTS_CSV, ResultsError, atomic_write_text, check_out_folder,
                               claim_results, export_top_models, print_top, read_result,
                               repair_tuner_state, write_results_csv)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# Set by --jobs for its processes: where one that must stop the search writes its one
# line (the first one wins), for the parent to print once instead of one per process.
STOP_FILE_ENV = "MNIST_ZOO_STOP_FILE"


def search(grid: str = "smoke", *, dataset: str = "mnist", data_dir=None, out="results",
           epochs: int | None = None, subset: int | None = None, seed: int | None = None,
           objective: str = "val_accuracy", overwrite: bool = False, export_top: int = 3,
           show_top: int = 3, data: data_lib.DigitData | None = None, verbose: int | None = None,
           role: str | None = None, fuse: bool = True, max_memory_growth: float | None = None,
           repeats: int | None = None, tensorboard: bool = True, split_groups: int = 1,
           workers: int = 1):
    """Run (or resume) a grid search; returns the results table as a pandas DataFrame.

    role: None for a single process, 'chief' or 'worker' in keras-tuner's distributed mode
    (the KERASTUNER_* environment variables must then be set).
    fuse: train trials that differ only in optimizer settings together (mnist_zoo.fused);
    False trains one trial at a time.
    max_memory_growth: raise MemoryRestart after a trial once this process' memory has
    grown by this fraction since its first trial (the command line then restarts it).
    repeats: run every grid point this many times, seeds seed .. seed + repeats - 1
    (overrides the grid's [settings] repeats).
    tensorboard: log every trial for TensorBoard's HParams dashboard under
    <out>/tuner/<grid>/tensorboard.
    workers: how many training processes share the grid; the groups of trials left over
    at the grid's end (groups modulo workers) are cut into one part per worker, so that
    none of them idles while another trains the last group.
    split_groups: cut every group of trials trained together into this many parts.
    """
    import keras_tuner as kt

    from mnist_zoo.tuner import ZooTuner, write_board_config

    spec = load_grid(grid)
    axes, settings = grid_with_overrides(spec, epochs=epochs, subset=subset, seed=seed,
                                         repeats=repeats)
    seed = settings.get("seed", 0)
    out = Path(out)
    project = out / "tuner" / spec["name"]
    results_csv = out / RESULTS_CSV
    check_out_folder(out)
    if role != "worker":  # the chief (or a lone process) owns the table and exports
        claim_results(out, spec["name"], overwrite)
    _guard_project(project, axes, settings, dataset, overwrite and role != "worker")
    if overwrite and role is None:
        results_csv.unlink(missing_ok=True)
    damaged = repair_tuner_state(project, os.environ.get("KERASTUNER_TUNER_ID", "tuner0") +
                                 ".json" if role == "worker" else None)
    if damaged:
        print(f"warning: keras-tuner's state in {project} was damaged ({damaged}); rebuilt "
              "it from the trial records", flush=True)

    tuner = ZooTuner(
        axes, kt.Objective(objective, "min" if objective.endswith("loss") else "max"),
        directory=str(out / "tuner"), project_name=spec["name"],
        overwrite=False,  # _guard_project already cleared the folder when asked to
        results_csv=results_csv, seed=seed, fuse=fuse, max_memory_growth=max_memory_growth,
        tensorboard=tensorboard, split_groups=split_groups, workers=workers)
    if tensorboard and role != "worker":
        write_board_config(project / "tensorboard", axes)
    total = tuner.total_trials
    if role == "chief":
        print(f"chief: serving grid {spec['name']} ({total} trials) on "
              f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}",
              flush=True)
    else:
        data = data or data_lib.load_dataset(dataset, data_dir, subset=settings.get("subset"),
                                             validation_size=settings.get("validation_size"),
                                             seed=seed)
        _guard_data(project, data)
        print(f"grid {spec['name']}: {total} trials, {len(data.x_train)} training / "
              f"{len(data.x_val)} validation / {len(data.x_test)} test images from {data.source}",
              flush=True)
    if verbose is None:  # Keras' bar on a terminal; elsewhere our one line per trial is enough
        verbose = 1 if sys.stdout.isatty() else 0
    # verbose=0 silences keras-tuner's own trial tables; our progress line replaces them.
    tuner.search(data=data, fit_verbose=verbose, verbose=0)
    if tensorboard and tuner.board_seconds and role != "chief":
        trained = sum(tuner.session_seconds)
        print(f"tensorboard: logged {len(tuner.session_seconds)} trials in "
              f"{tuner.board_seconds:.1f} s ({tuner.board_seconds / max(trained, 1e-9):.1%} of "
              f"their training time); tensorboard --logdir {project / 'tensorboard'}")
    table = write_results_csv(project, results_csv)
    if role != "worker":  # the chief or a later plain run does the exporting
        report(table, total, out, objective, show_top, export_top)
    return table


def grid_with_overrides(spec: dict, epochs: int | None = None,
                        **settings_given) -> tuple[dict, dict]:
    """The grid's axes and settings with the command line's epochs, subset, seed and
    repeats. The repeats become the repeat axis, so --repeats 1 and none are one grid."""
    axes = {**spec["axes"], **({"epochs": [epochs]} if epochs else {})}
    settings = {**spec["settings"],
                **{key: value for key, value in settings_given.items() if value is not None}}
    return with_repeats(axes, settings.pop("repeats", 1)), settings


def report(table, total: int, out: Path, objective: str, show_top: int, export_top: int):
    """What a finished search prints: missing trials, the best ones; and the top-k export."""
    missing = total - len(table)
    if missing:
        print(f"warning: {missing} of {total} trials have no result; rerun to finish them")
    if not table.empty:
        print_top(table, objective, show_top)
        export_top_models(table, out, objective, export_top)
    print(f"results: {out / RESULTS_CSV}")


def _guard_project(project: Path, axes: dict, settings: dict, dataset: str, overwrite: bool):
    """Refuse to resume a project made from a different grid, unless told to overwrite."""
    fingerprint = json.dumps({"axes": axes, "settings": settings, "dataset": dataset},
                             sort_keys=True)
    marker = project / "grid.json"
    if overwrite and project.exists():
        shutil.rmtree(project)
    # Only finished trials are worth protecting: a search that failed before its first
    # trial (a grid keras-tuner refused, say) must not block the corrected grid.
    if (marker.exists() and marker.read_text() != fingerprint
            and any(project.glob("trial_*/result.json"))):
        raise GridError(f"{project} holds a search of a different grid, dataset or settings; "
                        "pass --overwrite to start afresh, or another --out")
    project.mkdir(parents=True, exist_ok=True)
    if not marker.exists() or marker.read_text() != fingerprint:
        # Atomic: with --jobs the chief and the workers all check this file at start-up,
        # and a half-written one would read as a different grid.
        atomic_write_text(marker, fingerprint)


def _guard_data(project: Path, data: data_lib.DigitData) -> None:
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


# --------------------------------------------------------------------------- command line
def _percent(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a percentage >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    # allow_abbrev=False: "--ov" must not mean --overwrite, and the options a restarted
    # process or a worker must not get can then be dropped from argv by their full names.
    parser = argparse.ArgumentParser(prog="python -m mnist_zoo.search", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    parser.add_argument("--grid", default="smoke",
                        help="built-in grid name (full, mlp, quick, smoke) or a .toml file")
    data_lib.add_data_arguments(parser)
    parser.add_argument("--out", default="results", help="results folder (default: results/)")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="override the grid's epochs")
    parser.add_argument("--subset", type=positive_int, default=None,
                        help="train on this many training images (overrides the grid's)")
    parser.add_argument("--seed", type=non_negative_int, default=None, help="seed for data split and weights")
    parser.add_argument("--repeats", type=positive_int, default=None, metavar="N",
                        help="run every grid point N times with seeds SEED .. SEED+N-1 (the "
                             "same batches, other initial weights); experiment_summary.csv "
                             "then has mean, std, min, max and n per point")
    parser.add_argument("--objective", default="val_accuracy",
                        choices=["val_accuracy", "val_loss", "accuracy", "loss",
                                 "test_accuracy", "test_loss"],
                        help="what ranks the trials")
    parser.add_argument("--overwrite", action="store_true",
                        help="discard earlier results of this grid and start afresh")
    parser.add_argument("--export-top", type=non_negative_int, default=3, metavar="K",
                        help="export the best K models as SavedModel and .keras (default 3)")
    parser.add_argument("--top", type=non_negative_int, default=3, help="rows of the best-trials table")
    parser.add_argument("--no-fuse", action="store_true",
                        help="train one trial at a time instead of fusing trials that differ "
                             "only in optimizer settings (slower, same results)")
    parser.add_argument("--jobs", type=jobs_count, default="auto",
                        help="training processes on this machine (keras-tuner's distributed "
                             "mode on 127.0.0.1): 'auto' (default) one per core; 1 trains in "
                             "this process")
    parser.add_argument("--split-groups", type=positive_int, default=None, metavar="N",
                        help="cut every group of trials trained together into N parts "
                             "(default 1: narrower groups train slower per trial; the groups "
                             "left over at the grid's end are cut one part per job anyway)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="TensorFlow intra-op threads per process (default: TensorFlow's "
                             "choice; with several jobs: cores / jobs)")
    parser.add_argument("--max-memory-growth", type=_percent, default=3.0, metavar="PCT",
                        help="restart a training process (the search resumes where it was) "
                             "once its memory has grown PCT %% since its first trial: "
                             "TensorFlow keeps a few MiB of every model built (default 3; "
                             "0 turns it off)")
    parser.add_argument("--no-tensorboard", action="store_true",
                        help="do not log trials for TensorBoard (by default: "
                             "tensorboard --logdir OUT/tuner/GRID/tensorboard shows the grid "
                             "in its HParams dashboard)")
    parser.add_argument("--list-grids", action="store_true", help="list built-in grids and exit")
    dist = parser.add_argument_group("distributed (keras-tuner chief/worker)")
    role = dist.add_mutually_exclusive_group()
    role.add_argument("--chief", action="store_true", help="run the oracle that hands out trials")
    role.add_argument("--worker", metavar="ID", default=None,
                      help="run trials for the chief; ID unique per worker")
    dist.add_argument("--oracle", default="127.0.0.1:8000", metavar="HOST:PORT",
                      help="the chief's address (default 127.0.0.1:8000)")
    dist.add_argument("--workers", type=positive_int, default=1, metavar="N",
                      help="how many workers share the grid (give every worker the same N; "
                           "--jobs sets it): the groups left over at the grid's end are cut "
                           "into N parts so that no worker idles while another trains the "
                           "last group")
    return parser


def jobs_count(text: str) -> str | int:
    return text if text == "auto" else positive_int(text)


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def resolve_jobs(jobs: str | int, grid: str, repeats: int | None, out=None) -> int:
    """'auto': one training process per core (no more than the grid has trials; the groups
    of trials trained together are cut into one part per process). A grid whose trials
    in `out` are all finished needs no training process."""
    spec = load_grid(grid)
    axes = with_repeats(spec["axes"], repeats or spec["settings"].get("repeats", 1))
    if out is not None and finished_trials(Path(out) / "tuner" / spec["name"]) >= grid_size(axes):
        return 1  # nothing left to train: report in this process, start no workers
    return jobs if jobs != "auto" else max(1, min(usable_cores(), grid_size(axes)))


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
    project = out / "tuner" / spec["name"]
    check_out_folder(out)
    claim_results(out, spec["name"], args.overwrite)
    if args.overwrite:  # done here once, before any process can start on the folder
        shutil.rmtree(project, ignore_errors=True)
        project.mkdir(parents=True)
        (out / RESULTS_CSV).unlink(missing_ok=True)
    damaged = repair_tuner_state(project)  # here, before the chief and workers read it
    if damaged:
        print(f"warning: keras-tuner's state in {project} was damaged ({damaged}); rebuilt "
              "it from the trial records", flush=True)
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
        return _wait_for_jobs(chief, workers, stop_file=stop_file, project=project)
    finally:  # Ctrl-C, or a process that died: no process outlives this one
        for process in (*workers, chief):
            if process.poll() is None:
                process.terminate()
        for process in (*workers, chief):
            process.wait()
        stop_dir.cleanup()


def _wait_for_jobs(chief, workers, poll_seconds: float = 0.5, stop_file: Path | None = None,
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


def list_grids() -> None:
    for name, path in builtin_grids().items():
        spec = load_grid(str(path))
        print(f"{name:8s} {grid_size(spec['axes']):4d} trials  {spec['description']}")


def main(argv=None, restartable: bool = False) -> int:
    """The command line; restartable=True (python -m) lets a process whose memory grew
    past --max-memory-growth replace itself with a fresh one (os.execv, same PID)."""
    args = build_parser().parse_args(argv)
    if args.list_grids:
        list_grids()
        return 0
    role = "chief" if args.chief else ("worker" if args.worker is not None else None)
    try:
        args.jobs = 1 if role else resolve_jobs(args.jobs, args.grid, args.repeats,
                                                None if args.overwrite else args.out)
        if args.jobs > 1:
            return run_local_jobs(args, sys.argv[1:] if argv is None else list(argv))
        return run_here(args, role, restartable)
    except (GridError, ResultsError, data_lib.DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished trials are saved; rerun the same command to resume",
              file=sys.stderr)
        return 130


def run_here(args, role: str | None, restartable: bool) -> int:
    """Train (or serve trials, as the chief) in this process."""
    if args.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    if role:
        host, _, port = args.oracle.rpartition(":")
        if role == "chief" and host not in LOOPBACK_HOSTS:
            # keras-tuner's gRPC channel has no authentication or encryption.
            print(f"warning: the chief serves trials to anyone who reaches {args.oracle}; "
                  "use it on a trusted network only, or bind 127.0.0.1 and reach it through "
                  "an SSH tunnel (README: Distributed search)", file=sys.stderr)
        os.environ.update({"KERASTUNER_ORACLE_IP": host, "KERASTUNER_ORACLE_PORT": port,
                           "KERASTUNER_TUNER_ID": "chief" if role == "chief"
                           else f"tuner{args.worker}"})
    from mnist_zoo.tuner import EnvironmentFailure, MemoryRestart, describe_failure

    try:
        search(args.grid, dataset=args.dataset, data_dir=args.data_dir, out=args.out,
               epochs=args.epochs, subset=args.subset, seed=args.seed, objective=args.objective,
               overwrite=args.overwrite, export_top=args.export_top, show_top=args.top,
               role=role, fuse=not args.no_fuse, repeats=args.repeats,
               tensorboard=not args.no_tensorboard, split_groups=args.split_groups or 1,
               workers=args.workers,
               max_memory_growth=args.max_memory_growth / 100 if restartable else None)
    except MemoryRestart as restart:
        print(f"{restart}: restarting this process to give it back; the search resumes",
              flush=True)
        sys.stderr.flush()
        again = drop_options(sys.argv[1:], ["--overwrite"])  # keep what is done
        os.execv(sys.executable, [sys.executable, "-m", "mnist_zoo.search", *again])
    except EnvironmentFailure as err:
        return stop_search(str(err))
    except OSError as err:  # keras-tuner's own state files, outside any trial
        return stop_search(describe_failure(err, Path(args.out)))
    except Exception as err:
        if role == "worker" and _chief_unreachable(err):
            print(f"worker {args.worker}: no chief at {args.oracle} (the grid is finished, or "
                  "the chief stopped); finished trials are saved", file=sys.stderr)
            return 3
        message = _failure_message(err, Path(args.out), args.grid)
        if message is None:
            raise
        return stop_search(message)
    return 0


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


def _failure_message(err: Exception, out: Path, grid: str) -> str | None:
    """One line for what keras-tuner raises when trials keep failing (a RuntimeError here,
    a gRPC error from the chief in a worker), or when the chief fails; None otherwise."""
    import grpc

    text = err.details() if isinstance(err, grpc.RpcError) else str(err)
    if "consecutive failures" in (text or ""):
        last = [line.strip() for line in text.splitlines() if "Error" in line]
        cause = last[-1].split("FailedTrialError: ")[-1] if last else "see the CSV"
        return (f"the search stopped: trial after trial failed, the last with {cause}; the "
                f"error column of {out / RESULTS_CSV} and each trial's error.txt say why; fix "
                "that, then rerun the same command (failed trials are retried)")
    if isinstance(err, grpc.RpcError) and err.code() == grpc.StatusCode.UNKNOWN:
        cause = (text or "").strip().splitlines()[0] if (text or "").strip() else str(err.code())
        cause = cause.removeprefix("Exception calling application: ")
        if "[Errno" in cause:  # it could not save the search's state
            return (f"the chief cannot write the search's state ({cause}); make {out} "
                    "writable or free space there, then rerun the same command")
        return (f"the chief of grid {grid} failed ({cause}); fix that, then rerun the same "
                "command")
    return None


def _chief_unreachable(err: Exception) -> bool:
    import grpc

    return isinstance(err, grpc.RpcError) and err.code() == grpc.StatusCode.UNAVAILABLE


if __name__ == "__main__":
    sys.exit(main(restartable=True))
