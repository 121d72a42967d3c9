"""Compile settings: the optimizer object and its learning-rate schedule.

Passing an optimizer by name to `compile` silently uses Keras' default rate; building
the object here is what makes the grid's learning rate count.
"""

from __future__ import annotations

import keras

from mnist_zoo.errors import SettingsError

OPTIMIZERS = ("sgd", "adam", "rmsprop")
LR_SCHEDULES = ("constant", "exponential", "cosine")


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


def make_optimizer(name: str, learning_rate: float, *, momentum: float = 0.0,
                   lr_schedule: str = "constant", decay_steps: int = 1000):
    """An optimizer object carrying the learning rate.

    Passing the optimizer by name (`compile(optimizer='adam')`) silently uses
    Keras' default rate; building the object is what makes the rate count.
    """
    rate = make_learning_rate(learning_rate, lr_schedule, decay_steps)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=rate, momentum=momentum)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=rate)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=rate, momentum=momentum)
    raise SettingsError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
