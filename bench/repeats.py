"""What three seeds cost, and which of the lab's conclusions survive them.

    python bench/repeats.py --data-dir ../shared/data/mnist-full          # full grid, MNIST
    python bench/repeats.py --dataset fashion_mnist --skip-single          # seeds only

Runs the search's own command line on the same grid twice in one run, with --repeats 1 and
--repeats 3 (same data, seed and --jobs), and reports the wall-time ratio. From the
repeats-3 run it then asks, for every axis of the grid, what the lab asked of one run per
cell ("Adam beats RMSprop", "batch 32 is best"): which value wins on average, whether the
winner is the same with the first seed alone (what a one-run grid sees), and in how many
matched cells (all other settings equal) the winner's lead over the runner-up is larger
than noise (Welch's t-test over the 3 seeds, p < 0.05).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from mnist_zoo.axes import CORE_AXES
from mnist_zoo.search.table import RESULTS_CSV

HERE = Path(__file__).resolve().parent
AXES = [axis for axis in CORE_AXES if axis not in ("model", "epochs")]


def run_search(grid: str, out: Path, repeats: int, args) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, all its processes) of one search.

    CPU time is the fairer figure on a shared machine: what other programs take from the
    cores lengthens the wall time but not the work done."""
    command = [sys.executable, "-m", "mnist_zoo.search", "--grid", grid, "--out", str(out),
               "--dataset", args.dataset, "--repeats", str(repeats), "--export-top", "0",
               "--jobs", str(args.jobs), "--overwrite"]
    command += ["--data-dir", args.data_dir] if args.data_dir else []
    command += ["--epochs", str(args.epochs)] if args.epochs else []
    command += ["--subset", str(args.subset)] if args.subset else []
    cpu_before = _children_cpu()
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started, _children_cpu() - cpu_before


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # waited-for descendants included
    return usage.ru_utime + usage.ru_stime


def axis_conclusions(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per axis: the winner by the mean over all seeds and over the first seed alone, and
    how often the winner's lead over the runner-up stands out of the seeds' noise."""
    from scipy.stats import ttest_ind

    runs = runs[runs["status"] == "completed"]
    rows = []
    for axis in AXES:
        if runs[axis].nunique() < 2:
            continue
        by_value = runs.groupby(axis)[metric].mean().sort_values(ascending=False)
        first_seed = runs[runs["repeat"] == 0].groupby(axis)[metric].mean()
        winner, runner_up = by_value.index[:2]
        others = [a for a in AXES if a != axis]
        leads, significant = 0, 0
        cells = 0
        for _, cell in runs.groupby(others):
            a = cell.loc[cell[axis] == winner, metric]
            b = cell.loc[cell[axis] == runner_up, metric]
            if len(a) < 2 or len(b) < 2:
                continue
            cells += 1
            leads += a.mean() > b.mean()
            significant += a.mean() > b.mean() and ttest_ind(a, b, equal_var=False).pvalue < 0.05
        rows.append({"axis": axis, "winner (3 seeds)": winner, "runner-up": runner_up,
                     "winner mean": by_value[winner], "runner-up mean": by_value[runner_up],
                     "winner (seed 0 alone)": first_seed.idxmax(),
                     "cells where winner leads": f"{leads}/{cells}",
                     "of them beyond noise": f"{significant}/{cells}"})
    return pd.DataFrame(rows)


def best_points(runs: pd.DataFrame, metric: str, top: int = 5) -> pd.DataFrame:
    """The best grid points by mean, and which are within noise of the best (Welch, p>=0.05)."""
    from scipy.stats import ttest_ind

    runs = runs[runs["status"] == "completed"]
    points = runs.groupby(AXES)[metric].agg(["mean", "std", "count"]).reset_index()
    points = points.sort_values("mean", ascending=False).head(top).reset_index(drop=True)
    values = [runs.set_index(AXES).loc[tuple(p[AXES]), metric] for _, p in points.iterrows()]
    points["p vs best"] = [1.0] + [ttest_ind(values[0], v, equal_var=False).pvalue
                                   for v in values[1:]]
    points["within noise of best"] = points["p vs best"] >= 0.05
    return points


def markdown(table: pd.DataFrame) -> str:
    try:
        return table.round(4).to_markdown(index=False)  # needs `pip install tabulate`
    except ImportError:
        return table.round(4).to_string(index=False)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", default="full")
    parser.add_argument("--dataset", default="mnist", choices=["mnist", "fashion_mnist"])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=None, help="override the grid's epochs")
    parser.add_argument("--subset", type=int, default=None, help="training images to use")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--skip-single", action="store_true", help="run --repeats 3 only")
    parser.add_argument("--metric", default="val_accuracy")
    parser.add_argument("--out", default=str(HERE / "out" / "repeats"))
    args = parser.parse_args(argv)

    out = Path(args.out) / args.dataset
    timings = {}
    if not args.skip_single:
        timings["--repeats 1"] = run_search(args.grid, out / "r1", 1, args)
    timings["--repeats 3"] = run_search(args.grid, out / "r3", 3, args)
    runs = pd.read_csv(out / "r3" / RESULTS_CSV)
    runs.to_csv(out / f"{args.grid}_{args.dataset}_repeats3.csv", index=False)

    size = f", {args.subset} training images" if args.subset else ""
    epochs = f", {args.epochs} epochs" if args.epochs else ""
    lines = [f"Grid `{args.grid}`{epochs}, {args.dataset}{size}, --jobs {args.jobs}, "
             f"metric {args.metric}:", ""]
    for name, (wall, cpu) in timings.items():
        lines.append(f"- `{name}`: {wall:.0f} s wall ({wall / 60:.1f} min), {cpu:.0f} s CPU")
    if len(timings) == 2:
        (wall1, cpu1), (wall3, cpu3) = timings["--repeats 1"], timings["--repeats 3"]
        lines.append(f"- ratio repeats 3 / repeats 1 (3 × the runs): **{wall3 / wall1:.2f}×** "
                     f"wall time, **{cpu3 / cpu1:.2f}×** CPU time")
    lines += ["", markdown(axis_conclusions(runs, args.metric)), "",
              markdown(best_points(runs, args.metric))]
    report = "\n".join(lines) + "\n"
    (out / f"{args.grid}_{args.dataset}_repeats.md").write_text(report)
    print("\n" + report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
