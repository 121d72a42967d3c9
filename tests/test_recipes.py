"""Reference recipes (mnist_zoo/train/recipes.toml) and `python -m mnist_zoo.train --recipe`."""

from __future__ import annotations

import json

import pytest

from mnist_zoo import train as train_lib
from mnist_zoo.train import _command as train_command
from mnist_zoo.train import recipes
from mnist_zoo.data import DATASETS, parse_augment
from mnist_zoo.models import list_models, model_settings


def test_every_model_has_a_recipe_per_dataset_and_every_recipe_is_valid():
    names = recipes.list_recipes()
    assert names == sorted(f"{m}/{d}" for m in list_models() for d in DATASETS)
    for name in names:
        settings = recipes.recipe_settings(name)
        parse_augment(settings["augment"])  # raises on an unknown augmentation
        builder_keys = {"activation", "dropout", "pooling"} & set(settings)
        assert builder_keys <= set(model_settings(settings["model"])), name
        assert settings["epochs"] > 0 and settings["batch_size"] > 0


def test_unknown_recipe_names_the_known_ones(capsys):
    with pytest.raises(recipes.RecipeError, match="known recipes: .*lenet5/mnist"):
        recipes.get_recipe("lenet5/kmnist")
    assert train_lib.main(["--recipe", "lenet5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown recipe 'lenet5'") and err.count("\n") == 1


def test_recipe_reaches_train_and_flags_override_it(monkeypatch):
    seen = {}
    monkeypatch.setattr(train_command, "train", lambda model, **kwargs: seen.update(model=model,
                                                                                **kwargs))
    assert train_lib.main(["--recipe", "lenet5/mnist", "--epochs", "1", "--lr", "0.01"]) == 0
    recipe = recipes.get_recipe("lenet5/mnist")
    assert seen["model"] == "lenet5" and seen["dataset"] == "mnist"
    assert seen["epochs"] == 1 and seen["learning_rate"] == 0.01  # given on the command line
    for key in ("batch_size", "augment", "lr_schedule", "pooling", "activation", "dropout"):
        assert seen[key] == recipe[key], key


def test_list_recipes(capsys):
    """Every zoo model has a recipe for each dataset, listed by name (#30: the expectation
    was list_recipes() itself)."""
    assert train_lib.main(["--list-recipes"]) == 0
    models = ["cnn3", "cnn_bn", "lenet5", "mlp_bp", "mlp_complex", "mlp_medium",
              "mlp_residual", "mlp_simple"]
    assert capsys.readouterr().out.split() == [f"{model}/{dataset}" for model in models
                                               for dataset in ("fashion_mnist", "mnist")]


@pytest.mark.slow
def test_recipe_trains_for_real(zoo_data_dir, tmp_path):
    args = ["--recipe", "lenet5/mnist", "--epochs", "1", "--subset", "500",
            "--data-dir", str(zoo_data_dir), "--out", str(tmp_path), "--name", "r",
            "--no-export"]
    assert train_lib.main(args) == 0
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    recipe = recipes.get_recipe("lenet5/mnist")
    assert metrics["epochs_run"] == 1 and metrics["train_images"] < 500
    assert metrics["batch_size"] == recipe["batch_size"]
    assert metrics["learning_rate"] == recipe["learning_rate"]
