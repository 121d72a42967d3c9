"""How soon each strategy holds a setting as good as the full grid's best (issue #20).

    python bench/strategies.py --data-dir ../shared/data/mnist-full            # 55k, 3 epochs
    python bench/strategies.py --data-dir ../shared/data/mnist-8k2k --subset 2000 \\
        --epochs 1 --seeds 0 --noise 0.01 --out /tmp/strategies_toy           # a toy check

Runs the search's own command line, one run after another on the same cores: the full
grid (search/full.toml), random search and Hyperband (search/full_hyperband.toml: the
grid's axes, the learning rate a log range), each with every --seed. Then:

- the grid's best: the grid point with the highest mean test accuracy over the grid's
  seeds; the noise: the standard deviation of a point's test accuracy over those seeds,
  pooled over the grid's 10 best points (--noise gives it instead, e.g. with one seed);
- "within noise": a completed trial whose test accuracy is at least best - 2 x noise;
- for every run: its wall time, the seconds from its start until its first trial within
  noise finished (the trial's finished_at), its completed trials and its best test accuracy.

With --stop-within-noise the random and Hyperband runs end at their first trial within
noise, or after --cap x the grid's median wall time: the time to within noise is all the
table needs of them, and the grid runs (always whole) are most of the cost.

It writes runs.csv (one row per run), strategies.md (the table, medians over the seeds,
and each strategy's time to within noise as a fraction of the grid's wall time) and
best_so_far.png (best test accuracy so far against wall seconds, one line per run) into
--out. The issue's target: Hyperband within noise in at most 1/3 of the grid's wall time.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mnist_zoo.search.table import RESULTS_CSV

HERE = Path(__file__).resolve().parent
STRATEGIES = {  # name -> the search command's own options
    "grid": ["--grid", "full"],
    "random": ["--grid", "full_hyperband", "--strategy", "random"],
    "hyperband": ["--grid", "full_hyperband"],
}
TOP_POINTS = 10  # the grid's best points whose spread over seeds is the noise
AXES = ["activation", "learning_rate", "optimizer", "batch_size"]


def run_search(strategy: str, seed: int, args, stop=None) -> dict:
    """One search from scratch; its wall time and where its results are. stop(csv,
    seconds) -> a reason ("" to go on) ends it early."""
    out = Path(args.out) / f"{strategy}_seed{seed}"
    command = [sys.executable, "-m", "mnist_zoo.search", *STRATEGIES[strategy], "--out", str(out),
               "--seed", str(seed), "--jobs", str(args.jobs), "--export-top", "0",
               "--no-tensorboard", "--overwrite"]
    command += ["--data-dir", args.data_dir] if args.data_dir else []
    command += ["--epochs", str(args.epochs)] if args.epochs else []
    command += ["--subset", str(args.subset)] if args.subset else []
    command += ["--max-trials", str(args.random_trials)] if strategy == "random" else []
    command += ["--no-fuse"] if args.no_fuse else []
    print(f"\n$ {' '.join(command)}", flush=True)
    started = time.time()
    # A session of its own, so that a stop ends its --jobs workers with it.
    search = subprocess.Popen(command, stdout=None if args.verbose else subprocess.DEVNULL,
                              start_new_session=True)
    stopped = ""
    while search.poll() is None:
        time.sleep(2)
        if stop is not None:
            stopped = stop(out / RESULTS_CSV, time.time() - started)
            if stopped:
                os.killpg(search.pid, signal.SIGKILL)
                search.wait()
    if search.returncode != 0 and not stopped:
        raise SystemExit(f"error: the {strategy} search (seed {seed}) exited with "
                         f"{search.returncode}")
    return {"strategy": strategy, "seed": seed, "started": started,
            "wall_seconds": time.time() - started, "csv": out / RESULTS_CSV,
            "stopped": stopped}


def stopper(threshold: float, cap_seconds: float):
    """Stops a run at its first completed trial within noise, or once it has run
    cap_seconds: past that the strategy has missed the target anyway, and the rest of
    its run would measure nothing the table reports."""
    def stop(csv: Path, elapsed: float) -> str:
        if elapsed > cap_seconds:
            return "cap"
        table = read_rows(csv)
        done = table[table["status"] == "completed"]
        return "within noise" if (done["test_accuracy"] >= threshold).any() else ""
    return stop


def grid_reference(grid_runs: list[dict], noise: float | None) -> tuple[float, float]:
    """(best, noise): the grid point with the best mean test accuracy over the grid's
    seeds, and the pooled standard deviation over the seeds of its TOP_POINTS best."""
    tables = [pd.read_csv(run["csv"]) for run in grid_runs]
    runs = pd.concat(tables)
    runs = runs[runs["status"] == "completed"]
    points = runs.groupby(AXES)["test_accuracy"].agg(["mean", "var", "count"])
    points = points.sort_values("mean", ascending=False)
    if noise is None:
        top = points.head(TOP_POINTS)
        if top["count"].min() < 2:
            raise SystemExit("error: the noise needs the grid run with 2 or more --seeds, or "
                             "give it with --noise")
        noise = float(np.sqrt(top["var"].mean()))
    return float(points["mean"].iloc[0]), noise


def within_noise(run: dict, threshold: float) -> dict:
    """The run's row: its trials, best test accuracy, and the seconds until its first
    completed trial at or above the threshold (NaN: never)."""
    table = read_rows(run["csv"])
    done = table[table["status"] == "completed"].sort_values("finished_at")
    hits = done[done["test_accuracy"] >= threshold]
    first = hits["finished_at"].iloc[0] - run["started"] if len(hits) else np.nan
    return {"strategy": run["strategy"], "seed": run["seed"], "trials": len(done),
            "best_test_accuracy": done["test_accuracy"].max(),
            "wall_seconds": round(run["wall_seconds"], 1),
            "seconds_to_within_noise": round(first, 1),
            "stopped": run.get("stopped") or "finished", "started": round(run["started"], 2)}


def read_rows(csv: Path) -> pd.DataFrame:
    """A run's rows; none when it was stopped before its first trial ended (or the file
    is being written as the stopper reads it)."""
    try:
        return pd.read_csv(csv)
    except (OSError, ValueError):  # pandas' EmptyDataError and ParserError are ValueErrors
        return pd.DataFrame(columns=["status", "test_accuracy", "finished_at"])


def summary_table(rows: pd.DataFrame, best: float, noise: float, threshold: float) -> str:
    grid_wall = rows.loc[rows["strategy"] == "grid", "wall_seconds"].median()
    medians = rows.groupby("strategy", sort=False).agg(
        runs=("seed", "size"), trials=("trials", "median"), wall_seconds=("wall_seconds", "median"),
        # A run that never got there counts as slower than any that did (pandas' median
        # would skip it, reporting the lucky runs' time as the strategy's).
        seconds_to_within_noise=("seconds_to_within_noise",
                                 lambda s: s.fillna(np.inf).median()),
        reached=("seconds_to_within_noise", lambda s: f"{s.notna().sum()}/{len(s)}"),
        best_test_accuracy=("best_test_accuracy", "median"))
    medians["of_grid_wall_time"] = (medians["seconds_to_within_noise"] / grid_wall).round(3)
    return "\n".join([
        f"The grid's best point: test accuracy {best:.4f} (mean over its seeds); noise "
        f"{noise:.4f} (pooled std over seeds of its {TOP_POINTS} best points); within noise: "
        f">= {threshold:.4f} (best - 2 x noise).", "",
        "Medians over the seeds:", "", markdown(medians.reset_index()), "",
        "Every run:", "", markdown(rows)])


def markdown(table: pd.DataFrame) -> str:
    """A pipe table (pandas' to_markdown needs the tabulate package)."""
    cells = [[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row]
             for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(map(str, table.columns)) + " |",
             "|" + "---|" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def draw(runs: list[dict], threshold: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    colours = {"grid": "#4c72b0", "random": "#55a868", "hyperband": "#cf222e"}
    fig = Figure(figsize=(9, 5), layout="constrained")
    ax = fig.subplots()
    for run in runs:
        table = read_rows(run["csv"]).sort_values("finished_at")
        accuracy = table["test_accuracy"].where(table["status"] == "completed")
        ax.step(table["finished_at"] - run["started"], accuracy.cummax(), where="post",
                color=colours[run["strategy"]], alpha=0.8,
                label=run["strategy"] if run["seed"] == runs[0]["seed"] else None)
    ax.axhline(threshold, color="grey", linestyle="--", label="within noise of the grid's best")
    ax.set_xlabel("wall seconds since the search started")
    ax.set_ylabel("best test accuracy so far")
    ax.set_ylim(threshold - 0.05, 1.0)
    ax.grid(True, alpha=0.35, linestyle=":")
    ax.legend(loc="lower right")
    ax.set_title("Best so far: grid, random and Hyperband search (one line per seed)")
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="a folder of MNIST's IDX files")
    parser.add_argument("--subset", type=int, default=None,
                        help="training images (default: all 55,000)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="the grid's epochs and Hyperband's max_epochs (default: the files' 3)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES),
                        choices=list(STRATEGIES))
    parser.add_argument("--random-trials", type=int, default=81,
                        help="random search's max_trials (default 81, the grid's size)")
    parser.add_argument("--noise", type=float, default=None,
                        help="the noise in test accuracy (default: from the grid's seeds)")
    parser.add_argument("--jobs", default="auto", help="the search's --jobs")
    parser.add_argument("--no-fuse", action="store_true", help="the search's --no-fuse")
    parser.add_argument("--stop-within-noise", action="store_true",
                        help="end each random and Hyperband run at its first trial within "
                             "noise (or at --cap): its time to within noise, not its whole run")
    parser.add_argument("--cap", type=float, default=0.5,
                        help="with --stop-within-noise: end a run that has not got there "
                             "after this fraction of the grid's wall time (default 0.5)")
    parser.add_argument("--verbose", action="store_true", help="show the searches' output")
    parser.add_argument("--out", default=str(HERE / "out" / "strategies"))
    args = parser.parse_args(argv)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if "grid" not in args.strategies:
        parser.error("the grid is the reference: keep it in --strategies")
    runs = [run_search("grid", seed, args) for seed in args.seeds]
    best, noise = grid_reference(runs, args.noise)
    threshold = best - 2 * noise
    grid_wall = float(np.median([run["wall_seconds"] for run in runs]))
    stop = stopper(threshold, args.cap * grid_wall) if args.stop_within_noise else None
    runs += [run_search(strategy, seed, args, stop) for strategy in args.strategies
             if strategy != "grid" for seed in args.seeds]
    rows = pd.DataFrame([within_noise(run, threshold) for run in runs])
    rows.to_csv(Path(args.out) / "runs.csv", index=False)
    text = summary_table(rows, best, noise, threshold)
    (Path(args.out) / "strategies.md").write_text(text + "\n")
    draw(runs, threshold, Path(args.out) / "best_so_far.png")
    print("\n" + text)
    print(f"\nwritten: {args.out}/runs.csv, strategies.md, best_so_far.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
