"""mnist_zoo: a Keras model zoo for handwritten digits with a keras-tuner grid search."""

import os

# TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) hides our own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mnist_zoo.models import build_lenet5, build_model, list_models, register_model  # noqa: E402

__all__ = ["build_lenet5", "build_model", "list_models", "register_model"]
__version__ = "0.1.0"
