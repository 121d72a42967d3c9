"""What every command line shares: argparse value types and the runner of `main`.

Used as argparse `type=` functions, a bad value becomes one `error:` line with exit
status 2 (`error: argument --epochs: must be a positive whole number, got '0'`), before
any data is loaded or any folder is written: `Parser` prints argparse's errors as that one
line and a hint to --help, without the usage block. `add_settings` adds the settings
table's options (mnist_zoo.settings). `@command` wraps each command's `main`: a
`ZooError` (a user's mistake) becomes `error: <one line>` and exit status 2; any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
from pathlib import Path

from mnist_zoo.errors import SettingsError, ZooError
from mnist_zoo.settings import Setting, where_it_applies


class Parser(argparse.ArgumentParser):
    """argparse with its errors on one line, `error: <problem> (see PROG --help)`, as
    the package's own errors are, instead of a usage block of 5 to 20 lines first."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def add_settings(parser: argparse.ArgumentParser, settings) -> None:
    """An option per setting of the table (mnist_zoo.settings), --learning-rate for
    learning_rate, its default None ("not given": a recipe or the table fills it)."""
    for setting in settings:
        flags = [setting.option, *([setting.alias] if setting.alias else [])]
        kind = {} if setting.kind is str else {"type": setting_type(setting)}
        if isinstance(setting.choices, tuple):
            kind["choices"] = setting.choices
        if setting.kind is bool:
            kind = {"action": argparse.BooleanOptionalAction}
        where = f"; only for {where_it_applies(setting.name)}" if setting.applies else ""
        default = "" if setting.default is None else f" (default {setting.default})"
        parser.add_argument(*flags, default=None, help=setting.help + where + default, **kind)


def setting_type(setting: Setting):
    """An argparse type: the text converted to the setting's kind and checked by it."""
    def parse(text: str):
        value = _parse(text, setting.kind, "a number" if setting.kind is float
                       else "a whole number")
        problem = setting.check(value)
        if problem:
            raise argparse.ArgumentTypeError(f"must be {problem.removeprefix('expected ')}, "
                                             f"got {text!r}")
        return value
    parse.__name__ = setting.kind.__name__  # argparse names the type in some messages
    return parse


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
