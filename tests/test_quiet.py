"""Issue #12: TensorFlow's start-up notices are filtered, real errors are not."""

import os
import subprocess
import sys

import pytest

from mnist_zoo import quiet


def test_notices_are_dropped_and_other_lines_pass(capfd):
    with quiet.filtered_stderr():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are "
                    b"written to STDERR\n"
                    b"I0000 00:00:1795773472.6 3325 port.cc:153] oneDNN custom operations are "
                    b"on. You may see slightly different numerical results\n"
                    b"E0000 00:00:17957 12 some_kernel.cc:9] a real problem\n")
        sys.stderr.write("a Python warning\n")  # Python's own stream, same descriptor
        sys.stderr.flush()
    err = capfd.readouterr().err
    assert "a real problem" in err and "a Python warning" in err
    assert "oneDNN" not in err and "absl::InitializeLog" not in err


def test_gpu_probe_failures_are_noise_only_without_a_gpu():
    line = "E0000 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error"
    assert quiet.notice_pattern(has_gpu=False).search(line)
    assert not quiet.notice_pattern(has_gpu=True).search(line)


@pytest.mark.slow
def test_a_process_that_uses_the_package_starts_quietly():
    code = ("import mnist_zoo, keras, tensorflow as tf; "
            "print(float(tf.reduce_sum(tf.ones((2, 2)))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1"})
    assert result.returncode == 0 and result.stdout.strip() == "4.0"
    for notice in ("absl::InitializeLog", "oneDNN custom operations", "cuda drivers", "cuInit"):
        assert notice not in result.stderr, result.stderr
    # oneDNN asked for explicitly: TensorFlow prints its notice only where oneDNN is on,
    # and by default it is on only on CPUs with AVX512_VNNI/BF16/AMX.
    loud = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "MNIST_ZOO_TF_NOISE": "1",
                                            "TF_ENABLE_ONEDNN_OPTS": "1"})
    assert "oneDNN custom operations" in loud.stderr  # the filter is what silences them
