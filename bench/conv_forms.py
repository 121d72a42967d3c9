"""How fast each way of writing the fused members' convolutions trains, with oneDNN on and off.

    python bench/conv_forms.py --data-dir ../shared/data/mnist-8k2k
    python bench/conv_forms.py --model cnn3 --batch-sizes 64 --images 2048

mnist_zoo.train.fused trains K models as one graph. After the first layer the members'
features lie side by side in the channels, so a member's later convolution must see
only its own channels: one grouped convolution (whose gradient only oneDNN's and
cuDNN's kernels have), one convolution per member, a depthwise convolution and a sum,
or a block-diagonal kernel (mnist_zoo.train.fused.MEMBER_CONVOLUTIONS). This times one
training epoch of nine fused models (3 optimizers x 3 learning rates, one group of the
full grid) in each form, and Keras' own `fit` of one model alone with one step per
call (the naive lab loop's way), on real digits, in a child process per oneDNN
setting (TF_ENABLE_ONEDNN_OPTS=0 and =1), all in one run. One intra-op thread per
process, as each process of `--jobs auto` on 2 cores has. Prints µs per image and
model (lower is better) as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import keras

FORMS = ("grouped", "per_member", "depthwise", "block_diagonal")
OPTIMIZERS = [(o, lr) for o in ("sgd", "adam", "rmsprop") for lr in (0.01, 0.001, 0.0001)]


def time_forms(model_name: str, batch_sizes: list[int], images: int, data_dir: str,
               threads: int) -> dict:
    """{(form, batch): µs per image and model} in this process (its oneDNN setting)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    from mnist_zoo import data as data_lib
    from mnist_zoo.train.fused import fit_fused, grouped_gradients_work
    from mnist_zoo.models import build_model

    digits = data_lib.load_dataset("mnist", data_dir, subset=images, validation_size=0)
    timings = {}
    for batch_size in batch_sizes:
        batches = data_lib.make_batches(digits.x_train, digits.y_train, batch_size,
                                        shuffle=True, seed=0)
        for form in FORMS:
            if form == "grouped" and not grouped_gradients_work():
                timings[f"{form} {batch_size}"] = None  # no gradient kernel here
                continue
            os.environ["MNIST_ZOO_CONV_FORM"] = form
            members = []
            for optimizer, rate in OPTIMIZERS:
                keras.utils.set_random_seed(0)
                members.append(build_model(model_name, activation="relu", optimizer=optimizer,
                                           learning_rate=rate))
            clock = EpochClock()
            timings[f"{form} {batch_size}"] = clock.second_epoch(
                lambda: fit_fused(members, batches, None, epochs=2, steps_per_execution=32,
                                  callbacks=[clock]), len(digits.x_train) * len(members))
        keras.utils.set_random_seed(0)
        lone = build_model(model_name, activation="relu", optimizer="adam", learning_rate=1e-3)
        clock = EpochClock()
        timings[f"lone {batch_size}"] = clock.second_epoch(
            lambda: lone.fit(batches, epochs=2, verbose=0, callbacks=[clock]),
            len(digits.x_train))
    return timings


class EpochClock(keras.callbacks.Callback):
    """Seconds per epoch of a fit."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)

    def second_epoch(self, fit, images: int) -> float:
        """µs per image of `fit`'s second epoch (the first one traces the graph)."""
        fit()
        return self.seconds[1] / images * 1e6


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--batch-sizes", default="16,64")
    parser.add_argument("--images", type=int, default=4096, help="training images per epoch")
    parser.add_argument("--data-dir", default="../shared/data/mnist-8k2k")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    if args.child:
        print(json.dumps(time_forms(args.model, batch_sizes, args.images, args.data_dir,
                                    args.threads)))
        return 0
    columns = {}
    for onednn in ("0", "1"):
        child = subprocess.run([sys.executable, __file__, "--child", *sys.argv[1:]],
                               env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn},
                               capture_output=True, text=True, check=True)
        columns[onednn] = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"{args.model}, 9 models fused (or 1 alone), {args.images} MNIST images, "
          f"{args.threads} thread(s); µs per image and model, epoch 2 of 2:\n")
    print("| form | batch | oneDNN off | oneDNN on |\n| --- | ---: | ---: | ---: |")
    for key in columns["0"]:
        form, batch = key.rsplit(" ", 1)
        cells = ["—" if columns[o][key] is None else f"{columns[o][key]:.0f}" for o in "01"]
        print(f"| {form} | {batch} | {cells[0]} | {cells[1]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
