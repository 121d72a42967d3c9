"""Pretrained weights shipped with the package: mnist_zoo/weights/<model>_<dataset>.*

Each `.weights.h5` file has a JSON sidecar with the recipe and seed that trained it, the
architecture settings it needs (activation, pooling, dropout) and the test accuracy of
that very file. `build_model("lenet5", weights="mnist")` goes through here.
"""

from __future__ import annotations

import json
from pathlib import Path

WEIGHTS_DIR = Path(__file__).with_name("weights")
# Builder settings that change what the weights compute; they must match at load time.
ARCHITECTURE = ("activation", "pooling", "dropout")


def weights_path(model: str, dataset: str, folder: Path = WEIGHTS_DIR) -> Path:
    return folder / f"{model}_{dataset}.weights.h5"


def list_weights(folder: Path = WEIGHTS_DIR) -> dict[str, dict]:
    """{'lenet5:mnist': sidecar dict, ...} for every shipped weights file."""
    found = {}
    for sidecar in sorted(folder.glob("*.json")):
        entry = json.loads(sidecar.read_text())
        if weights_path(entry["model"], entry["dataset"], folder).is_file():
            found[f"{entry['model']}:{entry['dataset']}"] = entry
    return found


def get_weights(model: str, dataset: str, folder: Path = WEIGHTS_DIR) -> tuple[Path, dict]:
    """The weights file and sidecar of `model` trained on `dataset`, or a one-line ValueError."""
    found = list_weights(folder)
    key = f"{model}:{dataset}"
    if key not in found:
        listing = ", ".join(found) or "none"
        raise ValueError(f"no pretrained weights {dataset!r} for model {model!r}; "
                         f"shipped weights: {listing}")
    return weights_path(model, dataset, folder), found[key]


def save_weights(net, *, model: str, dataset: str, recipe: str, seed: int, settings: dict,
                 metrics: dict, folder: Path = WEIGHTS_DIR) -> Path:
    """Write `net`'s weights and their sidecar; the stated accuracy is `metrics`' test score."""
    from mnist_zoo.models import build_model

    folder.mkdir(parents=True, exist_ok=True)
    path = weights_path(model, dataset, folder)
    architecture = {key: settings[key] for key in ARCHITECTURE if key in settings}
    # A compiled model's save_weights also writes the optimizer's state (Adam: two more
    # copies of every weight), and keras.models.clone_model compiles its clone alike; an
    # uncompiled twin writes the weights alone, a third of the size.
    bare = build_model(model, compile=False, **architecture)
    bare.set_weights(net.get_weights())
    bare.save_weights(path)
    entry = {
        "model": model, "dataset": dataset, "recipe": recipe, "seed": seed,
        "settings": architecture,
        "test_accuracy": metrics["test"]["accuracy"],
        "val_accuracy": metrics["val"]["accuracy"] if metrics.get("val") else None,
        "params": metrics["params"], "bytes": path.stat().st_size,
    }
    path.with_name(f"{model}_{dataset}.json").write_text(json.dumps(entry, indent=2) + "\n")
    return path
