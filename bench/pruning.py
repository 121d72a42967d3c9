"""Pruning's benchmark (issue #32): the grid with and without --prune, and the naive lab
loop, on the same data, seed and cores, in one run.

    python bench/pruning.py --data-dir ../shared/data/mnist-full          # the issue's run:
        # the full grid (81 trials x 3 epochs) on MNIST's 55,000, ~50 min on 2 idle cores
    python bench/pruning.py --data-dir ../shared/data/mnist-8k2k --subset 2000 --epochs 2 \\
        --grid bench/subgrid.toml --dataset mnist --out /tmp/pruning_toy   # a toy check

Each search runs as users run it (its own command line, the README's defaults, --jobs
as given), the pruned one with --prune RULE; the naive loop is bench/grid_speed.py's (a
fresh model and one model.fit per combination, one at a time). For each it reports the
wall time, the trials pruned, the best point (by validation accuracy; its test accuracy
beside it) and its top 10, and whether the pruned search's best is the unpruned grid's
best or within noise of it: a test accuracy at most 2 x --noise below it (0.27 points,
the spread over seeds of the 10 best points that the strategies benchmark measured on
this grid). It names the CPU and which kernels ran: the searches get oneDNN from the
package (mnist_zoo.prefer_onednn, unless TF_ENABLE_ONEDNN_OPTS is set), the naive loop
TensorFlow's default for the CPU unless TF_ENABLE_ONEDNN_OPTS is set.
Writes pruning.md and each run's table (<run>.csv) into --out.
The issue's targets: the pruned search <= 0.6 of the unpruned grid's wall time, with its
best within noise, and >= 6x the naive loop.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd

import grid_speed  # bench/grid_speed.py, beside this file: the naive loop, the search runner
from mnist_zoo import data as data_lib, onednn_by_default
from mnist_zoo.order import best_first
from mnist_zoo.search.grid import grid_points, load_grid

HERE = Path(__file__).resolve().parent
AXES = ["activation", "learning_rate", "optimizer", "batch_size"]
TOP = 10


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", default="full", help="grid name or .toml (default full)")
    parser.add_argument("--dataset", default="mnist", choices=data_lib.DATASETS)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=None, help="override the grid's epochs")
    parser.add_argument("--subset", type=int, default=None, help="training images to use")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prune", default="median", help="the pruned search's --prune")
    parser.add_argument("--prune-warmup", type=int, default=None,
                        help="the pruned search's --prune-warmup (default: the search's, 1)")
    parser.add_argument("--jobs", default=None,
                        help="the searches' --jobs (default: none given, the README's command)")
    parser.add_argument("--noise", type=float, default=0.27,
                        help="test accuracy noise in points (default 0.27, docs/benchmarks.md)")
    parser.add_argument("--skip-naive", action="store_true", help="time the searches only")
    parser.add_argument("--out", default=str(HERE / "out" / "pruning"))
    args = parser.parse_args(argv)
    args.no_fuse = False  # what grid_speed.run_search reads
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    spec = load_grid(args.grid)
    if args.epochs:
        spec["axes"]["epochs"] = [args.epochs]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs, seconds = {}, {}
    pruned = ["--prune", args.prune] + (["--prune-warmup", str(args.prune_warmup)]
                                        if args.prune_warmup else [])
    for name, extra in (("grid", []), (f"grid {' '.join(pruned)}", pruned)):
        started = time.perf_counter()
        runs[name], _, _ = grid_speed.run_search(
            args, spec, os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"), extra=extra)
        seconds[name] = time.perf_counter() - started
    if not args.skip_naive:
        data = data_lib.load_dataset(args.dataset, args.data_dir, subset=args.subset,
                                     seed=args.seed)
        started = time.perf_counter()
        naive = grid_speed.naive_loop(grid_points(spec["axes"]), data, args.seed)
        seconds["naive loop"] = time.perf_counter() - started
        runs["naive loop"] = naive.assign(status="completed")
    for name, table in runs.items():
        table.to_csv(out / f"{name.replace(' ', '_').replace('-', '')}.csv", index=False)
    report = describe(spec, args, runs, seconds)
    (out / "pruning.md").write_text(report)
    print("\n" + report)
    return 0


def describe(spec: dict, args, runs: dict, seconds: dict) -> str:
    """The Markdown report: setting, one row per run, the targets, each run's top 10."""
    plain, pruned_name = "grid", next(name for name in runs if name.startswith("grid --"))
    trials = len(grid_points(spec["axes"]))
    lines = [f"Grid `{spec['name']}` ({trials} trials x {spec['axes']['epochs'][0]} epochs), "
             f"{args.dataset}{f', {args.subset} training images' if args.subset else ''}, "
             f"seed {args.seed}, search --jobs {args.jobs or 'auto (default)'}.", "",
             f"CPU: {grid_speed.cpu_description()}. Kernels: the searches "
             f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', '1 (the package)')}"
             f"; the naive loop {kernels_here()}.", "",
             "| run | wall time | trials pruned | best point (by validation) | its val / test "
             "accuracy |", "| --- | ---: | ---: | --- | ---: |"]
    for name, table in runs.items():
        best = top(table).iloc[0]
        pruned = int((table["status"] == "pruned").sum())
        lines.append(f"| {name} | {seconds[name]:.0f} s | {pruned} of {len(table)} | "
                     f"{point_text(best)} | {best['val_accuracy']:.2%} / "
                     f"{best['test_accuracy']:.2%} |")
    lines += ["", *targets(runs, seconds, plain, pruned_name, args.noise), ""]
    for name, table in runs.items():
        shown = top(table)[[*AXES, "val_accuracy", "test_accuracy"]].head(TOP)
        lines += [f"Top {len(shown)} of {name}:", "", "```",
                  shown.round(4).to_string(index=False), "```", ""]
    return "\n".join(lines)


def targets(runs: dict, seconds: dict, plain: str, pruned: str, noise: float) -> list[str]:
    """The issue's targets, met or not."""
    share = seconds[pruned] / seconds[plain]
    best_plain, best_pruned = top(runs[plain]).iloc[0], top(runs[pruned]).iloc[0]
    same = point_text(best_plain) == point_text(best_pruned)
    gap = (best_plain["test_accuracy"] - best_pruned["test_accuracy"]) * 100
    lines = [f"- pruned search / unpruned grid wall time: **{share:.2f}** (target <= 0.6: "
             f"{'met' if share <= 0.6 else 'not met'})",
             f"- best point: {'the same' if same else 'another'}; its test accuracy "
             f"{gap:+.2f} points below the grid's best's (within noise: <= {2 * noise:.2f}: "
             f"{'yes' if same or gap <= 2 * noise else 'no'})"]
    if "naive loop" in seconds:
        speed_up = seconds["naive loop"] / seconds[pruned]
        lines.append(f"- naive loop / pruned search: **{speed_up:.1f}x** (target >= 6x: "
                     f"{'met' if speed_up >= 6 else 'not met'})")
    return lines


def top(table: pd.DataFrame) -> pd.DataFrame:
    """Completed trials, best validation accuracy first (ties: the package's rule)."""
    return best_first(table[table["status"] == "completed"], "val_accuracy", True)


def point_text(row) -> str:
    return " ".join(f"{row[axis]}" for axis in AXES if axis in row)


def kernels_here() -> str:
    setting = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    if setting is not None:
        return f"TF_ENABLE_ONEDNN_OPTS={setting}"
    return f"TensorFlow's default for this CPU (oneDNN {'on' if onednn_by_default() else 'off'})"


if __name__ == "__main__":
    sys.exit(main())
