"""The checks around keras-tuner's chief/worker mode (--chief, --worker): a chief checks
that its port is free before it writes anything, and a worker says what it waits for and
gives up after --chief-timeout seconds without an answer. No TensorFlow here."""

from __future__ import annotations

import errno
import socket
import sys

from mnist_zoo.errors import SettingsError

DEFAULT_CHIEF_TIMEOUT = 120  # seconds; the chief of --jobs answers within ~10 s of its start


def check_chief_port(host: str, port: str) -> None:
    """Bind host:port as the chief's gRPC server will, or refuse in one line: a port in
    use gave a 28-line gRPC traceback after the chief had written its tuner files."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, int(port), type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            # Like gRPC's own: a port whose last server has just closed is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except (OSError, ValueError, OverflowError) as err:
        reason = ("it is in use, by another chief or program" if isinstance(err, OSError)
                  and err.errno == errno.EADDRINUSE else getattr(err, "strerror", None) or str(err))
        raise SettingsError(f"the chief cannot serve on --oracle {host}:{port} ({reason}); "
                            f"pass --oracle {host or '127.0.0.1'}:PORT with a free port, and "
                            "the same to its workers") from None


def chief_answers(host: str, port: str, seconds: float = 1.0) -> bool:
    """Whether something accepts connections at the chief's address now."""
    try:
        with socket.create_connection((host, int(port)), timeout=seconds):
            return True
    except (OSError, ValueError):
        return False


def say_what_worker_waits_for(worker: str, address: str, timeout: float) -> None:
    """A worker started before its chief (or with a wrong --oracle) waits: say so, once."""
    host, _, port = address.rpartition(":")
    if not chief_answers(host, port):
        print(f"worker {worker}: waiting for the chief at {address} (start it with --chief "
              f"and the same --oracle); giving up after {timeout:g} s (--chief-timeout)",
              file=sys.stderr, flush=True)


def gave_up_waiting(worker: str, address: str, timeout: float) -> str:
    """The line of a worker whose chief did not answer within --chief-timeout."""
    return (f"worker {worker}: no answer from the chief at {address} in {timeout:g} s; "
            "start it (--chief, with the same --oracle), check --oracle, or raise "
            "--chief-timeout; finished trials are saved")
