"""mnist_zoo: a Keras model zoo for handwritten digits with a keras-tuner grid search.

Three layers, each importing only from those before it:

    the zoo      settings.py (the table of settings), axes.py, data.py, models/ (registry,
                 builders, pretrained weights, loading),
                 train/ (fit_models, fused training, train(), recipes), scores.py
    the search   search/ (python -m mnist_zoo.search; its __init__ has the map)
    the reports  plot/, evaluate.py, predict.py

errors.py holds ZooError, the base of every user-facing error, and cli.py the runner
that turns it into one `error:` line. `from mnist_zoo import build_model` and friends
load Keras on first use.
"""

import os
import platform
import sys

# TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) hides our own output: its log
# level for what goes through absl, and mnist_zoo.quiet for what is printed before that.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from mnist_zoo import quiet  # noqa: E402

quiet.install()


def _is_own_command() -> bool:
    """True in `python -m mnist_zoo.<command>` (and the processes it starts), not in
    programs that merely import the package."""
    argv = getattr(sys, "orig_argv", [])
    return any(flag == "-m" and module.startswith("mnist_zoo")
               for flag, module in zip(argv, argv[1:]))


def onednn_by_default() -> bool:
    """Whether TensorFlow turns oneDNN on by itself on this CPU (its rule: AVX512_VNNI,
    AVX512_BF16 or AMX among the CPU's flags; Linux's /proc/cpuinfo, else False)."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = handle.read()
    except OSError:
        return False
    return any(flag in flags for flag in ("avx512_vnni", "avx512_bf16", "amx"))


def prefer_onednn() -> None:
    """TensorFlow turns oneDNN on by default only on CPUs with AVX512_VNNI/BF16/AMX. On
    other x86 CPUs its own kernels train these models 1.3-2.4x slower, and they lack the
    gradient of the grouped convolution that fused training is fastest with
    (docs/benchmarks.md). So the package's own commands turn oneDNN on for x86 unless the
    user has set TF_ENABLE_ONEDNN_OPTS; code that imports the package keeps TensorFlow's
    choice. Either way mnist_zoo.train.fused checks what this process' kernels can train."""
    if (_is_own_command() and "tensorflow" not in sys.modules
            and platform.machine().lower() in ("x86_64", "amd64")):
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


prefer_onednn()

__all__ = ["build_lenet5", "build_model", "list_models", "register_model"]
__version__ = "0.1.0"


def __getattr__(name):
    # Imported on first use: `python -m mnist_zoo.plot --help` should not wait for Keras.
    if name in __all__:
        from mnist_zoo import models

        return getattr(models, name)
    raise AttributeError(f"module 'mnist_zoo' has no attribute {name!r}")
