"""The memory watch: a training process that has grown too much restarts itself.

TensorFlow keeps a few MiB of every model a process has built, whatever clear_session()
says, so a long search climbs trial by trial. The search resumes from its trial folders,
so the cure is cheap: after a trial, a process whose memory has grown past its allowance
raises MemoryRestart, and the command line replaces it with a fresh one (os.execv).
"""

from __future__ import annotations

from typing import Callable


class MemoryRestart(Exception):
    """Raised after a trial when this process has grown past its memory allowance."""


def resident_mib(pid: int | str = "self") -> float | None:
    """A process' resident memory now, in MiB (None where /proc is missing or it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def memory_bytes() -> int | None:
    """The machine's memory, MemTotal of /proc/meminfo (None where there is none). Not
    what is free now: every process of a search must cut the same groups, since a
    group's lock is named by its first point."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class MemoryWatch:
    """Memory after the first trial this process trained is the baseline; a later trial
    that ends max_growth (a fraction) above it raises MemoryRestart, while work is left."""

    def __init__(self, max_growth: float | None):
        self.max_growth, self.baseline_mib = max_growth, None

    def check(self, work_left: Callable[[], bool]) -> None:
        if not self.max_growth:
            return
        now = resident_mib()
        if now is None:
            return
        if self.baseline_mib is None:
            self.baseline_mib = now
        # A process with nothing left to train has no use for a fresh start.
        elif now > self.baseline_mib * (1 + self.max_growth) and work_left():
            raise MemoryRestart(f"memory grew from {self.baseline_mib:.0f} to {now:.0f} MiB "
                                f"(+{now / self.baseline_mib - 1:.1%}) since the first trial")
