"""Model files that cannot be used give one line naming the problem and the fix (#29 items
4 and 10): `train --initial-weights` with a missing, truncated, other-architecture or
Lambda file, and `evaluate` on a model with an unregistered custom function."""

from __future__ import annotations

import keras
import pytest

from mnist_zoo.models import build_model
from mnist_zoo.train import main as train_main
from mnist_zoo.evaluate import main as evaluate_main


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_weights")
    build_model("lenet5", compile=False).save(folder / "lenet5.keras")
    other = build_model("mlp_simple", compile=False)
    other.save(folder / "mlp.keras")
    other.save_weights(folder / "mlp.weights.h5")
    whole = (folder / "lenet5.keras").read_bytes()
    (folder / "truncated.keras").write_bytes(whole[:len(whole) // 3])
    images = keras.Input((28, 28, 1))
    flat = keras.layers.Lambda(lambda t: keras.ops.reshape(t, (-1, 784)))(images)
    keras.Model(images, keras.layers.Dense(10, activation="softmax")(flat)) \
        .save(folder / "lambda.keras")
    return folder


def _train_error(out, weights, data_dir, capsys) -> str:
    # A run folder of its own: a refused run may leave one behind (#29 item 3).
    status = train_main(["--model", "lenet5", "--epochs", "1", "--subset", "64",
                         "--data-dir", str(data_dir), "--out", str(out),
                         "--initial-weights", str(weights)])
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize("name, problem", [
    ("missing.keras", "does not exist"),
    ("truncated.keras", "not a valid .keras file"),
    ("mlp.keras", "another architecture"),
    ("mlp.weights.h5", "another architecture"),
    ("lambda.keras", "Lambda layer"),
])
def test_a_bad_initial_weights_file_is_one_line(bad_files, mnist_8k2k, tmp_path, capsys,
                                                 name, problem):
    line = _train_error(tmp_path, bad_files / name, mnist_8k2k, capsys)
    assert problem in line and "File not found" not in line
    assert "saved from the same --model" in line  # the fix


def test_good_initial_weights_still_load(bad_files, mnist_8k2k, tmp_path, capsys):
    status = train_main(["--model", "lenet5", "--epochs", "1", "--subset", "64",
                         "--data-dir", str(mnist_8k2k), "--out", str(tmp_path),
                         "--initial-weights",
                         str(bad_files / "lenet5.keras")])
    assert status == 0, capsys.readouterr().err


def test_an_unregistered_custom_function_is_one_line(tmp_path, mnist_8k2k, capsys):
    @keras.saving.register_keras_serializable(package="test_load_errors")
    def doubled_relu(t):
        return 2 * keras.activations.relu(t)

    images = keras.Input((28, 28, 1))
    hidden = keras.layers.Dense(8, activation=doubled_relu)(keras.layers.Flatten()(images))
    keras.Model(images, keras.layers.Dense(10, activation="softmax")(hidden)) \
        .save(tmp_path / "custom.keras")
    # As in a new process that never imported the module defining it.
    keras.saving.get_custom_objects().pop("test_load_errors>doubled_relu")
    status = evaluate_main([str(tmp_path / "custom.keras"), "--data-dir", str(mnist_8k2k),
                            "--out", str(tmp_path / "eval")])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert err.count("\n") == 0 and err.startswith("error: "), err
    assert "'test_load_errors>doubled_relu'" in err and "register_keras_serializable" in err
    assert "config" not in err
