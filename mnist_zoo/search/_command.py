"""Grid search over zoo models with keras-tuner.

    python -m mnist_zoo.search --grid full              # the 81-trial lab grid
    python -m mnist_zoo.search --grid my_grid.toml --data-dir DIR

Grids are TOML files (search/*.toml): an [axes] table of lists, one trial per
combination, and an optional [settings] table (subset, validation_size, seed). A
[search] table (or --strategy) picks random, bayesian or hyperband search instead, whose
axes may be ranges: learning_rate = { min = 1e-4, max = 0.1, log = true }.
keras-tuner's grid oracle enumerates the grid; each finished trial is written to
<out>/tuner/<grid>/trial_*/result.json (its model and history.csv under runs/) and
the whole table to <out>/experiment_results.csv (atomic replace). Trials that differ
only in optimizer settings are trained together as one wide graph (mnist_zoo.train.fused;
--no-fuse trains them one by one). Rerunning the same command resumes: only the
trials not yet finished are run. --overwrite starts afresh. A random or Bayesian search
rerun with a larger --max-trials (Hyperband: more [search] iterations) grows: its
finished trials are kept and it draws what a search of that size would have. One search
at a time runs on an --out (a second one is refused); SIGTERM stops it as Ctrl-C does. The same resuming lets a
training process whose memory has grown past --max-memory-growth (TensorFlow keeps a
little of every model built) replace itself with a fresh one mid-search.

Distributed (keras-tuner's chief/worker mode, sharing one --out folder):
    python -m mnist_zoo.search --grid full --chief  &         # the oracle
    python -m mnist_zoo.search --grid full --worker 0 &       # as many as you like
    python -m mnist_zoo.search --grid full --worker 1
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mnist_zoo import data as data_lib
from mnist_zoo.cli import (Parser, command, non_negative_int, positive_float, positive_int,
                           setting_type)
from mnist_zoo.search.api import search
from mnist_zoo.search.grid import builtin_grids, grid_size, load_grid
from mnist_zoo.search.space import STRATEGIES
from mnist_zoo.search.distributed import (DEFAULT_CHIEF_TIMEOUT, check_chief_port,
                                          gave_up_waiting, say_what_worker_waits_for)
from mnist_zoo.search.processes import (STOP_FILE_ENV, drop_options, interrupted,
                                        resolve_jobs, run_local_jobs, sigterm_as_interrupt,
                                        stop_search)
from mnist_zoo.settings import SETTINGS

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
RESTARTED_ENV = "MNIST_ZOO_RESTARTED"  # set for a process that replaced itself (os.execv)


def _percent(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a percentage >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    # allow_abbrev=False: "--ov" must not mean --overwrite, and the options a restarted
    # process or a worker must not get can then be dropped from argv by their full names.
    parser = Parser(prog="python -m mnist_zoo.search", description=__doc__,
                    allow_abbrev=False)
    parser.add_argument("--grid", default="smoke",
                        help="built-in grid name (full, mlp, quick, smoke) or a .toml file")
    data_lib.add_data_arguments(parser)
    parser.add_argument("--out", default="results", help="results folder (default: results/)")
    # The overrides of the grid's settings, typed and checked by the settings table.
    parser.add_argument("--epochs", type=setting_type(SETTINGS["epochs"]), default=None,
                        help="override the grid's epochs")
    parser.add_argument("--subset", type=setting_type(SETTINGS["subset"]), default=None,
                        help="train on this many training images (overrides the grid's)")
    parser.add_argument("--seed", type=setting_type(SETTINGS["seed"]), default=None,
                        help=SETTINGS["seed"].help)
    parser.add_argument("--repeats", type=positive_int, default=None, metavar="N",
                        help="run every grid point N times with seeds SEED .. SEED+N-1 (the "
                             "same batches, other initial weights); experiment_summary.csv "
                             "then has mean, std, min, max and n per point")
    parser.add_argument("--strategy", choices=STRATEGIES, default=None,
                        help="how trials are picked, over the search file's [search] strategy "
                             "(default grid): grid (every combination of the lists), random "
                             "(--max-trials draws; axes may be ranges), bayesian (a Gaussian "
                             "process proposes each next trial), hyperband (many trials for "
                             "few epochs, the best go on from their weights up to the epochs "
                             "axis); README: which strategy when")
    parser.add_argument("--max-trials", type=positive_int, default=None, metavar="N",
                        help="random and bayesian: how many trials (over the file's "
                             "max_trials; default 10)")
    _add_prune_arguments(parser)
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
    _add_distributed_arguments(parser)
    return parser


def _add_prune_arguments(parser) -> None:
    parser.add_argument("--prune", type=prune_text, default=None, metavar="RULE",
                        help="grid and random search: after each epoch stop a trial whose "
                             "objective is behind the others' at that epoch: median (worse "
                             "than their median), percentile:P (keep the best P %%) or none "
                             "(default, over the file's [search] prune); a pruned trial's row "
                             "says status pruned and epochs_run; a rerun with --prune none "
                             "trains the pruned trials from the start")
    parser.add_argument("--prune-warmup", type=positive_int, default=None, metavar="EPOCHS",
                        help="--prune: epochs a trial trains before it is judged (default 1)")
    parser.add_argument("--prune-min-trials", type=positive_int, default=None, metavar="N",
                        help="--prune: judge an epoch only once N other trials have a value "
                             "there (default 4)")
    parser.add_argument("--prune-reference", default=None, metavar="CSV",
                        help="--prune: judge every trial against the trials of this finished "
                             "search (its experiment_results.csv) instead of this search's so "
                             "far: the same trials are pruned whatever the order or --jobs")


def prune_text(text: str) -> str:
    from mnist_zoo.errors import SettingsError
    from mnist_zoo.search.pruning import parse_prune

    try:
        parse_prune(text)
    except SettingsError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _add_distributed_arguments(parser) -> None:
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
    dist.add_argument("--chief-timeout", type=positive_float, default=DEFAULT_CHIEF_TIMEOUT,
                      metavar="SECONDS",
                      help="a worker gives up when the chief has not answered for this long "
                           f"(default {DEFAULT_CHIEF_TIMEOUT})")


def jobs_count(text: str) -> str | int:
    return text if text == "auto" else positive_int(text)


def list_grids() -> None:
    for name, path in builtin_grids().items():
        spec = load_grid(str(path))
        strategy = spec["search"].get("strategy", "grid")
        size = (f"{grid_size(spec['axes']):4d} trials" if strategy == "grid"
                else f"{strategy:>9s}")
        print(f"{name:14s} {size}  {spec['description']}")


@command
def main(argv=None, restartable: bool = False) -> int:
    """The command line; restartable=True (python -m) lets a process whose memory grew
    past --max-memory-growth replace itself with a fresh one (os.execv, same PID). A
    ZooError (a bad grid, folder or data) ends it with `error:` and status 2 (@command)."""
    args = build_parser().parse_args(argv)
    if args.list_grids:
        list_grids()
        return 0
    role = "chief" if args.chief else ("worker" if args.worker is not None else None)
    try:
        with sigterm_as_interrupt():
            args.jobs = 1 if role else resolve_jobs(args.jobs, args.grid, args.repeats,
                                                    None if args.overwrite else args.out,
                                                    args.strategy, args.max_trials, args.epochs)
            if args.jobs > 1:
                return run_local_jobs(args, sys.argv[1:] if argv is None else list(argv))
            return run_here(args, role, restartable)
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (sigterm_as_interrupt)
        return interrupted(stop)


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
        check_role(args, role, host, port)
    # Imported here: they load TensorFlow, which --help and a bad grid need not wait for.
    from mnist_zoo.search.failures import (EnvironmentFailure, chief_unreachable,
                                           chief_timed_out, describe_failure, search_failure)
    from mnist_zoo.search.memory import MemoryRestart

    jobs_folder = Path(os.environ[STOP_FILE_ENV]).parent if os.environ.get(STOP_FILE_ENV) else None
    # Once for the search: a restarted process said it before; under --jobs worker 0 does.
    announce = not os.environ.get(RESTARTED_ENV) and (jobs_folder is None or args.worker == "0")

    try:
        search(args.grid, dataset=args.dataset, data_dir=args.data_dir, out=args.out,
               epochs=args.epochs, subset=args.subset, seed=args.seed, objective=args.objective,
               overwrite=args.overwrite, export_top=args.export_top, show_top=args.top,
               role=role, fuse=not args.no_fuse, repeats=args.repeats,
               tensorboard=not args.no_tensorboard, split_groups=args.split_groups or 1,
               workers=args.workers, strategy=args.strategy, max_trials=args.max_trials,
               prune=args.prune, prune_warmup=args.prune_warmup,
               prune_min_trials=args.prune_min_trials, prune_reference=args.prune_reference,
               max_memory_growth=args.max_memory_growth / 100 if restartable else None,
               announce=announce, jobs_folder=jobs_folder)
    except MemoryRestart as restart:
        print(f"{restart}: restarting this process to give it back; the search resumes",
              flush=True)
        sys.stderr.flush()
        os.environ[RESTARTED_ENV] = "1"
        again = drop_options(sys.argv[1:], ["--overwrite"])  # keep what is done
        os.execv(sys.executable, [sys.executable, "-m", "mnist_zoo.search", *again])
    except EnvironmentFailure as err:
        return stop_search(str(err))
    except OSError as err:  # keras-tuner's own state files, outside any trial
        return stop_search(describe_failure(err, Path(args.out)))
    except Exception as err:
        if role == "worker" and chief_timed_out(err):
            return stop_search(gave_up_waiting(args.worker, args.oracle, args.chief_timeout))
        if role == "worker" and chief_unreachable(err):
            print(f"worker {args.worker}: no chief at {args.oracle} (the grid is finished, or "
                  "the chief stopped); finished trials are saved", file=sys.stderr)
            return 3
        message = search_failure(err, Path(args.out), args.grid)
        if message is None:
            raise
        return stop_search(message)
    return 0


def check_role(args, role: str, host: str, port: str) -> None:
    """Before a chief writes anything, its port must be free (mnist_zoo.search.distributed);
    a worker waits for its chief --chief-timeout seconds at most, saying so when the chief
    is not there yet (under --jobs the parent has started it: no word needed)."""
    if role == "chief":
        check_chief_port(host, port)
        return
    from mnist_zoo.search import _keras_tuner

    _keras_tuner.set_chief_timeout(args.chief_timeout)
    if STOP_FILE_ENV not in os.environ:
        say_what_worker_waits_for(args.worker, args.oracle, args.chief_timeout)
