"""Why a trial or the search failed, and the one line that says so.

Why a trial failed decides what the search does next:
 - it diverged (NaN loss): not a failure at all; the run is recorded as "diverged".
 - the environment failed: the same failure would hit every later trial, so the search
   stops at once with one line naming the cause and the fix (the trial stays unfinished
   and a rerun after the fix trains it): a TensorFlow kernel that refuses these models
   on this machine (InvalidArgument, Unimplemented, Internal: the data were checked when
   they loaded, so the kernel, not the trial, is at fault), out of memory, a missing
   library, or a folder the search cannot write (read-only, disk full).
 - anything else is the trial's own (a setting its model refuses): its row is recorded
   as failed with a one-line error, the full trace goes to its folder's error.txt, and
   the grid goes on.
A fused group that fails with a kernel or memory error is first retried one model at a
time, which avoids the grouped kernels and needs a fraction of the memory.
"""

from __future__ import annotations

import errno
from pathlib import Path

import keras_tuner as kt
import tensorflow as tf

from mnist_zoo.errors import first_line
from mnist_zoo.search.table import RESULTS_CSV

KERNEL_ERRORS = (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError,
                 tf.errors.InternalError)
MEMORY_ERRORS = (tf.errors.ResourceExhaustedError, MemoryError)
ENVIRONMENT_ERRORS = (*KERNEL_ERRORS, *MEMORY_ERRORS, ImportError, OSError)
TRIAL_ERROR_FILE = "error.txt"
# How TensorFlow's file layer ends the message of a write that failed for the folder's sake.
WRITE_FAILURES = ("Permission denied", "Read-only file system", "No space left on device",
                  "Disk quota exceeded")


class EnvironmentFailure(kt.errors.FatalError):
    """The search cannot go on here (see ENVIRONMENT_ERRORS); the message is one line
    naming the cause and the fix. A keras-tuner FatalError, so it ends the search."""


def describe_failure(err: BaseException, out: Path, what: str = "") -> str:
    """One line for an environment failure: what failed, why, and what to change."""
    if isinstance(err, OSError) and not isinstance(err, tf.errors.OpError):
        where = err.filename or out
        reason = err.strerror or str(err)
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            fix = f"free some space under {out}"
        elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            fix = f"make {out} writable (or pass another --out)"
        else:
            fix = f"fix {where}"
        return f"cannot write {where} ({reason}); {fix}, then rerun the same command"
    if isinstance(err, MEMORY_ERRORS):
        return (f"out of memory training {what or 'a trial'} ({first_line(err)}); free memory, "
                "lower batch_size in the grid or use fewer --jobs, then rerun the same command")
    if isinstance(err, ImportError):
        return (f"a library is missing ({first_line(err)}); install it (pip install -e .), "
                "then rerun the same command")
    return (f"TensorFlow cannot train {what or 'this trial'} on this machine "
            f"({first_line(err)}); leave that model out of the grid or use another "
            "TensorFlow build, then rerun the same command")


def search_failure(err: Exception, out: Path, grid: str) -> str | None:
    """One line for what keras-tuner raises when trials keep failing (a RuntimeError here,
    a gRPC error from the chief in a worker), or when the chief fails; None otherwise."""
    import grpc

    text = err.details() if isinstance(err, grpc.RpcError) else str(err)
    if "consecutive failures" in (text or ""):
        last = [line.strip() for line in text.splitlines() if "Error" in line]
        cause = last[-1].split("FailedTrialError: ")[-1] if last else "see the CSV"
        return (f"the search stopped: trial after trial failed, the last with {cause}; the "
                f"error column of {out / RESULTS_CSV} and each trial's error.txt say why; fix "
                "that, then rerun the same command (failed trials are retried)")
    if isinstance(err, grpc.RpcError) and err.code() == grpc.StatusCode.UNKNOWN:
        cause = (text or "").strip().splitlines()[0] if (text or "").strip() else str(err.code())
        cause = cause.removeprefix("Exception calling application: ")
        # It could not save the search's state: Python's OSError says "[Errno 13] ...",
        # TensorFlow's gfile (keras-tuner writes trial.json through it) "path; Permission
        # denied"; which one fails first depends on which write the chief was at.
        if "[Errno" in cause or cause.endswith(WRITE_FAILURES):
            return (f"the chief cannot write the search's state ({cause}); make {out} "
                    "writable or free space there, then rerun the same command")
        return (f"the chief of grid {grid} failed ({cause}); fix that, then rerun the same "
                "command")
    return None


def chief_unreachable(err: Exception) -> bool:
    import grpc

    return isinstance(err, grpc.RpcError) and err.code() == grpc.StatusCode.UNAVAILABLE


def chief_timed_out(err: Exception) -> bool:
    """A worker's call that the chief did not answer within --chief-timeout."""
    import grpc

    return isinstance(err, grpc.RpcError) and err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
