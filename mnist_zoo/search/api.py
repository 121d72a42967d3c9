"""`search()`: run (or resume) a grid search from code; the command line is a thin layer
over it (mnist_zoo.search._command).

It checks and claims the folders (project.py), builds the tuner (tuner.py), loads the
data, lets keras-tuner loop over the trials, and reports: the best trials printed and
exported (results.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mnist_zoo import data as data_lib
from mnist_zoo.search.grid import load_grid, with_repeats
from mnist_zoo.search.project import (check_out_folder, check_same_data, check_same_grid,
                                      claim_results, project_dir, repair_and_warn)
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
           prune: str | None = None, prune_warmup: int | None = None,
           prune_min_trials: int | None = None):
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
    prune: 'none', 'median' or 'percentile:P' over the file's [search] prune: stop a trial
    whose objective after an epoch is behind the others' (mnist_zoo.search.pruning);
    prune_warmup: epochs before any is judged (default 1); prune_min_trials: other
    trials' values an epoch needs before a judgement there (default 4).
    """
    import keras_tuner as kt

    from mnist_zoo.search.board import write_board_config
    from mnist_zoo.search.tuner import ZooTuner

    spec = load_grid(grid)
    search_table, prune_rule = split_prune(spec["search"], prune, prune_warmup, prune_min_trials)
    spec = {**spec, "search": search_table}
    axes, settings = grid_with_overrides(spec, epochs=epochs, subset=subset, seed=seed,
                                         repeats=repeats)
    plan = resolve_search({**spec, "axes": axes}, strategy, max_trials, epochs=epochs)
    check_prunable(prune_rule, plan["strategy"], objective)
    seed = settings.get("seed", 0)
    out = Path(out)
    project, results_csv = project_dir(out, spec["name"]), out / RESULTS_CSV
    owns_results = role != "worker"  # a lone process or the chief: it claims and reports
    prepare_folders(out, spec["name"], axes, {**settings, "search": plan}, dataset,
                    overwrite=overwrite, role=role)
    tuner = ZooTuner(
        axes, kt.Objective(objective, "min" if lower_is_better(objective) else "max"),
        directory=str(out / "tuner"), project_name=spec["name"],
        overwrite=False,  # claim_results already cleared the folder when asked to
        results_csv=results_csv, seed=seed, search=plan, fuse=fuse,
        max_memory_growth=max_memory_growth,
        tensorboard=tensorboard, split_groups=split_groups, workers=workers, prune=prune_rule)
    if tensorboard and owns_results:
        write_board_config(project / "tensorboard", axes, plan["strategy"])
    if role == "chief":  # it hands out trials and trains none: no data
        print(f"chief: serving {describe(spec['name'], plan)} ({tuner.total_trials} trials) on "
              f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}",
              flush=True)
    else:
        data = data or data_lib.load_dataset(dataset, data_dir, subset=settings.get("subset"),
                                             validation_size=settings.get("validation_size"),
                                             seed=seed)
        check_same_data(project, data)
        print(f"{describe(spec['name'], plan)}: {tuner.total_trials} trials, "
              f"{len(data.x_train)} training "
              f"/ {len(data.x_val)} validation / {len(data.x_test)} test images from "
              f"{data.source}", flush=True)
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
    if owns_results:  # a worker leaves the ranking and the export to the chief
        # Random draws and Hyperband's rounds may end short of their most (a small
        # space runs out of new points): what is owed are the trials handed out.
        total = (tuner.total_trials if plan["strategy"] == "grid"
                 else len(list(project.glob("trial_*/trial.json"))))
        report(table, total, out, objective, show_top, export_top)
    return table


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
