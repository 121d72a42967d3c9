"""mnist_zoo.export (#33): ONNX and LiteRT files of zoo models, each reloaded in its own
runtime and scored on mnist-8k2k's 2,000 test images against Keras; evaluate and predict
on the files; a file made to differ from its model is refused and not kept."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

# Each test converts and scores real files (tens of seconds with its fixture): the full tier.
pytestmark = pytest.mark.slow

pytest.importorskip("onnxruntime", reason="the export extra: pip install -e '.[export]'")
pytest.importorskip("ai_edge_litert", reason="the export extra: pip install -e '.[export]'")

from mnist_zoo import export as export_lib  # noqa: E402
from mnist_zoo.data import load_dataset  # noqa: E402
from mnist_zoo.evaluate import evaluate  # noqa: E402
from mnist_zoo.models.saved import load_model  # noqa: E402
from mnist_zoo.predict import predict  # noqa: E402

MODELS = ("lenet5:mnist", "mlp_simple:mnist")
KINDS = (("onnx", "float32"), ("onnx", "int8"),
         ("litert", "float32"), ("litert", "float16"), ("litert", "int8"))


def _file_name(model: str, fmt: str, quantize: str) -> str:
    return f"{model.split(':')[0]}_{quantize}{export_lib.FORMATS[fmt]}"


@pytest.fixture(scope="module")
def digits(mnist_8k2k):
    return load_dataset("mnist", mnist_8k2k)


@pytest.fixture(scope="module")
def exported(mnist_8k2k, tmp_path_factory):
    """Every format and quantisation of both models, written by the Python API."""
    folder = tmp_path_factory.mktemp("exported")
    reports = {}
    for model in MODELS:
        for fmt, quantize in KINDS:
            out = folder / _file_name(model, fmt, quantize)
            reports[model, fmt, quantize] = export_lib.export(
                model, fmt, quantize, out, data_dir=mnist_8k2k, timing_repeats=2,
                verbose=False)
    return folder, reports


@pytest.mark.parametrize("fmt, quantize", KINDS)
@pytest.mark.parametrize("model", MODELS)
def test_exported_file_scores_like_keras(exported, digits, model, fmt, quantize):
    folder, reports = exported
    path = folder / _file_name(model, fmt, quantize)
    keras_probabilities = load_model(model)(digits.x_test)

    probabilities = load_model(path)(digits.x_test)  # reloaded in its own runtime

    assert load_model(path).kind == {"onnx": "onnx", "litert": "tflite"}[fmt]
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-3)
    keras_accuracy = (keras_probabilities.argmax(1) == digits.y_test).mean()
    accuracy = (probabilities.argmax(1) == digits.y_test).mean()
    assert keras_accuracy > 0.97
    if quantize == "float32":
        same = (probabilities.argmax(1) == keras_probabilities.argmax(1)).mean()
        assert same >= 0.9995
        assert np.abs(probabilities - keras_probabilities).max() <= 1e-4
    else:
        assert abs(accuracy - keras_accuracy) <= 0.003
        # Probabilities still (int8 ones renormalised, not softened again as logits).
        assert np.abs(probabilities - keras_probabilities).mean() < 0.01
    report = reports[model, fmt, quantize]
    assert report["passed"] and report["file_accuracy"] == pytest.approx(accuracy)
    assert report["file_bytes"] == path.stat().st_size
    assert report["file_latency_ms"] > 0 and report["file_images_per_s"] > 0
    assert not list(folder.glob(".*partial*")), "a temporary file was left behind"


def test_quantised_files_are_smaller_and_int8_takes_int8(exported):
    folder, reports = exported
    for model in MODELS:
        float32 = reports[model, "litert", "float32"]["file_bytes"]
        assert reports[model, "litert", "float16"]["file_bytes"] < 0.6 * float32
        assert reports[model, "litert", "int8"]["file_bytes"] < 0.35 * float32
        assert reports[model, "onnx", "int8"]["file_bytes"] < 0.4 * float32
        io = reports[model, "litert", "int8"]["io"]
        assert io.startswith("input int8 (scale 0.00392157, zero point -128)"), io
        assert "output int8 (scale 0.00390625, zero point -128)" in io


def test_evaluate_scores_exported_files(exported, mnist_8k2k, tmp_path):
    folder, reports = exported
    for fmt, quantize in (("onnx", "float32"), ("litert", "int8")):
        path = folder / _file_name("lenet5:mnist", fmt, quantize)
        metrics = evaluate(path, data_dir=mnist_8k2k, out=tmp_path / fmt, gallery_size=5,
                           verbose=False)
        assert metrics["images"] == 2000
        assert metrics["accuracy"] == pytest.approx(
            reports["lenet5:mnist", fmt, quantize]["file_accuracy"])


def test_predict_reads_digits_with_exported_files(exported, digits, tmp_path):
    folder, _ = exported
    images = []
    for number in range(10):
        images.append(tmp_path / f"digit_{number}.png")
        Image.fromarray((digits.x_test[number, ..., 0] * 255).astype(np.uint8)).save(images[-1])
    keras_digits = [r.digit for r in predict("lenet5:mnist", images)]
    assert sum(d == y for d, y in zip(keras_digits, digits.y_test[:10])) >= 9
    for fmt, quantize in (("onnx", "float32"), ("litert", "float16"), ("litert", "int8")):
        results = predict(folder / _file_name("lenet5:mnist", fmt, quantize), images)
        assert [r.digit for r in results] == keras_digits, (fmt, quantize)


def test_command_prints_keras_and_file_side_by_side(mnist_8k2k, tmp_path, capsys):
    out = tmp_path / "lenet5.tflite"
    status = export_lib.main(["lenet5:mnist", "--format", "litert", "--quantize", "float16",
                              "--data-dir", str(mnist_8k2k), "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 0 and out.is_file()
    header = next(line for line in printed.splitlines() if line.split()[:1] == ["Keras"])
    assert header.split() == ["Keras", "LiteRT", "float16"]
    for row in ("accuracy", "size", "latency, 1 image", "images/s, batches of 1,000"):
        assert any(line.startswith(row) for line in printed.splitlines()), row
    assert "of 2,000 mnist test images" in printed and "passed" in printed


def test_keras_file_and_saved_model_export(mnist_8k2k, tmp_path):
    from mnist_zoo.models import build_model

    net = build_model("mlp_simple", weights="mnist", compile=False)
    net.save(tmp_path / "mlp.keras")
    net.export(str(tmp_path / "saved"), format="tf_saved_model", verbose=False)
    for source in ("mlp.keras", "saved"):
        report = export_lib.export(tmp_path / source, "onnx", out=tmp_path / f"{source}.onnx",
                                   data_dir=mnist_8k2k, timing_repeats=2, verbose=False)
        assert report["passed"] and report["agreement"] == 1.0


def _edit_onnx_weight(path, factor):
    """Scale the largest weight matrix of an ONNX file (as a user editing it might)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    largest = max(model.graph.initializer, key=lambda t: np.prod(t.dims))
    values = numpy_helper.to_array(largest) * factor
    largest.CopyFrom(numpy_helper.from_array(values.astype(np.float32), largest.name))
    onnx.save(model, str(path))


def _edit_tflite_bias(path, net):
    """Add 3 to digit 0's bias in the last layer, found by its float32 bytes in the file."""
    bias = net.weights[-1].numpy().astype(np.float32)
    content = bytearray(path.read_bytes())
    where = content.find(bias.tobytes())
    assert where > 0 and content.count(bias.tobytes()) == 1
    bias[0] += 3.0
    content[where:where + bias.nbytes] = bias.tobytes()
    path.write_bytes(bytes(content))


@pytest.mark.parametrize("fmt", ["onnx", "litert"])
def test_a_file_that_differs_from_keras_is_refused(monkeypatch, mnist_8k2k, tmp_path, capsys,
                                                   fmt):
    write_file = export_lib.write_file

    def write_then_edit(net, fmt_, quantize, path, calibration):
        write_file(net, fmt_, quantize, path, calibration)
        if fmt_ == "onnx":  # 0.1 % larger weights: the same digits, other probabilities
            _edit_onnx_weight(path, 1.001)
        else:
            _edit_tflite_bias(path, net)

    monkeypatch.setattr(export_lib, "write_file", write_then_edit)
    out = tmp_path / f"edited{export_lib.FORMATS[fmt]}"
    status = export_lib.main(["lenet5:mnist", "--format", fmt, "--data-dir", str(mnist_8k2k),
                              "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert status == 1
    assert err.startswith("error: ") and "\n" not in err and "not kept" in err, err
    assert list(tmp_path.iterdir()) == [], "the refused file (or its temporary) was left"


def test_without_the_extra_one_line_says_what_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    status = export_lib.main(["lenet5:mnist", "--format", "onnx", "--out",
                              str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err.strip()
    assert status == 2 and "\n" not in err
    assert "onnxruntime" in err and "pip install -e '.[export]'" in err


def test_bad_choices_are_one_line(tmp_path, capsys):
    assert export_lib.main(["lenet5:mnist", "--format", "onnx", "--quantize", "float16"]) == 2
    assert export_lib.main(["lenet5:mnist", "--format", "onnx",
                            "--out", str(tmp_path / "m.tflite")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("error: ") for line in lines)
    assert "use --format litert for float16" in lines[0] and "must end in .onnx" in lines[1]


def test_bench_tool_writes_the_csv_chart_and_card(mnist_8k2k, tmp_path):
    """bench/export.py end to end on one model (the card's real run is on every model)."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "bench" / "export.py"
    spec = importlib.util.spec_from_file_location("bench_export", script)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    card = tmp_path / "card.md"
    card.write_text("# card\n<!-- export -->\nold\n<!-- /export -->\nafter\n")
    paths = {"csv": tmp_path / "export.csv", "chart": tmp_path / "export.png", "card": card}
    assert bench.main(["--models", "mlp_simple:mnist", "--data-dir", str(mnist_8k2k),
                       "--repeats", "3"] + [f"--{k}={v}" for k, v in paths.items()]) == 0

    rows = bench.read_csv(paths["csv"])
    assert [(r["format"], r["quantize"]) for r in rows] == [
        ("keras", "float32"), ("onnx", "float32"), ("litert", "float16"), ("litert", "int8")]
    assert all(r["accuracy"] > 0.97 and r["latency_ms"] > 0 and r["bytes"] > 0 for r in rows)
    assert rows[3]["bytes"] < rows[2]["bytes"] < rows[1]["bytes"]
    assert paths["chart"].stat().st_size > 10_000
    text = card.read_text()
    assert "old" not in text and text.endswith("<!-- /export -->\nafter\n")
    table_row = next(line for line in text.splitlines() if line.startswith("| mlp_simple"))
    assert table_row.count(" KB · ") == 4
    assert f"{rows[0]['bytes'] / 1024:,.0f} KB · {rows[0]['accuracy']:.2%}" in table_row
