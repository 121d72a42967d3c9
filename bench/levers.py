"""What each speed lever is worth: seconds per trial-epoch of LeNet-5, one lever at a time.

    python bench/levers.py                    # 20,000 Fashion-MNIST images, batch 16 and 64
    python bench/levers.py --subset 55000 --batch-sizes 16 32 64

Every configuration runs in a fresh process (thread settings must be made before
TensorFlow starts), is warmed up (tracing excluded), then timed over one epoch. The
table gives seconds per trial-epoch and the ratio to the naive configuration measured
in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OPTIMIZERS = [(o, lr) for o in ("sgd", "adam", "rmsprop") for lr in (0.01, 0.001, 0.0001)]
CONFIGS = {
    "naive (1 step per call)": {"spe": 1},
    "steps_per_execution=32": {"spe": 32},
    "spe=32 + XLA": {"spe": 32, "jit": True},
    "spe=32 + bfloat16 mixed precision": {"spe": 32, "bf16": True},
    "spe=32 + 1 intra-op thread": {"spe": 32, "threads": 1},
    "spe=32, 2 trials in 2 processes": {"spe": 32, "processes": 2},
    "spe=32, 9 trials fused (3 optimizers x 3 lr)": {"spe": 32, "fused": 9},
    "spe=32, 9 fused, 2 processes (TensorFlow's 2 threads each)":
        {"spe": 32, "fused": 9, "processes": 2},
    "spe=32, 9 fused, 2 processes × 1 intra-op thread":
        {"spe": 32, "fused": 9, "processes": 2, "threads": 1},
}


def run_one(config: dict, batch_size: int, subset: int) -> float:
    """Seconds per trial-epoch for one configuration (runs inside a fresh process)."""
    if config.get("threads"):
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(config["threads"])
    import keras

    from mnist_zoo import data as data_lib
    from mnist_zoo.train.fused import fit_fused
    from mnist_zoo.models import build_model

    if config.get("bf16"):
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    data = data_lib.load_dataset("fashion_mnist", subset=subset)
    count = config.get("fused", 1)
    models = []
    for optimizer, rate in OPTIMIZERS[:count]:
        keras.utils.set_random_seed(0)
        models.append(build_model("lenet5", optimizer=optimizer, learning_rate=rate,
                                  steps_per_execution=config["spe"],
                                  jit_compile=config.get("jit", False)))

    def batches(take=None):
        ds = data_lib.make_batches(data.x_train, data.y_train, batch_size, shuffle=True)
        return ds.take(take) if take else ds

    def fit(ds):
        if count > 1:
            fit_fused(models, ds, None, epochs=1, steps_per_execution=config["spe"])
        else:
            models[0].fit(ds, epochs=1, verbose=0, shuffle=False)

    fit(batches(take=4 * config["spe"]))  # warm-up: tracing is not what we measure here
    started = time.perf_counter()
    fit(batches())
    return (time.perf_counter() - started) / count


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subset", type=int, default=20000)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--only", nargs="+", metavar="N", type=int, default=None,
                        help="run only these configurations (1-based; the first, naive, always)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one configuration
    parser.add_argument("--batch-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(HERE / "out"))
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps({"seconds": run_one(json.loads(args.one), args.batch_size,
                                             args.subset)}))
        return 0

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    rows = []
    for number, (name, config) in enumerate(CONFIGS.items(), start=1):
        if args.only and number > 1 and number not in args.only:
            continue
        cells = []
        for batch_size in args.batch_sizes:
            command = [sys.executable, __file__, "--one", json.dumps(config),
                       "--batch-size", str(batch_size), "--subset", str(args.subset)]
            processes = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
                         for _ in range(config.get("processes", 1))]
            outputs = [json.loads(p.communicate()[0].strip().splitlines()[-1])["seconds"]
                       for p in processes]
            # n processes side by side: n trial-epochs in the time of the slowest.
            cells.append(max(outputs) / len(outputs))
        rows.append((name, cells))
        print(name, ["%.2f" % c for c in cells], flush=True)

    scale = 55000 / args.subset
    header = " | ".join(f"batch {b}: s per trial-epoch (×naive)" for b in args.batch_sizes)
    lines = [f"LeNet-5, Fashion-MNIST, {args.subset} training images, {os.cpu_count()} CPUs; "
             f"seconds scaled to a 55,000-image epoch (×{scale:.2f}).", "",
             f"| lever | {header} |", "|---|" + "---:|" * len(args.batch_sizes)]
    naive = rows[0][1]
    for name, cells in rows:
        lines.append(f"| {name} | " + " | ".join(
            f"{c * scale:.1f} s ({n / c:.1f}×)" for c, n in zip(cells, naive)) + " |")
    report = "\n".join(lines) + "\n"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "levers.md").write_text(report)
    print("\n" + report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
