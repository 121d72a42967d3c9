"""Grid files: where they are, what values each axis allows, and the grid's points.

A grid is a TOML file (search/*.toml at the top of the checkout, installed to
share/mnist_zoo/search): an [axes] table of lists, one trial per combination, and an
optional [settings] table; an optional [search] table names another strategy, whose
axes may also be ranges (mnist_zoo.search.space); an optional [when] table narrows where
an axis applies, beyond the settings table's rule (README: "The settings"). This module
reads and checks grid files and enumerates their points and the keys that name them;
the settings themselves, their checks included, are mnist_zoo.settings' table. It
imports no TensorFlow, so a bad value is refused at once and plot, bench and tests can
share it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import sys
from pathlib import Path

from mnist_zoo.axes import AXES, CORE_AXES, FLOAT_AXES, MEMBER_AXES, REPEAT_AXIS
from mnist_zoo.errors import GridError
from mnist_zoo.search.space import (check_conditions, check_range, check_search_table,
                                    check_when, conditions_of, is_range)
from mnist_zoo.settings import DEFAULTS, SETTINGS, Setting

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

GRID_DIRS = [
    Path.cwd() / "search",
    Path(__file__).resolve().parents[2] / "search",  # a source checkout / editable install
    Path(sys.prefix) / "share" / "mnist_zoo" / "search",  # installed by setup.cfg data_files
]
# A grid's [settings]: the table's run settings that are no axis, and the repeats.
REPEATS = Setting("repeats", int, 1, "run", "runs of every grid point", low=1, axis=False)
GRID_SETTINGS = {**{name: s for name, s in SETTINGS.items() if not s.axis}, "repeats": REPEATS}


# --------------------------------------------------------------------------- value checks
# Each axis's check is the settings table's (mnist_zoo.settings): a problem, or None.
AXIS_CHECKS = {axis: SETTINGS[axis].check for axis in AXES}


# --------------------------------------------------------------------------- grid files
def find_grid(grid: str) -> Path:
    """A grid's file: a path as given, else NAME.toml in the known grid folders."""
    path = Path(grid)
    if path.suffix == ".toml" or path.is_file() or (path.is_dir() and len(path.parts) > 1):
        if path.is_dir():
            raise GridError(f"grid {path} is a folder; give a .toml grid file or a built-in "
                            f"grid's name ({', '.join(builtin_grids())})")
        if not path.is_file():
            raise GridError(f"grid file {path} does not exist")
        return path
    for folder in GRID_DIRS:
        if (folder / f"{grid}.toml").is_file():
            return folder / f"{grid}.toml"
    raise GridError(f"unknown grid {grid!r}; built-in grids: "
                    f"{', '.join(builtin_grids()) or 'none found'}; "
                    "or give the path of a .toml file")


def builtin_grids() -> dict[str, Path]:
    """Name -> file of every grid in the known folders (the first folder wins)."""
    found: dict[str, Path] = {}
    for folder in GRID_DIRS:
        for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
            found.setdefault(path.stem, path)
    return dict(sorted(found.items()))


def load_grid(grid: str) -> dict:
    """Read and check a grid file: {'name', 'path', 'axes': {axis: [values] or a range},
    'settings', 'search'} (resolve_search applies the strategy's own checks)."""
    path = find_grid(grid)
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))  # TOML is UTF-8 by definition
    except UnicodeDecodeError as err:
        raise GridError(f"{path}: not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset "
                        f"{err.start}); save the grid file as UTF-8") from None
    except tomllib.TOMLDecodeError as err:
        raise GridError(f"{path}: not valid TOML ({err})") from err
    unknown_tables = set(spec) - {"description", "axes", "settings", "search", "when"}
    if unknown_tables:
        raise GridError(f"{path}: unknown key(s) {sorted(unknown_tables)}; a grid has "
                        "'description', an [axes] table and optional [settings], [search] "
                        "and [when] tables")
    axes = spec.get("axes")
    if not isinstance(axes, dict) or not axes:
        raise GridError(f"{path}: no [axes] table; add one, e.g. activation = [\"relu\", \"tanh\"]")
    for axis, values in axes.items():
        if is_range(values) and axis in AXIS_CHECKS:  # random, bayesian, hyperband only
            axes[axis] = check_range(path, axis, values, AXIS_CHECKS[axis])
        else:
            _check_axis(path, axis, values)
    settings = spec.get("settings", {})
    for key, value in settings.items():
        _check_setting(path, key, value)
    search = check_search_table(path, spec.get("search", {}))
    # TOML tells 0 from 0.0, keras-tuner's Choice refuses to mix them: numbers of a float
    # axis are floats.
    axes = {axis: [float(v) for v in values] if axis in FLOAT_AXES and not is_range(values)
            else values for axis, values in axes.items()}
    # Core axes first, in their usual order, then any extra axes as written.
    full_axes = {axis: axes.get(axis, [default]) for axis, default in CORE_AXES.items()}
    full_axes.update({axis: values for axis, values in axes.items() if axis not in CORE_AXES})
    check_conditions(path, check_when(path, spec.get("when", {}), full_axes))
    if spec.get("when"):
        # The axes carry it (AxisValues), but a JSON dump of them drops it: here it also
        # reaches the fingerprint that tells a resumed search from another grid.
        settings = {**settings, "when": spec["when"]}
    return {"name": path.stem, "path": path, "axes": full_axes, "settings": settings,
            "search": search, "description": spec.get("description", "")}


def _check_axis(path: Path, axis: str, values) -> None:
    if axis not in AXIS_CHECKS:
        raise GridError(f"{path}: unknown axis {axis!r}; allowed axes: {', '.join(AXES)}")
    if not isinstance(values, list) or not values:
        raise GridError(f"{path}: axis {axis!r} must be a non-empty list, e.g. "
                        f"{axis} = [{CORE_AXES.get(axis, '...')!r}]")
    for value in values:
        problem = AXIS_CHECKS[axis](value)
        if problem:
            raise GridError(f"{path}: {axis} = {value!r} is not allowed: {problem}")
    if len(set(map(str, values))) != len(values):
        raise GridError(f"{path}: axis {axis!r} lists a value twice: {values}")


def _check_setting(path: Path, key: str, value) -> None:
    if key not in GRID_SETTINGS:
        raise GridError(f"{path}: unknown setting {key!r}; allowed settings: "
                        f"{', '.join(GRID_SETTINGS)}")
    problem = GRID_SETTINGS[key].check(value)
    if problem:
        raise GridError(f"{path}: setting {key} = {value!r} is not allowed: {problem}")


# --------------------------------------------------------------------------- points
def grid_size(axes: dict) -> int:
    """How many points a grid of lists has (a range has no count: math.inf)."""
    if any(is_range(values) for values in axes.values()):
        return math.inf
    return len(grid_points(axes))


def grid_points(axes: dict) -> list[dict]:
    """Every combination, as dicts, the last axis varying fastest (the grid file's order).
    A setting is crossed only with the values where it applies (mnist_zoo.settings):
    two optimizers of which one takes a setting given two values give 3 points, not 4:
    the other optimizer once, without that setting."""
    rules = {axis: conditions_of(axis, values) for axis, values in axes.items()}
    points, seen = [], set()
    for combo in itertools.product(*axes.values()):
        point = dict(zip(axes, combo))
        values = {axis: value for axis, value in point.items()
                  if all(point.get(parent, DEFAULTS.get(parent)) in allowed
                         for parent, allowed in rules[axis].items())}
        key = values_key(values)
        if key not in seen:
            seen.add(key)
            points.append(values)
    return points


def with_repeats(axes: dict, repeats: int) -> dict:
    """The axes with the repeat axis last, when a point runs more than once."""
    axes = {axis: values for axis, values in axes.items() if axis != REPEAT_AXIS}
    return {**axes, REPEAT_AXIS: list(range(repeats))} if repeats > 1 else axes


def repeat_of(values: dict) -> int:
    """Which repeat of its grid point a trial is (0 without repeats)."""
    return values.get(REPEAT_AXIS, 0)


# A run that goes on from an earlier one (Hyperband's later rounds) names it here and the
# epoch it starts from in INITIAL_EPOCH; runs from different earlier runs still share
# their batches (each member starts from its own weights).
CONTINUED_FROM, INITIAL_EPOCH = "continued_from", "initial_epoch"


def batches_key(values: dict) -> str:
    """Trials with equal keys differ only in optimizer settings, repeat or the run they go
    on from: they see the same batches, so the search can train them together
    (mnist_zoo.train.fused)."""
    shared = {k: v for k, v in values.items()
              if k not in (*MEMBER_AXES, REPEAT_AXIS, CONTINUED_FROM)}
    return _digest(shared)


def values_key(values: dict) -> str:
    """A short stable name for one grid point (its run folder)."""
    return _digest(values)


def _digest(values: dict) -> str:
    return hashlib.sha1(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]
