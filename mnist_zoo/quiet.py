"""TensorFlow without its start-up chatter.

TensorFlow's C++ libraries print notices while they load (oneDNN is on, no CUDA driver,
CPU instructions it was not built for), before absl's logging is set up, so
TF_CPP_MIN_LOG_LEVEL cannot silence them, and a CPU machine prints them twice per
process. `install()` (called by `import mnist_zoo`) wraps the first import of TensorFlow,
by this package or by your code: file descriptor 2 goes to a temporary file while
TensorFlow loads and looks for devices, then every line that is not one of the known
notices is passed on to stderr, so real errors still show. MNIST_ZOO_TF_NOISE=1 turns
the filter off.
"""

from __future__ import annotations

import glob
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

NOTICES = [
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"port\.cc:\d+\] oneDNN custom operations are on",
    r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized",
    r"^To enable the following instructions: .*rebuild TensorFlow",
]
# Looking for a GPU on a machine without one: noise there, a real error where a GPU exists.
NO_GPU_NOTICES = [
    r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine",
    r"cuda_platform\.cc:\d+\] failed call to cuInit",
]


def install() -> None:
    """Filter TensorFlow's start-up notices when it is first imported."""
    if os.environ.get("MNIST_ZOO_TF_NOISE") or "tensorflow" in sys.modules:
        return
    if not any(isinstance(finder, _QuietFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())


def notice_pattern(has_gpu: bool | None = None) -> re.Pattern:
    if has_gpu is None:
        has_gpu = bool(glob.glob("/dev/nvidia[0-9]*"))
    notices = NOTICES + ([] if has_gpu else NO_GPU_NOTICES)
    return re.compile("|".join(f"(?:{notice})" for notice in notices))


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as usual, but runs its loading with stderr captured."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: let the real finders find it
        spec = importlib.util.find_spec("tensorflow")
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with filtered_stderr():
            self.loader.exec_module(module)
            module.config.list_physical_devices()  # the GPU probe prints here, not at import


class filtered_stderr:
    """Capture file descriptor 2; on exit, pass on every line that is not a known notice."""

    def __enter__(self):
        sys.stderr.flush()
        self.saved = os.dup(2)
        self.captured = tempfile.TemporaryFile()
        os.dup2(self.captured.fileno(), 2)
        return self

    def __exit__(self, *exc):
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.captured.seek(0)
        pattern = notice_pattern()
        for line in self.captured.read().decode(errors="replace").splitlines():
            if line.strip() and not pattern.search(line):
                print(line, file=sys.stderr)
        self.captured.close()
        return False
