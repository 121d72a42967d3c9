"""Compile settings: the optimizer object and its learning-rate schedule.

Passing an optimizer by name to `compile` silently uses Keras' default rate; building
the object here is what makes the grid's learning rate count.
"""

from __future__ import annotations

import keras

from mnist_zoo.errors import SettingsError
from mnist_zoo.settings import DEFAULTS, LR_SCHEDULES, OPTIMIZERS


def make_learning_rate(learning_rate: float, lr_schedule: str = "constant",
                       decay_steps: int = 1000):
    """A float for 'constant', else a Keras schedule starting at `learning_rate`."""
    if lr_schedule == "constant":
        return float(learning_rate)
    if lr_schedule == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(learning_rate, decay_steps, 0.9)
    if lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
    raise SettingsError(f"unknown lr_schedule {lr_schedule!r}; choose one of "
                        f"{', '.join(LR_SCHEDULES)}")


def make_optimizer(optimizer: str = DEFAULTS["optimizer"],
                   learning_rate: float = DEFAULTS["learning_rate"], *,
                   momentum: float = DEFAULTS["momentum"],
                   lr_schedule: str = DEFAULTS["lr_schedule"],
                   nesterov: bool = DEFAULTS["nesterov"], decay_steps: int = 1000):
    """An optimizer object carrying the learning rate; the settings table's optimizer
    settings (mnist_zoo.settings) are its keyword arguments, each used where it applies.

    Passing the optimizer by name (`compile(optimizer='adam')`) silently uses
    Keras' default rate; building the object is what makes the rate count.
    """
    rate = make_learning_rate(learning_rate, lr_schedule, decay_steps)
    if optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=rate, momentum=momentum, nesterov=nesterov)
    if optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=rate)
    if optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=rate, momentum=momentum)
    raise SettingsError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
