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
from mnist_zoo.errors import ModelError, SettingsError
from mnist_zoo.files import inside
from mnist_zoo.models import build_model, model_settings
from mnist_zoo.scores import evaluate_model
from mnist_zoo.settings import SETTINGS, in_group, run_settings
from mnist_zoo.train.fit import STEPS_PER_EXECUTION, fit_models

CHECKPOINT_PATTERN = re.compile(r"ckpt-(\d+)\.keras$")
# What a run was started with (train writes it first); --resume must match it.
RUN_SETTINGS = "settings.json"
# train()'s whole-number options beside the settings table, and their least values.
WHOLE_NUMBERS = {"keep_checkpoints": 1, "early_stopping": 0}


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


def train(model: str = "lenet5", *, dataset: str = "mnist", data_dir=None,
          subset: int | None = None, validation_size: int | float | None = None,
          early_stopping: int = 0, keep_checkpoints: int = 2, resume: bool = False,
          overwrite: bool = False, initial_weights=None, out="results/runs",
          name: str | None = None, seed: int = 0, verbose: int | None = None,
          data: data_lib.DigitData | None = None, export: bool = True,
          tensorboard: bool = False, **settings) -> RunResult:
    """Train `model` and write its run folder; returns the metrics, history and model.

    settings: the settings table's (mnist_zoo.settings, listed below), e.g.
    activation="tanh", optimizer="sgd", learning_rate=0.01, epochs=5; one that does not
    apply to the model or optimizer (max pooling for an MLP) is refused.
    early_stopping: patience in epochs on val_loss (0 = off).
    resume: continue from the newest checkpoint of this run folder, if any; the run's
    settings must be the ones it was started with (epochs may grow).
    overwrite: replace a run folder that already holds a run (else a SettingsError).
    initial_weights: a .keras or .weights.h5 file to start from.
    data: an already loaded `DigitData` (skips loading; handy from code).
    Bad settings raise a SettingsError (a ValueError) before anything is loaded or written.
    """
    run = check_run(model, settings, seed=seed, subset=subset)
    check_numbers(early_stopping=early_stopping, keep_checkpoints=keep_checkpoints)
    name = name or "{model}_{activation}_{optimizer}_lr{learning_rate:g}_bs{batch_size}".format(
        **run)
    run_dir = run_folder(out, name)
    if holds_run(run_dir) and not (resume or overwrite):
        raise SettingsError(f"{run_dir} already holds a run; pass --overwrite to replace it, "
                            "--resume to continue it, or give another --name")
    keras.utils.set_random_seed(seed)
    verbose = default_verbose() if verbose is None else verbose
    if data is None:
        data = data_lib.load_dataset(dataset, data_dir, validation_size=validation_size,
                                     subset=subset, seed=seed)
    recorded = {**{key: value for key, value in run.items() if key != "epochs"},
                "dataset": data.name, "train_images": len(data.x_train)}
    if resume:
        check_same_run(run_dir, recorded)
    elif holds_run(run_dir):
        shutil.rmtree(run_dir)  # --overwrite: its old checkpoints must not seed a later --resume
    checkpoint_dir = run_dir / "checkpoints"
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / RUN_SETTINGS).exists():
        (run_dir / RUN_SETTINGS).write_text(json.dumps(recorded, indent=2))

    net, initial_epoch = _start_model(run, checkpoint_dir if resume else None, initial_weights,
                                      math.ceil(len(data.x_train) / run["batch_size"]), name)
    callbacks = _run_callbacks(run_dir, keep_checkpoints, early_stopping, tensorboard,
                               append=initial_epoch > 0)
    (fit,) = fit_models([net], data, batch_size=run["batch_size"], epochs=run["epochs"],
                        augment=run["augment"], seed=seed, verbose=verbose, callbacks=callbacks,
                        initial_epoch=initial_epoch, test=False)  # evaluate_model scores below
    metrics = {
        **run, "dataset": data.name, "data_source": data.source,
        "train_images": len(data.x_train), "params": net.count_params(),
        "epochs_run": initial_epoch + fit.epochs_run, "seconds": round(fit.seconds, 2),
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
          f"loss {metrics['test']['loss']:.4f} ({fit.seconds:.1f} s) -> {run_dir}")
    return RunResult(run_dir, metrics, fit.history, net)


train.__doc__ += "\n    The settings:\n" + "".join(
    f"    {s.name} ({s.kind.__name__}, default {s.default!r}): {s.help}\n"
    for s in SETTINGS.values() if s.axis and s.name != "model")


def check_run(model: str, settings: dict, *, seed: int = 0, subset: int | None = None):
    """The run's settings (a frozen RunSettings), every one checked against the table and
    the model's builder before anything is loaded or written."""
    run = run_settings({"model": model, **settings, "seed": seed, "subset": subset})
    takes = model_settings(model)
    refused = sorted(key for key in settings if key in in_group("architecture")
                     and key not in takes)
    if refused:  # a builder registered from code without one of the zoo's settings
        raise SettingsError(f"model {model!r} does not take {refused}; it takes {takes}")
    return run


def _start_model(run, checkpoint_dir: Path | None, initial_weights, steps_per_epoch: int,
                 name: str) -> tuple[keras.Model, int]:
    """The model to train and the epoch it starts from: the newest checkpoint's (its
    .keras file holds the optimizer state, so the run continues exactly), or a new one."""
    checkpoints = list_checkpoints(checkpoint_dir) if checkpoint_dir else []
    if checkpoints:
        initial_epoch = int(CHECKPOINT_PATTERN.search(checkpoints[-1].name).group(1))
        print(f"resuming {name} from {checkpoints[-1].name} (epoch {initial_epoch})")
        return keras.models.load_model(checkpoints[-1]), initial_epoch
    takes = {*model_settings(run["model"]), *in_group("optimizer")}
    net = build_model(run["model"], decay_steps=steps_per_epoch * run["epochs"],
                      steps_per_execution=STEPS_PER_EXECUTION,
                      **{key: value for key, value in run.items() if key in takes})
    if initial_weights:
        _load_initial_weights(net, initial_weights)
    return net, 0


def check_numbers(**values) -> None:
    """What the command line's argument types check, for callers from Python: a SettingsError
    naming the setting (batch_size=0 would divide by zero, epochs=0 or a NaN rate would
    save an untrained or NaN model). The settings table's settings (mnist_zoo.settings)
    are checked by the table, the others here."""
    for key, value in values.items():
        if key in SETTINGS:
            problem = SETTINGS[key].check(value)
            if problem:
                raise SettingsError(SETTINGS[key].refusal(value, problem))
            continue
        low = WHOLE_NUMBERS[key]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise SettingsError(f"{key} must be a whole number >= {low}, got {value!r}")


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
    except Exception as err:  # h5py, Keras' safe mode and shape checks raise many kinds
        if isinstance(err, ValueError) and "could not be loaded" in str(err):
            # Keras' message for a .weights.h5 of other layers runs to a dozen lines.
            raise ModelError(f"--initial-weights {path} holds weights of another "
                             f"architecture than {net.name}; {_INITIAL_WEIGHTS_FIX}") from None
        raise ModelError(f"cannot start from --initial-weights {path}: {load_problem(err)}; "
                         f"{_INITIAL_WEIGHTS_FIX}") from None


_INITIAL_WEIGHTS_FIX = "give a .keras or .weights.h5 file saved from the same --model"


def _check_same_architecture(net: keras.Model, weights: list, path: Path) -> None:
    """Keras' own message for a mismatch counts weights but names no architecture."""

    wanted = [tuple(w.shape) for w in net.weights]
    found = [tuple(w.shape) for w in weights]
    if wanted != found:
        raise ModelError(f"--initial-weights {path} holds weights of another architecture "
                         f"({len(found)} arrays, {sum(map(np.prod, found)):,.0f} numbers; "
                         f"{net.name} has {len(wanted)}, {net.count_params():,}); "
                         f"{_INITIAL_WEIGHTS_FIX}")
