"""Train several zoo models at once, as one wide graph.

On a CPU a small model cannot keep the cores busy: at batch 16 a LeNet-5 step is
mostly per-op overhead. Trials of a grid that share the data pipeline (same
model, batch size, epochs, augmentation) are therefore trained together:

* every member stays an ordinary registry model with its own weights and its own
  optimizer (its type and settings), so it saves, exports and scores exactly like
  a model trained alone;
* the forward pass runs the members side by side: the first layer's kernels are
  concatenated into one layer over the shared input, later convolutions become
  one grouped convolution where this process' kernels can train it (oneDNN, cuDNN)
  and one convolution per member elsewhere (TensorFlow's own CPU kernels have no
  grouped-convolution gradient; see `member_conv_form`), later dense layers one
  batched matmul; element-wise
  activations apply to each member's slice (one call per run of members that
  share an activation; the search does not group by activation, which measured
  slower than one group per activation);
* each member's loss is its own mean cross-entropy; the gradient of their sum
  with respect to a member's weights is that member's gradient alone, and each
  optimizer updates only its member.

Members see the same batches in the same order as a lone trial with the same
seed, so results match one-at-a-time training up to float rounding (and, for
models with dropout, up to the random dropout masks).
"""

from __future__ import annotations

import functools
import os

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from mnist_zoo.errors import SettingsError

# Layers that act element- or channel-wise, so one call serves all members at once.
_SHARED_LAYER_TYPES = (layers.Activation, layers.LeakyReLU, layers.Dropout,
                       layers.AveragePooling2D, layers.MaxPooling2D)


def can_fuse(model: keras.Model) -> bool:
    """True for a chain of layers this module knows: every zoo model but mlp_residual.

    Without merge layers (Add, Concatenate) a single-output model of these layers
    is a plain chain, which is what `FusedModels.call` walks.
    """
    known = (layers.InputLayer, layers.Conv2D, layers.Dense, layers.Flatten,
             layers.GlobalAveragePooling2D, *_SHARED_LAYER_TYPES)
    return all(isinstance(layer, known) for layer in model.layers)


# Element-wise activations: members may differ here, each slice getting its own.
_ACTIVATION_TYPES = (layers.Activation, layers.LeakyReLU)


def fusion_key(model: keras.Model) -> str:
    """Models with equal keys have the same layers and configs but for their activation
    functions, so they can be fused."""
    return "|".join("Activation" if isinstance(layer, _ACTIVATION_TYPES) else _signature(layer)
                    for layer in model.layers)


def _signature(layer) -> str:
    config = {k: v for k, v in layer.get_config().items()
              if k not in ("name", "trainable", "dtype", "seed")}
    return f"{type(layer).__name__}{sorted(config.items())}"


# ---------------------------------------------------------------- member convolutions
# After the first layer the members' features lie side by side in the channels,
# (B, H, W, K*C), and member k's kernel (kh, kw, C, F) must see only its own C channels.
# Each function below computes that, (B, H', W', K*F), in its own way; they differ only
# in which kernels TensorFlow runs, so in speed and in where they run at all.

def grouped_convolution(x, kernels, strides, padding):
    """One grouped convolution: TensorFlow infers groups = K from the shapes. The fastest
    where it runs, but TensorFlow's own CPU kernels have no gradient for it: only oneDNN's
    (and cuDNN's) do."""
    return tf.nn.conv2d(x, tf.concat(kernels, axis=-1), strides, padding)


def convolution_per_member(x, kernels, strides, padding):
    """K ordinary convolutions, member k's on its slice of channels: runs everywhere."""
    slices = tf.split(x, len(kernels), axis=-1)
    return tf.concat([tf.nn.conv2d(part, kernel, strides, padding)
                      for part, kernel in zip(slices, kernels)], axis=-1)


def depthwise_convolution(x, kernels, strides, padding):
    """One depthwise convolution (every input channel with its member's F filters), then
    a sum over each member's C channels: C times the intermediate size."""
    size = len(kernels)
    height, width, channels, filters = kernels[0].shape
    # Input channel k*C + c carries slice c of member k's kernel.
    kernel = tf.reshape(tf.stack(kernels, axis=2), (height, width, size * channels, filters))
    y = tf.nn.depthwise_conv2d(x, kernel, (1, *strides, 1), padding)  # channel (k*C+c)*F+f
    rows, cols = y.shape[1], y.shape[2]
    y = tf.reduce_sum(tf.reshape(y, (-1, rows, cols, size, channels, filters)), axis=4)
    return tf.reshape(y, (-1, rows, cols, size * filters))


def block_diagonal_convolution(x, kernels, strides, padding):
    """One ordinary convolution over all K*C channels with a block-diagonal kernel (zeros
    between members): K times the arithmetic, but TensorFlow's plainest kernel."""
    size = len(kernels)
    height, width, channels, filters = kernels[0].shape
    kernel = tf.einsum("khwcf,kl->hwkclf", tf.stack(kernels), tf.eye(size, dtype=x.dtype))
    return tf.nn.conv2d(x, tf.reshape(kernel, (height, width, size * channels, size * filters)),
                        strides, padding)


MEMBER_CONVOLUTIONS = {"grouped": grouped_convolution, "per_member": convolution_per_member,
                       "depthwise": depthwise_convolution,
                       "block_diagonal": block_diagonal_convolution}


@functools.cache
def grouped_gradients_work() -> bool:
    """Whether this process' kernels train a grouped convolution, and correctly: tried
    once on a tiny case, inside a tf.function as training runs, against the per-member
    form. False with TensorFlow's own CPU kernels (no oneDNN: AVX2-only x86, ARM)."""
    @tf.function
    def both_gradients():
        images = tf.reshape(tf.range(2 * 6 * 6 * 4, dtype=tf.float32) / 100, (2, 6, 6, 4))
        kernels = [tf.fill((3, 3, 2, 2), 0.5), tf.fill((3, 3, 2, 2), -0.25)]
        results = []
        for form in (grouped_convolution, convolution_per_member):
            with tf.GradientTape() as tape:
                tape.watch([images, *kernels])
                y = form(images, kernels, (1, 1), "VALID")
                loss = tf.reduce_sum(y * y)
            results.append(tape.gradient(loss, [images, *kernels]))
        return results

    try:
        grouped, per_member = both_gradients()
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError,
            tf.errors.NotFoundError):
        return False
    return all(np.allclose(a, b, rtol=1e-4, atol=1e-4) for a, b in zip(grouped, per_member))


def member_conv_form() -> str:
    """The member convolution this process uses: MNIST_ZOO_CONV_FORM if set (one of
    MEMBER_CONVOLUTIONS), else the grouped one where its gradient runs, else one
    convolution per member (docs/benchmarks.md has the measurements behind this)."""
    chosen = os.environ.get("MNIST_ZOO_CONV_FORM")
    if chosen:
        if chosen not in MEMBER_CONVOLUTIONS:
            raise SettingsError(f"MNIST_ZOO_CONV_FORM={chosen!r} is not one of "
                                f"{', '.join(MEMBER_CONVOLUTIONS)}; unset it to let the "
                                "package choose")
        return chosen
    return "grouped" if grouped_gradients_work() else "per_member"


class FusedModels(keras.Model):
    """K structurally identical models trained as one; outputs (batch, K, classes)."""

    def __init__(self, members: list[keras.Model], conv_form: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.conv_form = conv_form or member_conv_form()
        keys = {fusion_key(member) for member in members}
        if len(keys) != 1 or not all(can_fuse(member) for member in members):
            raise ValueError("FusedModels needs identical chains of Conv2D/Dense/pooling layers")
        self.members = members
        self.size = len(members)
        self.loss_tracker = MemberMeans(self.size, name="loss")
        self.accuracy_tracker = MemberMeans(self.size, name="accuracy")

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    def call(self, images, training=False):
        x, state = images, "shared"  # shared input -> "channels" (B,H,W,K*C) -> "stacked" (B,K,F)
        layer_lists = [member.layers for member in self.members]
        for same_layers in zip(*layer_lists):
            layer = same_layers[0]
            if isinstance(layer, layers.InputLayer):
                continue
            if isinstance(layer, layers.Conv2D):
                x, state = self._conv(same_layers, x, state), "channels"
            elif isinstance(layer, layers.Dense):
                x, state = self._dense(same_layers, x, state), "stacked"
            elif isinstance(layer, layers.Flatten):
                x, state = self._to_stacked(x, state, flatten=True)
            elif isinstance(layer, layers.GlobalAveragePooling2D):
                x, state = self._to_stacked(layer(x), "pooled", flatten=False)
            elif isinstance(layer, _ACTIVATION_TYPES):
                x = self._activations(same_layers, x, state)
            else:  # dropout, pooling: one call for all members
                x = layer(x, training=training)
        return x

    def _activations(self, same_layers, x, state):
        """Each member's activation on its own slice; members in a row with the same one
        share a call (a grid lists them together, so that is one call per activation)."""
        signatures = [_signature(layer) for layer in same_layers]
        if len(set(signatures)) == 1:
            return same_layers[0](x)
        axis = -1 if state == "channels" else 1  # (B, H, W, K*C) or (B, K, F)
        width = x.shape[axis] // self.size if state == "channels" else 1
        pieces, start = [], 0
        for end in range(1, self.size + 1):
            if end == self.size or signatures[end] != signatures[start]:
                index = slice(start * width, end * width)
                part = x[..., index] if state == "channels" else x[:, index]
                pieces.append(same_layers[start](part))
                start = end
        return ops.concatenate(pieces, axis=axis)

    def _conv(self, same_layers, x, state):
        layer = same_layers[0]
        kernels = [lyr.kernel.value for lyr in same_layers]
        strides, padding = layer.strides, layer.padding.upper()
        if state == "shared":  # one input for all: a plain convolution with K times the filters
            y = tf.nn.conv2d(x, ops.concatenate(kernels, axis=-1), strides, padding)
        else:  # member k's channels only meet member k's kernel
            y = MEMBER_CONVOLUTIONS[self.conv_form](x, kernels, strides, padding)
        if layer.use_bias:
            y = y + ops.concatenate([lyr.bias.value for lyr in same_layers], axis=0)
        return layer.activation(y)

    def _dense(self, same_layers, x, state):
        layer = same_layers[0]
        if state == "shared":  # (B, F) shared input: one wide matmul
            kernel = ops.concatenate([lyr.kernel.value for lyr in same_layers], axis=-1)
            y = tf.reshape(tf.matmul(x, kernel), (-1, self.size, layer.units))
        else:  # (B, K, F): a batched matmul, member k with its own kernel
            y = tf.einsum("bkf,kfu->bku", x, ops.stack([lyr.kernel.value for lyr in same_layers]))
        if layer.use_bias:
            y = y + ops.stack([lyr.bias.value for lyr in same_layers])
        return layer.activation(y)

    def _to_stacked(self, x, state, flatten):
        if state == "shared":  # flattening the input image itself
            return tf.reshape(x, (tf.shape(x)[0], -1)), "shared"
        if state == "pooled":  # (B, K*C) -> (B, K, C)
            return tf.reshape(x, (tf.shape(x)[0], self.size, -1)), "stacked"
        # (B, H, W, K*C) -> (B, K, H*W*C), each member's features in Flatten's own order.
        _, height, width, channels = x.shape
        x = tf.reshape(x, (-1, height, width, self.size, channels // self.size))
        x = tf.transpose(x, (0, 3, 1, 2, 4))
        return tf.reshape(x, (-1, self.size, height * width * (channels // self.size))), "stacked"

    def _member_losses(self, labels, probabilities):
        # Mean cross-entropy of each member over the batch: shape (K,).
        labels = tf.repeat(tf.reshape(tf.cast(labels, tf.int32), (-1, 1)), self.size, axis=1)
        losses = keras.losses.sparse_categorical_crossentropy(labels, probabilities)
        return tf.reduce_mean(losses, axis=0)

    def _update_metrics(self, labels, probabilities, member_losses):
        # Weighted by batch size, as Keras' own loss tracker does (the last batch is short).
        batch_size = tf.cast(tf.shape(labels)[0], tf.float32)
        hits = tf.cast(tf.equal(tf.argmax(probabilities, axis=-1, output_type=tf.int32),
                                tf.cast(labels, tf.int32)[:, None]), tf.float32)
        self.loss_tracker.update_state(member_losses, batch_size)
        self.accuracy_tracker.update_state(tf.reduce_mean(hits, axis=0), batch_size)
        return {metric.name: metric.result() for metric in self.metrics}

    def train_step(self, data):
        images, labels = data
        with tf.GradientTape() as tape:
            probabilities = self(images, training=True)
            member_losses = self._member_losses(labels, probabilities)
            total = tf.reduce_sum(member_losses)
        variables = [member.trainable_variables for member in self.members]
        gradients = tape.gradient(total, [v for group in variables for v in group])
        start = 0
        for member, group in zip(self.members, variables):
            member.optimizer.apply(gradients[start:start + len(group)], group)
            start += len(group)
        return self._update_metrics(labels, probabilities, member_losses)

    def test_step(self, data):
        images, labels = data
        probabilities = self(images, training=False)
        return self._update_metrics(labels, probabilities,
                                    self._member_losses(labels, probabilities))


class MemberMeans(keras.metrics.Metric):
    """Running means of a (K,) vector, one per member: one metric instead of K, since
    per-op overhead is what fusing is fighting."""

    def __init__(self, size: int, name: str):
        super().__init__(name=name)
        self.total = self.add_variable((size,), initializer="zeros", name="total")
        self.count = self.add_variable((), initializer="zeros", name="count")

    def update_state(self, values, weight):
        self.total.assign_add(values * weight)
        self.count.assign_add(weight)

    def result(self):
        return self.total / tf.maximum(self.count, 1.0)


def fit_fused(members: list[keras.Model], train_batches, val_batches, epochs: int,
              steps_per_execution: int = 32, verbose: int = 0, callbacks=(), stopper=None):
    """Train compiled members together; returns the fused model (for `evaluate_fused`)
    and one Keras-style history dict per member.

    stopper: a `MemberStopper` that may stop members after an epoch (the search's
    pruning): the fit then goes on with the others from the next epoch, as a fused model
    of those only, over the same batches in the same order (one dataset, so its shuffle
    moves on from epoch to epoch); a stopped member stops costing time, and the others
    train exactly as they would have. The fused model returned holds the members still
    running at the end.

    Keras' progress bar cannot show per-member vectors, so verbose prints one line per
    epoch of our own instead.
    """
    for member in members:
        if not member.optimizer.built:  # one that goes on from a saved run keeps its state
            member.optimizer.build(member.trainable_variables)
    histories = [{} for _ in members]
    running, epoch, fused = list(range(len(members))), 0, None
    while running and epoch < epochs:
        fused = _compiled([members[k] for k in running], steps_per_execution)
        extra = [EpochLine(len(running))] if verbose else []
        if stopper is not None:
            stopper.running = running
            extra.append(stopper)
        history = fused.fit(train_batches, validation_data=val_batches, epochs=epochs,
                            initial_epoch=epoch, verbose=0, callbacks=[*callbacks, *extra],
                            shuffle=False).history
        for place, k in enumerate(running):
            for key, series in _member_history(history, place).items():
                histories[k].setdefault(key, []).extend(series)
        epoch += len(history.get("loss", []))
        left = [k for k in running if stopper is None or k not in stopper.stopped]
        if left == running:
            break  # the epochs are done (or Keras stopped it for another reason)
        running = left
    if fused is None or fused.size != len(running):
        fused = _compiled([members[k] for k in running], steps_per_execution) if running else None
    return fused, histories


def _compiled(members: list[keras.Model], steps_per_execution: int) -> FusedModels:
    fused = FusedModels(members)
    # The members' own optimizers do the updates; this one only satisfies compile().
    fused.compile(optimizer=keras.optimizers.SGD(), steps_per_execution=steps_per_execution,
                  jit_compile=False)
    return fused


class MemberStopper(keras.callbacks.Callback):
    """A callback that stops members of a fit (fused or one model alone) after an epoch:
    `running` holds the indices of the members in the model being fitted (fit_fused
    sets it; [0] for one model), `stopped` maps a stopped member's index to the epoch
    (1-based) it ended. A subclass decides in `members_to_stop`."""

    def __init__(self):
        super().__init__()
        self.running: list[int] = [0]
        self.stopped: dict[int, int] = {}

    def members_to_stop(self, epoch: int, logs: dict) -> list[int]:
        """The members (indices, of those running) to stop after `epoch` (1-based); logs
        holds each metric as one value per running member."""
        raise NotImplementedError

    def on_epoch_end(self, epoch, logs=None):
        per_member = {key: np.atleast_1d(np.asarray(value, dtype=float))
                      for key, value in (logs or {}).items()}
        stop = self.members_to_stop(epoch + 1, per_member)
        for k in stop:
            self.stopped[k] = epoch + 1
        if stop:
            self.model.stop_training = True


def evaluate_fused(fused: FusedModels, images: np.ndarray, labels: np.ndarray,
                   batch_size: int = 1024) -> list[dict]:
    """Test loss and accuracy of every member, from one pass over the images."""
    logs = fused.evaluate(images, labels, batch_size=batch_size, verbose=0, return_dict=True)
    return [{"loss": float(logs["loss"][k]), "accuracy": float(logs["accuracy"][k])}
            for k in range(fused.size)]


class EpochLine(keras.callbacks.Callback):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def on_epoch_end(self, epoch, logs=None):
        best = max(np.nan_to_num(np.asarray(logs.get("val_accuracy", logs["accuracy"]))))
        print(f"  epoch {epoch + 1}: {self.size} models trained together, best accuracy "
              f"{best:.4f}", flush=True)


def _member_history(history: dict, k: int) -> dict:
    """Member k's share of the fused history: {'loss': [...], 'val_accuracy': [...], ...}."""
    return {key: [float(np.asarray(value)[k]) for value in series]
            for key, series in history.items()}
