"""The model zoo: a registry of small Keras builders for 28x28 digit images.

Builders are registered with `@register_model("name")` and only describe the
architecture; `build_model(name, **settings)` builds one and compiles it with the
optimizer and learning rate asked for:

    >>> from mnist_zoo import build_model, list_models
    >>> list_models()
    ['cnn3', 'cnn_bn', 'lenet5', 'mlp_bp', 'mlp_complex', 'mlp_medium', 'mlp_residual', 'mlp_simple']
    >>> model = build_model("mlp_residual", activation="tanh", optimizer="sgd", learning_rate=0.01)
    >>> model = build_model("cnn3", weights="fashion_mnist")  # shipped pretrained weights
"""

from __future__ import annotations

import inspect
from typing import Callable

import keras
from keras import layers

ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "selu", "gelu", "leaky_relu", "swish")
OPTIMIZERS = ("sgd", "adam", "rmsprop")
LR_SCHEDULES = ("constant", "exponential", "cosine")
INPUT_SHAPE = (28, 28, 1)

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
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(list_models())}")
    return _REGISTRY[name]


def build_model(name: str, *, optimizer: str = "adam", learning_rate: float = 1e-3,
                momentum: float = 0.0, lr_schedule: str = "constant", decay_steps: int = 1000,
                compile: bool = True, steps_per_execution: int = 1, jit_compile="auto",
                weights: str | None = None, **settings) -> keras.Model:
    """Build a registered model and compile it for sparse integer labels.

    settings go to the builder (activation, dropout, pooling, ...); unknown ones
    raise a ValueError that lists the accepted ones.
    weights: None for a fresh model, or the dataset of shipped pretrained weights
    ("mnist", "fashion_mnist"); the builder then gets the settings they were trained
    with, and a different one raises a ValueError.
    """
    builder = _get_builder(name)
    weights_file = None
    if weights is not None:
        weights_file, settings = _pretrained_settings(name, weights, settings)
    accepted = model_settings(name)
    unknown = sorted(set(settings) - set(accepted))
    if unknown:
        raise ValueError(f"model {name!r} does not take {unknown}; it accepts {accepted} "
                         "plus optimizer, learning_rate, momentum, lr_schedule")
    if "activation" in settings:
        check_activation(settings["activation"])
    model = builder(**settings)
    if weights_file is not None:
        model.load_weights(weights_file)
    if compile:
        model.compile(
            optimizer=make_optimizer(optimizer, learning_rate, momentum=momentum,
                                     lr_schedule=lr_schedule, decay_steps=decay_steps),
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


def _pretrained_settings(name: str, weights: str, settings: dict):
    """The shipped weights file for (name, weights) and the builder settings it needs."""
    from mnist_zoo.pretrained import get_weights

    path, entry = get_weights(name, weights)
    trained_with = entry["settings"]
    # Dropout only acts in training, so any rate suits the weights (for fine-tuning).
    clashes = {key: value for key, value in settings.items()
               if key in trained_with and key != "dropout" and value != trained_with[key]}
    if clashes:
        raise ValueError(f"weights {name}:{weights} were trained with {trained_with}; "
                         f"they cannot be loaded into {clashes}")
    return path, {**trained_with, **settings}


def check_activation(activation: str) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of "
                         f"{', '.join(ACTIVATIONS)}")


def make_learning_rate(learning_rate: float, lr_schedule: str = "constant",
                       decay_steps: int = 1000):
    """A float for 'constant', else a Keras schedule starting at `learning_rate`."""
    if lr_schedule == "constant":
        return float(learning_rate)
    if lr_schedule == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(learning_rate, decay_steps, 0.9)
    if lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
    raise ValueError(f"unknown lr_schedule {lr_schedule!r}; choose one of "
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
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


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
        raise ValueError(f"unknown pooling {pooling!r}; choose 'avg' or 'max'")
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
