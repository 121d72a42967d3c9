"""Resident memory across a long search: it must stay flat, not climb trial by trial.

    python bench/memory.py                       # 81 trials (full grid, 1 epoch, 5,000 images)
    python bench/memory.py --no-fuse             # one model per trial: the harder case

A sampler thread reads the process' resident set size every 0.1 s; after each trial
the peak since the previous trial is recorded. Growth is measured from trial 5 (once
TensorFlow's start-up allocations are done) to the last trial.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mnist_zoo import data as data_lib  # noqa: E402
from mnist_zoo import search as search_lib  # noqa: E402

HERE = Path(__file__).resolve().parent


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class PeakSampler(threading.Thread):
    def __init__(self, every: float = 0.1):
        super().__init__(daemon=True)
        self.every, self.peak = every, 0.0

    def run(self):
        while True:
            self.peak = max(self.peak, rss_mib())
            time.sleep(self.every)

    def take_peak(self) -> float:
        peak, self.peak = max(self.peak, rss_mib()), 0.0
        return peak


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", default="full")
    parser.add_argument("--dataset", default="fashion_mnist", choices=data_lib.DATASETS)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--subset", type=int, default=5000)
    parser.add_argument("--no-fuse", action="store_true")
    parser.add_argument("--out", default=str(HERE / "out"))
    args = parser.parse_args(argv)

    data = data_lib.load_dataset(args.dataset, args.data_dir, subset=args.subset)
    sampler = PeakSampler()
    sampler.start()
    peaks: list[float] = []
    original_line = search_lib.progress_line

    def progress_line(row, done, total, seconds):  # called once after every trial
        peaks.append(sampler.take_peak())
        return original_line(row, done, total, seconds) + f", peak RSS {peaks[-1]:.0f} MiB"

    search_lib.progress_line = progress_line
    with tempfile.TemporaryDirectory() as tmp:
        search_lib.search(args.grid, data=data, out=tmp, epochs=args.epochs, export_top=0,
                          verbose=0, fuse=not args.no_fuse, dataset=args.dataset)

    start = min(4, len(peaks) - 1)
    growth = (peaks[-1] - peaks[start]) / peaks[start] * 100
    mode = "one trial at a time" if args.no_fuse else "fused"
    lines = [f"Peak RSS per trial, grid `{args.grid}` ({len(peaks)} trials, {args.epochs} epoch(s), "
             f"{len(data.x_train)} training images, {mode}):", "",
             f"- trial 1: {peaks[0]:.0f} MiB; trial {start + 1}: {peaks[start]:.0f} MiB; "
             f"last (trial {len(peaks)}): {peaks[-1]:.0f} MiB; max {max(peaks):.0f} MiB",
             f"- growth from trial {start + 1} to the last: {growth:+.1f} %",
             "- every 10th trial: " + ", ".join(f"{p:.0f}" for p in peaks[::10]) + " MiB"]
    report = "\n".join(lines) + "\n"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"memory_{args.grid}_{'nofuse' if args.no_fuse else 'fused'}.md").write_text(report)
    print("\n" + report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
