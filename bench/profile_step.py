"""Where a fused training step spends its time, op by op (TensorFlow's profiler).

    pip install xprof                       # the profiler's converter; not a dependency
    python bench/profile_step.py --batch-size 64
    python bench/profile_step.py --batch-size 16 --threads 2

Builds 9 LeNet-5s (3 optimizers x 3 learning rates, as one fusion group of the full
grid), traces a few hundred training steps on random images of MNIST's shape (the
cost of an op does not depend on the pixel values), and prints the share of each op
type in the profiled time. "IDLE" is the executor waiting between ops: per-op overhead.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

OPTIMIZERS = [(o, lr) for o in ("sgd", "adam", "rmsprop") for lr in (0.01, 0.001, 0.0001)]


def op_type_shares(xplane_path: str) -> list[tuple[str, float]]:
    from xprof.convert import raw_to_tool_data

    data, _ = raw_to_tool_data.xspace_to_tool_data([xplane_path], "framework_op_stats", {})
    table = json.loads(data)[0]
    columns = [column["id"] for column in table["cols"]]
    by_type: collections.Counter = collections.Counter()
    for row in table["rows"]:
        cells = {key: (cell or {}).get("v") for key, cell in zip(columns, row["c"])}
        by_type[cells["type"]] += cells["total_self_time"]
    total = sum(by_type.values())
    return [(name, seconds / total * 100) for name, seconds in by_type.most_common()]


def seconds_per_call(compute, repeats: int, calls: int = 32) -> float:
    """Seconds per call of `compute` (a TensorFlow computation), run `calls` times in a
    graph loop so Python's overhead is not timed; traced and warmed up first."""
    import tensorflow as tf

    @tf.function
    def loop():
        total = tf.constant(0.0)
        for _ in tf.range(calls):
            total += tf.reduce_sum(compute())
        return total

    loop()
    started = time.perf_counter()
    for _ in range(repeats):
        loop()
    return (time.perf_counter() - started) / (repeats * calls)


def conv_rate(batch_size: int, threads: int, members: int = 9, repeats: int = 20) -> float:
    """G multiply-adds per second per thread of LeNet-5's second convolution, fused:
    9 x 16 filters of 5x5 over 9 x 6 channels (a grouped convolution), 14x14 -> 10x10."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = tf.constant(rng.random((batch_size, 14, 14, 6 * members), dtype=np.float32))
    kernel = tf.constant(rng.random((5, 5, 6, 16 * members), dtype=np.float32))
    seconds = seconds_per_call(lambda: tf.nn.conv2d(images, kernel, 1, "VALID"), repeats)
    multiply_adds = batch_size * members * 10 * 10 * 16 * 5 * 5 * 6
    return multiply_adds / seconds / 1e9 / threads


def matmul_peak(size: int = 2048) -> float:
    """The machine's FP32 rate as far as TensorFlow reaches it: GFLOP/s of a large matmul."""
    import tensorflow as tf

    a, b = tf.random.normal((size, size)), tf.random.normal((size, size))
    return 2 * size ** 3 / seconds_per_call(lambda: tf.matmul(a, b), repeats=3) / 1e9


def input_gradient_variants(batch_size: int, members: int = 9, repeats: int = 5) -> dict:
    """µs per image and model of the fused second convolution's input gradient (the
    slowest kernel of a step), as TensorFlow computes it and rewritten as a forward
    convolution of the flipped, transposed kernel, plain or with each group's outputs
    padded to 8 or 16 channels (AVX-512 holds 16 floats)."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    kernel = tf.constant(rng.standard_normal((5, 5, 6, 16 * members), dtype=np.float32))
    upstream = tf.constant(rng.standard_normal((batch_size, 10, 10, 16 * members),
                                               dtype=np.float32))
    input_shape = tf.constant([batch_size, 14, 14, 6 * members])

    def native():
        return tf.raw_ops.Conv2DBackpropInput(input_sizes=input_shape, filter=kernel,
                                              out_backprop=upstream, strides=[1, 1, 1, 1],
                                              padding="VALID")

    def as_forward(width=6):
        flipped = tf.reshape(kernel, (5, 5, 6, members, 16))
        flipped = tf.transpose(flipped, (0, 1, 4, 3, 2))  # (5, 5, 16, members, 6)
        flipped = tf.pad(flipped, [[0, 0]] * 4 + [[0, width - 6]])
        flipped = tf.reshape(flipped, (5, 5, 16, members * width))[::-1, ::-1]
        padded = tf.pad(upstream, [[0, 0], [4, 4], [4, 4], [0, 0]])
        out = tf.nn.conv2d(padded, flipped, 1, "VALID")
        out = tf.reshape(out, (batch_size, 14, 14, members, width))[..., :6]
        return tf.reshape(out, (batch_size, 14, 14, members * 6))

    variants = {"TensorFlow's (oneDNN)": native, "as a forward convolution": as_forward,
                "forward, groups padded to 8": lambda: as_forward(8),
                "forward, groups padded to 16": lambda: as_forward(16)}
    expected, timings = native(), {}
    for name, variant in variants.items():
        np.testing.assert_allclose(variant(), expected, atol=1e-3)  # same gradient
        timings[name] = seconds_per_call(variant, repeats) / (batch_size * members) * 1e6
    return timings


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads (1, as each process of --jobs 2 on 2 cores)")
    parser.add_argument("--activation", default="relu")
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--top", type=int, default=15, help="op types to list")
    parser.add_argument("--kernels", action="store_true",
                        help="also time the matmul peak and variants of the slowest kernel")
    args = parser.parse_args(argv)

    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import keras

    from mnist_zoo.train.fused import FusedModels
    from mnist_zoo.models import build_model

    members = []
    for optimizer, rate in OPTIMIZERS:
        keras.utils.set_random_seed(0)
        model = build_model("lenet5", activation=args.activation, optimizer=optimizer,
                            learning_rate=rate)
        model.optimizer.build(model.trainable_variables)
        members.append(model)
    fused = FusedModels(members)
    rng = np.random.default_rng(0)
    size = args.batch_size
    images = tf.constant(rng.random((args.steps * size, 28, 28, 1), dtype=np.float32))
    labels = tf.constant(rng.integers(0, 10, args.steps * size))

    @tf.function
    def train_steps():
        for i in tf.range(args.steps):  # the same loop steps_per_execution builds
            fused.train_step((images[i * size:(i + 1) * size], labels[i * size:(i + 1) * size]))

    if args.kernels:
        print(f"FP32 matmul peak: {matmul_peak():.0f} GFLOP/s on {args.threads} "
              "thread(s)")
        print(f"fused second convolution's input gradient, batch {size}, µs per image and model:")
        for name, micros in input_gradient_variants(size).items():
            print(f"  {name:32s} {micros:6.2f}")
    print(f"fused second convolution alone (forward, batch {size}): "
          f"{conv_rate(size, args.threads):.0f} G multiply-adds per second per thread")
    train_steps()  # trace and warm up outside the profile
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        train_steps()
        tf.profiler.experimental.stop()
        shares = op_type_shares(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[0])
    print(f"9 fused LeNet-5 ({args.activation}), batch {size}, {args.threads} thread(s): "
          "share of profiled time by op type")
    for name, percent in shares[:args.top]:
        print(f"  {name:36s} {percent:5.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
