"""Issue #2: data loading, the model registry, training, SavedModel export (real MNIST digits)."""

import gzip
import shutil
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from mnist_zoo import build_lenet5, build_model, list_models
from mnist_zoo import data as data_lib
from mnist_zoo.models import OPTIMIZERS
from mnist_zoo.train import train

from conftest import MNIST_8K2K, require_data  # the same digits as an 8k/2k four-file folder
from conftest import MNIST_TEST as MNIST_TEST_DIR  # the official 10,000-digit test set


@pytest.fixture(scope="module")
def digits(mnist_8k2k):
    """8,000 training / 2,000 test digits, 500 of the training ones held out for validation."""
    return data_lib.load_dataset("mnist", MNIST_8K2K, validation_size=500)


@pytest.fixture(scope="module")
def lenet_run(zoo_lenet_run):
    """LeNet-5, 3 epochs on 7,333 of the 8,000 training digits (tests/conftest.py)."""
    return zoo_lenet_run


# --------------------------------------------------------------------------- data
def test_idx_reader_reads_the_official_test_set(zoo_mnist_test_dir):
    images = data_lib.read_idx(MNIST_TEST_DIR / "t10k-images-idx3-ubyte.gz")
    labels = data_lib.read_idx(MNIST_TEST_DIR / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,)
    # The official test set's class counts (0..9).
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert labels[:5].tolist() == [7, 2, 1, 0, 4]


def test_load_dataset_splits_and_normalises(digits):
    assert digits.x_train.shape == (7500, 28, 28, 1) and digits.x_val.shape == (500, 28, 28, 1)
    assert digits.x_test.shape == (2000, 28, 28, 1)
    assert digits.x_train.dtype == np.float32
    assert 0.0 == digits.x_train.min() and digits.x_train.max() == 1.0
    assert digits.one_hot(digits.y_test[:3]).shape == (3, 10)
    # The default split is the lab's 5,000 of 60,000, i.e. 1/12, seeded and disjoint.
    default = data_lib.load_dataset("mnist", MNIST_8K2K, seed=3)
    again = data_lib.load_dataset("mnist", MNIST_8K2K, seed=3)
    assert len(default.x_val) == round(8000 / 12)
    np.testing.assert_array_equal(default.y_val, again.y_val)
    train_rows = {row.tobytes() for row in default.x_train[:, :, :, 0]}
    assert not any(row.tobytes() in train_rows for row in default.x_val[:50, :, :, 0])


def test_standard_normalisation_and_subset(mnist_8k2k):
    ds = data_lib.load_dataset("mnist", MNIST_8K2K, normalize="standard", subset=1200)
    assert len(ds.x_train) + len(ds.x_val) == 1200
    assert abs(float(ds.x_train.mean())) < 1e-3 and abs(float(ds.x_train.std()) - 1) < 1e-3


def test_environment_variable_points_to_the_folder(monkeypatch, mnist_8k2k):
    monkeypatch.setenv(data_lib.DATA_DIR_ENV, str(MNIST_8K2K))
    ds = data_lib.load_dataset("mnist", subset=600)
    assert ds.source == str(MNIST_8K2K) and len(ds.x_test) == 2000


def test_truncated_idx_file_is_named_in_the_error(tmp_path, mnist_8k2k):
    folder = tmp_path / "broken"
    shutil.copytree(MNIST_8K2K, folder)
    images = folder / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(images.read_bytes())
    images.write_bytes(gzip.compress(raw[: len(raw) // 2]))  # a valid gzip of half a file
    with pytest.raises(data_lib.DataError, match="train-images-idx3-ubyte.gz.*truncated"):
        data_lib.load_dataset("mnist", folder)
    images.write_bytes(raw[:1000])  # a cut gzip stream, not even gzip anymore
    with pytest.raises(data_lib.DataError, match="train-images-idx3-ubyte.gz"):
        data_lib.load_dataset("mnist", folder)


def test_bad_magic_and_mismatched_counts(tmp_path, mnist_8k2k):
    bad = tmp_path / "t10k-labels-idx1-ubyte"
    bad.write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(data_lib.DataError, match="magic number"):
        data_lib.read_idx(bad)
    folder = tmp_path / "mismatch"
    shutil.copytree(MNIST_8K2K, folder)
    shutil.copy(MNIST_TEST_DIR / "t10k-labels-idx1-ubyte.gz", folder)  # 10,000 labels, 2,000 images
    with pytest.raises(data_lib.DataError, match="2000 test images but 10000 labels"):
        data_lib.load_dataset("mnist", folder)


def test_missing_data_gives_one_clear_error(tmp_path, monkeypatch):
    with pytest.raises(data_lib.DataError, match="does not exist.*MNIST_ZOO_DATA_DIR"):
        data_lib.load_dataset("mnist", tmp_path / "nowhere")
    with pytest.raises(data_lib.DataError, match="lacks train-images-idx3-ubyte.gz"):
        data_lib.load_dataset("mnist", MNIST_TEST_DIR)  # only the two test files

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.delenv(data_lib.DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(data_lib.DataError, match="--data-dir.*MNIST_ZOO_DATA_DIR.*t10k-labels"):
        data_lib.load_dataset("mnist")


def test_fashion_mnist_comes_from_the_debian_folder():
    require_data(data_lib.DEBIAN_FASHION_DIR)  # Debian's dataset-fashion-mnist
    ds = data_lib.load_dataset("fashion_mnist")
    assert ds.source == str(data_lib.DEBIAN_FASHION_DIR)
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (55000, 5000, 10000)
    assert ds.class_names[9] == "Ankle boot"


def test_augmentation_changes_training_batches_only(digits):
    x, y = digits.x_train[:64], digits.y_train[:64]
    plain = next(iter(data_lib.make_batches(x, y, 64)))[0].numpy()
    augmented = next(iter(data_lib.make_batches(x, y, 64, augment="all", seed=1)))[0].numpy()
    assert augmented.shape == plain.shape == (64, 28, 28, 1)
    assert np.abs(augmented - plain).mean() > 0.01
    np.testing.assert_array_equal(plain, x)
    assert data_lib.parse_augment("rotate+zoom") == ("rotate", "zoom")
    with pytest.raises(ValueError, match="unknown augmentation.*rotate"):
        data_lib.parse_augment("spin")


def test_flip_mirrors_about_half_the_images_and_is_not_in_all(digits):
    """Fashion-MNIST's horizontal flip: each image left as it is or mirrored left-right,
    both often; "all" (the digits' presets) leaves it out, a mirrored digit being no digit."""
    x, y = digits.x_train[:64], digits.y_train[:64]
    flipped = next(iter(data_lib.make_batches(x, y, 64, augment="flip", seed=1)))[0].numpy()
    mirrored = np.array([np.array_equal(f, image[:, ::-1]) for f, image in zip(flipped, x)])
    kept = np.array([np.array_equal(f, image) for f, image in zip(flipped, x)])
    assert (mirrored | kept).all()
    assert mirrored.sum() >= 16 and kept.sum() >= 16  # p = 1/2 each: 16 of 64 is 4 sd off
    assert "flip" not in data_lib.parse_augment("all")
    assert data_lib.parse_augment("crop+flip") == ("crop", "flip")


# --------------------------------------------------------------------------- models
@pytest.mark.parametrize("name", list_models())
def test_every_model_builds_and_trains_a_few_steps(name, digits):
    model = build_model(name, activation="tanh", optimizer="adam", learning_rate=1e-3)
    before = model.evaluate(digits.x_val, digits.y_val, verbose=0, return_dict=True)["loss"]
    model.fit(digits.x_train[:1024], digits.y_train[:1024], batch_size=64, epochs=1, verbose=0)
    after = model.evaluate(digits.x_val, digits.y_val, verbose=0, return_dict=True)
    assert np.isfinite(after["loss"]) and after["loss"] < before
    assert model.predict(digits.x_test[:5], verbose=0).shape == (5, 10)


def test_registry_lists_the_zoo_and_rejects_unknowns():
    assert set(list_models()) == {"lenet5", "mlp_bp", "mlp_simple", "mlp_medium",
                                  "mlp_complex", "mlp_residual", "cnn3", "cnn_bn"}
    with pytest.raises(ValueError, match="unknown model 'lenet6'.*lenet5"):
        build_model("lenet6")
    with pytest.raises(ValueError, match="unknown activation 'relu6'"):
        build_model("mlp_bp", activation="relu6")
    with pytest.raises(ValueError, match="does not take \\['pooling'\\]"):
        build_model("mlp_bp", pooling="max")


def test_architectures_match_their_descriptions():
    lenet = build_lenet5(activation="relu", pooling="max")
    shapes = [layer.output.shape[1:] for layer in lenet.layers if layer.weights]
    assert shapes == [(28, 28, 6), (10, 10, 16), (120,), (84,), (10,)]
    assert build_model("mlp_bp").count_params() == 784 * 128 + 128 + 128 * 10 + 10
    residual = build_model("mlp_residual")
    assert residual.get_layer("skip_projection").kernel.shape == (100, 66)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("learning_rate", [0.1, 0.0003])
def test_learning_rate_reaches_the_optimizer(optimizer, learning_rate):
    model = build_model("mlp_bp", optimizer=optimizer, learning_rate=learning_rate)
    assert type(model.optimizer).__name__.lower() == optimizer
    assert float(model.optimizer.learning_rate) == pytest.approx(learning_rate)


def test_learning_rate_changes_the_update(digits):
    """Same seed, same batch: a 10x rate must move the weights ~10x as far with SGD."""
    steps = []
    for rate in (0.01, 0.1):
        keras.utils.set_random_seed(0)
        model = build_model("mlp_bp", optimizer="sgd", learning_rate=rate)
        start = model.get_weights()[0].copy()
        model.train_on_batch(digits.x_train[:128], digits.y_train[:128])
        steps.append(np.abs(model.get_weights()[0] - start).sum())
    assert steps[1] / steps[0] == pytest.approx(10, rel=1e-3)


def test_schedules_start_at_the_asked_rate():
    for schedule in ("exponential", "cosine"):
        model = build_model("mlp_bp", optimizer="sgd", learning_rate=0.05,
                            lr_schedule=schedule, decay_steps=100)
        assert float(model.optimizer.learning_rate) == pytest.approx(0.05)


# --------------------------------------------------------------------------- training
def test_lenet5_scores_95_percent_on_held_out_digits(lenet_run):
    metrics = lenet_run.metrics
    assert metrics["test"]["accuracy"] >= 0.95, metrics["test"]["accuracy"]
    assert metrics["epochs_run"] == 3 and metrics["train_images"] == 7333
    report = metrics["test"]["per_class"]
    assert set(report) == {str(d) for d in range(10)}
    assert all(0.8 < row["f1-score"] <= 1 for row in report.values())
    assert np.sum(metrics["test"]["confusion_matrix"]) == 2000


def test_run_folder_holds_history_checkpoints_and_models(lenet_run):
    run_dir = lenet_run.run_dir
    history = pd.read_csv(run_dir / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.columns)
    # keep_checkpoints defaults to 2: the oldest of three is gone.
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == \
        ["ckpt-002.keras", "ckpt-003.keras"]
    assert (run_dir / "metrics.json").is_file() and (run_dir / "model.keras").is_file()


def test_saved_model_serves_the_same_predictions(lenet_run, digits):
    served = tf.saved_model.load(str(lenet_run.run_dir / "saved_model"))
    images = digits.x_test[:256]
    expected = lenet_run.model.predict(images, verbose=0)
    np.testing.assert_allclose(served.serve(images).numpy(), expected, atol=1e-5)
    reloaded = keras.models.load_model(lenet_run.run_dir / "model.keras")
    np.testing.assert_allclose(reloaded.predict(images, verbose=0), expected, atol=1e-5)


def test_resume_continues_from_the_saved_epoch(digits, tmp_path, capsys):
    small = data_lib.DigitData(digits.x_train[:1000], digits.y_train[:1000], digits.x_val,
                               digits.y_val, digits.x_test, digits.y_test, "mnist", "test",
                               digits.class_names)
    settings = dict(data=small, out=tmp_path, name="run", verbose=0, export=False,
                    keep_checkpoints=1)
    first = train("mlp_bp", epochs=1, **settings)
    assert [p.name for p in (first.run_dir / "checkpoints").iterdir()] == ["ckpt-001.keras"]
    weights_after_one = first.model.get_weights()
    resumed = train("mlp_bp", epochs=3, resume=True, **settings)
    assert "resuming run from ckpt-001.keras (epoch 1)" in capsys.readouterr().out
    assert resumed.metrics["epochs_run"] == 3 and len(resumed.history["loss"]) == 2
    history = pd.read_csv(resumed.run_dir / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2]
    # keep_checkpoints=1: only the newest survives.
    assert [p.name for p in (resumed.run_dir / "checkpoints").iterdir()] == ["ckpt-003.keras"]
    # The resumed optimizer continued: its step counter counts all three epochs.
    assert int(resumed.model.optimizer.iterations) == 3 * int(np.ceil(1000 / 64))
    assert not np.allclose(resumed.model.get_weights()[0], weights_after_one[0])


def test_initial_weights_start_from_a_saved_model(lenet_run, digits, tmp_path):
    started = train("lenet5", epochs=1, learning_rate=1e-9, data=digits, out=tmp_path,
                    initial_weights=lenet_run.run_dir / "model.keras", verbose=0, export=False)
    # With a negligible rate the model stays the trained one.
    assert started.metrics["test"]["accuracy"] == pytest.approx(
        lenet_run.metrics["test"]["accuracy"], abs=0.005)


# --------------------------------------------------------------------------- command line
def _run_cli(*args):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                          timeout=300)


def _train_cli_in_process(capsys, *args) -> tuple[int, str, str]:
    """`python -m mnist_zoo.train ARGS` in this process (a new one costs ~7 s): the exit
    status (argparse's SystemExit included), stdout, stderr."""
    from mnist_zoo.train._command import main

    try:
        code = main(list(args))
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_cli_help_and_bad_input(tmp_path, capsys):
    code, help_text, _ = _train_cli_in_process(capsys, "--help")
    assert code == 0
    for option in ("--model", "--activation", "--optimizer", "--learning-rate", "--batch-size",
                   "--epochs", "--lr-schedule", "--augment", "--data-dir", "--early-stopping",
                   "--keep-checkpoints", "--resume", "--initial-weights"):
        assert option in help_text
    code, _, err = _train_cli_in_process(capsys, "--data-dir", str(tmp_path / "none"))
    assert code == 2 and "MNIST_ZOO_DATA_DIR" in err
    code, _, err = _train_cli_in_process(capsys, "--model", "lenet6")
    assert code == 2 and err == ("error: unknown model 'lenet6'; choose from cnn3, cnn_bn, "
                                 "lenet5, mlp_bp, mlp_complex, mlp_medium, mlp_residual, "
                                 "mlp_simple\n")


@pytest.mark.slow  # a TensorFlow process of its own that trains and exports
def test_train_cli_writes_a_run(tmp_path, mnist_8k2k):
    result = _run_cli("mnist_zoo.train", "--model", "mlp_residual", "--epochs", "1",
                      "--data-dir", str(MNIST_8K2K), "--subset", "2000", "--augment", "rotate",
                      "--lr-schedule", "cosine", "--out", str(tmp_path), "--name", "cli")
    assert result.returncode == 0, result.stderr
    assert "test accuracy" in result.stdout
    served = tf.saved_model.load(str(tmp_path / "cli" / "saved_model"))
    probabilities = served.serve(np.zeros((2, 28, 28, 1), np.float32)).numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
