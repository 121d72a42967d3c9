"""`search()`: run (or resume) a grid search from code; the command line is a thin layer
over it (mnist_zoo.search._command).

It checks and claims the folders (project.py), builds the tuner (tuner.py), loads the
data, lets keras-tuner loop over the trials, and reports: the best trials printed and
exported (results.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from pathlib import Path

from mnist_zoo import data as data_lib
from mnist_zoo.files import atomic_write_text
from mnist_zoo.search.grid import load_grid, with_repeats
from mnist_zoo.search.project import (check_out_folder, check_same_data, check_same_grid,
                                      claim_results, project_dir, repair_and_warn,
                                      search_lock)
from mnist_zoo.search.pruning import check_prunable, pruned_summary, split_prune
from mnist_zoo.search.results import export_top_models, print_top, write_results_csv
from mnist_zoo.search.space import resolve_search
from mnist_zoo.search.table import RESULTS_CSV, lower_is_better


def search(grid: str = "smoke", *, dataset: str = "mnist", data_dir=None, out="results",
           epochs: int | None = None, subset: int | None = None, seed: int | None = None,
           objective: str = "val_accuracy", overwrite: bool = False, export_top: int = 3,
           show_top: int = 3, data: data_lib.DigitData | None = None, verbose: int | None = None,
           role: str | None = None, fuse: bool = True, max_memory_growth: float | None = None,
           repeats: int | None = None, tensorboard: bool = True, split_groups: int = 1,
           workers: int = 1, strategy: str | None = None, max_trials: int | None = None,
           announce: bool = True, jobs_folder: Path | None = None,
           prune: str | None = None, prune_warmup: int | None = None,
           prune_min_trials: int | None = None, prune_reference=None):
    """Run (or resume) a grid search; returns the results table as a pandas DataFrame.

    role: None for a single process, 'chief' or 'worker' in keras-tuner's distributed mode
    (the KERASTUNER_* environment variables must then be set).
    fuse: train trials that differ only in optimizer settings together (mnist_zoo.train.fused);
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
    strategy: 'grid', 'random', 'bayesian' or 'hyperband', over the file's [search]
    strategy; max_trials: over its max_trials (random, bayesian).
    announce: print the start line (False where another process of the search prints
    it, or this one did before a restart). jobs_folder: under --jobs, the parent's
    folder, where each worker leaves its TensorBoard cost for the parent's one line.
    A lone process or the chief holds <out>'s search lock while it runs
    (project.search_lock): a second search on the same --out is refused.
    prune: 'none', 'median' or 'percentile:P' over the file's [search] prune: stop a trial
    whose objective after an epoch is behind the others' (mnist_zoo.search.pruning);
    prune_warmup: epochs before any is judged (default 1); prune_min_trials: other
    trials' values an epoch needs before a judgement there (default 4); prune_reference:
    a finished search's experiment_results.csv, whose trials every judgement compares with
    instead of this search's (the same trials pruned whatever the order or processes).
    """
    spec = load_grid(grid)
    search_table, prune_rule = split_prune(spec["search"], prune, prune_warmup, prune_min_trials,
                                           prune_reference)
    spec = {**spec, "search": search_table}  # the rule stays out of the resume fingerprint
    axes, settings = grid_with_overrides(spec, epochs=epochs, subset=subset, seed=seed,
                                         repeats=repeats)
    plan = resolve_search({**spec, "axes": axes}, strategy, max_trials, epochs=epochs)
    check_prunable(prune_rule, plan["strategy"], objective)
    if prune_rule and prune_rule.reference:  # a bad reference is refused before any write
        from mnist_zoo.search.pruner import Reference  # imports TensorFlow: only when needed

        Reference(prune_rule.reference, objective)
    out = Path(out)
    with contextlib.ExitStack() as held:
        if role != "worker":  # a worker runs under its chief's lock
            check_out_folder(out)
            held.enter_context(search_lock(out))
        prepare_folders(out, spec["name"], axes, {**settings, "search": plan}, dataset,
                        overwrite=overwrite, role=role)
        tuner = _make_tuner(spec["name"], axes, settings, plan, out, objective, role,
                            fuse=fuse, max_memory_growth=max_memory_growth,
                            tensorboard=tensorboard, split_groups=split_groups, workers=workers,
                            announce=announce, prune=prune_rule)
        if role != "chief":  # the chief hands out trials and trains none: no data
            data = _load_data(spec["name"], plan, settings, tuner, out, dataset, data_dir, data,
                              announce)
        if verbose is None:  # Keras' bar on a terminal; elsewhere our one line per trial is enough
            verbose = 1 if sys.stdout.isatty() else 0
        # verbose=0 silences keras-tuner's own trial tables; our progress line replaces them.
        tuner.search(data=data, fit_verbose=verbose, verbose=0)
        project = project_dir(out, spec["name"])
        if tensorboard and tuner.board_seconds and role != "chief":
            board_cost = BoardCost(len(tuner.session_seconds), tuner.board_seconds,
                                   sum(tuner.session_seconds))
            board_cost.report(project / "tensorboard", jobs_folder)
        table = write_results_csv(project, out / RESULTS_CSV)
        if role != "worker":  # a worker leaves the ranking and the export to the chief
            # Random draws and Hyperband's rounds may end short of their most (a small
            # space runs out of new points): what is owed are the trials handed out.
            total = (tuner.total_trials if plan["strategy"] == "grid"
                     else len(list(project.glob("trial_*/trial.json"))))
            report(table, total, out, objective, show_top, export_top)
    return table


def _make_tuner(name: str, axes: dict, settings: dict, plan: dict, out: Path, objective: str,
                role: str | None, announce: bool, **options):
    """The ZooTuner of the search (and, for a lone process or the chief, TensorBoard's
    HParams set-up); the chief says where it serves (announce)."""
    import keras_tuner as kt

    from mnist_zoo.search.board import write_board_config
    from mnist_zoo.search.tuner import ZooTuner

    tuner = ZooTuner(
        axes, kt.Objective(objective, "min" if lower_is_better(objective) else "max"),
        directory=str(out / "tuner"), project_name=name,
        overwrite=False,  # claim_results already cleared the folder when asked to
        results_csv=out / RESULTS_CSV, seed=settings.get("seed", 0), search=plan, **options)
    if options["tensorboard"] and role != "worker":
        write_board_config(project_dir(out, name) / "tensorboard", axes, plan["strategy"])
    if role == "chief" and announce:
        print(f"chief: serving {describe(name, plan)} ({tuner.total_trials} trials) on "
              f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}",
              flush=True)
    return tuner


def _load_data(name: str, plan: dict, settings: dict, tuner, out: Path, dataset: str, data_dir,
               data: data_lib.DigitData | None, announce: bool) -> data_lib.DigitData:
    """The search's data (loaded unless given), checked against the project's; announce:
    print the start line (under --jobs one worker does, for all)."""
    data = data or data_lib.load_dataset(dataset, data_dir, subset=settings.get("subset"),
                                         validation_size=settings.get("validation_size"),
                                         seed=settings.get("seed", 0))
    check_same_data(project_dir(out, name), data)
    if announce:
        print(f"{describe(name, plan)}: {tuner.total_trials} trials, {len(data.x_train)} "
              f"training / {len(data.x_val)} validation / {len(data.x_test)} test images "
              f"from {data.source}", flush=True)
    return data


@dataclasses.dataclass
class BoardCost:
    """What logging for TensorBoard cost a process: trials logged, seconds spent on the
    logs, seconds their training took."""

    trials: int
    seconds: float
    trained: float

    def report(self, board_dir: Path, jobs_folder: Path | None) -> None:
        """Print the one tensorboard line; under --jobs, leave this process's cost in
        jobs_folder for the parent to add up and print once (`BoardCost.total`)."""
        if jobs_folder is None:
            print(self.line(board_dir))
            return
        with contextlib.suppress(OSError):  # the line is worth less than the search
            atomic_write_text(Path(jobs_folder) / f"board_{os.getpid()}.json",
                              json.dumps(dataclasses.asdict(self)))

    def line(self, board_dir: Path) -> str:
        return (f"tensorboard: logged {self.trials} trials in {self.seconds:.1f} s "
                f"({self.seconds / max(self.trained, 1e-9):.1%} of their training time); "
                f"tensorboard --logdir {board_dir}")

    @classmethod
    def total(cls, jobs_folder: Path) -> BoardCost | None:
        """The sum of what the --jobs processes left in jobs_folder (None: none logged)."""
        costs = []
        for path in sorted(Path(jobs_folder).glob("board_*.json")):
            with contextlib.suppress(OSError, ValueError, TypeError):
                costs.append(cls(**json.loads(path.read_text())))
        if not costs:
            return None
        return cls(*(sum(getattr(c, f.name) for c in costs) for f in dataclasses.fields(cls)))


def describe(name: str, plan: dict) -> str:
    """'grid full', or 'full_hyperband (hyperband)': what the progress lines call it."""
    return f"grid {name}" if plan["strategy"] == "grid" else f"{name} ({plan['strategy']})"


def prepare_folders(out: Path, grid_name: str, axes: dict, settings: dict, dataset: str, *,
                    overwrite: bool, role: str | None) -> None:
    """The checks before a search starts (mnist_zoo.search.project); the chief or a lone
    process claims <out> (clearing it with --overwrite), a worker only checks its own
    keras-tuner file, the others being the chief's."""
    project = project_dir(out, grid_name)
    check_out_folder(out)
    if role != "worker":
        claim_results(out, grid_name, overwrite)
    check_same_grid(project, axes, settings, dataset)
    own_file = os.environ.get("KERASTUNER_TUNER_ID", "tuner0") + ".json"
    repair_and_warn(project, own_file if role == "worker" else None)


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
        pruned = pruned_summary(list(table["status"]), list(table.get("pruned_by", [])))
        if pruned:
            print(pruned)
        export_top_models(table, out, objective, export_top)
    print(f"results: {out / RESULTS_CSV}")
