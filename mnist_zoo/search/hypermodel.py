"""The HyperModel: builds a registry model from a trial's values."""

from __future__ import annotations

import math

import keras
import keras_tuner as kt

from mnist_zoo.models import build_model, model_settings
from mnist_zoo.settings import SETTINGS, in_group, run_settings
from mnist_zoo.train.fit import STEPS_PER_EXECUTION


class ZooHyperModel(kt.HyperModel):
    """Builds and compiles the trial's model.

    train_size (set once the data is loaded) lets a decaying learning rate span
    exactly the trial's epochs * steps per epoch; schedule_epochs (Hyperband: its
    max_epochs) makes it span that many epochs instead, so that a run stopped early and
    one continued later follow the same schedule.
    """

    train_size: int | None = None
    schedule_epochs: int | None = None

    def build(self, hp):
        return self.build_values(hp.values)

    def build_values(self, values: dict) -> keras.Model:
        decay_steps = 1000
        if self.train_size:
            decay_steps = (math.ceil(self.train_size / values["batch_size"])
                           * (self.schedule_epochs or values["epochs"]))
        # The trial's settings that reach the model: its architecture and optimizer
        # settings (the others, batch size, epochs, augment, are the trainer's).
        settings = run_settings({key: value for key, value in values.items()
                                 if key in SETTINGS}, strict=False)
        # (a builder registered from code may lack one of the zoo's architecture settings)
        wanted = {*model_settings(settings["model"]), *in_group("optimizer")}
        return build_model(settings["model"], decay_steps=decay_steps,
                           steps_per_execution=STEPS_PER_EXECUTION,
                           **{key: value for key, value in settings.items() if key in wanted})
