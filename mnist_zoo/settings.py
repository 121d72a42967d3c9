"""The settings of a training run, in one table: each one's name, type, default, check,
whether a search may give it as a range, what it belongs to, where it applies, its
chart label and its help text. No TensorFlow (it loads in about 0.1 s), so the command
lines, grid files, recipes and charts all read it before anything heavy loads.

Everything else is derived from SETTINGS: `train`'s options and keyword checks, a grid
file's axes and their checks and ranges, the recipe keys, the keyword arguments that
reach a model's builder and the optimizer factory, and the charts' short labels. A new
setting is one entry here plus its use where it acts (a builder or make_optimizer).

A setting that does not apply to a run's optimizer or model (momentum for Adam, pooling
for an MLP) is left out of that run: a search does not cross it with them, and `train`
refuses it when asked for (`applies`).

    >>> from mnist_zoo.settings import run_settings
    >>> run = run_settings({"optimizer": "adam", "learning_rate": 0.01})
    >>> run["learning_rate"], "momentum" in run
    (0.01, False)
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import sys
import types
from typing import Callable, Mapping

from mnist_zoo.errors import SettingsError

# The names some settings choose from. The model names are the registry's (a test holds
# them equal); a model registered from code is accepted once mnist_zoo.models is loaded.
MODELS = ("cnn3", "cnn_bn", "lenet5", "mlp_bp", "mlp_complex", "mlp_medium", "mlp_residual",
          "mlp_simple")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "selu", "gelu", "leaky_relu", "swish")
OPTIMIZERS = ("sgd", "adam", "rmsprop")
LR_SCHEDULES = ("constant", "exponential", "cosine")
POOLINGS = ("avg", "max")
# What a setting belongs to: the model's layers, the optimizer that trains it, the
# images it sees, or the run around them.
GROUPS = ("architecture", "optimizer", "data", "run")


@dataclasses.dataclass(frozen=True)
class Setting:
    """One row of the table.

    kind: int, float, str or bool. label: the charts' short name, for a setting whose
    values need it ("0.001" does, "relu" does not); alias: a second
    command-line option. low/high bound a number (low_inclusive: whether low
    itself is allowed; high is excluded). choices: the allowed values, or a function
    returning a problem for a bad one. core: every search trial has it (a grid that
    leaves it out uses the default). axis: a grid file may vary it; otherwise it belongs
    in [settings]. may_range: random, Bayesian and Hyperband searches may draw it from
    {min, max}. member: trials differing only in it (and their repeat) see the same
    batches, so a search trains them as one fused graph. applies: {setting: values} where
    it means something, e.g. {"optimizer": ("sgd",)}; empty: everywhere.
    """

    name: str
    kind: type
    default: object
    group: str
    help: str
    label: str | None = None
    alias: str | None = None
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    choices: tuple | Callable | None = None
    core: bool = False
    axis: bool = True
    may_range: bool = False
    member: bool = False
    applies: Mapping[str, tuple] = dataclasses.field(default_factory=dict)

    @property
    def short(self) -> str:
        """The chart label: 'lr' for learning_rate."""
        return self.label or self.name

    @property
    def option(self) -> str:
        """The command-line option: --learning-rate."""
        return "--" + self.name.replace("_", "-")

    def check(self, value) -> str | None:
        """What is wrong with value for this setting, or None."""
        if self.kind in (int, float):
            return self._check_number(value)
        if self.kind is bool:
            return None if isinstance(value, bool) else "expected true or false"
        if callable(self.choices):
            return self.choices(value)
        if self.choices is not None and value not in self.choices:
            return f"choose from {', '.join(map(str, self.choices))}"
        return None

    def _check_number(self, value) -> str | None:
        # numbers.Real/Integral take numpy's scalars too; a bool is no number here.
        allowed = numbers.Real if self.kind is float else numbers.Integral
        if isinstance(value, bool) or type(value).__name__ == "bool_" or not isinstance(
                value, allowed):
            return f"expected {'a number' if self.kind is float else 'a whole number'}"
        if not math.isfinite(value):  # nan fails every comparison below, inf passes them
            return "expected a finite number"
        low_ok = self.low is None or value > self.low or (self.low_inclusive and value == self.low)
        if not low_ok or (self.high is not None and value >= self.high):
            return f"expected {self.bounds()}"
        return None

    def refusal(self, value, problem: str) -> str:
        """The one-line message for a value its check refused."""
        if self.kind in (int, float):
            return f"{self.name} must be {problem.removeprefix('expected ')}, got {value!r}"
        if problem.startswith("unknown"):
            return problem
        return f"unknown {self.name} {value!r}; {problem}"

    def bounds(self) -> str:
        """'a value > 0', 'a value >= 0 and < 1' (the check's words)."""
        low = f"{'>=' if self.low_inclusive else '>'} {self.low:g}" if self.low is not None else ""
        high = f"< {self.high:g}" if self.high is not None else ""
        return "a value " + " and ".join(part for part in (low, high) if part)


def _check_model(value) -> str | None:
    if value in MODELS:
        return None
    registry = sys.modules.get("mnist_zoo.models.registry")  # loaded: models added from code count
    if registry is not None and value in registry.list_models():
        return None
    names = sorted(set(MODELS) | set(registry.list_models() if registry else ()))
    return f"choose from {', '.join(names)}"


def _check_augment(value) -> str | None:
    from mnist_zoo.data import AUGMENTATIONS, parse_augment  # numpy only

    try:
        parse_augment(value)
    except ValueError as err:  # a SettingsError naming the unknown ones
        return str(err)
    except (AttributeError, TypeError):
        return f"choose 'none', 'all' or a '+'-joined subset of {', '.join(AUGMENTATIONS)}"
    return None


_TABLE = (
    # The axes every search trial has, in the results table's order.
    Setting("model", str, "lenet5", "architecture", f"zoo model: {', '.join(MODELS)}",
            choices=_check_model, core=True),
    Setting("activation", str, "relu", "architecture", "hidden layers' activation",
            choices=ACTIVATIONS, core=True),
    Setting("learning_rate", float, 0.001, "optimizer", "the optimizer's (first) learning rate",
            label="lr", alias="--lr", low=0, low_inclusive=False, core=True, may_range=True,
            member=True),
    Setting("optimizer", str, "adam", "optimizer", "optimizer",
            choices=OPTIMIZERS, core=True, member=True),
    Setting("batch_size", int, 64, "run", "images per training step", label="bs", low=1,
            core=True, may_range=True),
    Setting("epochs", int, 3, "run", "passes over the training images", label="ep", low=1,
            core=True, may_range=True),
    # Axes a search file may add.
    Setting("momentum", float, 0.0, "optimizer", "SGD's and RMSprop's momentum, from 0 to "
            "below 1", label="mom", low=0, high=1, may_range=True, member=True,
            applies={"optimizer": ("sgd", "rmsprop")}),
    Setting("dropout", float, 0.0, "architecture", "dropout after dense layers, from 0 to below 1",
            label="drop", low=0, high=1, may_range=True),
    Setting("pooling", str, "avg", "architecture", "LeNet-5's pooling layers", label="pool",
            choices=POOLINGS, applies={"model": ("lenet5",)}),
    Setting("augment", str, "none", "data", "training-time augmentation: none, all (every one "
            "but flip), or a '+'-joined subset of rotate, zoom, translate, crop, flip (flip "
            "mirrors left-right, for Fashion-MNIST)", label="aug", choices=_check_augment),
    Setting("lr_schedule", str, "constant", "optimizer", "decay over the whole run from the "
            "learning rate", label="sched", choices=LR_SCHEDULES, member=True),
    Setting("nesterov", bool, False, "optimizer", "SGD's momentum as Nesterov's (looks ahead)",
            label="nest", member=True, applies={"optimizer": ("sgd",)}),
    # A search's [settings] and train's run options: never an axis.
    Setting("seed", int, 0, "run", "seed for the data split and the initial weights", low=0,
            axis=False),
    Setting("subset", int, None, "data", "train on this many training images only", low=1,
            axis=False),
    Setting("validation_size", int, None, "data", "images held out for validation (default "
            "1/12: 5,000 of 60,000)", low=0, axis=False),
)
SETTINGS: Mapping[str, Setting] = types.MappingProxyType({s.name: s for s in _TABLE})

CORE = tuple(name for name, s in SETTINGS.items() if s.core)
AXES = tuple(name for name, s in SETTINGS.items() if s.axis)
RANGE_AXES = tuple(name for name, s in SETTINGS.items() if s.may_range)
MEMBER_AXES = tuple(name for name, s in SETTINGS.items() if s.member)
DEFAULTS = types.MappingProxyType({name: s.default for name, s in SETTINGS.items()})
SHORT_NAMES = types.MappingProxyType({name: s.label for name, s in SETTINGS.items() if s.label})


def in_group(group: str, *, axes_only: bool = True) -> tuple[str, ...]:
    """The settings of one group, in the table's order."""
    return tuple(name for name, s in SETTINGS.items()
                 if s.group == group and (s.axis or not axes_only))


def applies(name: str, values: Mapping) -> bool:
    """Whether setting `name` means something beside `values` (a run's other settings):
    every condition of its `applies` whose parent is in values holds. A parent left out
    counts as its default."""
    return all(values.get(parent, DEFAULTS[parent]) in allowed
               for parent, allowed in SETTINGS[name].applies.items())


def where_it_applies(name: str) -> str:
    """'optimizer sgd or rmsprop' (for messages and help)."""
    return " and ".join(f"{parent} {' or '.join(allowed)}"
                        for parent, allowed in SETTINGS[name].applies.items())


class RunSettings(Mapping):
    """A run's settings, made once and frozen: every setting of the table that applies to
    the run, checked, with defaults where it gave none. Reads like a dict."""

    def __init__(self, values: Mapping):
        self._values = types.MappingProxyType(dict(values))

    def __getitem__(self, name):
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def __repr__(self):
        return f"RunSettings({dict(self._values)!r})"

    def group(self, group: str) -> dict:
        """The values of one group ('architecture', 'optimizer', ...)."""
        return {name: value for name, value in self.items() if SETTINGS[name].group == group}


def run_settings(given: Mapping, *, strict: bool = True) -> RunSettings:
    """Check `given` ({name: value}, None meaning "not given") and make the run's settings.

    strict: a setting given where it does not apply (momentum 0.9 for Adam, max pooling
    for an MLP) is a SettingsError, unless it is its default; otherwise it is dropped (a
    search trial). Unknown names are a
    SettingsError. Every problem is found before anything is loaded or written."""
    given = {name: value for name, value in given.items() if value is not None}
    unknown = sorted(set(given) - set(SETTINGS))
    if unknown:
        raise SettingsError(f"unknown setting(s) {unknown}; known: {', '.join(SETTINGS)}")
    for name, value in given.items():
        problem = SETTINGS[name].check(value)
        if problem:
            raise SettingsError(SETTINGS[name].refusal(value, problem))
    values = {name: given.get(name, s.default) for name, s in SETTINGS.items()}
    for name in list(values):
        if not applies(name, values):
            # 0.0 momentum for Adam says "none", as its absence does; 0.9 is a mistake.
            if strict and name in given and given[name] != SETTINGS[name].default:
                raise SettingsError(f"{name} applies only to {where_it_applies(name)}, not to "
                                    f"{_context(name, values)}; leave it out")
            del values[name]
    return RunSettings({name: value for name, value in values.items() if value is not None})


def _context(name: str, values: Mapping) -> str:
    return ", ".join(f"{parent} {values[parent]}" for parent in SETTINGS[name].applies)


def markdown_table() -> str:
    """The table's axes as README.md lists them (tests/test_settings.py holds the README
    to this)."""
    rows = ["| setting | type | default | applies to | range | what it is |",
            "|---|---|---|---|---|---|"]
    for s in SETTINGS.values():
        if s.axis:
            rows.append(f"| `{s.name}` | {s.kind.__name__} | {s.default} | "
                        f"{where_it_applies(s.name) or 'all'} | "
                        f"{'yes' if s.may_range else ''} | {s.help}"
                        + (f" ({', '.join(s.choices)})" if isinstance(s.choices, tuple) else "")
                        + " |")
    return "\n".join(rows)
