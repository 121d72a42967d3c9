"""The search: keras-tuner's HyperModel builds, an Oracle picks, the Tuner loops; the
grid by default, or random, Bayesian or Hyperband search (a search file's [search]).

    python -m mnist_zoo.search --grid full            # __main__.py -> _command.py
    from mnist_zoo.search import search               # the same from code (api.py)

Where each piece lives:

    api.py          `search()`: check the folders, build the tuner, load the data, report
    _command.py     the command line over search(): --jobs, roles, restarts, stop lines
    grid.py         grid files: where they are, allowed values, points and their keys
    space.py        [search]: the strategy and its budget; axes given as ranges
    hypermodel.py   ZooHyperModel: a trial's values -> a compiled registry model
    oracle.py       ResumableGridOracle: hands out the grid's points in order, resumably
    strategies.py   keras-tuner's random, Bayesian and Hyperband oracles, made resumable
    plan.py         a trial's run (Hyperband's budget), batches an oracle hands out together
    tuner.py        ZooTuner: run_trial and on_trial_end, handing work to the parts below
    grouping.py     which points train together (fused), and how wide a group may be
    trainer.py      GroupTrainer: trains a group under its lock; steals work meanwhile
    runs.py         run folders (runs/<key>/), their locks, and the row format
    pruning.py      --prune's rule on plain numbers: median, percentile, warm-up, fewest
    pruner.py       --prune in training: per-epoch reports, the Keras callback that stops
    results.py      the results table: trial records, experiment_results.csv, top-k
    table.py        the table's rules shared with plot: metric direction, repeats, points
    project.py      the folders: lock, claim, same grid and data (or a grown search),
                    repair, --overwrite's clean-up
    board.py        TensorBoard's HParams log of every trial
    memory.py       the memory watch that restarts a process that has grown
    failures.py     why a trial or the search failed, in one line
    processes.py    --jobs: a local chief and workers, supervised; SIGTERM as Ctrl-C
    distributed.py  --chief's port checked first, --worker's wait for its chief bounded
    _keras_tuner.py every use of keras-tuner's private API

Imports run downward: _command -> api, processes -> tuner -> trainer -> grouping, runs,
hypermodel -> mnist_zoo.train, mnist_zoo.models. Nothing here imports TensorFlow until
a search starts, so plot can read table.py and grid.py without it.
"""

__all__ = ["build_parser", "main", "search"]


def __getattr__(name):
    # Imported on first use: plot imports mnist_zoo.search.table without the search.
    if name == "search":
        from mnist_zoo.search.api import search

        return search
    if name in ("main", "build_parser"):
        from mnist_zoo.search import _command

        return getattr(_command, name)
    raise AttributeError(f"module 'mnist_zoo.search' has no attribute {name!r}")
