"""Take a model out of Keras: write an ONNX or LiteRT (.tflite) file, then check it.

    python -m mnist_zoo.export lenet5:mnist --format litert --quantize int8 \\
        --data-dir DIR

MODEL is anything `evaluate` takes: a zoo name with shipped weights (lenet5:mnist), a
run folder, a .keras file, a SavedModel folder, a search's exported top-k model.

The file is written by Keras' own `model.export()`: format="onnx" (through tf2onnx's
from_function) or format="litert" (TensorFlow's TFLiteConverter). Then it is run in its
own runtime (onnxruntime; the LiteRT interpreter) on the dataset's test set beside the
Keras model, and the two are printed side by side: accuracy, the largest probability
difference, file size, latency for one image and throughput in batches of 1,000.

Quantisation (--quantize, LiteRT; ONNX files are float32 or int8):
  float16  weights stored as float16, computed in float32: half the size.
  int8     full-integer: weights and activations int8, calibrated on --calibration
           training images. A LiteRT int8 file takes int8 images (scale 1/255, zero point
           -128: pixel p in [0, 1] becomes round(255 p) - 128) and gives int8
           probabilities (scale 1/256, zero point -128); an ONNX int8 file keeps float32
           input and output around int8 (QDQ) operators.

The check: a float32 file must predict the same digit as Keras on >= 99.95 % of the test
images with every probability within 1e-4; a float16 or int8 file must score within 0.3
accuracy points of Keras. A file that fails is removed (it is written under a temporary
name and renamed only once checked) and the command exits with status 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from mnist_zoo.cli import command
from mnist_zoo.errors import SettingsError, ZooError

FORMATS = {"onnx": ".onnx", "litert": ".tflite"}
QUANTISATIONS = ("float32", "float16", "int8")
# Which quantisations each format is written in (ONNX float16 needs onnxconverter-common).
SUPPORTED = {"onnx": ("float32", "int8"), "litert": QUANTISATIONS}
FLOAT32_AGREEMENT = 0.9995  # share of test images with the same predicted digit
FLOAT32_PROBABILITY = 1e-4  # largest probability difference
QUANTISED_POINTS = 0.3  # accuracy points a float16 or int8 file may lose (or gain)
# Training images int8 calibration sees; measured in docs/model_zoo.md ("Exported files").
CALIBRATION_IMAGES = 200
CONVERTER = {"onnx": "Keras model.export(format='onnx'), tf2onnx from_function",
             "litert": "Keras model.export(format='litert'), tf.lite.TFLiteConverter"}
NAMES = {"onnx": "ONNX", "litert": "LiteRT"}


class ExportCheckFailed(ZooError):
    """A written file that scores differently from its Keras model (exit status 1); its
    measurement is in `report`."""

    def __init__(self, message: str, report: dict | None = None):
        super().__init__(message)
        self.report = report


@dataclasses.dataclass
class Timing:
    latency_ms: float  # median time for one image
    images_per_s: float  # median throughput in batches of 1,000


# --------------------------------------------------------------------------- writing
def keras_model_of(loaded, image_shape: tuple):
    """The keras.Model to export: the model itself, or a SavedModel wrapped in TFSMLayer."""
    import keras

    if loaded.keras_model is not None:
        net = loaded.keras_model
    elif loaded.kind == "saved_model":
        net = keras.Sequential([keras.Input(image_shape),
                                keras.layers.TFSMLayer(str(loaded.path), call_endpoint="serve")])
    else:
        raise SettingsError(f"{loaded.path} is already an exported {loaded.kind} file; "
                            "export from its .keras file, run folder or zoo name")
    # Keras exports only a model it has called; a loaded .keras file has not been.
    net(np.zeros((1, *image_shape), np.float32), training=False)
    return net


def write_file(net, fmt: str, quantize: str, path: Path, calibration: np.ndarray) -> None:
    """Write `net` as `fmt` at `path` with Keras' own export."""
    from mnist_zoo.models.runtimes import silenced

    with silenced():  # the converters print pages of notices on each call
        if fmt == "onnx":
            net.export(str(path), format="onnx", verbose=False)
            if quantize == "int8":
                _quantise_onnx(path, calibration)
        else:
            net.export(str(path), format="litert", verbose=False,
                       **_litert_options(quantize, calibration))


def _litert_options(quantize: str, calibration: np.ndarray) -> dict:
    """TFLiteConverter settings, which Keras' litert export passes on to the converter."""
    import tensorflow as tf

    if quantize == "float32":
        return {}
    if quantize == "float16":
        return {"optimizations": [tf.lite.Optimize.DEFAULT],
                "target_spec": {"supported_types": [tf.float16]}}

    def representative_dataset():
        for image in calibration:
            yield [image[None]]

    return {"optimizations": [tf.lite.Optimize.DEFAULT],
            "representative_dataset": representative_dataset,
            "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
            "inference_input_type": tf.int8, "inference_output_type": tf.int8}


def _quantise_onnx(path: Path, calibration: np.ndarray) -> None:
    """Static int8 quantisation by onnxruntime, calibrated on the same images as LiteRT."""
    import onnx
    from onnxruntime import quantization

    graph = onnx.load(str(path)).graph  # read once: the input's name and the softmax nodes
    images = iter([{graph.input[0].name: image[None]} for image in calibration])

    class Calibration(quantization.CalibrationDataReader):
        def get_next(self):
            return next(images, None)

    # The softmax stays float32: quantised, its outputs sum to 1 only roughly and read as
    # logits downstream (lenet5: mean probability difference 0.15, largest 0.77; kept
    # float32, largest 0.095).
    softmax = [node.name for node in graph.node if node.op_type == "Softmax"]
    float_path = path.with_name(path.stem + ".float32.onnx")
    os.replace(path, float_path)
    try:
        quantization.quantize_static(str(float_path), str(path), Calibration(),
                                     quant_format=quantization.QuantFormat.QDQ,
                                     activation_type=quantization.QuantType.QInt8,
                                     weight_type=quantization.QuantType.QInt8,
                                     nodes_to_exclude=softmax)
    finally:
        float_path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- checking
def time_forward(forward, x: np.ndarray, repeats: int = 30) -> Timing:
    """Median wall time of one image and of a batch of 1,000, after warm-up runs."""
    one, batch = x[:1], x[:1000]

    def median_seconds(images, times):
        forward(images)  # warm-up: first calls build graphs, allocate tensors
        forward(images)
        samples = []
        for _ in range(times):
            start = time.perf_counter()
            forward(images)
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)

    latency = median_seconds(one, repeats)
    per_batch = median_seconds(batch, max(3, repeats // 10))
    return Timing(latency * 1e3, len(batch) / per_batch)


def compare(y: np.ndarray, reference: np.ndarray, exported: np.ndarray,
            quantize: str) -> dict:
    """How the exported file's probabilities differ from Keras', and whether they pass."""
    keras_accuracy = float((reference.argmax(1) == y).mean())
    file_accuracy = float((exported.argmax(1) == y).mean())
    agreement = float((reference.argmax(1) == exported.argmax(1)).mean())
    largest = float(np.abs(reference - exported).max())
    if quantize == "float32":
        passed = agreement >= FLOAT32_AGREEMENT and largest <= FLOAT32_PROBABILITY
        rule = (f"float32: the same digit on >= {FLOAT32_AGREEMENT:.2%} of the images and "
                f"probabilities within {FLOAT32_PROBABILITY:g}")
    else:
        passed = abs(file_accuracy - keras_accuracy) * 100 <= QUANTISED_POINTS + 1e-9
        rule = f"{quantize}: accuracy within {QUANTISED_POINTS} points of Keras"
    return {"keras_accuracy": keras_accuracy, "file_accuracy": file_accuracy,
            "agreement": agreement, "largest_difference": largest, "passed": passed,
            "rule": rule}


def size_of(path: Path) -> int:
    path = Path(path)
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


# --------------------------------------------------------------------------- the command
def export(model, fmt: str, quantize: str = "float32", out=None, dataset: str | None = None,
           data_dir=None, *, calibration: int = CALIBRATION_IMAGES, seed: int = 0,
           timing_repeats: int = 30, verbose: bool = True) -> dict:
    """Write `model` as an ONNX or LiteRT file, run it beside Keras on the test set, and
    keep it only if it passes the check (else ExportCheckFailed and no file).

    Returns the report: accuracies, agreement, largest probability difference, sizes,
    timings of both, the file's input/output types, the converter used and the path.
    """
    from mnist_zoo import data as data_lib
    from mnist_zoo.models import runtimes
    from mnist_zoo.models.saved import check_model_fits, load_model

    quantize = quantize or "float32"
    _check_choices(fmt, quantize, calibration)
    runtimes.require(fmt, f"--format {fmt}")
    if out is not None:
        out = _output_path(out, "", fmt, quantize)
    loaded = load_model(model)
    data = data_lib.load_dataset(dataset or loaded.trained_on or "mnist", data_dir, seed=seed)
    check_model_fits(loaded, data.x_test[:1], len(data.class_names), data.name)
    out = out or _output_path(None, loaded.name, fmt, quantize)
    net = keras_model_of(loaded, data.x_test.shape[1:])
    rng = np.random.default_rng(seed)
    sample = data.x_train[rng.choice(len(data.x_train), min(calibration, len(data.x_train)),
                                     replace=False)] if quantize == "int8" else None

    # A temporary name in the same folder (so that the rename is atomic), with the
    # suffix Keras' exporters ask for; removed whatever happens unless renamed.
    partial = out.with_name(f".{out.stem}.partial{out.suffix}")
    try:
        write_file(net, fmt, quantize, partial, sample)
        exported = load_model(partial)
        report = _measure(loaded, exported, data, quantize, timing_repeats)
        report.update(model=str(model), model_name=loaded.name, dataset=data.name,
                      format=fmt, quantize=quantize, converter=CONVERTER[fmt],
                      calibration_images=len(sample) if sample is not None else 0,
                      keras_bytes=size_of(loaded.path), file_bytes=size_of(partial),
                      io=_io_types(exported), path=str(out))
        if verbose:
            print_report(report)
        if not report["passed"]:
            raise ExportCheckFailed(_failure(report), report)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return report


def _check_choices(fmt: str, quantize: str, calibration: int) -> None:
    if fmt not in FORMATS:
        raise SettingsError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if quantize not in SUPPORTED[fmt]:
        raise SettingsError(f"--quantize {quantize} is not written for --format {fmt} (it "
                            f"takes {', '.join(SUPPORTED[fmt])}); use --format litert for "
                            "float16")
    if calibration < 1:
        raise SettingsError(f"--calibration must be at least 1 image, got {calibration}")


def _output_path(out, name: str, fmt: str, quantize: str) -> Path:
    suffix = FORMATS[fmt]
    if out is None:
        tag = "" if quantize == "float32" else f"_{quantize}"
        out = Path("results/export") / f"{name}{tag}{suffix}"
    out = Path(out)
    if out.suffix != suffix:
        raise SettingsError(f"--out {out} must end in {suffix} for --format {fmt}")
    if out.is_dir():
        raise SettingsError(f"--out {out} is a folder; give a file name ending in {suffix}")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def _measure(loaded, exported, data, quantize: str, repeats: int) -> dict:
    """Score both on the test set; time both (their raw forward functions, same images)."""
    reference, probabilities = loaded(data.x_test), exported(data.x_test)
    report = compare(data.y_test, reference, probabilities, quantize)
    report["images"] = len(data.y_test)
    for key, model in (("keras", loaded), ("file", exported)):
        if repeats < 1:  # not timed (a measurement of accuracy alone)
            report[f"{key}_latency_ms"] = report[f"{key}_images_per_s"] = float("nan")
            continue
        timing = time_forward(model.forward, data.x_test, repeats)
        report[f"{key}_latency_ms"] = timing.latency_ms
        report[f"{key}_images_per_s"] = timing.images_per_s
    return report


def _io_types(exported) -> str:
    describe = getattr(exported.forward, "describe", None)
    return describe() if describe else "input float32, output float32"


def _failure(report: dict) -> str:
    return (f"the {NAMES[report['format']]} {report['quantize']} file scores differently "
            f"from Keras (accuracy {report['file_accuracy']:.2%} against "
            f"{report['keras_accuracy']:.2%}, the same digit on {report['agreement']:.2%}, "
            f"largest probability difference {report['largest_difference']:.2g}; the rule is "
            f"{report['rule']}), so it was not kept; try another --quantize or format")


def print_report(report: dict) -> None:
    """Keras and the file side by side."""
    label = f"{NAMES[report['format']]} {report['quantize']}"
    rows = [("accuracy", f"{report['keras_accuracy']:.2%}", f"{report['file_accuracy']:.2%}"),
            ("size", _kb(report["keras_bytes"]), _kb(report["file_bytes"])),
            ("latency, 1 image", f"{report['keras_latency_ms']:.3f} ms",
             f"{report['file_latency_ms']:.3f} ms"),
            ("images/s, batches of 1,000", f"{report['keras_images_per_s']:,.0f}",
             f"{report['file_images_per_s']:,.0f}")]
    print(f"{report['model_name']} -> {report['path']} ({label}; {report['converter']})")
    print(f"{'':28}{'Keras':>14}{label:>16}")
    for name, keras_value, file_value in rows:
        print(f"{name:28}{keras_value:>14}{file_value:>16}")
    print(f"same digit on {report['agreement']:.2%} of {report['images']:,} {report['dataset']} "
          f"test images; largest probability difference {report['largest_difference']:.2g}")
    print(f"file: {report['io']}; timings on this CPU ({os.cpu_count()} cores), medians")
    print(f"check ({report['rule']}): {'passed' if report['passed'] else 'FAILED'}")


def _kb(size: int) -> str:
    return f"{size / 1024:,.0f} KB"


def build_parser() -> argparse.ArgumentParser:
    from mnist_zoo.cli import Parser, positive_int
    from mnist_zoo.data import DATASETS

    parser = Parser(  # one-line errors
        prog="python -m mnist_zoo.export", description=__doc__)
    parser.add_argument("model", metavar="MODEL",
                        help="zoo name with shipped weights (lenet5:mnist), run folder, .keras "
                             "file or SavedModel folder")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--quantize", default="float32", choices=QUANTISATIONS,
                        help="float32 (default), float16 (LiteRT) or int8 (full-integer)")
    parser.add_argument("--out", default=None,
                        help="file to write (default results/export/<model>[_<quantize>]"
                             ".onnx|.tflite)")
    parser.add_argument("--dataset", default=None, choices=DATASETS,
                        help="test set of the check (default: the one the model was "
                             "trained on, else mnist)")
    parser.add_argument("--data-dir", default=None, help="folder with the four IDX files")
    parser.add_argument("--calibration", type=positive_int, default=CALIBRATION_IMAGES,
                        help="training images int8 quantisation is calibrated on "
                             f"(default {CALIBRATION_IMAGES})")
    parser.add_argument("--seed", type=int, default=0,
                        help="validation split and calibration sample seed")
    return parser


@command
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        export(args.model, args.format, args.quantize, args.out, args.dataset, args.data_dir,
               calibration=args.calibration, seed=args.seed)
    except ExportCheckFailed as err:  # a file that was written but failed: status 1
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
