"""Resident memory across a long search: it must stay flat, not climb trial by trial.

    python bench/memory.py                        # full grid, 81 trials of 1 epoch on 5,000 images
    python bench/memory.py --no-fuse              # one model per trial: the harder case
    python bench/memory.py --jobs 2               # chief + 2 workers, memory of all three summed

Runs the search's own command line twice, as users run it: once with
`--max-memory-growth 0` (processes never restart: the baseline) and once with the
search's default (a training process restarts itself, and the search resumes, once its
memory has grown that much since its first trial). A sampler thread adds up the
resident memory of the search's processes every 0.1 s; after each trial's progress
line the peak since the previous trial is recorded. Growth is measured from trial 5
(once TensorFlow's start-up allocations are done) to the last trial.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from mnist_zoo.search.memory import resident_mib

HERE = Path(__file__).resolve().parent


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(parent, []).append(int(entry))
    return tree


def tree_rss_mib(root: int) -> float:
    """Resident memory of a process and all its descendants, in MiB."""
    tree, total, todo = _children(), 0.0, [root]
    while todo:
        pid = todo.pop()
        todo += tree.get(pid, [])
        total += resident_mib(pid) or 0.0
    return total


class PeakSampler(threading.Thread):
    def __init__(self, root: int, every: float = 0.1):
        super().__init__(daemon=True)
        self.root, self.every, self.peak = root, every, 0.0

    def run(self):
        while True:
            self.peak = max(self.peak, tree_rss_mib(self.root))
            time.sleep(self.every)

    def take_peak(self) -> float:
        peak, self.peak = max(self.peak, tree_rss_mib(self.root)), 0.0
        return peak


def measure(search_args: list[str]) -> tuple[list[float], int, float]:
    """Peak MiB per trial, process restarts, wall seconds of one search run."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "mnist_zoo.search", *search_args, "--out", tmp,
                   "--export-top", "0"]
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        sampler = PeakSampler(process.pid)
        sampler.start()
        peaks, restarts = [], 0
        for line in process.stdout:
            if re.match(r"\[\d+/\d+\]", line):
                peaks.append(sampler.take_peak())
                print(f"{line.rstrip()}, peak {peaks[-1]:.0f} MiB", flush=True)
            elif "restarting this process" in line:
                restarts += 1
                print(line.rstrip(), flush=True)
        if process.wait():
            raise SystemExit(f"search failed ({process.returncode}): {' '.join(command)}")
        return peaks, restarts, time.perf_counter() - started


def describe(name: str, peaks: list[float], restarts: int, seconds: float) -> list[str]:
    start = min(4, len(peaks) - 1)
    growth = (peaks[-1] - peaks[start]) / peaks[start] * 100
    return [f"**{name}** ({restarts} process restarts, {seconds:.0f} s):", "",
            f"- trial 1: {peaks[0]:.0f} MiB; trial {start + 1}: {peaks[start]:.0f} MiB; "
            f"last (trial {len(peaks)}): {peaks[-1]:.0f} MiB; max {max(peaks):.0f} MiB",
            f"- growth from trial {start + 1} to the last: {growth:+.1f} %; "
            f"max over trial {start + 1}: {(max(peaks[start:]) / peaks[start] - 1) * 100:+.1f} %",
            "- every 10th trial: " + ", ".join(f"{p:.0f}" for p in peaks[::10]) + " MiB", ""]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", default="full")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--subset", type=int, default=5000)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--no-fuse", action="store_true")
    parser.add_argument("--max-memory-growth", type=float, default=None, metavar="PCT",
                        help="the search's setting for the second run (default: its default)")
    parser.add_argument("--out", default=str(HERE / "out"))
    args = parser.parse_args(argv)

    common = ["--grid", args.grid, "--dataset", args.dataset, "--epochs", str(args.epochs),
              "--subset", str(args.subset), "--jobs", str(args.jobs)]
    common += ["--no-fuse"] if args.no_fuse else []
    runs = {"no restarts (--max-memory-growth 0)": ["--max-memory-growth", "0"],
            "restarts (" + (f"--max-memory-growth {args.max_memory_growth:g}"
                            if args.max_memory_growth is not None else "the default") + ")":
            ["--max-memory-growth", str(args.max_memory_growth)]
            if args.max_memory_growth is not None else []}
    mode = "one trial at a time" if args.no_fuse else "fused"
    lines = [f"Peak resident memory per trial (all processes of the search summed), grid "
             f"`{args.grid}`, {args.epochs} epoch(s) on {args.subset} {args.dataset} images, "
             f"{mode}, --jobs {args.jobs}:", ""]
    for name, extra in runs.items():
        print(f"--- {name}", flush=True)
        lines += describe(name, *measure(common + extra))
    report = "\n".join(lines)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    label = f"memory_{args.grid}_{'nofuse' if args.no_fuse else 'fused'}_jobs{args.jobs}"
    (out / f"{label}.md").write_text(report)
    print("\n" + report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
