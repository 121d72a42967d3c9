"""The one training path: `fit_models` trains compiled models on seeded batches, one
alone or several fused into one graph (mnist_zoo.train.fused), and returns a `Fit` per
model. train(), the search (fused or not) and bench's naive loop all train through here,
so batches, NaN handling and test scoring cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import math
import time

import keras

from mnist_zoo import data as data_lib
from mnist_zoo.train.fused import evaluate_fused, fit_fused

# Running 32 batches per call into TensorFlow halves the time of small batches on a
# CPU, where per-step overhead rather than arithmetic dominates (docs/benchmarks.md).
STEPS_PER_EXECUTION = 32
# A run diverged when its loss turned NaN/inf, or rose far above a guess's: cross-entropy
# of a uniform guess over 10 classes is ln 10 = 2.3, and no learning run ends 100x above it.
DIVERGED_LOSS = 100 * math.log(10)


@dataclasses.dataclass
class Fit:
    """One model's training: its Keras-style history and, if asked, its test scores."""

    model: keras.Model
    history: dict  # {'loss': [...], 'accuracy': [...], 'val_loss': [...], ...}
    test: dict | None  # {'loss', 'accuracy'} on the test set
    seconds: float  # training (and test) wall time; a fused group's is shared out evenly
    stopped: bool = False  # stopped early by a MemberStopper (the search's pruning): no test

    @property
    def epochs_run(self) -> int:
        return len(self.history.get("loss", []))

    @property
    def diverged(self) -> bool:
        losses = self.history.get("loss", [])
        test_loss = self.test["loss"] if self.test else 0.0
        return (not losses or not all(math.isfinite(v) for v in losses)
                or losses[-1] > DIVERGED_LOSS or not math.isfinite(test_loss))


def fit_models(models: list[keras.Model], data: data_lib.DigitData, *, batch_size: int,
               epochs: int, augment=None, seed: int = 0, verbose: int = 0, callbacks=(),
               initial_epoch: int = 0, test: bool = True, stopper=None) -> list[Fit]:
    """Train compiled models on `data`'s seeded batches: one alone, several fused.

    Every trainer of the package (train, the search fused or not, bench's naive loop)
    comes through here, so batches, NaN handling and test scoring cannot drift apart.
    Several models must be fusable (mnist_zoo.train.fused) and see the same batches;
    `callbacks` and `initial_epoch` are for a single model. A run whose loss turns
    NaN stops after that epoch, fused or not (a fused member's history is cut there).
    `stopper` (a mnist_zoo.train.fused.MemberStopper) may stop models after an epoch,
    fused or alone; a stopped model is not scored on the test set.
    """
    train_batches = data_lib.make_batches(data.x_train, data.y_train, batch_size, shuffle=True,
                                          augment=augment, seed=seed)
    val_batches = data_lib.make_batches(data.x_val, data.y_val, 1024) if len(data.x_val) else None
    started = time.perf_counter()
    if len(models) == 1:
        (model,), fused = models, None
        stoppers = [] if stopper is None else [stopper]
        histories = [model.fit(train_batches, validation_data=val_batches, epochs=epochs,
                               initial_epoch=initial_epoch, verbose=verbose, shuffle=False,
                               # the pipeline shuffles; Keras cannot shuffle a Dataset
                               callbacks=[*callbacks, keras.callbacks.TerminateOnNaN(),
                                          *stoppers]).history]
    else:
        if callbacks or initial_epoch:
            raise ValueError("callbacks and initial_epoch need a single model")
        fused, histories = fit_fused(models, train_batches, val_batches, epochs,
                                     STEPS_PER_EXECUTION, verbose, stopper=stopper)
        histories = [until_divergence(history) for history in histories]
    stopped = set(stopper.stopped) if stopper is not None else set()
    scored = [k for k in range(len(models)) if k not in stopped] if test else []
    tests = dict(zip(scored, _test_scores([models[k] for k in scored], fused, data)))
    seconds = (time.perf_counter() - started) / len(models)
    return [Fit(model, history, tests.get(k), seconds, stopped=k in stopped)
            for k, (model, history) in enumerate(zip(models, histories))]


def _test_scores(models: list[keras.Model], fused, data) -> list[dict]:
    """Test loss and accuracy of each model: from one pass of the fused model (which holds
    exactly these models) when they were trained together."""
    if not models:
        return []
    if fused is not None:
        return evaluate_fused(fused, data.x_test, data.y_test)
    return [model.evaluate(data.x_test, data.y_test, batch_size=1024, verbose=0,
                           return_dict=True) for model in models]


def until_divergence(history: dict) -> dict:
    """The history up to and including the first epoch whose loss is NaN/inf: where
    keras.callbacks.TerminateOnNaN stops a model trained alone."""
    losses = history.get("loss", [])
    stop = next((i + 1 for i, loss in enumerate(losses) if not math.isfinite(loss)), len(losses))
    return {key: list(series[:stop]) for key, series in history.items()}
