"""tools/model_zoo.py's bookkeeping: promoting a variant to the recipe (no training here:
the runs CSV is a copy, and the step that ships weights is replaced by a recorder)."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def zoo_tool(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("model_zoo_tool", ROOT / "tools" / "model_zoo.py")
    tool = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "model_zoo_tool", tool)
    spec.loader.exec_module(tool)
    monkeypatch.setattr(tool, "RUNS_CSV", tmp_path / "runs.csv")
    monkeypatch.setattr(tool, "LOCK", tmp_path / "runs.lock")
    return tool


RECIPES = """\
[cnn_bn.mnist]
learning_rate = 2e-3    # batch normalisation tolerates a higher rate
epochs = 8
augment = "all"

[cnn_bn.fashion_mnist]
epochs = 10
augment = "crop"        # shifts only: garments are upright
                        # and sized alike
dropout = 0.25
"""


def test_set_recipe_keys_rewrites_only_that_table(zoo_tool, tmp_path):
    import tomllib

    path = tmp_path / "recipes.toml"
    path.write_text(RECIPES)
    zoo_tool.set_recipe_keys("cnn_bn/fashion_mnist", {"augment": "crop+flip", "epochs": 16},
                             "chosen on validation", path=path)
    tables = tomllib.loads(path.read_text())
    assert tables["cnn_bn"]["fashion_mnist"] == {"epochs": 16, "augment": "crop+flip",
                                                 "dropout": 0.25}
    assert tables["cnn_bn"]["mnist"] == {"learning_rate": 2e-3, "epochs": 8, "augment": "all"}
    text = path.read_text()
    assert "sized alike" not in text  # the old comment's continuation went with its line
    assert text.count("chosen on validation") == 2
    assert "tolerates a higher rate" in text


def _row(variant, seed, val, test, weights=""):
    return {"recipe": "cnn_bn/mnist", "model": "cnn_bn", "dataset": "mnist", "variant": variant,
            "augment": "all", "seed": seed, "epochs": 16 if variant != "recipe" else 8,
            "test_accuracy": test, "val_accuracy": val, "train_accuracy": "0.99",
            "weights_file": weights}


def test_promote_swaps_the_rows_and_run_folders(zoo_tool, tmp_path, monkeypatch):
    from mnist_zoo.train.recipes import get_recipe

    old = f"epochs={get_recipe('cnn_bn/mnist')['epochs']}"  # the recipe's setting today
    runs = [_row("recipe", s, "0.9938", "0.9960", "cnn_bn_mnist.weights.h5" if s == 0 else "")
            for s in (0, 1, 2)]
    runs += [_row("epochs=24", s, "0.9946", "0.9967") for s in (0, 1, 2)]
    runs.append({**_row("recipe", 0, "0.99", "0.99"), "recipe": "lenet5/mnist"})
    zoo_tool._write_runs(runs, zoo_tool.RUNS_CSV)
    out = tmp_path / "zoo_runs"
    for variant in ("recipe", "epochs=24"):
        folder = out / zoo_tool._run_folder("cnn_bn/mnist", variant, 0)
        folder.mkdir(parents=True)
        (folder / "which").write_text(variant)
    edits, shipped = [], []
    monkeypatch.setattr(zoo_tool, "set_recipe_keys",
                        lambda recipe, overrides, why: edits.append((recipe, overrides, why)))
    monkeypatch.setattr(zoo_tool, "ship", lambda recipes, out, mnist_dir: shipped.extend(recipes))

    zoo_tool.promote("cnn_bn/mnist", "epochs=24", out, tmp_path)

    with open(zoo_tool.RUNS_CSV, newline="") as handle:
        rows = list(csv.DictReader(handle))
    bn = {(r["variant"], r["seed"]): r for r in rows if r["recipe"] == "cnn_bn/mnist"}
    assert sorted(bn) == [(old, "0"), (old, "1"), (old, "2"),
                          ("recipe", "0"), ("recipe", "1"), ("recipe", "2")]
    assert bn[("recipe", "0")]["test_accuracy"] == "0.9967"
    assert bn[(old, "0")]["weights_file"] == ""  # that file is shipped anew
    assert [r["variant"] for r in rows if r["recipe"] == "lenet5/mnist"] == ["recipe"]
    assert (out / "cnn_bn_mnist_recipe_seed0" / "which").read_text() == "epochs=24"
    assert (out / zoo_tool._run_folder("cnn_bn/mnist", old, 0) / "which").read_text() == "recipe"
    assert edits == [("cnn_bn/mnist", {"epochs": 24},
                      f"chosen on validation, seed 0: 99.46 % against 99.38 % with {old}")]
    assert shipped == ["cnn_bn/mnist"]


def test_promote_refuses_a_variant_short_of_three_seeds(zoo_tool, tmp_path):
    zoo_tool._write_runs([_row("recipe", 0, "0.99", "0.99"), _row("epochs=16", 0, "0.99", "0.99")],
                         zoo_tool.RUNS_CSV)
    with pytest.raises(SystemExit, match="promote needs 0, 1 and 2"):
        zoo_tool.promote("cnn_bn/mnist", "epochs=16", tmp_path, tmp_path)


def test_card_leaves_out_a_speed_timed_with_other_settings(zoo_tool):
    runs = [{**_row("recipe", str(s), "0.99", "0.99"), "recipe": "lenet5/mnist", "model": "lenet5",
             "params": "61706", "weights_dtype": "", "shipped_test_accuracy": ""}
            for s in (0, 1, 2)]
    timed = {"recipe": "lenet5/mnist", "batch_size": "64", "augment": "all",
             "train_seconds_per_epoch": "19.04", "inference_images_per_second": "9335",
             "cpu": "AMD EPYC", "cores": "2", "tensorflow": "2.21.0", "kernels": "",
             "date": "2026-12-01", "load_average": "0.48", "timed_batches": "128"}
    assert "| 19.0 | 9,335 |" in zoo_tool.results_table(runs, [timed])
    stale = zoo_tool.results_table(runs, [{**timed, "augment": "none"}])
    assert "19.0" not in stale and "| — | — |" in stale
