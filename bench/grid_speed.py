"""The naive lab loop against mnist_zoo.search, on the same grid, data and seed, in one process.

    python bench/grid_speed.py                       # bench/subgrid.toml: 27 trials, Fashion-MNIST
    python bench/grid_speed.py --grid full           # the whole 81-trial grid
    python bench/grid_speed.py --epochs 1 --subset 20000 --skip-naive
    python bench/grid_speed.py --grid full --epochs 1 --subset 20000 --search-onednn default,0
    python bench/grid_speed.py --skip-search --naive-threads 1 \
        --compare-naive bench/out/subgrid_fashion_mnist_e3_naive.csv    # float-rounding floor

The naive loop is what the lab scripts do: for every combination a fresh model and one
`model.fit(..., validation_data=...)`, one step per call into TensorFlow, one trial at a
time. It gets the very same seeded batches as the search, so accuracy differences
measure what the speed-ups do to the numbers, not shuffling luck. Writes a Markdown
table (and per-trial CSVs) to --out.

How far apart may two runs of the same trials land at all? --naive-threads 1 runs the
naive loop with one intra-op thread instead of TensorFlow's default: the same
arithmetic, summed in another order. --compare-naive then sets its accuracies against
an earlier naive run: that difference is the floor for any faster implementation.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import memory  # noqa: E402  (bench/memory.py, beside this file)
import pandas as pd  # noqa: E402

from mnist_zoo import data as data_lib, onednn_by_default  # noqa: E402
from mnist_zoo.axes import CORE_AXES  # noqa: E402
from mnist_zoo.search.grid import grid_points, load_grid  # noqa: E402
from mnist_zoo.models import build_model  # noqa: E402
from mnist_zoo.search.table import RESULTS_CSV  # noqa: E402
from mnist_zoo.train import fit_models  # noqa: E402

HERE = Path(__file__).resolve().parent
AXES = list(CORE_AXES)


def naive_loop(points: list[dict], data: data_lib.DigitData, seed: int) -> pd.DataFrame:
    rows = []
    for i, values in enumerate(points, start=1):
        started = time.perf_counter()
        keras.utils.set_random_seed(seed)
        # The lab's way: one step per call into TensorFlow (Keras' default), one model at a
        # time; the training itself is the package's, so batches and seeds are the search's.
        model = build_model(values["model"], activation=values["activation"],
                            optimizer=values["optimizer"], learning_rate=values["learning_rate"])
        (fit,) = fit_models([model], data, batch_size=values["batch_size"],
                            epochs=values["epochs"], seed=seed)
        history, test = fit.history, fit.test
        seconds = time.perf_counter() - started
        rows.append({**values, "val_accuracy": history["val_accuracy"][-1],
                     "test_accuracy": test["accuracy"], "seconds": seconds})
        print(f"naive [{i}/{len(points)}] {values['optimizer']} lr={values['learning_rate']} "
              f"bs={values['batch_size']} -> val_acc {rows[-1]['val_accuracy']:.4f} "
              f"({seconds:.1f} s)", flush=True)
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", default=str(HERE / "subgrid.toml"))
    parser.add_argument("--dataset", default="fashion_mnist", choices=data_lib.DATASETS)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=None, help="override the grid's epochs")
    parser.add_argument("--subset", type=int, default=None, help="training images to use")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-naive", action="store_true", help="time the search only")
    parser.add_argument("--skip-search", action="store_true", help="time the naive loop only")
    parser.add_argument("--naive-threads", type=int, default=None,
                        help="intra-op threads for the naive loop (default: TensorFlow's)")
    parser.add_argument("--compare-naive", metavar="CSV", default=None,
                        help="an earlier run's *_naive.csv to set this naive run against")
    parser.add_argument("--no-fuse", action="store_true", help="search one trial at a time")
    parser.add_argument("--jobs", default=None,
                        help="the search's --jobs (default: none given, i.e. the README's "
                             "command with its default --jobs auto)")
    parser.add_argument("--search-onednn", default="default",
                        help="comma-separated TF_ENABLE_ONEDNN_OPTS settings to run the search "
                             "with, one search each: 'default' leaves the variable unset "
                             "(the package's own choice), 0 or 1 sets it; e.g. default,0. The "
                             "naive loop runs with this process' environment (unset: "
                             "TensorFlow's default kernels)")
    parser.add_argument("--out", default=str(HERE / "out"), help="folder for the tables")
    args = parser.parse_args(argv)
    if args.naive_threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.naive_threads)

    spec = load_grid(args.grid)
    if args.epochs:
        spec["axes"]["epochs"] = [args.epochs]
    points = grid_points(spec["axes"])
    data = data_lib.load_dataset(args.dataset, args.data_dir, subset=args.subset, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    label = f"{spec['name']}_{args.dataset}_e{spec['axes']['epochs'][0]}"
    print(f"{len(points)} trials, {len(data.x_train)} training images, {os.cpu_count()} CPUs")

    timings = {}
    naive = None
    if not args.skip_naive:
        started = time.perf_counter()
        naive = naive_loop(points, data, args.seed)
        timings["naive loop"] = time.perf_counter() - started
        suffix = f"_t{args.naive_threads}" if args.naive_threads else ""
        naive.to_csv(out / f"{label}_naive{suffix}.csv", index=False)
        if args.compare_naive:
            print(accuracy_difference(pd.read_csv(args.compare_naive), naive,
                                      "earlier naive run", "this naive run"))
    if args.skip_search:
        return 0
    searches, search_memory = {}, []
    for onednn in args.search_onednn.split(","):
        flags = (f" --jobs {args.jobs}" if args.jobs else " (defaults)") + (
            "" if onednn == "default" else f", TF_ENABLE_ONEDNN_OPTS={onednn}")
        started = time.perf_counter()
        searches[flags], peaks, restarts = run_search(args, spec, onednn)
        timings[f"mnist_zoo.search{flags}"] = time.perf_counter() - started
        search_memory += memory.describe(f"mnist_zoo.search{flags}", peaks, restarts,
                                         timings[f"mnist_zoo.search{flags}"])
    table = ["| run | wall time | trials/min |", "| --- | ---: | ---: |"]
    for name, seconds in timings.items():
        table.append(f"| {name} | {seconds:.0f} s ({seconds / 60:.1f} min) | "
                     f"{len(points) / seconds * 60:.1f} |")
    lines = [f"Grid `{spec['name']}` ({len(points)} trials × {spec['axes']['epochs'][0]} epochs), "
             f"{args.dataset}, {len(data.x_train)} training images, seed {args.seed}:", "",
             f"CPU: {cpu_description()}; naive loop with TF_ENABLE_ONEDNN_OPTS="
             f"{os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset (TensorFlow default)')}.", "",
             *table, ""]
    lines += ["Resident memory of the search (all its processes summed, peak per trial):", "",
              *search_memory]
    for flags, fast in searches.items():
        if naive is None:
            break
        merged = naive.merge(fast[AXES + ["val_accuracy", "test_accuracy", "status"]],
                             on=AXES, suffixes=("_naive", "_search"))
        suffix = "" if len(searches) == 1 else "_" + re.sub(r"\W+", "_", flags).strip("_")
        merged.to_csv(out / f"{label}_trials{suffix}.csv", index=False)
        ratio = timings["naive loop"] / timings[f"mnist_zoo.search{flags}"]
        lines += [f"**Speed-up of mnist_zoo.search{flags}: {ratio:.1f}×.** "
                  + accuracy_difference(naive, fast, "naive", "search"), ""]
        if len(searches) == 1:
            lines += [merged.assign(**{c: merged[c].round(4) for c in merged.columns
                                       if "accuracy" in c})
                      .drop(columns=["model", "activation", "epochs"]).to_markdown(index=False)
                      if _has_tabulate() else merged.to_string(index=False)]
    report = "\n".join(lines) + "\n"
    (out / f"{label}.md").write_text(report)
    print("\n" + report)
    return 0


def run_search(args, spec: dict, onednn: str,
               extra: list[str] = ()) -> tuple[pd.DataFrame, list[float], int]:
    """The search as users run it: its own command line, loading its own data (the same
    seeded split), so process start-up is part of its time. onednn: 'default' (the
    variable unset), '0' or '1'; extra: more options (bench/pruning.py's --prune).
    Returns its results table, memory peaks and restarts."""
    with tempfile.TemporaryDirectory() as tmp:
        grid_file = Path(tmp) / f"{spec['name']}.toml"
        grid_file.write_text(_grid_toml(spec["axes"]))
        command = [sys.executable, "-m", "mnist_zoo.search", "--grid", str(grid_file),
                   "--dataset", args.dataset, "--out", str(Path(tmp) / "results"),
                   "--seed", str(args.seed), "--export-top", "0"]
        command += ["--jobs", args.jobs] if args.jobs else []
        command += ["--data-dir", args.data_dir] if args.data_dir else []
        command += ["--subset", str(args.subset)] if args.subset else []
        command += ["--no-fuse"] if args.no_fuse else []
        command += list(extra)
        env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
        if onednn != "default":
            env["TF_ENABLE_ONEDNN_OPTS"] = onednn
        peaks, restarts = run_sampling_memory(command, env)
        return pd.read_csv(Path(tmp) / "results" / RESULTS_CSV), peaks, restarts


def run_sampling_memory(command: list[str], env=None) -> tuple[list[float], int]:
    """Run the search, passing its output through; returns the peak resident memory of
    its processes between two progress lines (one per trial) and its restart count."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    sampler = memory.PeakSampler(process.pid, every=0.5)  # sparse: /proc walks cost CPU
    sampler.start()
    peaks, restarts = [], 0
    for line in process.stdout:
        print(line, end="", flush=True)
        if re.match(r"\[\d+/\d+\]", line):
            peaks.append(sampler.take_peak())
        restarts += "restarting this process" in line
    if process.wait():
        raise SystemExit(f"search failed ({process.returncode}): {' '.join(command)}")
    return peaks, restarts


def accuracy_difference(first: pd.DataFrame, second: pd.DataFrame, name1: str, name2: str) -> str:
    """Mean, median and max absolute per-trial accuracy difference, in points."""
    merged = first.merge(second, on=AXES, suffixes=("_1", "_2"))
    diff = (merged["val_accuracy_1"] - merged["val_accuracy_2"]).abs() * 100
    test_diff = (merged["test_accuracy_1"] - merged["test_accuracy_2"]).abs() * 100
    return (f"Per-trial accuracy, {name2} vs {name1} ({len(merged)} trials): mean absolute "
            f"difference {diff.mean():.2f} points (validation), {test_diff.mean():.2f} points "
            f"(test); median {diff.median():.2f}, max {diff.max():.2f}.")


def cpu_description() -> str:
    """The CPU's model name and whether TensorFlow turns oneDNN on for it by default."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    model = re.search(r"model name\s*:\s*(.*)", cpuinfo)
    vnni = onednn_by_default()
    return (f"{model.group(1) if model else 'unknown'}, {os.cpu_count()} cores, "
            f"{'with' if vnni else 'without'} AVX512_VNNI/BF16/AMX (oneDNN "
            f"{'on' if vnni else 'off'} by TensorFlow's default)")


def _grid_toml(axes: dict) -> str:
    def fmt(value):
        return f'"{value}"' if isinstance(value, str) else repr(value)
    body = "\n".join(f"{axis} = [{', '.join(fmt(v) for v in values)}]"
                     for axis, values in axes.items())
    return f"[axes]\n{body}\n"


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401  (pandas' to_markdown needs it)
        return True
    except ImportError:
        return False


if __name__ == "__main__":
    sys.exit(main())
