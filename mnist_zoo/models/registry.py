"""The registry: `@register_model` adds a builder, `build_model` builds and compiles one.

Builders (mnist_zoo.models.zoo) only describe an architecture; `build_model(name,
**settings)` checks the settings, builds, loads shipped weights when asked (their files
and the settings they need come from mnist_zoo.models.pretrained, which imports no
builder) and compiles with the optimizer of mnist_zoo.models.optimizers.
"""

from __future__ import annotations

import inspect
from typing import Callable

import keras

from mnist_zoo.errors import SettingsError
from mnist_zoo.models import pretrained
from mnist_zoo.models.optimizers import make_optimizer
from mnist_zoo.settings import ACTIVATIONS, in_group


_REGISTRY: dict[str, Callable[..., keras.Model]] = {}


def register_model(name: str):
    """Decorator: make a builder available to `build_model(name)` and `list_models()`."""
    def decorator(builder):
        _REGISTRY[name] = builder
        return builder
    return decorator


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def model_settings(name: str) -> list[str]:
    """The architecture settings a builder accepts (besides the compile settings)."""
    return list(inspect.signature(_get_builder(name)).parameters)


def _get_builder(name: str):
    if name not in _REGISTRY:
        raise SettingsError(f"unknown model {name!r}; choose one of {', '.join(list_models())}")
    return _REGISTRY[name]


def build_model(name: str, *, decay_steps: int = 1000, compile: bool = True,
                steps_per_execution: int = 1, jit_compile="auto", weights: str | None = None,
                **settings) -> keras.Model:
    """Build a registered model and compile it for sparse integer labels.

    settings: the builder's (activation, pooling, ...) and the optimizer's
    (optimizer, learning_rate and the settings table's other optimizer settings, which
    go to make_optimizer); unknown ones raise a SettingsError (a ValueError) that lists
    the accepted ones.
    weights: None for a fresh model, or the dataset of shipped pretrained weights
    ("mnist", "fashion_mnist"); the builder then gets the settings they were trained
    with, and a different one raises a SettingsError.
    """
    builder = _get_builder(name)
    compile_settings = {key: settings.pop(key) for key in in_group("optimizer")
                        if key in settings}
    weights_file = None
    if weights is not None:
        weights_file, settings = pretrained.settings_for(name, weights, settings)
    accepted = model_settings(name)
    unknown = sorted(set(settings) - set(accepted))
    if unknown:
        raise SettingsError(f"model {name!r} does not take {unknown}; it accepts {accepted} "
                            f"plus {', '.join(in_group('optimizer'))}")
    if "activation" in settings:
        check_activation(settings["activation"])
    model = builder(**settings)
    if weights_file is not None:
        model.load_weights(weights_file)
    if compile:
        model.compile(
            optimizer=make_optimizer(decay_steps=decay_steps, **compile_settings),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            steps_per_execution=steps_per_execution,
            jit_compile=jit_compile,
        )
    return model


def build_lenet5(**settings) -> keras.Model:
    """LeNet-5, e.g. `build_lenet5(activation='relu', optimizer='adam', learning_rate=1e-3)`
    or trained on MNIST: `build_lenet5(weights="mnist")`."""
    return build_model("lenet5", **settings)


def check_activation(activation: str) -> None:
    if activation not in ACTIVATIONS:
        raise SettingsError(f"unknown activation {activation!r}; choose one of "
                            f"{', '.join(ACTIVATIONS)}")
