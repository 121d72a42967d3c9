"""Train one zoo model and write a run folder.

    python -m mnist_zoo.train --model lenet5 --activation relu --epochs 3 --data-dir DIR

results/runs/<name>/ then holds history.csv, metrics.json, model.keras, a
SavedModel in saved_model/ and the last N checkpoints in checkpoints/.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import shutil
import sys
import time
from pathlib import Path

import keras
import numpy as np

from mnist_zoo import data as data_lib
from mnist_zoo import recipes
from mnist_zoo.cli import fraction, non_negative_int, positive_float, positive_int
from mnist_zoo.evaluate import evaluate_model
from mnist_zoo.grid import CORE_AXES
from mnist_zoo.models import ACTIVATIONS, LR_SCHEDULES, OPTIMIZERS, build_model, list_models

# Running 32 batches per call into TensorFlow halves the time of small batches on a
# CPU, where per-step overhead rather than arithmetic dominates (docs/benchmarks.md).
STEPS_PER_EXECUTION = 32
CHECKPOINT_PATTERN = re.compile(r"ckpt-(\d+)\.keras$")
# A run diverged when its loss turned NaN/inf, or rose far above a guess's: cross-entropy
# of a uniform guess over 10 classes is ln 10 = 2.3, and no learning run ends 100x above it.
DIVERGED_LOSS = 100 * math.log(10)
# What a run was started with (train writes it first); --resume must match it.
RUN_SETTINGS = "settings.json"
# train()'s whole-number settings and their least values.
WHOLE_NUMBERS = {"batch_size": 1, "epochs": 1, "keep_checkpoints": 1, "early_stopping": 0}


@dataclasses.dataclass
class RunResult:
    run_dir: Path
    metrics: dict
    history: dict
    model: keras.Model


class KeepLastCheckpoints(keras.callbacks.Callback):
    """Delete all but the newest `keep` epoch checkpoints (ModelCheckpoint keeps every one)."""

    def __init__(self, folder: Path, keep: int):
        super().__init__()
        self.folder, self.keep = folder, keep

    def on_epoch_end(self, epoch, logs=None):
        for old in list_checkpoints(self.folder)[:-self.keep]:
            old.unlink(missing_ok=True)


def list_checkpoints(folder: Path) -> list[Path]:
    """Epoch checkpoints in `folder`, oldest first."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if CHECKPOINT_PATTERN.search(p.name)]
    return sorted(found, key=lambda p: int(CHECKPOINT_PATTERN.search(p.name).group(1)))


def default_verbose() -> int:
    """Keras' progress bar on a terminal, one line per epoch in logs and CI."""
    return 1 if sys.stdout.isatty() else 2


# --------------------------------------------------------------------------- one training path
@dataclasses.dataclass
class Fit:
    """One model's training: its Keras-style history and, if asked, its test scores."""

    model: keras.Model
    history: dict  # {'loss': [...], 'accuracy': [...], 'val_loss': [...], ...}
    test: dict | None  # {'loss', 'accuracy'} on the test set
    seconds: float  # training (and test) wall time; a fused group's is shared out evenly

    @property
    def epochs_run(self) -> int:
        return len(self.history.get("loss", []))

    @property
    def diverged(self) -> bool:
        losses = self.history.get("loss", [])
        test_loss = self.test["loss"] if self.test else 0.0
        return (not losses or not all(math.isfinite(v) for v in losses)
                or losses[-1] > DIVERGED_LOSS or not math.isfinite(test_loss))


def fit_models(models: list[keras.Model], data: data_lib.DigitData, *, batch_size: int,
               epochs: int, augment=None, seed: int = 0, verbose: int = 0, callbacks=(),
               initial_epoch: int = 0, test: bool = True) -> list[Fit]:
    """Train compiled models on `data`'s seeded batches: one alone, several fused.

    Every trainer of the package (train, the search fused or not, bench's naive loop)
    comes through here, so batches, NaN handling and test scoring cannot drift apart.
    Several models must be fusable (mnist_zoo.fused) and see the same batches;
    `callbacks` and `initial_epoch` are for a single model. A run whose loss turns
    NaN stops after that epoch, fused or not (a fused member's history is cut there).
    """
    from mnist_zoo.fused import evaluate_fused, fit_fused

    train_batches = data_lib.make_batches(data.x_train, data.y_train, batch_size, shuffle=True,
                                          augment=augment, seed=seed)
    val_batches = data_lib.make_batches(data.x_val, data.y_val, 1024) if len(data.x_val) else None
    started = time.perf_counter()
    if len(models) == 1:
        (model,) = models
        histories = [model.fit(train_batches, validation_data=val_batches, epochs=epochs,
                               initial_epoch=initial_epoch, verbose=verbose, shuffle=False,
                               # the pipeline shuffles; Keras cannot shuffle a Dataset
                               callbacks=[*callbacks, keras.callbacks.TerminateOnNaN()]).history]
        tests = [model.evaluate(data.x_test, data.y_test, batch_size=1024, verbose=0,
                                return_dict=True)] if test else [None]
    else:
        if callbacks or initial_epoch:
            raise ValueError("callbacks and initial_epoch need a single model")
        fused, histories = fit_fused(models, train_batches, val_batches, epochs,
                                     STEPS_PER_EXECUTION, verbose)
        histories = [until_divergence(history) for history in histories]
        tests = (evaluate_fused(fused, data.x_test, data.y_test) if test
                 else [None] * len(models))
    seconds = (time.perf_counter() - started) / len(models)
    return [Fit(model, history, test_scores, seconds)
            for model, history, test_scores in zip(models, histories, tests)]


def until_divergence(history: dict) -> dict:
    """The history up to and including the first epoch whose loss is NaN/inf: where
    keras.callbacks.TerminateOnNaN stops a model trained alone."""
    losses = history.get("loss", [])
    stop = next((i + 1 for i, loss in enumerate(losses) if not math.isfinite(loss)), len(losses))
    return {key: list(series[:stop]) for key, series in history.items()}


def train(model: str = "lenet5", *, activation: str = "relu", optimizer: str = "adam",
          learning_rate: float = 1e-3, momentum: float = 0.0, batch_size: int = 64,
          epochs: int = 3, dataset: str = "mnist", data_dir=None, subset: int | None = None,
          validation_size: int | float | None = None, augment=None,
          lr_schedule: str = "constant", early_stopping: int = 0, keep_checkpoints: int = 2,
          resume: bool = False, overwrite: bool = False, initial_weights=None,
          out="results/runs", name: str | None = None, seed: int = 0, verbose: int | None = None,
          data: data_lib.DigitData | None = None, export: bool = True, tensorboard: bool = False,
          **model_settings) -> RunResult:
    """Train `model` and write its run folder; returns the metrics, history and model.

    early_stopping: patience in epochs on val_loss (0 = off).
    resume: continue from the newest checkpoint of this run folder, if any; the run's
    settings must be the ones it was started with (epochs may grow).
    overwrite: replace a run folder that already holds a run (else a ValueError).
    initial_weights: a .keras or .weights.h5 file to start from.
    data: an already loaded `DigitData` (skips loading; handy from code).
    model_settings: builder settings such as dropout or pooling.
    Bad settings raise a ValueError before anything is loaded or written.
    """
    check_numbers(learning_rate=learning_rate, momentum=momentum, batch_size=batch_size,
                  epochs=epochs, early_stopping=early_stopping,
                  keep_checkpoints=keep_checkpoints)
    name = name or f"{model}_{activation}_{optimizer}_lr{learning_rate:g}_bs{batch_size}"
    run_dir = run_folder(out, name)
    if holds_run(run_dir) and not resume:
        if not overwrite:
            raise ValueError(f"{run_dir} already holds a run; pass --overwrite to replace it, "
                             "--resume to continue it, or give another --name")
        shutil.rmtree(run_dir)  # its old checkpoints must not seed a later --resume
    keras.utils.set_random_seed(seed)
    verbose = default_verbose() if verbose is None else verbose
    if data is None:
        data = data_lib.load_dataset(dataset, data_dir, validation_size=validation_size,
                                     subset=subset, seed=seed)
    settings = {"model": model, "activation": activation, "optimizer": optimizer,
                "learning_rate": learning_rate, "momentum": momentum,
                "batch_size": batch_size, "lr_schedule": lr_schedule,
                "augment": augment or "none", "dataset": data.name,
                "train_images": len(data.x_train), "seed": seed, **model_settings}
    if resume:
        check_same_run(run_dir, settings)
    checkpoint_dir = run_dir / "checkpoints"
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / RUN_SETTINGS).exists():
        (run_dir / RUN_SETTINGS).write_text(json.dumps(settings, indent=2))

    steps_per_epoch = int(np.ceil(len(data.x_train) / batch_size))
    checkpoints = list_checkpoints(checkpoint_dir) if resume else []
    if checkpoints:
        # The .keras checkpoint holds the optimizer state, so the run continues exactly.
        net = keras.models.load_model(checkpoints[-1])
        initial_epoch = int(CHECKPOINT_PATTERN.search(checkpoints[-1].name).group(1))
        print(f"resuming {name} from {checkpoints[-1].name} (epoch {initial_epoch})")
    else:
        net = build_model(model, activation=activation, optimizer=optimizer,
                          learning_rate=learning_rate, momentum=momentum,
                          lr_schedule=lr_schedule, decay_steps=steps_per_epoch * epochs,
                          steps_per_execution=STEPS_PER_EXECUTION, **model_settings)
        initial_epoch = 0
        if initial_weights:
            _load_initial_weights(net, initial_weights)

    callbacks = _run_callbacks(run_dir, keep_checkpoints, early_stopping, tensorboard,
                               append=initial_epoch > 0)
    (fit,) = fit_models([net], data, batch_size=batch_size, epochs=epochs, augment=augment,
                        seed=seed, verbose=verbose, callbacks=callbacks,
                        initial_epoch=initial_epoch, test=False)  # evaluate_model scores below
    seconds = fit.seconds

    metrics = {
        "model": model, "activation": activation, "optimizer": optimizer,
        "learning_rate": learning_rate, "batch_size": batch_size, "epochs": epochs,
        "dataset": data.name, "data_source": data.source, "seed": seed,
        "train_images": len(data.x_train), "params": net.count_params(),
        "epochs_run": initial_epoch + fit.epochs_run, "seconds": round(seconds, 2),
        "train": evaluate_model(net, data.x_train, data.y_train, data.class_names),
        "val": (evaluate_model(net, data.x_val, data.y_val, data.class_names)
                if len(data.x_val) else None),
        "test": evaluate_model(net, data.x_test, data.y_test, data.class_names),
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    net.save(run_dir / "model.keras")
    if export:
        net.export(str(run_dir / "saved_model"), format="tf_saved_model", verbose=False)
    print(f"{name}: test accuracy {metrics['test']['accuracy']:.4f}, "
          f"loss {metrics['test']['loss']:.4f} ({seconds:.1f} s) -> {run_dir}")
    return RunResult(run_dir, metrics, fit.history, net)


def check_numbers(**values) -> None:
    """What the command line's argument types check, for callers from Python: a ValueError
    naming the setting (batch_size=0 would divide by zero, epochs=0 or a NaN rate would
    save an untrained or NaN model)."""
    for key, value in values.items():
        if key in WHOLE_NUMBERS:
            low = WHOLE_NUMBERS[key]
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{key} must be a whole number >= {low}, got {value!r}")
            continue
        number = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
        if key == "learning_rate" and not (number and math.isfinite(value) and value > 0):
            raise ValueError(f"learning_rate must be a finite number above 0, got {value!r}")
        if key == "momentum" and not (number and math.isfinite(value) and 0 <= value < 1):
            raise ValueError(f"momentum must be a number from 0 to below 1, got {value!r}")


def run_folder(out, name: str) -> Path:
    """out/name, refusing a name that leads elsewhere ("../x", "/tmp/x", ".")."""
    out = Path(out)
    run_dir = out / name
    resolved, parent = run_dir.resolve(), out.resolve()
    if not name or resolved == parent or not resolved.is_relative_to(parent):
        raise ValueError(f"--name {name!r} leads outside --out {out}; give a plain folder "
                         "name such as lenet5_try2")
    return run_dir


def holds_run(run_dir: Path) -> bool:
    """Whether run_dir already holds a run, finished or interrupted."""
    return any((run_dir / entry).exists() for entry in
               ("metrics.json", "model.keras", "history.csv", RUN_SETTINGS)) \
        or bool(list_checkpoints(run_dir / "checkpoints"))


def check_same_run(run_dir: Path, settings: dict) -> None:
    """--resume continues the run folder's model: refuse settings that differ from the
    ones it was started with (they would be recorded for a model trained otherwise)."""
    recorded = None
    for source in (RUN_SETTINGS, "metrics.json"):  # metrics.json: runs from before settings.json
        try:
            recorded = json.loads((run_dir / source).read_text())
            break
        except (OSError, ValueError):
            continue
    if not isinstance(recorded, dict):
        return
    differ = [f"{key} {recorded[key]!r} (now {value!r})" for key, value in settings.items()
              if key in recorded and recorded[key] != value]
    if differ:
        raise ValueError(f"cannot resume {run_dir}: it was started with {', '.join(differ)}; "
                         "resume with its settings, or train under another --name")


def _run_callbacks(run_dir: Path, keep_checkpoints: int, early_stopping: int,
                   tensorboard: bool, append: bool) -> list:
    """Epoch checkpoints (the last few kept), the CSV history, and what was asked for."""
    checkpoint_dir = run_dir / "checkpoints"
    callbacks = [
        keras.callbacks.ModelCheckpoint(str(checkpoint_dir / "ckpt-{epoch:03d}.keras")),
        KeepLastCheckpoints(checkpoint_dir, keep_checkpoints),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=append),
    ]
    if early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(patience=early_stopping,
                                                       restore_best_weights=True))
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "tensorboard")))
    return callbacks


def _load_initial_weights(net: keras.Model, path) -> None:
    path = str(path)
    if path.endswith(".keras"):
        net.set_weights(keras.models.load_model(path).get_weights())
    else:
        net.load_weights(path)


# --------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mnist_zoo.train", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        # An abbreviation such as --lr-s would change meaning when a new option starts alike.
        allow_abbrev=False)
    parser.add_argument("--model", default=CORE_AXES["model"], choices=list_models(),
                        help="zoo model")
    parser.add_argument("--activation", default=CORE_AXES["activation"], choices=ACTIVATIONS)
    parser.add_argument("--optimizer", default=CORE_AXES["optimizer"], choices=OPTIMIZERS)
    parser.add_argument("--learning-rate", "--lr", type=positive_float,
                        default=CORE_AXES["learning_rate"])
    parser.add_argument("--momentum", type=fraction, default=0.0,
                        help="for sgd and rmsprop, from 0 to below 1")
    parser.add_argument("--batch-size", type=positive_int, default=CORE_AXES["batch_size"])
    parser.add_argument("--epochs", type=positive_int, default=CORE_AXES["epochs"])
    parser.add_argument("--lr-schedule", default="constant", choices=LR_SCHEDULES,
                        help="decay over the whole run from --learning-rate")
    parser.add_argument("--dropout", type=fraction, default=None,
                        help="dropout after dense layers, from 0 to below 1")
    parser.add_argument("--pooling", choices=("avg", "max"), default=None, help="lenet5 only")
    parser.add_argument("--augment", default="none",
                        help="training-time augmentation: none, all, or a '+'-joined subset of "
                             f"{', '.join(data_lib.AUGMENTATIONS)}")
    data_lib.add_data_arguments(parser)
    parser.add_argument("--subset", type=positive_int, default=None,
                        help="train on this many training images only")
    parser.add_argument("--validation-size", type=int, default=None,
                        help="images held out for validation (default 1/12: 5,000 of 60,000)")
    parser.add_argument("--early-stopping", type=non_negative_int, default=0, metavar="PATIENCE",
                        help="stop after PATIENCE epochs without val_loss improvement (0 = off)")
    parser.add_argument("--keep-checkpoints", type=positive_int, default=2,
                        help="epoch checkpoints to keep")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the run folder's newest checkpoint (with the "
                             "settings the run was started with)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a run folder that already holds a run")
    parser.add_argument("--initial-weights", default=None, help=".keras or .weights.h5 to start from")
    parser.add_argument("--out", default="results/runs", help="parent folder of run folders")
    parser.add_argument("--name", default=None, help="run folder name (default from settings)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs")
    parser.add_argument("--no-export", action="store_true", help="skip the SavedModel export")
    parser.add_argument("--recipe", default=None, metavar="MODEL/DATASET",
                        help="train a reference recipe (mnist_zoo/recipes.toml), e.g. "
                             "lenet5/mnist; options given here override its settings")
    parser.add_argument("--list-recipes", action="store_true", help="list the recipes and exit")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_recipes:
        print("\n".join(recipes.list_recipes()))
        return 0
    if args.recipe:
        try:
            recipes.apply_recipe(args, args.recipe, recipes.explicit_options(parser, argv))
        except recipes.RecipeError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    settings = {key: value for key, value in (("dropout", args.dropout), ("pooling", args.pooling))
                if value is not None}
    try:
        train(args.model, activation=args.activation, optimizer=args.optimizer,
              learning_rate=args.learning_rate, momentum=args.momentum,
              batch_size=args.batch_size, epochs=args.epochs, dataset=args.dataset,
              data_dir=args.data_dir, subset=args.subset, validation_size=args.validation_size,
              augment=args.augment, lr_schedule=args.lr_schedule,
              early_stopping=args.early_stopping, keep_checkpoints=args.keep_checkpoints,
              resume=args.resume, overwrite=args.overwrite, initial_weights=args.initial_weights, out=args.out,
              name=args.name, seed=args.seed, tensorboard=args.tensorboard,
              export=not args.no_export, **settings)
    except (data_lib.DataError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
