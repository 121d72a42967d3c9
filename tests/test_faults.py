"""Issue #13: the faults and bad inputs a user will hit give one clear line, not a traceback.

Each test feeds one bad input to a command (in-process where possible: a new TensorFlow
process costs seconds) and checks for a one-line `error: ...` and exit status 2, or that
the command recovers (skips the bad part, warns, and goes on).
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_zoo import data as data_lib
from mnist_zoo.cli import non_negative_int, positive_float, positive_int

from conftest import MNIST_8K2K, require_data


def write_idx(path: Path, array: np.ndarray) -> Path:
    """An IDX file (gzip when the name ends in .gz) holding `array` as unsigned bytes."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    raw = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                      *array.shape)
    raw += array.tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def idx_folder(folder: Path, n_train=24, n_test=12, size=28, labels=None) -> Path:
    """A tiny MNIST-like folder of random images; `labels` replaces the test labels."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n_train, size, size)))
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(n_train) % 10)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (n_test, size, size)))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz",
              np.arange(n_test) % 10 if labels is None else np.asarray(labels))
    return folder


def one_error_line(text: str) -> str:
    """The command's stderr must hold exactly one `error:` line and no traceback."""
    assert "Traceback" not in text
    errors = [line for line in text.splitlines() if "error:" in line]
    assert len(errors) == 1, text
    return errors[0]


# --------------------------------------------------------------------------- 1. train CLI
def test_argument_types_accept_good_values():
    assert positive_int("3") == 3
    assert non_negative_int("0") == 0
    assert positive_float("1e-3") == 0.001


@pytest.mark.parametrize("parse, text", [
    (positive_int, "0"), (positive_int, "-2"), (positive_int, "2.5"), (positive_int, "many"),
    (non_negative_int, "-1"),
    (positive_float, "0"), (positive_float, "-1"), (positive_float, "nan"),
    (positive_float, "inf"), (positive_float, "-inf"), (positive_float, "fast"),
])
def test_argument_types_refuse_bad_values(parse, text):
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(repr(text))):
        parse(text)


@pytest.mark.parametrize("option, value", [
    ("--epochs", "0"), ("--epochs", "-3"), ("--learning-rate", "-1"), ("--lr", "nan"),
    ("--learning-rate", "inf"), ("--keep-checkpoints", "0"), ("--batch-size", "0"),
    ("--subset", "0"), ("--subset", "-5"), ("--early-stopping", "-1"),
    ("--momentum", "nan"), ("--momentum", "1.5"), ("--dropout", "inf"),
])
def test_train_refuses_bad_numbers_before_writing_anything(option, value, tmp_path, capsys):
    from mnist_zoo import train

    out = tmp_path / "runs"
    with pytest.raises(SystemExit) as exit_info:
        train.main([option, value, "--out", str(out), "--data-dir", str(tmp_path)])

    assert exit_info.value.code == 2
    line = one_error_line(capsys.readouterr().err)
    assert option in line and repr(value) in line
    assert not out.exists()  # no empty run folder left behind


def test_train_options_cannot_be_abbreviated(tmp_path, capsys):
    from mnist_zoo import train

    with pytest.raises(SystemExit) as exit_info:
        train.main(["--epoch", "1", "--out", str(tmp_path / "runs")])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --epoch" in one_error_line(capsys.readouterr().err)


def test_subset_above_the_data_size_warns_and_uses_all(tmp_path, capsys):
    folder = idx_folder(tmp_path / "data", n_train=24)

    digits = data_lib.load_dataset("mnist", folder, subset=1000, validation_size=4)

    assert len(digits.x_train) + len(digits.x_val) == 24
    warning = capsys.readouterr().err.strip()
    assert warning.startswith("warning: subset 1000 is more than the 24 training images")
    assert len(warning.splitlines()) == 1


def test_negative_subset_from_code_is_refused(tmp_path):
    with pytest.raises(data_lib.DataError, match="subset must be a positive"):
        data_lib.load_dataset("mnist", idx_folder(tmp_path / "data"), subset=-3)


# --------------------------------------------------------------------------- 2. data checks
@pytest.mark.parametrize("labels, found", [
    ([0, 1, 2, 10, 4, 5, 6, 7, 8, 9, 0, 1], "values 10; the first at index 3"),
    ([255] * 12, "found 12 outside that range"),
])
def test_labels_outside_0_to_9_name_the_file(labels, found, tmp_path):
    folder = idx_folder(tmp_path / "data", labels=labels)

    with pytest.raises(data_lib.DataError) as error:
        data_lib.load_dataset("mnist", folder)

    message = str(error.value)
    assert "t10k-labels-idx1-ubyte.gz" in message and "labels must be 0 to 9" in message
    assert found in message


def test_images_of_another_size_name_the_file(tmp_path):
    folder = idx_folder(tmp_path / "data", size=32)

    with pytest.raises(data_lib.DataError, match=r"train-images-idx3-ubyte.gz: images must be "
                                                 r"28x28 pixels, found 32 x 32"):
        data_lib.load_dataset("mnist", folder)


def test_empty_folder_lists_the_four_files_once(tmp_path):
    with pytest.raises(data_lib.DataError, match="holds none of the four IDX files") as error:
        data_lib.load_idx_folder(tmp_path)
    assert str(error.value).count("train-images-idx3-ubyte.gz") == 1


def test_partial_folder_says_what_it_lacks_and_what_it_has(tmp_path):
    folder = idx_folder(tmp_path / "data")
    (folder / "train-labels-idx1-ubyte.gz").unlink()

    with pytest.raises(data_lib.DataError) as error:
        data_lib.load_idx_folder(folder)

    message = str(error.value)
    assert "lacks train-labels-idx1-ubyte.gz (it has train-images-idx3-ubyte.gz" in message
    assert message.count("train-labels-idx1-ubyte.gz") == 1


def test_a_file_given_as_the_data_folder(tmp_path):
    folder = idx_folder(tmp_path / "data")

    with pytest.raises(data_lib.DataError, match="is a file, not a folder; --data-dir"):
        data_lib.load_idx_folder(folder / "t10k-labels-idx1-ubyte.gz")


def test_a_folder_where_an_idx_file_belongs(tmp_path):
    folder = idx_folder(tmp_path / "data")
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    (folder / "t10k-images-idx3-ubyte.gz").mkdir()

    with pytest.raises(data_lib.DataError, match="t10k-images-idx3-ubyte.gz is a folder, not an "
                                                 "IDX file"):
        data_lib.load_idx_folder(folder)


def test_permission_error_is_not_called_corruption(tmp_path, monkeypatch):
    """Without privileges to drop: the reader's open raises PermissionError, as for chmod 000."""
    folder = idx_folder(tmp_path / "data")

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(gzip, "open", refuse)
    with pytest.raises(data_lib.DataError) as error:
        data_lib.load_idx_folder(folder)
    assert "cannot be read (permission denied)" in str(error.value)
    assert "corrupt" not in str(error.value) and "download" not in str(error.value)


def _run_without_read_privileges(code: str, *args: str) -> subprocess.CompletedProcess:
    """Run Python `code` where chmod counts: as root, first drop the capability to ignore it."""
    command = [sys.executable, "-c", code, *args]
    if os.geteuid() == 0:
        capsh = shutil.which("capsh")
        if capsh is None:
            pytest.skip("root reads any file and capsh is not installed to drop that power")
        command = [capsh, "--drop=cap_dac_override,cap_dac_read_search", "--", "-c",
                   shlex.join(command)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[1])


LOAD_AND_REPORT = """
import sys
from mnist_zoo.data import DataError, load_idx_folder
try:
    load_idx_folder(sys.argv[1])
except DataError as err:
    print(err)
"""


@pytest.mark.parametrize("target", ["file", "folder"])
def test_unreadable_data_says_permission_denied(target, tmp_path):
    folder = idx_folder(tmp_path / "data")
    locked = folder / "train-labels-idx1-ubyte.gz" if target == "file" else folder
    locked.chmod(0)
    try:
        result = _run_without_read_privileges(LOAD_AND_REPORT, str(folder))
    finally:
        locked.chmod(0o755)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    message = result.stdout.strip()
    assert f"{locked}" in message and "cannot be read (permission denied)" in message
    assert "corrupt" not in message and "download" not in message


# --------------------------------------------------------------------------- 3. evaluate
def _tiny_model(input_shape=(28, 28, 1), classes=10):
    import keras

    inputs = keras.Input(input_shape)
    outputs = keras.layers.Dense(classes, activation="softmax")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, outputs)


def _save_tiny(folder: Path) -> Path:
    path = folder / "tiny.keras"
    _tiny_model().save(path)
    return path


@pytest.fixture(scope="module")
def zoo_misfit_models(tmp_path_factory):
    """Models for other data: 32x32 input, or 5 classes; as .keras and as SavedModel."""
    folder = tmp_path_factory.mktemp("misfits")
    paths = {}
    for name, model in (("input32", _tiny_model((32, 32, 1))),
                        ("classes5", _tiny_model(classes=5))):
        model.save(folder / f"{name}.keras")
        model.export(str(folder / f"{name}_saved"), format="tf_saved_model", verbose=False)
        paths[f"{name}.keras"] = folder / f"{name}.keras"
        paths[f"{name}_saved"] = folder / f"{name}_saved"
    return paths


@pytest.mark.parametrize("form", [".keras", "_saved"])
@pytest.mark.parametrize("misfit, message", [
    ("input32", "expects input of shape (None, 32, 32, 1), the images are (None, 28, 28, 1)"),
    ("classes5", "gives 5 class scores per image, expected 10"),
])
def test_evaluate_a_model_for_other_data(misfit, message, form, zoo_misfit_models, tmp_path,
                                         capsys):
    from mnist_zoo import evaluate

    data = idx_folder(tmp_path / "data")
    model = zoo_misfit_models[misfit + form]

    code = evaluate.main([str(model), "--data-dir", str(data), "--out", str(tmp_path / "out")])

    captured = capsys.readouterr()
    assert code == 2
    line = one_error_line(captured.err)
    assert line.startswith("error: model ") and message in line
    assert len(line) < 400  # not the tensor
    assert captured.out == ""  # no partial report
    assert not (tmp_path / "out").exists()


def test_evaluate_with_labels_out_of_range(tmp_path, capsys):
    from mnist_zoo import evaluate

    data = idx_folder(tmp_path / "data", labels=[3] * 11 + [12])

    assert evaluate.main([str(_save_tiny(tmp_path)), "--data-dir", str(data)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "t10k-labels-idx1-ubyte.gz: labels must be 0 to 9" in line


def test_evaluate_out_that_is_a_file(tmp_path, capsys):
    from mnist_zoo import evaluate

    data = idx_folder(tmp_path / "data")
    (tmp_path / "report").write_text("a file")

    assert evaluate.main([str(_save_tiny(tmp_path)), "--data-dir", str(data),
                          "--out", str(tmp_path / "report")]) == 2
    assert "report is a file; --out takes a folder" in one_error_line(capsys.readouterr().err)


def test_evaluate_refuses_a_negative_gallery_size(tmp_path, capsys):
    from mnist_zoo import evaluate

    with pytest.raises(SystemExit) as exit_info:
        evaluate.main([str(tmp_path / "model.keras"), "--gallery-size", "-1"])
    assert exit_info.value.code == 2
    assert "--gallery-size: must be 0 or more" in one_error_line(capsys.readouterr().err)


def test_a_keras_file_that_is_not_a_zip(tmp_path, capsys):
    from mnist_zoo import evaluate

    broken = tmp_path / "model.keras"
    broken.write_text("not a zip archive")

    assert evaluate.main([str(broken), "--data-dir", str(tmp_path)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "not a valid .keras file" in line and "not found" not in line


# --------------------------------------------------------------------------- 4. predict
def _digit_png(path: Path, size=(60, 60)) -> Path:
    image = Image.new("L", size, "white")
    image.paste(0, (size[0] // 3, size[1] // 5, size[0] // 2, 4 * size[1] // 5))  # a "1"
    image.save(path)
    return path


def test_predict_reports_a_decompression_bomb_and_prints_the_others(tmp_path, capsys,
                                                                    monkeypatch):
    from mnist_zoo import predict

    good = [_digit_png(tmp_path / f"digit{i}.png") for i in range(2)]
    bomb = _digit_png(tmp_path / "huge.png", size=(200, 200))
    # The same refusal as for a 14000x14000 photo, without making one.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 100)
    model = _save_tiny(tmp_path)

    code = predict.main([str(model), str(good[0]), str(bomb), str(good[1])])

    captured = capsys.readouterr()
    assert code == 1
    printed = captured.out.splitlines()
    assert [line.split(":")[0] for line in printed] == [str(good[0]), str(good[1])]
    line = one_error_line(captured.err)
    assert line.startswith(f"error: {bomb}: image too large to read safely")


def test_predict_with_a_model_for_other_images(zoo_misfit_models, tmp_path, capsys):
    from mnist_zoo import predict

    digit = _digit_png(tmp_path / "digit.png")

    assert predict.main([str(zoo_misfit_models["input32_saved"]), str(digit)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "expects input of shape (None, 32, 32, 1)" in line


def test_predict_a_folder_instead_of_an_image(tmp_path, capsys):
    from mnist_zoo import predict

    digit = _digit_png(tmp_path / "digit.png")

    assert predict.main([str(_save_tiny(tmp_path)), str(tmp_path), str(digit)]) == 1
    captured = capsys.readouterr()
    assert "is a folder, not an image file" in one_error_line(captured.err)
    assert captured.out.startswith(f"{digit}: ")


# --------------------------------------------------------------------------- 6. issue #22


@pytest.fixture(scope="module")
def few_digits():
    require_data(MNIST_8K2K)
    return data_lib.load_dataset("mnist", MNIST_8K2K, subset=300, validation_size=50)


def _train_tiny(out: Path, digits, **settings):
    from mnist_zoo.train import train

    settings = {"model": "mlp_simple", "epochs": 1, "name": "run", "verbose": 0,
                "export": False, **settings}
    return train(settings.pop("model"), data=digits, out=out, **settings)


@pytest.mark.parametrize("setting, value", [
    ("batch_size", 0), ("epochs", 0), ("learning_rate", float("nan")),
    ("learning_rate", float("inf")), ("momentum", float("nan")), ("keep_checkpoints", 0),
    ("batch_size", 2.5),
])
def test_train_from_python_checks_what_the_command_line_checks(setting, value, tmp_path):
    """Issue #22, item 7: batch_size=0 raised ZeroDivisionError, epochs=0 or a NaN rate
    saved an untrained or NaN model."""
    from mnist_zoo.train import train

    with pytest.raises(ValueError, match=f"{setting} must be .*got {value!r}"):
        train("mlp_simple", **{setting: value}, data_dir=tmp_path / "none", out=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_train_into_an_existing_run_is_refused_without_overwrite(tmp_path, few_digits, capsys):
    """Issue #22, item 11: the second train overwrote the first's model and metrics and
    left its checkpoints for a later --resume."""
    from mnist_zoo import train

    first = _train_tiny(tmp_path, few_digits, epochs=2)
    model_before = (first.run_dir / "model.keras").read_bytes()
    with pytest.raises(ValueError, match="already holds a run; pass --overwrite .*--resume"):
        _train_tiny(tmp_path, few_digits, epochs=1)
    assert (first.run_dir / "model.keras").read_bytes() == model_before
    again = _train_tiny(tmp_path, few_digits, epochs=1, overwrite=True)
    assert [p.name for p in (again.run_dir / "checkpoints").iterdir()] == ["ckpt-001.keras"]
    assert json_of(again.run_dir / "metrics.json")["epochs_run"] == 1
    # The command line says it in one line.
    code = train.main(["--model", "mlp_simple", "--epochs", "1", "--data-dir", str(MNIST_8K2K),
                       "--subset", "300", "--out", str(tmp_path), "--name", "run"])
    assert code == 2 and "--overwrite" in one_error_line(capsys.readouterr().err)


def json_of(path: Path) -> dict:
    import json

    return json.loads(path.read_text())


def test_resume_with_other_settings_is_refused(tmp_path, few_digits):
    """Issue #22, item 10: --resume of a LeNet-5 run with --model mlp_simple continued the
    LeNet-5 and recorded model: mlp_simple."""
    run = _train_tiny(tmp_path, few_digits, model="mlp_bp", keep_checkpoints=1)
    (run.run_dir / "metrics.json").unlink()  # as if it was interrupted
    with pytest.raises(ValueError, match=r"cannot resume .*run: it was started with model "
                                         r"'mlp_bp' \(now 'mlp_simple'\).*another --name"):
        _train_tiny(tmp_path, few_digits, model="mlp_simple", resume=True, epochs=2)
    with pytest.raises(ValueError, match=r"learning_rate 0.001 \(now 0.01\)"):
        _train_tiny(tmp_path, few_digits, model="mlp_bp", resume=True, epochs=2,
                    learning_rate=0.01)
    resumed = _train_tiny(tmp_path, few_digits, model="mlp_bp", resume=True, epochs=2)
    assert resumed.metrics["epochs_run"] == 2 and resumed.metrics["model"] == "mlp_bp"


@pytest.mark.parametrize("name", ["../x", "/tmp/elsewhere", ".", "a/../../x"])
def test_a_run_name_that_leads_outside_out_is_refused(name, tmp_path, capsys):
    """Issue #22, item 12: --name ../x wrote outside --out."""
    from mnist_zoo import train

    out = tmp_path / "runs"
    code = train.main(["--name", name, "--out", str(out), "--data-dir", str(tmp_path / "none")])
    assert code == 2
    assert "leads outside --out" in one_error_line(capsys.readouterr().err)
    assert not out.exists() and not (tmp_path / "x").exists()


def test_evaluate_caps_the_galleries_at_a_page(tmp_path, monkeypatch, capsys):
    """Issue #22, item 9: --gallery-size 100000 drew for 500 s and 1.8 GB."""
    from mnist_zoo import evaluate

    require_data(MNIST_8K2K)
    drawn = {}

    def plot_gallery(x, y, predicted, confidence, indices, names, path, title):
        drawn[path.stem] = len(indices)  # what would be drawn (2,000 digits: minutes)
        return path

    monkeypatch.setattr(evaluate, "plot_gallery", plot_gallery)
    assert evaluate.main([str(_save_tiny(tmp_path)), "--data-dir", str(MNIST_8K2K),
                          "--gallery-size", "100000", "--out", str(tmp_path / "report")]) == 0
    err = capsys.readouterr().err
    assert "warning: --gallery-size 100000 is more than a page shows; each gallery shows 100" in err
    assert drawn == {"misclassified": 100, "correct": 100, "samples": 100}
    metrics = json_of(tmp_path / "report" / "metrics.json")
    assert len(metrics["galleries"]["samples"]["indices"]) == 100


def test_evaluate_warns_when_the_weights_were_trained_on_other_data(tmp_path, capsys):
    """Issue #22, item 14: Fashion-MNIST weights scored 9.65 % on MNIST without a word."""
    from mnist_zoo.evaluate import evaluate

    require_data(MNIST_8K2K)
    other = evaluate("lenet5:fashion_mnist", "mnist", MNIST_8K2K, tmp_path / "a",
                     gallery_size=0, verbose=False)
    warning = capsys.readouterr().err.strip()
    assert warning == ("warning: lenet5_fashion_mnist was trained on fashion_mnist, evaluated "
                       "here on mnist; pass --dataset fashion_mnist to score it on the images "
                       "it was trained for")
    assert other["accuracy"] < 0.5
    evaluate("lenet5:mnist", "mnist", MNIST_8K2K, tmp_path / "b", gallery_size=0, verbose=False)
    assert capsys.readouterr().err == ""


def test_a_16_bit_png_reads_as_its_8_bit_copy(tmp_path):
    """Issue #22, item 13: a 16-bit grayscale PNG read "3 (54.9 %)", its 8-bit copy "9"."""
    from mnist_zoo.predict import predict, preprocess_image
    from mnist_zoo.models.saved import load_model

    require_data(MNIST_8K2K)
    images = data_lib.read_idx(MNIST_8K2K / "t10k-images-idx3-ubyte.gz")[:5]
    labels = data_lib.read_idx(MNIST_8K2K / "t10k-labels-idx1-ubyte.gz")[:5]
    paths = []
    for number, digit in enumerate(255 - images):  # dark ink on white paper, as scanned
        eight, sixteen = tmp_path / f"d{number}_8.png", tmp_path / f"d{number}_16.png"
        Image.fromarray(digit.astype(np.uint8)).save(eight)
        Image.fromarray(digit.astype(np.uint16) * 257).save(sixteen)  # 0..65535
        with Image.open(sixteen) as check:
            assert check.mode in ("I;16", "I")
        np.testing.assert_allclose(preprocess_image(sixteen), preprocess_image(eight), atol=1e-3)
        paths += [eight, sixteen]
    results = predict(load_model("lenet5:mnist"), paths)
    assert [r.digit for r in results[::2]] == [r.digit for r in results[1::2]] == list(labels)
