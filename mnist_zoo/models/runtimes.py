"""Running exported models in their own runtimes: ONNX files in onnxruntime, LiteRT
(`.tflite`) files in the LiteRT interpreter (the `ai-edge-litert` package).

Each loader returns `forward(x)`: float32 images (N, 28, 28, 1) in [0, 1] -> class
probabilities (N, classes) as float32, whatever types the file holds inside. An int8
LiteRT file takes int8 images (scale 1/255, zero point -128: pixel p in [0, 1] is
round(255 p) - 128) and gives int8 probabilities (scale 1/256, zero point -128, TFLite's
fixed softmax quantisation); `forward` converts both ways with the file's own scales.

Both runtimes come with the `export` extra; without it, loading says in one line what to
install.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from mnist_zoo.errors import ModelError

INSTALL_EXTRA = "pip install -e '.[export]'"
# What each format needs, to write it and to run it.
PACKAGES = {"onnx": ("onnx", "tf2onnx", "onnxruntime"), "litert": ("ai_edge_litert",)}
RUNTIME = {"onnx": "onnxruntime", "litert": "ai_edge_litert"}
# TFLite quantises a softmax's output to int8 with this scale and zero point.
SOFTMAX_INT8 = (1 / 256, -128)


def require(fmt: str, what: str, modules=None):
    """Import the packages `fmt` needs for `what`; a one-line ModelError naming the extra."""
    missing = []
    for module in modules or PACKAGES[fmt]:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module.replace("_", "-"))
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise ModelError(f"{what} needs {', '.join(missing)}, which {verb} not installed; "
                         f"install the export extra: {INSTALL_EXTRA}")


@contextlib.contextmanager
def silenced():
    """File descriptors 1 and 2 to a temporary file: the converters' and runtimes' C++
    logging (dozens of lines per file written) bypasses Python's streams. A failure still
    raises."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def load_onnx(path: Path) -> Callable:
    require("onnx", f"running {path}", [RUNTIME["onnx"]])
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ModelError(f"ONNX file {path} takes {len(inputs)} inputs; expected one (images)")
    name = inputs[0].name
    return lambda x: session.run(None, {name: np.asarray(x, dtype=np.float32)})[0]


def load_tflite(path: Path) -> Callable:
    require("litert", f"running {path}", [RUNTIME["litert"]])
    return _LiteRT(path)


class _LiteRT:
    """A LiteRT interpreter as a function of a batch; resized when the batch size changes."""

    def __init__(self, path: Path):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path))
        inputs = self.interpreter.get_input_details()
        outputs = self.interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"LiteRT file {path} has {len(inputs)} inputs and {len(outputs)} "
                             "outputs; expected one of each (images in, scores out)")
        self.input, self.output = inputs[0], outputs[0]
        self.batch = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if self.batch != len(x):
            self.interpreter.resize_tensor_input(self.input["index"], list(x.shape))
            with silenced():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
                self.interpreter.allocate_tensors()
            self.batch = len(x)
        self.interpreter.set_tensor(self.input["index"], self._quantise(x))
        self.interpreter.invoke()
        return self._dequantise(self.interpreter.get_tensor(self.output["index"]))

    def _quantise(self, x: np.ndarray) -> np.ndarray:
        dtype = self.input["dtype"]
        if dtype == np.float32:
            return x
        scale, zero = self.input["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)

    def _dequantise(self, y: np.ndarray) -> np.ndarray:
        if self.output["dtype"] == np.float32:
            return y
        scale, zero = self.output["quantization"]
        scores = (y.astype(np.float32) - zero) * scale
        if np.allclose((scale, zero), SOFTMAX_INT8):
            # A quantised softmax: steps of 1/256 that sum to 1 only roughly; renormalised
            # they stay probabilities (and are not taken for logits downstream).
            scores /= np.maximum(scores.sum(axis=1, keepdims=True), 1e-12)
        return scores

    def describe(self) -> str:
        """The file's input and output types and scales, for the export's report."""
        return f"input {_tensor_type(self.input)}, output {_tensor_type(self.output)}"


def _tensor_type(detail: dict) -> str:
    name = np.dtype(detail["dtype"]).name
    scale, zero = detail["quantization"]
    return f"{name} (scale {scale:.6g}, zero point {zero})" if scale else name
