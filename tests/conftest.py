"""Shared fixtures; the one home of the test data's paths.

The real MNIST digits live in shared/data beside the repository (CI keeps a copy of
shared/ next to its clone in the same way), Fashion-MNIST in Debian's
/usr/share/datasets/fashion-mnist. A test that needs a folder asks `require_data` (or
the `mnist_8k2k` fixture): it skips, saying which folder is missing, where the data are
truly absent; under CI (CI or MNIST_ZOO_REQUIRE_DATA set) it fails instead, so that a
missing copy cannot pass as a green run.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MNIST_8K2K = SHARED_DATA / "mnist-8k2k"  # MNIST's 10k test digits as 8k train + 2k test
MNIST_TEST = SHARED_DATA / "mnist"  # the official 10k test set
MNIST_FULL = SHARED_DATA / "mnist-full"  # the official 60k/10k
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # apt-get install dataset-fashion-mnist


def require_data(folder: Path) -> Path:
    """folder, or a skip (a failure under CI) naming it when it is not there."""
    if not folder.is_dir():
        message = f"test data not found at {folder}"
        if os.environ.get("CI") or os.environ.get("MNIST_ZOO_REQUIRE_DATA"):
            pytest.fail(f"{message}; CI must have it (MNIST_ZOO_REQUIRE_DATA/CI is set)")
        pytest.skip(message)
    return folder


@pytest.fixture(scope="session")
def mnist_8k2k() -> Path:
    """The fast tests' digits: the folder, or a skip (failure under CI) naming it."""
    return require_data(MNIST_8K2K)


@pytest.fixture(scope="session")
def zoo_data_dir(mnist_8k2k) -> Path:
    return mnist_8k2k


@pytest.fixture(scope="session")
def zoo_mnist_test_dir() -> Path:
    return require_data(MNIST_TEST)


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


def one_line_error(capsys, argv) -> str:
    """`python -m mnist_zoo.search` with argv (in this process) must refuse with exit status
    2 and one `error:` line on stderr, no traceback; the line is returned."""
    from mnist_zoo import search as search_lib

    try:
        code = search_lib.main(argv)
    except SystemExit as stop:  # argparse's own refusal
        code = stop.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert "Traceback" not in err and len(errors) == 1, err
    return errors[0]
