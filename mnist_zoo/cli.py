"""What every command line shares: argparse value types and the runner of `main`.

Used as argparse `type=` functions, a bad value becomes argparse's own one-line usage
error with exit status 2 (`--epochs: must be a positive whole number, got '0'`), before
any data is loaded or any folder is written. `@command` wraps each command's `main`:
a `ZooError` (a user's mistake) becomes `error: <one line>` and exit status 2; any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
from pathlib import Path

from mnist_zoo.errors import SettingsError, ZooError


def command(main):
    """Decorate a command's `main(argv)`: a ZooError becomes `error: <message>` on stderr
    and exit status 2. Only a ZooError: catching ValueError here once turned bugs into a
    one-line "error:" that hid where they happened."""
    @functools.wraps(main)
    def run(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except ZooError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    return run


def positive_int(text: str) -> int:
    """A whole number >= 1: epochs, batch sizes, image counts, checkpoints to keep."""
    value = _parse(text, int, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """A whole number >= 0, where 0 means "off" (e.g. early-stopping patience)."""
    value = _parse(text, int, "a whole number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0, e.g. a learning rate; 'nan' and 'inf' are refused."""
    value = _parse(text, float, "a number")
    # float() accepts 'nan' and 'inf', and nan fails every comparison, so test finiteness first.
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    """A finite number from 0 up to, not including, 1: momentum, dropout."""
    value = _parse(text, float, "a number")
    if not (math.isfinite(value) and 0 <= value < 1):
        raise argparse.ArgumentTypeError(f"must be a number from 0 to below 1, got {text!r}")
    return value


def _parse(text: str, kind, what: str):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None


def output_folder(path, error=SettingsError) -> Path:
    """Create the output folder `path` (and its parents), or raise `error` saying why not."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise error(f"{path} is a file; --out takes a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a parent is a file, permission denied, read-only disk
        raise error(f"cannot create the output folder {path} ({err.strerror or err})") from None
    return path
