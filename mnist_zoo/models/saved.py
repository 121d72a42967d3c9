"""Loading a trained model for inference, whichever way it was saved.

`load_model(path)` accepts a `.keras` (or `.h5`) file, a SavedModel folder written by
`model.export()`, a run folder of `mnist_zoo.train` holding either, or a file written by
`mnist_zoo.export`: `.onnx` (run in onnxruntime) or `.tflite` (run in LiteRT). It returns a
`LoadedModel`: call it on (N, 28, 28, 1) float32 images to get class probabilities.
It also takes a zoo name with shipped pretrained weights, "model:dataset" such as
"lenet5:mnist" or "cnn3:fashion_mnist" (`python -m mnist_zoo.evaluate lenet5:mnist`).
`mnist_zoo.evaluate` and `mnist_zoo.predict` both load models through it. Keras and
TensorFlow are imported only when a model is loaded.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Callable

import numpy as np

from mnist_zoo.errors import ModelError, SettingsError, first_line

KERAS_SUFFIXES = (".keras", ".h5")
# Files of mnist_zoo.export, each run in its own runtime (mnist_zoo.models.runtimes).
EXPORTED_SUFFIXES = {".onnx": "onnx", ".tflite": "tflite"}
# "model:dataset", the name of a zoo model with shipped weights, e.g. "lenet5:mnist".
ZOO_NAME = re.compile(r"([a-z][a-z0-9_]*):([a-z][a-z0-9_]*)")


@dataclasses.dataclass
class LoadedModel:
    """A model ready for inference; `model(x)` returns probabilities (N, classes)."""

    path: Path
    kind: str  # "keras", "saved_model", "pretrained", "onnx" or "tflite"
    forward: Callable  # one batch of images -> model outputs
    name: str
    trained_on: str | None = None  # the dataset it was trained on, where a record says
    keras_model: object = None  # the keras.Model behind forward, where there is one

    def __call__(self, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        # Batches keep memory flat on the full 10,000-image test set.
        outputs = [np.asarray(self.forward(x[start:start + batch_size]), dtype=np.float64)
                   for start in range(0, len(x), batch_size)]
        if not outputs:
            return np.zeros((0, 0))
        return as_probabilities(np.concatenate(outputs))


def as_probabilities(outputs: np.ndarray) -> np.ndarray:
    """Zoo models end in a softmax; a foreign model may give logits, which we soften here."""
    sums = outputs.sum(axis=1)
    if outputs.min() >= 0 and np.allclose(sums, 1.0, atol=1e-3):
        return outputs
    shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def model_name(path: str | Path) -> str:
    """A name for output folders: the run folder's name for run/model.keras or run/saved_model."""
    path = Path(path).resolve()
    is_file = path.suffix in KERAS_SUFFIXES or path.suffix in EXPORTED_SUFFIXES
    stem = path.stem if is_file else path.name
    if stem in ("model", "saved_model") and path.parent.name:
        return path.parent.name
    return stem


def resolve_model_path(path: str | Path) -> tuple[Path, str]:
    """The file or folder to load and its kind; a run folder resolves to what it holds."""
    path = Path(path)
    if path.is_file() and path.suffix in KERAS_SUFFIXES:
        return path, "keras"
    if path.is_file() and path.suffix in EXPORTED_SUFFIXES:
        return path, EXPORTED_SUFFIXES[path.suffix]
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return path, "saved_model"
        if (path / "saved_model" / "saved_model.pb").is_file():
            return path / "saved_model", "saved_model"
        if (path / "model.keras").is_file():
            return path / "model.keras", "keras"
    if not path.exists():
        raise ModelError(f"model {path} does not exist")
    raise ModelError(f"{path} is not a model: expected a .keras, .onnx or .tflite file, a "
                     "SavedModel folder (holding saved_model.pb) or a run folder of "
                     "mnist_zoo.train")


def load_model(path: str | Path) -> LoadedModel:
    """Load a .keras, .onnx or .tflite file, a SavedModel folder, a run folder or a zoo
    name ("lenet5:mnist")."""
    from mnist_zoo.models import runtimes

    zoo_name = pretrained_name(path)
    if zoo_name:
        return load_pretrained(*zoo_name)
    resolved, kind = resolve_model_path(path)
    loaders = {"keras": _load_keras, "saved_model": _load_saved_model,
               "onnx": runtimes.load_onnx, "tflite": runtimes.load_tflite}
    try:
        forward = loaders[kind](resolved)
    except ModelError:
        raise
    except Exception as err:  # Keras, TensorFlow and the runtimes raise many kinds
        raise ModelError(f"cannot load model {resolved}: {load_problem(err)}") from None
    keras_model = forward.__self__ if kind == "keras" else None  # predict_on_batch's model
    return LoadedModel(resolved, kind, forward, model_name(path), trained_on(resolved),
                       keras_model)


# Keras names an unregistered custom function or class in the innermost of its nested
# messages, each followed by a config dump of up to thousands of characters.
UNREGISTERED = re.compile(r"Could not locate (function|class) '([^']+)'")


def load_problem(err: BaseException) -> str:
    """What went wrong in loading a model, in one line and without Keras' config dumps.

    Keras wraps the cause of a failed deserialisation in "Exception encountered:" layers,
    each printing a layer's whole config; the last layer holds the cause.
    """
    text = str(err)
    missing = UNREGISTERED.search(text)
    if missing:
        kind, name = missing.groups()
        return (f"it uses the custom {kind} {name!r}, which is not registered in this "
                "process; import the module that defines it (decorated with "
                "@keras.saving.register_keras_serializable()) before loading")
    if "safe_mode" in text:
        return ("it holds Python code (a Lambda layer), which Keras' safe mode does not run; "
                "load only files you trust, rebuilt without the Lambda")
    cause = text.rsplit("Exception encountered:", 1)[-1]
    cause = re.split(r"\s*(?:Full object config|config=)", cause, maxsplit=1)[0].strip()
    if not cause:
        return first_line(err)
    line = f"{type(err).__name__}: {cause.splitlines()[0].strip()}"
    return line if len(line) <= 200 else line[:200] + "..."


def trained_on(resolved: Path) -> str | None:
    """The dataset a model was trained on, from its run folder's record: metrics.json of
    mnist_zoo.train, run.json of a search run; None where neither is beside it."""
    import json

    for record in ("metrics.json", "run.json"):
        try:
            dataset = json.loads((resolved.parent / record).read_text()).get("dataset")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(dataset, str):
            return dataset
    return None


def pretrained_name(path: str | Path) -> tuple[str, str] | None:
    """("lenet5", "mnist") for "lenet5:mnist"; None for anything that looks like a path."""
    text = str(path)
    match = ZOO_NAME.fullmatch(text)
    if match is None or Path(text).exists():  # a real file named like "a:b" stays a path
        return None
    return match.group(1), match.group(2)


def load_pretrained(model: str, dataset: str) -> LoadedModel:
    """A zoo model with its shipped weights, or a one-line ModelError listing what exists."""
    from mnist_zoo.models import build_model, pretrained

    try:
        path, sidecar = pretrained.get_weights(model, dataset)
        net = build_model(model, weights=dataset, compile=False)
    except SettingsError as err:
        raise ModelError(str(err)) from None
    return LoadedModel(path, "pretrained", net.predict_on_batch,
                       f"{model}_{dataset}", sidecar.get("dataset", dataset), net)


def _load_keras(path: Path) -> Callable:
    import zipfile

    import keras

    # Keras reports a .keras file that is not a zip archive as "File not found".
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ModelError(f"cannot load model {path}: not a valid .keras file (a .keras model "
                         "is a zip archive; this one is truncated or in another format)")
    # compile=False: inference needs no optimizer, and loading skips its state.
    model = keras.models.load_model(path, compile=False)
    return model.predict_on_batch  # a bound method: LoadedModel finds the model behind it


def _load_saved_model(path: Path) -> Callable:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    if hasattr(loaded, "serve"):  # the endpoint keras' model.export() writes
        return lambda x: loaded.serve(tf.constant(x)).numpy()
    if "serving_default" not in loaded.signatures:
        raise ModelError(f"SavedModel {path} has neither a serve() endpoint nor a "
                         "serving_default signature")
    signature = loaded.signatures["serving_default"]
    (input_name,) = signature.structured_input_signature[1]  # signatures take keyword tensors
    outputs = list(signature.structured_outputs)
    if len(outputs) != 1:
        raise ModelError(f"SavedModel {path} has {len(outputs)} outputs {outputs}; expected one")
    return lambda x: signature(**{input_name: tf.constant(x)})[outputs[0]].numpy()


def check_model_fits(model, sample: np.ndarray, num_classes: int, dataset: str = "the data"):
    """Run `model` on one image; a ModelError naming expected and found shapes if it does not fit.

    A model built for other images fails deep in Keras or TensorFlow, whose message prints
    the whole input tensor; one line naming both shapes says what is wrong.
    """
    found = "(None, " + ", ".join(map(str, sample.shape[1:])) + ")"  # as Keras writes shapes
    try:
        outputs = model(sample)
    except Exception as err:  # Keras: ValueError; a SavedModel's tf.function: TypeError
        expected = _expected_input_shape(str(err))
        wants = (f"expects input of shape {expected}" if expected
                 else f"fails on them ({first_line(err)})")
        raise ModelError(f"model {model.path} does not fit {dataset}: it {wants}, the images "
                         f"are {found}") from None
    if outputs.ndim != 2 or outputs.shape[1] != num_classes:
        gives = f"{outputs.shape[1]} class scores" if outputs.ndim == 2 else \
            f"outputs of shape {outputs.shape}"
        raise ModelError(f"model {model.path} does not fit {dataset}: it gives {gives} per "
                         f"image, expected {num_classes} (one per class)")


def _expected_input_shape(message: str) -> str | None:
    """'(None, 32, 32, 1)' from Keras' "expected shape=(...)" or TF's "TensorSpec(shape=(...)"."""
    import re

    for pattern in (r"expected shape=(\([^)]*\))", r"to TensorSpec\(shape=(\([^)]*\))"):
        match = re.search(pattern, message)
        if match:
            return match.group(1)
    return None
