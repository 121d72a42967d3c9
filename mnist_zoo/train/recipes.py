"""Reference recipes: the settings that train each zoo model on each dataset.

They live in recipes.toml beside this file (shipped with the package), one table per
model and dataset, named "model/dataset":

    >>> from mnist_zoo.train.recipes import get_recipe, list_recipes
    >>> list_recipes()[:2]
    ['cnn3/fashion_mnist', 'cnn3/mnist']
    >>> get_recipe("lenet5/mnist")["epochs"]
    15

`train(**recipe_settings(name))` trains one; so does
`python -m mnist_zoo.train --recipe lenet5/mnist`.
"""

from __future__ import annotations

import functools
from pathlib import Path

from mnist_zoo.errors import RecipeError
from mnist_zoo.settings import SETTINGS

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

RECIPES_FILE = Path(__file__).with_name("recipes.toml")
# Recipe keys: the settings table's axes but the model (the recipe's name says it);
# anything else in the file is a typo.
FIELDS = tuple(name for name, setting in SETTINGS.items() if setting.axis and name != "model")


@functools.lru_cache(maxsize=None)
def load_recipes(path: str | Path = RECIPES_FILE) -> dict[str, dict]:
    """{'lenet5/mnist': {...settings...}, ...} from a recipes TOML file."""
    with open(path, "rb") as handle:
        tables = tomllib.load(handle)
    recipes = {}
    for model, per_dataset in tables.items():
        for dataset, settings in per_dataset.items():
            unknown = sorted(set(settings) - set(FIELDS))
            if unknown:
                raise RecipeError(f"{path}: recipe {model}/{dataset} has unknown keys {unknown}; "
                                  f"a recipe takes {', '.join(FIELDS)}")
            recipes[f"{model}/{dataset}"] = dict(settings)
    return recipes


def list_recipes() -> list[str]:
    return sorted(load_recipes())


def get_recipe(name: str) -> dict:
    """The settings of recipe "model/dataset" (a copy), or a RecipeError listing them all."""
    recipes = load_recipes()
    if name not in recipes:
        raise RecipeError(f"unknown recipe {name!r}; known recipes: {', '.join(sorted(recipes))}")
    return dict(recipes[name])


def recipe_settings(name: str) -> dict:
    """Keyword arguments for mnist_zoo.train.train(): model, dataset and the recipe's settings."""
    settings = get_recipe(name)
    model, dataset = name.split("/")
    return {"model": model, "dataset": dataset, **settings}


def explicit_options(parser, argv) -> set[str]:
    """The destinations of the options actually given in `argv` (not left at a default)."""
    import argparse
    import copy

    bare = copy.deepcopy(parser)
    for action in bare._actions:
        action.default = argparse.SUPPRESS  # unset options then stay out of the namespace
    return set(vars(bare.parse_args(argv)))


def apply_recipe(args, name: str, explicit: set[str]) -> None:
    """Fill `args` (an argparse namespace) from recipe `name`; options in `explicit` win."""
    for key, value in recipe_settings(name).items():
        if key not in explicit:
            setattr(args, key, value)
