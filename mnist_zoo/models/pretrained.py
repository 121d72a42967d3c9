"""Pretrained weights shipped with the package: mnist_zoo/models/weights/<model>_<dataset>.*

Each `.weights.h5` file has a JSON sidecar with the recipe and seed that trained it, the
architecture settings it needs (activation, pooling, dropout), how it is stored (`dtype`:
files that would pass 1 MiB as float32, the large MLPs, hold float16 arrays, which Keras'
load_weights casts back to the model's float32) and the test accuracy of that very file
as loaded, on the whole test set and on a seeded 2,000-image sample (`test_subset`). This module finds weight files and checks settings against them; it
imports no builder (like timm's _pretrained), so the registry imports it and never the
other way round. `build_model("lenet5", weights="mnist")` goes through here; the files
are written by tools/model_zoo.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from mnist_zoo.errors import SettingsError

WEIGHTS_DIR = Path(__file__).with_name("weights")
# Builder settings that change what the weights compute; they must match at load time.
ARCHITECTURE = ("activation", "pooling", "dropout")


def weights_path(model: str, dataset: str, folder: Path = WEIGHTS_DIR) -> Path:
    return folder / f"{model}_{dataset}.weights.h5"


def sidecar_path(model: str, dataset: str, folder: Path = WEIGHTS_DIR) -> Path:
    return folder / f"{model}_{dataset}.json"


def list_weights(folder: Path = WEIGHTS_DIR) -> dict[str, dict]:
    """{'lenet5:mnist': sidecar dict, ...} for every shipped weights file."""
    found = {}
    for sidecar in sorted(folder.glob("*.json")):
        entry = json.loads(sidecar.read_text())
        if weights_path(entry["model"], entry["dataset"], folder).is_file():
            found[f"{entry['model']}:{entry['dataset']}"] = entry
    return found


def get_weights(model: str, dataset: str, folder: Path = WEIGHTS_DIR) -> tuple[Path, dict]:
    """The weights file and sidecar of `model` trained on `dataset`, or a one-line
    SettingsError listing the shipped ones."""
    found = list_weights(folder)
    key = f"{model}:{dataset}"
    if key not in found:
        listing = ", ".join(found) or "none"
        raise SettingsError(f"no pretrained weights {dataset!r} for model {model!r}; "
                            f"shipped weights: {listing}")
    return weights_path(model, dataset, folder), found[key]


def settings_for(model: str, dataset: str, settings: dict) -> tuple[Path, dict]:
    """The weights file of (model, dataset) and the builder settings it needs: the ones it
    was trained with, under `settings`; a SettingsError where they clash."""
    path, entry = get_weights(model, dataset)
    trained_with = entry["settings"]
    # Dropout only acts in training, so any rate suits the weights (for fine-tuning).
    clashes = {key: value for key, value in settings.items()
               if key in trained_with and key != "dropout" and value != trained_with[key]}
    if clashes:
        raise SettingsError(f"weights {model}:{dataset} were trained with {trained_with}; "
                            f"they cannot be loaded into {clashes}")
    return path, {**trained_with, **settings}
