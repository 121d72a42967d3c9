"""Training several models as one (mnist_zoo.train.fused) must equal training each alone."""

import keras
import numpy as np
import pytest

from mnist_zoo import build_model, list_models
from mnist_zoo import data as data_lib
from mnist_zoo.train.fused import FusedModels, MemberStopper, can_fuse, fit_fused

# The tests with convolutions depend on the kernels (grouped or one per member): CI runs
# them on oneDNN and again on TensorFlow's own kernels. The MLPs' do not.
KERNELS = pytest.mark.kernels
LENET5 = pytest.param("lenet5", marks=KERNELS)
CNN3 = pytest.param("cnn3", marks=KERNELS)

SETTINGS = [("sgd", 0.05), ("adam", 0.001), ("rmsprop", 0.001)]


@pytest.fixture(scope="module")
def digits(mnist_8k2k):
    return data_lib.load_dataset("mnist", mnist_8k2k, subset=1100, validation_size=100)


def _members(name, settings, seed=0):
    members = []
    for optimizer, rate in settings:
        keras.utils.set_random_seed(seed)  # each member starts as it would alone
        members.append(build_model(name, activation="tanh", optimizer=optimizer,
                                   learning_rate=rate, steps_per_execution=8))
    return members


def test_every_zoo_model_but_the_residual_one_can_be_fused():
    fusable = {name for name in list_models() if can_fuse(build_model(name, compile=False))}
    # mlp_residual merges two branches; cnn_bn's batch normalisation keeps batch statistics.
    assert fusable == set(list_models()) - {"mlp_residual", "cnn_bn"}
    with pytest.raises(ValueError, match="identical chains"):
        FusedModels([build_model("lenet5"), build_model("mlp_bp")])


# Largest differences allowed between a fused member and the same model trained alone:
# float rounding of a different summation order. Measured (2 epochs, 1,000 digits, tanh):
# lenet5 at most 5.4e-7; mlp_medium 6.3e-7, but 4.8e-6 for a repeat under Adam (which
# divides rounding noise in rarely-lit border pixels' gradients by their tiny second
# moment); cnn3's deeper convolutions under Adam 5.3e-4. A broken fusion (a member
# given another's bias or kernel) moves weights by 1e-2 and more.
TOLERANCE = {"lenet5": 2e-6, "mlp_medium": 2e-5, "cnn3": 2e-3}


def _train_alone_and_fused(digits, members_of):
    """Train members_of() fused, then each of a fresh members_of() alone, through the
    package's one training path; returns (fused fits, lone fits)."""
    from mnist_zoo.train import fit_models

    fused = fit_models(members_of(), digits, batch_size=32, epochs=2, seed=1)
    alone = [fit_models([model], digits, batch_size=32, epochs=2, seed=1)[0]
             for model in members_of()]
    return fused, alone


def _assert_same_training(fused, alone, tolerance, label):
    for k, (together, single) in enumerate(zip(fused, alone)):
        weights = max(float(np.abs(a - b).max()) for a, b in
                      zip(single.model.get_weights(), together.model.get_weights()))
        losses = np.abs(np.array(together.history["loss"]) - single.history["loss"]).max()
        val = np.abs(np.array(together.history["val_loss"]) - single.history["val_loss"]).max()
        test = abs(together.test["loss"] - single.test["loss"])
        print(f"{label} member {k}: weights {weights:.2e}, loss {losses:.2e}, "
              f"val_loss {val:.2e}, test_loss {test:.2e}")
        assert weights <= tolerance, f"{label} member {k}: weights differ by {weights:.2e}"
        assert max(losses, val, test) <= 10 * tolerance, f"{label} member {k}: losses differ"
        # Accuracy counts whole digits: 1 of 1,000 test digits may flip on rounding.
        assert abs(together.test["accuracy"] - single.test["accuracy"]) <= 0.002
        assert together.epochs_run == single.epochs_run == 2


@pytest.mark.slow
@pytest.mark.parametrize("name", [LENET5, CNN3, "mlp_medium"])
def test_fused_training_equals_training_each_model_alone(name, digits):
    fused, alone = _train_alone_and_fused(digits, lambda: _members(name, SETTINGS))
    _assert_same_training(fused, alone, TOLERANCE[name], name)
    assert max(fit.history["val_accuracy"][-1] for fit in fused) > 0.3  # chance is 0.1


@pytest.mark.slow
@pytest.mark.parametrize("name", [LENET5, "mlp_medium"])
def test_fused_repeats_equal_repeats_trained_alone(name, digits):
    """Repeats: the same settings from three seeds (other initial weights, same batches).

    tanh as above: with relu a pre-activation that rounding moves across 0 switches its
    gradient on or off, and one such flip grows to ~3e-3 in two epochs (measured), so relu
    would test chaos, not fusion."""
    def repeats():
        members = []
        for seed in (0, 1, 2):
            keras.utils.set_random_seed(seed)
            members.append(build_model(name, activation="tanh", optimizer="adam",
                                       learning_rate=1e-3, steps_per_execution=8))
        return members

    fused, alone = _train_alone_and_fused(digits, repeats)
    _assert_same_training(fused, alone, TOLERANCE[name], f"{name} repeats")
    starts = [fit.model.get_weights()[0] for fit in fused]
    assert not np.allclose(starts[0], starts[1])  # the seeds did give other weights


@KERNELS
def test_a_diverging_member_does_not_harm_the_others(digits):
    train = data_lib.make_batches(digits.x_train, digits.y_train, 64, shuffle=True)
    members = _members("lenet5", [("sgd", 1e12), ("adam", 0.002)])
    _, histories = fit_fused(members, train, None, epochs=2, steps_per_execution=4)
    assert not histories[0]["loss"][-1] < 100  # NaN, or far beyond a guess's 2.3
    assert np.isfinite(histories[1]["loss"]).all() and histories[1]["accuracy"][-1] > 0.6
    assert all(np.isfinite(w).all() for w in members[1].get_weights())


@pytest.mark.slow
@KERNELS
def test_members_with_other_activations_fuse_and_equal_training_alone(digits):
    """Each member's activation applies to its own slice; runs of equal ones share a call
    (tanh, tanh, sigmoid, elu, tanh: four runs, one of two members). LeNet-5 only: the
    search does not fuse other activations (slower on CPUs), and the activation code is the
    same for every model."""
    name = "lenet5"
    activations = ["tanh", "tanh", "sigmoid", "elu", "tanh"]

    def members():
        built = []
        for activation in activations:
            keras.utils.set_random_seed(0)
            built.append(build_model(name, activation=activation, optimizer="adam",
                                     learning_rate=1e-3, steps_per_execution=8))
        return built

    fused, alone = _train_alone_and_fused(digits, members)
    _assert_same_training(fused, alone, TOLERANCE[name], f"{name} activations")
    losses = [fit.history["loss"][-1] for fit in fused]
    assert losses[0] != losses[2] != losses[3]  # the activations did differ


def _forms_and_gradients(form, images, kernels):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch([images, *kernels])
        y = form(images, kernels, (1, 1), "VALID")
        loss = tf.reduce_sum(tf.sin(y))  # any loss whose gradient varies across outputs
    return [y, *tape.gradient(loss, [images, *kernels])]


@KERNELS
def test_every_member_convolution_computes_the_same_outputs_and_gradients():
    """LeNet-5's second convolution for 3 members (3 x 6 channels -> 3 x 16), in every
    form of mnist_zoo.train.fused, against each member's own convolution on its channels."""
    import tensorflow as tf

    from mnist_zoo.train import fused

    rng = np.random.default_rng(0)
    images = tf.constant(rng.standard_normal((4, 14, 14, 18)), tf.float32)
    kernels = [tf.constant(rng.standard_normal((5, 5, 6, 16)) * 0.1, tf.float32)
               for _ in range(3)]
    slices = tf.split(images, 3, axis=-1)
    expected = tf.concat([tf.nn.conv2d(s, k, 1, "VALID") for s, k in zip(slices, kernels)], -1)
    reference = _forms_and_gradients(fused.convolution_per_member, images, kernels)
    np.testing.assert_allclose(reference[0], expected, atol=1e-5)
    forms = dict(fused.MEMBER_CONVOLUTIONS)
    if not fused.grouped_gradients_work():  # this process' kernels cannot train it
        forms.pop("grouped")
    for name, form in forms.items():
        for got, want in zip(_forms_and_gradients(form, images, kernels), reference):
            np.testing.assert_allclose(got, want, atol=2e-4, err_msg=name)


@KERNELS
def test_the_probe_tells_whether_grouped_gradients_run_here():
    """grouped_gradients_work() must agree with simply trying: on TensorFlow's own CPU
    kernels (TF_ENABLE_ONEDNN_OPTS=0, or a CPU without AVX512_VNNI) the grouped
    gradient fails, with oneDNN it runs; the default form follows."""
    import tensorflow as tf

    from mnist_zoo.train import fused

    @tf.function
    def grouped_gradient():
        images, kernel = tf.ones((1, 8, 8, 12)), tf.ones((3, 3, 6, 8))  # 2 groups
        with tf.GradientTape() as tape:
            tape.watch([images, kernel])
            y = tf.nn.conv2d(images, kernel, 1, "VALID")
        return tape.gradient(y, [images, kernel])

    try:
        grouped_gradient()
        runs = True
    except tf.errors.InvalidArgumentError:
        runs = False
    assert fused.grouped_gradients_work() is runs
    assert fused.member_conv_form() == ("grouped" if runs else "per_member")


@KERNELS
def test_the_conv_form_can_be_chosen_and_a_wrong_one_is_refused(monkeypatch):
    from mnist_zoo.train import fused

    monkeypatch.setenv("MNIST_ZOO_CONV_FORM", "depthwise")
    assert fused.member_conv_form() == "depthwise"
    assert FusedModels(_members("lenet5", SETTINGS[:2])).conv_form == "depthwise"
    monkeypatch.setenv("MNIST_ZOO_CONV_FORM", "grouped_please")
    with pytest.raises(ValueError, match="MNIST_ZOO_CONV_FORM='grouped_please'"):
        fused.member_conv_form()


@pytest.mark.parametrize("argv, machine, preset, expected", [
    (["python", "-m", "mnist_zoo.search", "--grid", "full"], "x86_64", None, "1"),
    (["python", "-m", "mnist_zoo.search"], "x86_64", "0", "0"),  # the user's choice stands
    (["python", "my_script.py"], "x86_64", None, None),  # code importing the package
    (["python", "-m", "mnist_zoo.train"], "aarch64", None, None),  # untested there
])
def test_the_package_commands_turn_onednn_on_unless_told_otherwise(monkeypatch, argv, machine,
                                                                   preset, expected):
    import os
    import platform
    import sys

    import mnist_zoo

    monkeypatch.setattr(sys, "orig_argv", argv)
    monkeypatch.setattr(platform, "machine", lambda: machine)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)  # as before TF loads
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", preset or "")  # restored after the test
    if preset is None:
        monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS")
    mnist_zoo.prefer_onednn()
    assert os.environ.get("TF_ENABLE_ONEDNN_OPTS") == expected


class _StopAfter(MemberStopper):
    """Stops member k after epoch stops[k] (issue #32's pruning, without the rule), and
    notes how many members each epoch trained."""

    def __init__(self, stops: dict[int, int]):
        super().__init__()
        self.stops, self.widths = stops, []

    def members_to_stop(self, epoch, logs):
        self.widths.append(self.model.size if isinstance(self.model, FusedModels) else 1)
        assert all(len(values) == len(self.running) for values in logs.values())
        return [k for k in self.running if self.stops.get(k) == epoch]


@pytest.mark.slow  # ~30 s each on 2 busy cores
@pytest.mark.parametrize("name", [LENET5, "mlp_medium"])
def test_a_stopped_member_leaves_the_group_and_the_others_train_as_before(name, digits):
    """Issue #32: a pruned member stops costing time, the group goes on without it, and
    every other member ends as it would have (to the equivalence test's tolerance)."""
    from mnist_zoo.train import fit_models

    stopper = _StopAfter({1: 1})
    fused = fit_models(_members(name, SETTINGS), digits, batch_size=32, epochs=2, seed=1,
                       stopper=stopper)
    alone = [fit_models([model], digits, batch_size=32, epochs=2, seed=1)[0]
             for model in _members(name, SETTINGS)]
    assert stopper.widths == [3, 2] and stopper.stopped == {1: 1}
    survivors = [0, 2]
    for k in survivors:
        weights = max(float(np.abs(a - b).max()) for a, b in
                      zip(alone[k].model.get_weights(), fused[k].model.get_weights()))
        assert weights <= TOLERANCE[name], f"member {k}: weights differ by {weights:.2e}"
        assert fused[k].epochs_run == 2 and not fused[k].stopped
        np.testing.assert_allclose(fused[k].history["val_loss"], alone[k].history["val_loss"],
                                   atol=10 * TOLERANCE[name])
        assert abs(fused[k].test["accuracy"] - alone[k].test["accuracy"]) <= 0.002
    stopped = fused[1]
    assert stopped.stopped and stopped.test is None and stopped.epochs_run == 1
    assert abs(stopped.history["val_loss"][0] - alone[1].history["val_loss"][0]) <= \
        10 * TOLERANCE[name]
