"""The package's one error base, `ZooError`, and its kinds.

A ZooError is a mistake in what the user gave (an option, a grid file, a data folder, a
model file): its message is one line naming the cause and the way out, and the commands
print it as `error: <message>` and exit with status 2 (`mnist_zoo.cli.run_command`).
Anything else that escapes a command is a bug and shows its traceback.

Kinds that were ValueErrors before this base existed stay ValueErrors too, so code that
catches ValueError from `train()` or `load_grid()` keeps working.
"""

from __future__ import annotations


class ZooError(Exception):
    """A user's mistake, described in one line that says what to change."""


class SettingsError(ZooError, ValueError):
    """A setting that cannot be used: an unknown model, activation or optimizer, a number
    out of range, a run folder that would be replaced, pretrained weights that do not exist."""


class DataError(ZooError, RuntimeError):
    """Data that cannot be loaded: a missing or unreadable folder, a corrupt IDX file, bad
    labels or shapes."""


class GridError(ZooError, ValueError):
    """A grid file that cannot be run; the message names the file, key and allowed values."""


class ResultsError(ZooError, RuntimeError):
    """A results folder the search cannot use; the message names the folder and the way out."""


class ModelError(ZooError, RuntimeError):
    """A path (or zoo name) that holds no model that can be loaded, or one that does not fit."""


class RecipeError(ZooError, ValueError):
    """An unknown recipe name or a malformed recipe."""


class ImageError(ZooError, ValueError):
    """An image that cannot be read or holds no digit."""


class PlotError(ZooError, ValueError):
    """A results file that cannot be charted; the message says why and what to do."""


def first_line(err: BaseException, limit: int = 200) -> str:
    """An exception as one line, its type and the first line of its message: what a
    results row or an `error:` line quotes of a long TensorFlow or Keras message."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    text = f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return text if len(text) <= limit else text[:limit] + "..."
