"""`train()`: train one zoo model and write its run folder.

results/runs/<name>/ then holds settings.json, history.csv, metrics.json, model.keras,
a SavedModel in saved_model/ and the last N checkpoints in checkpoints/. Training goes
through mnist_zoo.train.fit.fit_models; the command line is mnist_zoo.train._command.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
import sys
from pathlib import Path

import keras
import numpy as np

from mnist_zoo import data as data_lib
from mnist_zoo.errors import SettingsError
from mnist_zoo.files import inside
from mnist_zoo.models import build_model
from mnist_zoo.scores import evaluate_model
from mnist_zoo.train.fit import STEPS_PER_EXECUTION, fit_models

CHECKPOINT_PATTERN = re.compile(r"ckpt-(\d+)\.keras$")
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
    overwrite: replace a run folder that already holds a run (else a SettingsError).
    initial_weights: a .keras or .weights.h5 file to start from.
    data: an already loaded `DigitData` (skips loading; handy from code).
    model_settings: builder settings such as dropout or pooling.
    Bad settings raise a SettingsError (a ValueError) before anything is loaded or written.
    """
    check_numbers(learning_rate=learning_rate, momentum=momentum, batch_size=batch_size,
                  epochs=epochs, early_stopping=early_stopping,
                  keep_checkpoints=keep_checkpoints)
    name = name or f"{model}_{activation}_{optimizer}_lr{learning_rate:g}_bs{batch_size}"
    run_dir = run_folder(out, name)
    if holds_run(run_dir) and not resume:
        if not overwrite:
            raise SettingsError(f"{run_dir} already holds a run; pass --overwrite to replace it, "
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
    """What the command line's argument types check, for callers from Python: a SettingsError
    naming the setting (batch_size=0 would divide by zero, epochs=0 or a NaN rate would
    save an untrained or NaN model)."""
    for key, value in values.items():
        if key in WHOLE_NUMBERS:
            low = WHOLE_NUMBERS[key]
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise SettingsError(f"{key} must be a whole number >= {low}, got {value!r}")
            continue
        number = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
        if key == "learning_rate" and not (number and math.isfinite(value) and value > 0):
            raise SettingsError(f"learning_rate must be a finite number above 0, got {value!r}")
        if key == "momentum" and not (number and math.isfinite(value) and 0 <= value < 1):
            raise SettingsError(f"momentum must be a number from 0 to below 1, got {value!r}")


def run_folder(out, name: str) -> Path:
    """out/name, refusing a name that leads elsewhere ("../x", "/tmp/x", ".")."""
    out = Path(out)
    if not name or inside(out, name) in (None, out.resolve()):
        raise SettingsError(f"--name {name!r} leads outside --out {out}; give a plain folder "
                            "name such as lenet5_try2")
    return out / name


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
        raise SettingsError(f"cannot resume {run_dir}: it was started with {', '.join(differ)}; "
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
    """Start `net` from a .keras file's weights or a .weights.h5 file; a file that cannot
    be used (missing, truncated, another architecture, unsafe) is a one-line ModelError."""
    import zipfile

    from mnist_zoo.errors import ModelError
    from mnist_zoo.models.saved import load_problem

    path = Path(path)
    if not path.is_file():
        problem = "is a folder" if path.is_dir() else "does not exist"
        raise ModelError(f"--initial-weights {path} {problem}; {_INITIAL_WEIGHTS_FIX}")
    # Keras calls a .keras file that is not a zip archive (a truncated one) "File not found".
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ModelError(f"--initial-weights {path} is not a valid .keras file (a zip "
                         f"archive): truncated or another format; {_INITIAL_WEIGHTS_FIX}")
    try:
        if path.suffix == ".keras":
            weights = keras.models.load_model(path, compile=False).get_weights()
            _check_same_architecture(net, weights, path)
            net.set_weights(weights)
        else:
            net.load_weights(path)
    except ModelError:
        raise
    except ValueError as err:
        if "could not be loaded" not in str(err):
            raise ModelError(f"cannot start from --initial-weights {path}: "
                             f"{load_problem(err)}; {_INITIAL_WEIGHTS_FIX}") from None
        # Keras' message for a .weights.h5 of other layers runs to a dozen lines.
        raise ModelError(f"--initial-weights {path} holds weights of another architecture "
                         f"than {net.name}; {_INITIAL_WEIGHTS_FIX}") from None
        raise
    except Exception as err:  # h5py, Keras' safe mode and shape checks raise many kinds
        raise ModelError(f"cannot start from --initial-weights {path}: {load_problem(err)}; "
                         f"{_INITIAL_WEIGHTS_FIX}") from None


_INITIAL_WEIGHTS_FIX = "give a .keras or .weights.h5 file saved from the same --model"


def _check_same_architecture(net: keras.Model, weights: list, path: Path) -> None:
    """Keras' own message for a mismatch counts weights but names no architecture."""
    from mnist_zoo.errors import ModelError

    wanted = [tuple(w.shape) for w in net.weights]
    found = [tuple(w.shape) for w in weights]
    if wanted != found:
        raise ModelError(f"--initial-weights {path} holds weights of another architecture "
                         f"({len(found)} arrays, {sum(map(np.prod, found)):,.0f} numbers; "
                         f"{net.name} has {len(wanted)}, {net.count_params():,}); "
                         f"{_INITIAL_WEIGHTS_FIX}")
