"""Pruning in the search: after each epoch, the runs being trained report their validation
metric, and a run whose grid point is worse than the rule's bar (mnist_zoo.search.pruning)
stops; its row is written with status pruned (mnist_zoo.search.runs).

Reports are files, one per run: <project>/pruning/<run key>.json holds the run's value at
each epoch so far (and the epoch it was pruned at), written atomically by the process
training it. A judgement reads every report there, so under --jobs (or chief/worker) it
uses what every process has reported so far: which trials are pruned can then depend on
the order in which the processes reach their epochs. With --jobs 1 the grid's order fixes
it, and reruns prune the same trials.

A grid point is judged on the mean over its repeats that reported the epoch; when it is
pruned, all its repeats stop at that epoch (those trained together at once; one trained
later stops when it reaches that epoch). Members of a fused group report first and are
judged after, each against all the others, their group-mates included.

With a reference (--prune-reference CSV) the others are a fixed set instead: the grid
points of a finished search, at each epoch their mean over repeats read from their
history.csv files. Every judgement then reads the same values, whatever the order or the
number of processes: the same command prunes the same trials under --jobs too.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from mnist_zoo.axes import AXES, REPEAT_AXIS
from mnist_zoo.errors import SettingsError
from mnist_zoo.files import atomic_write_text, inside
from mnist_zoo.search.grid import values_key
from mnist_zoo.search.pruning import PruneRule, should_prune
from mnist_zoo.train.fused import MemberStopper


def point_key(values: dict) -> str:
    """The grid point a run belongs to: its values but the repeat."""
    return values_key({axis: value for axis, value in values.items() if axis != REPEAT_AXIS})


class Reports:
    """The per-epoch values of every run of a project, one JSON file per run."""

    def __init__(self, project_dir: Path):
        self.folder = Path(project_dir) / "pruning"

    def write(self, values: dict, series: list[float], pruned_at: int | None = None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        report = {"point": point_key(values), "values": series, "pruned_at": pruned_at}
        atomic_write_text(self.folder / f"{values_key(values)}.json", json.dumps(report))

    def points(self) -> dict[str, dict]:
        """{point key: {"values": {epoch: [one value per run]}, "pruned_at": epoch|None}}."""
        points: dict[str, dict] = {}
        for path in sorted(self.folder.glob("*.json")):
            try:
                report = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # cannot happen with atomic writes; a damaged file is no report
            point = points.setdefault(report["point"], {"values": {}, "pruned_at": None})
            for epoch, value in enumerate(report["values"], start=1):
                point["values"].setdefault(epoch, []).append(value)
            if report.get("pruned_at"):
                earlier = point["pruned_at"] or report["pruned_at"]
                point["pruned_at"] = min(earlier, report["pruned_at"])
        return points


def point_value(values: list[float]) -> float:
    """A point's value at an epoch: the mean over its repeats (a diverged one left out)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def setting_text(value) -> str:
    """A setting's value as text, alike whether it came from a grid or from a CSV: 64 and
    64.0 read '64', None and NaN (a setting that does not apply) ''."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class Reference:
    """The fixed set of trials a --prune-reference search judges against: a finished
    search's grid points (completed or pruned), each with its metric at every epoch it
    reached (the mean over its repeats), from the history.csv files its CSV names."""

    def __init__(self, csv_path, metric: str):
        path = Path(csv_path)
        fix = "give the experiment_results.csv of a finished search"
        if not path.is_file():
            raise SettingsError(f"--prune-reference {path}: no such file; {fix}")
        try:
            table = pd.read_csv(path)
        except (OSError, ValueError) as err:
            raise SettingsError(f"--prune-reference {path}: not a results CSV ({err}); "
                                f"{fix}") from None
        axes = [axis for axis in AXES if axis in table and axis != REPEAT_AXIS]
        series: dict[tuple, list[pd.Series]] = {}
        for row in table.to_dict("records"):
            history = inside(path.parent, row.get("history_path"))
            if row.get("status") not in ("completed", "pruned") or history is None \
                    or not history.is_file():
                continue
            values = pd.read_csv(history).get(metric)
            if values is not None:
                key = tuple(setting_text(row[axis]) for axis in axes)
                series.setdefault(key, []).append(values.reset_index(drop=True))
        if not series:
            raise SettingsError(f"--prune-reference {path}: no trial there has a history with "
                                f"{metric} at each epoch; {fix}")
        self.axes = axes
        # {point: {epoch: mean over its runs that reached it}}, epochs from 1.
        self.points = {key: {epoch + 1: point_value(list(values))
                             for epoch, values in pd.concat(runs, axis=1).iterrows()}
                       for key, runs in series.items()}

    def others(self, values: dict, epoch: int) -> list[float]:
        """The reference's values at `epoch`, but those of the grid point `values` names."""
        own = tuple(setting_text(values.get(axis)) for axis in self.axes)
        return [by_epoch[epoch] for key, by_epoch in self.points.items()
                if key != own and epoch in by_epoch]


class Pruning:
    """A search's pruning: the rule, the metric it judges (the objective, at each epoch)
    and the reports; `stopper(runs, epochs)` is the callback for one fit of these runs."""

    def __init__(self, rule: PruneRule, project_dir: Path, metric: str, higher_is_better: bool):
        self.rule, self.metric, self.higher_is_better = rule, metric, higher_is_better
        self.reports = Reports(project_dir)
        self.reference = Reference(rule.reference, metric) if rule.reference else None

    def stopper(self, runs: list[dict], epochs: int) -> PruneCallback:
        return PruneCallback(self, runs, epochs)

    def points_to_stop(self, runs: list[dict], epoch: int, last_epoch: int) -> set[str]:
        """The points of `runs` that stop after `epoch`: pruned there by a run of theirs
        trained before, or worse than the rule's bar now."""
        if epoch >= last_epoch:  # nothing stops at its last epoch: no reports to read
            return set()
        points = self.reports.points()
        stop = set()
        for point, values in {point_key(values): values for values in runs}.items():
            if points.get(point, {}).get("pruned_at") == epoch:
                stop.add(point)
                continue
            own = point_value(points.get(point, {}).get("values", {}).get(epoch, []))
            if self.reference is not None:
                others = self.reference.others(values, epoch)
            else:
                others = [point_value(reported["values"][epoch])
                          for key, reported in points.items()
                          if key != point and epoch in reported["values"]]
            if should_prune(own, others, epoch, last_epoch, self.rule, self.higher_is_better):
                stop.add(point)
        return stop


class PruneCallback(MemberStopper):
    """The Keras callback of one fit (a fused group or one run): on each epoch's end it
    reports the running runs' values, then stops the runs whose point the rule prunes."""

    def __init__(self, pruning: Pruning, runs: list[dict], epochs: int):
        super().__init__()
        self.pruning, self.runs, self.epochs = pruning, runs, epochs
        self.series: list[list[float]] = [[] for _ in runs]

    def members_to_stop(self, epoch: int, logs: dict) -> list[int]:
        values = logs.get(self.pruning.metric)
        if values is None:  # no validation split: nothing to judge by
            return []
        reports = self.pruning.reports
        for place, k in enumerate(self.running):
            self.series[k].append(float(values[place]))
            reports.write(self.runs[k], self.series[k])
        stop_points = self.pruning.points_to_stop([self.runs[k] for k in self.running], epoch,
                                                  self.epochs)
        stop = [k for k in self.running if point_key(self.runs[k]) in stop_points]
        for k in stop:
            reports.write(self.runs[k], self.series[k], pruned_at=epoch)
        return stop
