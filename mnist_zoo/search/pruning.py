"""The pruning rule, on plain numbers: whether a trial that reported `value` at an epoch is
worse than the median (or a percentile) of the other trials' values at that epoch.

    --prune median           stop a trial worse than the median of the others
    --prune percentile:25    keep only trials in the best 25 % (Optuna's PercentilePruner);
                             median is percentile:50
    --prune none             (default) train every trial for all its epochs

Optuna's median and percentile pruners and W&B's early_terminate work the same way; the
knobs: `warmup`, the epochs a trial trains before it is judged (default 1: judged from
the end of its first epoch), and `min_trials`, how many other trials must have a value
at that epoch before anyone is judged there. A trial is never judged at its last epoch
(stopping it then saves nothing). No TensorFlow here: the command checks --prune before
it starts, and the callback that applies the rule lives in mnist_zoo.search.pruner.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from mnist_zoo.errors import SettingsError
from mnist_zoo.order import tie_key

NO_PRUNING = "none"
DEFAULT_WARMUP, DEFAULT_MIN_TRIALS = 1, 4


@dataclasses.dataclass(frozen=True)
class PruneRule:
    """keep: the percentage of trials kept at each judgement (50 for the median)."""

    keep: float = 50.0
    warmup: int = DEFAULT_WARMUP
    min_trials: int = DEFAULT_MIN_TRIALS
    # A finished search's results CSV whose trials are the fixed set each trial is judged
    # against (mnist_zoo.search.pruner.Reference); None: the trials of this search so far.
    reference: str | None = None

    @property
    def name(self) -> str:
        """What the report and the results table call the rule: median or percentile:P."""
        return "median" if self.keep == 50 else f"percentile:{self.keep:g}"

    def describe(self) -> str:
        against = f"the trials of {self.reference}" if self.reference else "other trials"
        return (f"{self.name} (judged from epoch {self.warmup}, with at least "
                f"{self.min_trials} {against} to compare)")


def parse_prune(text: str, warmup: int = DEFAULT_WARMUP, min_trials: int = DEFAULT_MIN_TRIALS,
                reference: str | None = None) -> PruneRule | None:
    """'none' -> None, 'median' -> keep 50, 'percentile:P' -> keep P (0 < P <= 100)."""
    text = str(text).strip().lower()
    if warmup < 1 or min_trials < 1:
        raise SettingsError(f"prune warm-up ({warmup}) and fewest trials ({min_trials}) must be "
                            "integers >= 1")
    if text == NO_PRUNING:
        if reference:
            raise SettingsError(f"a prune reference ({reference}) needs a rule to judge by: "
                                "add --prune median (or percentile:P)")
        return None
    if text == "median":
        return PruneRule(50.0, warmup, min_trials, reference)
    kind, _, number = text.partition(":")
    try:
        keep = float(number)
    except ValueError:
        keep = math.nan
    if kind != "percentile" or not 0 < keep <= 100:
        raise SettingsError(f"prune {text!r} is not a rule: give none, median or percentile:P "
                            "with 0 < P <= 100 (the percentage of trials kept), e.g. "
                            "percentile:25")
    return PruneRule(keep, warmup, min_trials, reference)


def threshold(others: list[float], keep: float, higher_is_better: bool) -> float:
    """The value a trial must reach to be kept: the others' (100 - keep)th percentile when
    higher is better (keep 25: their 75th percentile), their keep-th when lower is."""
    return float(np.percentile(others, 100 - keep if higher_is_better else keep))


def should_prune(value: float, others: list[float], epoch: int, last_epoch: int,
                 rule: PruneRule, higher_is_better: bool = True) -> bool:
    """Whether a trial at `epoch` (1-based) of `last_epoch` stops: its value is worse than
    the threshold of the others' values at that epoch. Values are compared rounded
    (mnist_zoo.order), so a trial that ties the threshold is kept on every CPU; a NaN
    value (a diverged trial) is the worst, NaN among the others is left out."""
    if epoch < rule.warmup or epoch >= last_epoch:
        return False
    others = [v for v in others if v is not None and math.isfinite(v)]
    if len(others) < rule.min_trials:
        return False
    if value is None or not math.isfinite(value):
        return True
    bar = tie_key(threshold(others, rule.keep, higher_is_better))
    return tie_key(value) < bar if higher_is_better else tie_key(value) > bar


# The [search] table's pruning keys: prune = "median", prune_warmup = 1, prune_min_trials = 4,
# prune_reference = "results/first/experiment_results.csv".
PRUNE_KEYS = ("prune", "prune_warmup", "prune_min_trials", "prune_reference")
PRUNING_STRATEGIES = ("grid", "random")


def check_prune_keys(path, table: dict) -> None:
    """The [search] table's pruning keys, checked when the search file is read."""
    from mnist_zoo.errors import GridError

    for key in ("prune_warmup", "prune_min_trials"):
        value = table.get(key, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise GridError(f"{path}: [search] {key} = {value!r} must be an integer >= 1")
    if not isinstance(table.get("prune_reference", ""), str):
        raise GridError(f"{path}: [search] prune_reference must be the path of a finished "
                        "search's experiment_results.csv, in quotes")
    if not isinstance(table.get("prune", NO_PRUNING), str):
        raise GridError(f"{path}: [search] prune must be \"none\", \"median\" or "
                        "\"percentile:P\"")
    try:
        parse_prune(table.get("prune", NO_PRUNING), reference=table.get("prune_reference"))
    except SettingsError as err:
        raise GridError(f"{path}: [search] {err}") from None


def split_prune(search: dict, prune: str | None = None, warmup: int | None = None,
                min_trials: int | None = None,
                reference: str | None = None) -> tuple[dict, PruneRule | None]:
    """A search file's [search] table without its pruning keys, and the rule they and the
    command line's --prune, --prune-warmup, --prune-min-trials, --prune-reference (over
    the file's) give. The rule stays out of the search's settings, so a rerun with another
    --prune resumes the same search."""
    rest = {key: value for key, value in search.items() if key not in PRUNE_KEYS}
    rule = parse_prune(prune or search.get("prune", NO_PRUNING),
                       warmup or search.get("prune_warmup", DEFAULT_WARMUP),
                       min_trials or search.get("prune_min_trials", DEFAULT_MIN_TRIALS),
                       str(reference or search.get("prune_reference", "")) or None)
    return rest, rule


def check_prunable(rule: PruneRule | None, strategy: str, objective: str) -> None:
    """Pruning needs a strategy that trains each trial whole, and a metric known per epoch."""
    if rule is None:
        return
    if strategy not in PRUNING_STRATEGIES:
        raise SettingsError(f"--prune works with strategy grid or random, not {strategy} "
                            "(Hyperband stops trials by its own rounds; Bayesian learns from "
                            "whole trials); use --prune none")
    if objective.startswith("test_"):
        raise SettingsError(f"--prune judges each epoch's {objective}, which is only known at "
                            "the end; use --objective val_accuracy or val_loss")


def pruned_summary(statuses: list[str], rules: list) -> str | None:
    """The report's line on pruned trials: how many, by which rule; None when none was."""
    pruned = [rule for status, rule in zip(statuses, rules) if status == "pruned"]
    if not pruned:
        return None
    counts = {}
    for rule in pruned:
        counts[str(rule)] = counts.get(str(rule), 0) + 1
    rules_text = ", ".join(f"{n} by {rule}" for rule, n in sorted(counts.items()))
    return (f"{len(pruned)} trials pruned ({rules_text}): they stopped behind the others and "
            "have no test score or model; rerun with --prune none to finish them")
