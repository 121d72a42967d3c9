"""keras-tuner's private API, which mnist_zoo.search._keras_tuner alone uses, is where the
search expects it; setup.cfg pins keras-tuner to the minor version this was tested with.
When this fails after an upgrade, mnist_zoo/search/_keras_tuner.py is the file to fix."""

from __future__ import annotations

import configparser
from pathlib import Path

import keras_tuner as kt

from mnist_zoo.search import _keras_tuner


def test_every_private_name_the_search_uses_exists():
    assert _keras_tuner.missing_private_names() == [], (
        f"keras-tuner {kt.__version__} moved its private API; fix mnist_zoo/search/_keras_tuner.py")


def test_the_installed_keras_tuner_is_within_the_pin():
    setup = configparser.ConfigParser()
    setup.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    pin = next(line.strip() for line in setup["options"]["install_requires"].splitlines()
               if line.strip().startswith("keras-tuner"))
    assert pin == "keras-tuner>=1.4.8,<1.5"
    major, minor, patch = (int(part) for part in kt.__version__.split(".")[:3])
    assert (1, 4, 8) <= (major, minor, patch) < (1, 5, 0)


def test_no_other_module_touches_the_private_api():
    package = Path(_keras_tuner.__file__).resolve().parents[1]
    users = sorted(str(path.relative_to(package)) for path in package.rglob("*.py")
                   if "keras_tuner.src" in path.read_text() and path.name != "_keras_tuner.py")
    assert users == []
