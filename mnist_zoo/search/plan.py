"""What a trial trains, and which trials the oracle will hand out with it.

A keras-tuner trial's values are the run's settings, plus, under Hyperband, keras-tuner's
own `tuner/...` entries: the epochs to train up to, the epoch to start from, the trial to
go on from, its bracket and round. `run_values` turns them into the run's settings (what
names its run folder and its row), `trial_columns` into the row's extra columns.

An oracle that knows what it will hand out next (random search: its draws do not depend
on results; Hyperband: a round, once its first trial is picked) writes that batch down
(`Batches.publish`) under <project>/batches/; the trainer reads
it (`Batches.batch_of`) and trains the runs of the batch that share their batches
together, as it trains a grid's (mnist_zoo.search.grouping). A run nobody published
trains alone: the files make training faster, never different.
"""

from __future__ import annotations

import json
from pathlib import Path

from mnist_zoo.files import atomic_write_text
from mnist_zoo.search.grid import CONTINUED_FROM, INITIAL_EPOCH, values_key

# keras-tuner's Hyperband entries in a trial's values, and the row columns they become.
HYPERBAND_COLUMNS = {"tuner/bracket": "bracket", "tuner/round": "round"}


def run_values(values: dict) -> dict:
    """The run a trial names: its settings, with Hyperband's epochs budget as `epochs`,
    and where it starts (INITIAL_EPOCH, CONTINUED_FROM: the trial whose model it goes on
    training; "" for none)."""
    if "tuner/epochs" not in values:
        return dict(values)
    run = {key: value for key, value in values.items() if not key.startswith("tuner/")}
    run.update({"epochs": values["tuner/epochs"], INITIAL_EPOCH: values["tuner/initial_epoch"],
                CONTINUED_FROM: values.get("tuner/trial_id", "")})
    return run


def trial_columns(values: dict) -> dict:
    """The strategy's own columns of a trial's row (Hyperband's bracket and round)."""
    return {column: values[key] for key, column in HYPERBAND_COLUMNS.items() if key in values}


class Batches:
    """The batches an oracle published: <folder>/batch_<key>.json holds a batch's runs
    (their run_values), and <folder>/<run key>.json names the batch each run is in. A
    batch never changes once written, so each is read once per process."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._read: dict[str, list[dict]] = {}

    def publish(self, runs: list[dict]) -> None:
        """Write the batch down, its runs that belong to no batch yet (every process
        must cut the same groups, so a run's batch never changes)."""
        runs = [run for run in runs if not self.knows(run)]
        if len(runs) < 2:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"batch_{values_key(runs[0])}.json"
        atomic_write_text(self.folder / name, json.dumps(runs))
        for run in runs:
            atomic_write_text(self.folder / f"{values_key(run)}.json", json.dumps(name))

    def knows(self, run: dict) -> bool:
        return (self.folder / f"{values_key(run)}.json").exists()

    def batch_of(self, run: dict) -> list[dict]:
        """The published batch this run belongs to, or the run alone."""
        try:
            name = json.loads((self.folder / f"{values_key(run)}.json").read_text())
        except (OSError, ValueError):
            return [run]
        runs = self._batch(name) if isinstance(name, str) else []
        return runs if run in runs else [run]

    def published(self) -> list[dict]:
        """Every run of every batch published so far (for work stealing), in batch order."""
        paths = sorted(self.folder.glob("batch_*.json"), key=lambda p: p.stat().st_mtime)
        return [run for path in paths for run in self._batch(path.name)]

    def _batch(self, name: str) -> list[dict]:
        if name not in self._read:
            try:
                runs = json.loads((self.folder / name).read_text())
            except (OSError, ValueError):
                return []
            self._read[name] = runs if isinstance(runs, list) else []
        return self._read[name]
