"""The zoo: the builders of small Keras models for 28x28 digit images, each registered
with `@register_model` (LeNet-5, four MLPs, a residual MLP, a 3-conv CNN, a
batch-normalised CNN). A builder only describes the architecture; mnist_zoo.models.registry
compiles it.
"""

from __future__ import annotations

import keras
from keras import layers

from mnist_zoo.errors import SettingsError
from mnist_zoo.models.registry import register_model

INPUT_SHAPE = (28, 28, 1)


# --------------------------------------------------------------------------- building blocks
def _activation(name: str):
    # leaky_relu is a function in Keras 3 but its layer form keeps summaries readable.
    return layers.LeakyReLU(0.2) if name == "leaky_relu" else layers.Activation(name)


def _dense(x, units: int, activation: str, dropout: float = 0.0):
    x = layers.Dense(units)(x)
    x = _activation(activation)(x)
    return layers.Dropout(dropout)(x) if dropout else x


def _classifier(inputs, x, name: str, num_classes: int = 10) -> keras.Model:
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


def _mlp(name: str, hidden: tuple[int, ...], activation: str, dropout: float):
    inputs = keras.Input(INPUT_SHAPE)
    x = layers.Flatten()(inputs)
    for units in hidden:
        x = _dense(x, units, activation, dropout)
    return _classifier(inputs, x, name)


# --------------------------------------------------------------------------- the zoo
@register_model("lenet5")
def lenet5(activation: str = "relu", pooling: str = "avg", dropout: float = 0.0):
    """LeNet-5: conv 6@5x5 same, pool, conv 16@5x5 valid, pool, dense 120, 84, 10."""
    if pooling not in ("avg", "max"):
        raise SettingsError(f"unknown pooling {pooling!r}; choose 'avg' or 'max'")
    pool = layers.AveragePooling2D if pooling == "avg" else layers.MaxPooling2D
    inputs = keras.Input(INPUT_SHAPE)
    x = layers.Conv2D(6, 5, padding="same")(inputs)
    x = pool(2)(_activation(activation)(x))
    x = layers.Conv2D(16, 5, padding="valid")(x)
    x = pool(2)(_activation(activation)(x))
    x = layers.Flatten()(x)
    x = _dense(x, 120, activation, dropout)
    x = _dense(x, 84, activation, dropout)
    return _classifier(inputs, x, "lenet5")


@register_model("mlp_bp")
def mlp_bp(activation: str = "sigmoid", dropout: float = 0.0):
    """The classic back-propagation net: 784-128-10."""
    return _mlp("mlp_bp", (128,), activation, dropout)


@register_model("mlp_simple")
def mlp_simple(activation: str = "relu", dropout: float = 0.0):
    """One hidden layer: 784-256-10."""
    return _mlp("mlp_simple", (256,), activation, dropout)


@register_model("mlp_medium")
def mlp_medium(activation: str = "relu", dropout: float = 0.0):
    """Two hidden layers: 784-512-256-10."""
    return _mlp("mlp_medium", (512, 256), activation, dropout)


@register_model("mlp_complex")
def mlp_complex(activation: str = "relu", dropout: float = 0.0):
    """Four hidden layers: 784-1024-512-256-128-10."""
    return _mlp("mlp_complex", (1024, 512, 256, 128), activation, dropout)


@register_model("mlp_residual")
def mlp_residual(activation: str = "relu", dropout: float = 0.0):
    """784 -> 100 -> 66, plus a learned 100->66 projection of the first layer, -> 10."""
    inputs = keras.Input(INPUT_SHAPE)
    hidden = _dense(layers.Flatten()(inputs), 100, activation, dropout)
    block = _dense(hidden, 66, activation, dropout)
    skip = layers.Dense(66, use_bias=False, name="skip_projection")(hidden)
    x = layers.Add()([block, skip])
    return _classifier(inputs, x, "mlp_residual")


@register_model("cnn3")
def cnn3(activation: str = "relu", dropout: float = 0.0):
    """Three 3x3 convs (32, 64, 128) with two max-pools, then dense 128 and 10."""
    inputs = keras.Input(INPUT_SHAPE)
    x = _activation(activation)(layers.Conv2D(32, 3, padding="same")(inputs))
    x = layers.MaxPooling2D(2)(x)
    x = _activation(activation)(layers.Conv2D(64, 3, padding="same")(x))
    x = layers.MaxPooling2D(2)(x)
    x = _activation(activation)(layers.Conv2D(128, 3, padding="same")(x))
    x = layers.GlobalAveragePooling2D()(x)
    x = _dense(x, 128, activation, dropout)
    return _classifier(inputs, x, "cnn3")


def _conv_bn(x, filters: int, activation: str):
    # No conv bias: the batch normalisation that follows has its own shift.
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    return _activation(activation)(layers.BatchNormalization()(x))


@register_model("cnn_bn")
def cnn_bn(activation: str = "relu", dropout: float = 0.0):
    """Four batch-normalised 3x3 convs (32 | 64, 64 | 128) with max-pools, then dense 10.

    Sized for a CPU: about 15M multiply-adds per image, 0.2M parameters (a sub-1 MB
    weights file); the 7x7x128 map goes straight to the classifier, keeping where
    each feature is, which a global average pool would throw away.
    """
    inputs = keras.Input(INPUT_SHAPE)
    x = layers.MaxPooling2D(2)(_conv_bn(inputs, 32, activation))
    x = _conv_bn(_conv_bn(x, 64, activation), 64, activation)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(_conv_bn(x, 128, activation))
    x = layers.Dropout(dropout)(x) if dropout else x
    return _classifier(inputs, x, "cnn_bn")
