"""The results table's rules, one home each, shared by the search (its ranking, printout
and experiment_summary.csv) and plot (its charts): the table's files and columns, which
way a metric ranks, whether a table holds repeats, and which rows form one grid point.
No TensorFlow; pandas is imported where a function needs it.
"""

from __future__ import annotations

from mnist_zoo.axes import AXES, REPEAT_AXIS
from mnist_zoo.order import best_first

RESULTS_CSV = "experiment_results.csv"
SUMMARY_CSV = "experiment_summary.csv"  # one row per grid point: its repeats summarised
METRIC_COLUMNS = ["train_loss", "train_accuracy", "val_loss", "val_accuracy",
                  "test_loss", "test_accuracy"]
SUMMARY_METRICS = [*METRIC_COLUMNS, "epochs_run", "seconds"]


def lower_is_better(metric: str) -> bool:
    """Losses (and times) rank lowest first, accuracies highest first."""
    return metric.endswith("loss") or metric == "seconds"


def has_repeats(trials, axes: list[str] | None = None) -> bool:
    """Whether some grid point ran more than once: a `repeat` column with several values,
    or, in a CSV from before that column, equal settings (in `axes`, default every axis
    the table has) run with several seeds. Equal settings without a seed to tell them
    apart stay separate trials."""
    if REPEAT_AXIS in trials.columns and trials[REPEAT_AXIS].nunique() > 1:
        return True
    if "seed" not in trials:
        return False
    axes = [axis for axis in AXES if axis in trials.columns] if axes is None else list(axes)
    if not axes:
        return trials["seed"].nunique() > 1
    return bool((point_groups(trials, axes)["seed"].nunique() > 1).any())


def point_groups(rows, keys, sort: bool = False):
    """The rows grouped into grid points: rows equal in every key are one point (a
    missing value equals a missing value; of a categorical key only the values that
    occur count)."""
    return rows.groupby(keys, sort=sort, dropna=False, observed=True)


def summarize(table):
    """One row per grid point: runs, completed, and mean/std/min/max/n of every metric over
    the point's completed repeats (a diverged repeat counts in runs, not in the means);
    with pruned runs in the table (--prune), how many of the point's were pruned too."""
    import pandas as pd

    if table.empty or "status" not in table:
        return pd.DataFrame()
    keys = [axis for axis in AXES if axis in table.columns]
    done = table.assign(completed=table["status"] == "completed",
                        pruned=table["status"] == "pruned")
    counts = {"runs": ("status", "size"), "completed": ("completed", "sum"),
              **({"pruned": ("pruned", "sum")} if done["pruned"].any() else {})}
    summary = point_groups(done, keys).agg(**counts)
    metrics = [m for m in SUMMARY_METRICS if m in table.columns]
    stats = (point_groups(done[done["completed"]], keys)[metrics]
             .agg(["mean", "std", "min", "max", "count"]))
    stats.columns = [f"{metric}_{'n' if stat == 'count' else stat}" for metric, stat in stats.columns]
    return summary.join(stats).reset_index()


def ranked(table, objective: str):
    """Completed trials, best first."""
    done = table[table["status"] == "completed"]
    return best_first(done, objective, not lower_is_better(objective))
