"""mnist_zoo: a Keras model zoo for handwritten digits with a keras-tuner grid search."""

import os

# TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) hides our own output: its log
# level for what goes through absl, and mnist_zoo.quiet for what is printed before that.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from mnist_zoo import quiet  # noqa: E402

quiet.install()

__all__ = ["build_lenet5", "build_model", "list_models", "register_model"]
__version__ = "0.1.0"


def __getattr__(name):
    # Imported on first use: `python -m mnist_zoo.plot --help` should not wait for Keras.
    if name in __all__:
        from mnist_zoo import models

        return getattr(models, name)
    raise AttributeError(f"module 'mnist_zoo' has no attribute {name!r}")
