"""The model zoo: what a model is, how it is built, and how a trained one is loaded.

    registry.py    `@register_model`, `build_model`, `build_lenet5`, `list_models`,
                   `model_settings`, the activations
    zoo.py         the registered builders (lenet5, mlp_*, cnn3, cnn_bn)
    optimizers.py  the optimizer and learning-rate schedule that compile a model
    pretrained.py  the shipped weights in weights/: finds and checks them; imports no builder
    saved.py       `load_model`: a .keras file, a SavedModel, a run folder or "lenet5:mnist",
                   for inference (evaluate, predict)

Imports go one way: zoo -> registry -> optimizers, pretrained; saved -> registry, lazily.
The names below are imported on first use (which registers the builders), so that
`mnist_zoo.models.pretrained` and `mnist_zoo.models.saved` load without Keras; import them
from here, not from registry.py, which alone has no builders registered.

    >>> from mnist_zoo.models import build_model, list_models
    >>> list_models()
    ['cnn3', 'cnn_bn', 'lenet5', 'mlp_bp', 'mlp_complex', 'mlp_medium', 'mlp_residual', 'mlp_simple']
    >>> model = build_model("mlp_residual", activation="tanh", optimizer="sgd", learning_rate=0.01)
    >>> model = build_model("cnn3", weights="fashion_mnist")  # shipped pretrained weights
"""

# Public name -> the module of this package that defines it.
_HOMES = {"ACTIVATIONS": "registry", "build_lenet5": "registry", "build_model": "registry",
          "check_activation": "registry", "list_models": "registry",
          "model_settings": "registry", "register_model": "registry",
          "LR_SCHEDULES": "optimizers", "OPTIMIZERS": "optimizers",
          "make_learning_rate": "optimizers", "make_optimizer": "optimizers",
          "INPUT_SHAPE": "zoo"}
__all__ = sorted(_HOMES)


def __getattr__(name):
    if name in _HOMES:
        from mnist_zoo.models import optimizers, registry, zoo  # zoo registers the builders

        return getattr({"registry": registry, "optimizers": optimizers, "zoo": zoo}[_HOMES[name]],
                       name)
    raise AttributeError(f"module 'mnist_zoo.models' has no attribute {name!r}")
