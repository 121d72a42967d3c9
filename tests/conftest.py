"""Shared fixtures of the plot, evaluate and predict tests (all named zoo_*).

The real MNIST digits live in shared/data beside the repository (CI keeps a copy of
shared/ next to its clone in the same way).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MNIST_8K2K = SHARED_DATA / "mnist-8k2k"  # MNIST's 10k test digits as 8k train + 2k test
MNIST_TEST = SHARED_DATA / "mnist"  # the official 10k test set


def _require(folder: Path) -> Path:
    if not folder.is_dir():
        pytest.skip(f"real MNIST data not found at {folder}")
    return folder


@pytest.fixture(scope="session")
def zoo_data_dir() -> Path:
    return _require(MNIST_8K2K)


@pytest.fixture(scope="session")
def zoo_mnist_test_dir() -> Path:
    return _require(MNIST_TEST)


@pytest.fixture(scope="session")
def zoo_digits(zoo_data_dir):
    """mnist-8k2k loaded once: 7,333 train, 667 validation and 2,000 test digits."""
    from mnist_zoo.data import load_dataset

    return load_dataset("mnist", zoo_data_dir)


@pytest.fixture(scope="session")
def zoo_lenet_run(zoo_digits, tmp_path_factory):
    """A LeNet-5 trained for 3 epochs (about 10 s on 2 cores), saved as .keras and SavedModel."""
    from mnist_zoo.train import train

    out = tmp_path_factory.mktemp("zoo_runs")
    return train("lenet5", activation="relu", optimizer="adam", learning_rate=1e-3,
                 batch_size=32, epochs=3, data=zoo_digits, out=out, name="lenet5",
                 verbose=0, export=True)


@pytest.fixture(scope="session")
def zoo_check_image():
    """Assert a chart file is a real picture: opens, sensible size, not blank."""

    def check(path: Path, min_size=(300, 200), max_size=(8000, 20000)) -> Image.Image:
        with Image.open(path) as image:
            image.load()
            width, height = image.size
            assert min_size[0] <= width <= max_size[0], f"{path.name}: width {width}"
            assert min_size[1] <= height <= max_size[1], f"{path.name}: height {height}"
            grey = np.asarray(image.convert("L"), dtype=float)
        assert grey.std() > 5, f"{path.name} is blank"
        assert (grey < 200).mean() > 0.005, f"{path.name} has almost nothing drawn"
        return image

    return check


@pytest.fixture
def lab_csv(tmp_path):
    """The old lab report's format: five columns, title-case names, no status."""
    path = tmp_path / "lab_results.csv"
    lines = ["Activation,Learning Rate,Optimizer,Batch Size,Validation Accuracy"]
    for number, (act, lr, opt, bs) in enumerate(itertools.product(
            ["relu", "sigmoid"], [0.01, 0.001], ["SGD", "Adam"], [32, 128])):
        accuracy = 0.11 if (act, opt, lr) == ("sigmoid", "SGD", 0.001) else 0.9 + number / 500
        lines.append(f"{act},{lr},{opt},{bs},{accuracy}")
    path.write_text("\n".join(lines) + "\n")
    return path
