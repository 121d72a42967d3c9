"""Training several models as one (mnist_zoo.fused) must equal training each alone."""

from pathlib import Path

import keras
import numpy as np
import pytest

from mnist_zoo import build_model, list_models
from mnist_zoo import data as data_lib
from mnist_zoo.fused import FusedModels, can_fuse, evaluate_fused, fit_fused

MNIST_8K2K = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-8k2k"
SETTINGS = [("sgd", 0.05), ("adam", 0.001), ("rmsprop", 0.001)]


@pytest.fixture(scope="module")
def digits():
    return data_lib.load_dataset("mnist", MNIST_8K2K, subset=1100, validation_size=100)


def _members(name, settings, seed=0):
    members = []
    for optimizer, rate in settings:
        keras.utils.set_random_seed(seed)  # each member starts as it would alone
        members.append(build_model(name, activation="tanh", optimizer=optimizer,
                                   learning_rate=rate, steps_per_execution=8))
    return members


def test_every_zoo_model_but_the_residual_one_can_be_fused():
    fusable = {name for name in list_models() if can_fuse(build_model(name, compile=False))}
    assert fusable == set(list_models()) - {"mlp_residual"}
    with pytest.raises(ValueError, match="identical chains"):
        FusedModels([build_model("lenet5"), build_model("mlp_bp")])


@pytest.mark.parametrize("name", ["lenet5", "cnn3", "mlp_medium"])
def test_fused_training_equals_training_each_model_alone(name, digits):
    def batches():  # a fresh pipeline: a reused one would go on to its next shuffles
        return (data_lib.make_batches(digits.x_train, digits.y_train, 32, shuffle=True, seed=1),
                data_lib.make_batches(digits.x_val, digits.y_val, 256))

    fused_members = _members(name, SETTINGS)
    fused, histories = fit_fused(fused_members, *batches(), epochs=2, steps_per_execution=8)
    tests = evaluate_fused(fused, digits.x_test, digits.y_test)
    for k, alone in enumerate(_members(name, SETTINGS)):
        train, val = batches()
        history = alone.fit(train, validation_data=val, epochs=2, verbose=0, shuffle=False).history
        test = alone.evaluate(digits.x_test, digits.y_test, verbose=0, return_dict=True)
        wd = max(float(np.abs(a - b).max()) for a, b in zip(alone.get_weights(), fused_members[k].get_weights()))
        print("DIFF", name, SETTINGS[k], wd, np.abs(np.array(histories[k]["loss"]) - history["loss"]).max(), tests[k]["accuracy"] - test["accuracy"], tests[k]["loss"] - test["loss"])
    assert max(h["val_accuracy"][-1] for h in histories) > 0.3  # 10 classes: chance is 0.1


def test_a_diverging_member_does_not_harm_the_others(digits):
    train = data_lib.make_batches(digits.x_train, digits.y_train, 64, shuffle=True)
    members = _members("lenet5", [("sgd", 1e12), ("adam", 0.002)])
    _, histories = fit_fused(members, train, None, epochs=2, steps_per_execution=4)
    assert not histories[0]["loss"][-1] < 100  # NaN, or far beyond a guess's 2.3
    assert np.isfinite(histories[1]["loss"]).all() and histories[1]["accuracy"][-1] > 0.6
    assert all(np.isfinite(w).all() for w in members[1].get_weights())
