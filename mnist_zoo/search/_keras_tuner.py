"""Every use of keras-tuner's private API, in one place (tested with 1.4.8; setup.cfg pins
keras-tuner to 1.4.x, and tests/test_keras_tuner_api.py fails loudly if a name below moves).

keras-tuner's public API has no way to: silence the traceback it prints per failed trial,
ask whether this process is the distributed chief, serve trials with a quick exit,
bound how long a worker waits for its chief, find
a trial's folder or a point's hash from the oracle, queue trials for a retry, seed an
oracle with 0, know a random oracle's next draws, or read Hyperband's brackets. The
search needs all of them; the rest of mnist_zoo.search uses keras-tuner's public API only.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import keras_tuner as kt
from keras_tuner.src import config as kt_config
from keras_tuner.src.distribute import utils as kt_dist

TrialStatus = kt.engine.trial.TrialStatus
# keras-tuner asks again at once when the oracle has no trial free (others still run):
# without a pause, every waiting worker spins a core on gRPC calls.
IDLE_PAUSE_SECONDS = 0.5

# (module, attribute) and (class, method or attribute) pairs this module relies on.
PRIVATE_MODULE_NAMES = [
    ("keras_tuner.src.config", "DEBUG"),
    ("keras_tuner.src.distribute.utils", "is_chief_oracle"),
    ("keras_tuner.src.distribute.oracle_chief", "OracleServicer"),
    ("keras_tuner.src.distribute.oracle_chief", "exit_chief"),
    ("keras_tuner.src.distribute.oracle_client", "TIMEOUT"),
    ("keras_tuner.src.protos", "get_service_grpc"),
]
PRIVATE_ORACLE_NAMES = ["_get_trial_dir", "_compute_values_hash", "_retry_queue",
                        "ongoing_trials", "trials", "_project_dir", "_seed_state",
                        "_tried_so_far", "_random_values"]
PRIVATE_HYPERBAND_NAMES = ["_brackets", "_get_size", "_get_num_brackets"]


def missing_private_names() -> list[str]:
    """The names above that this keras-tuner lacks (empty when all is well)."""
    import importlib

    missing = []
    for module_name, attribute in PRIVATE_MODULE_NAMES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            missing.append(module_name)
            continue
        if not hasattr(module, attribute):
            missing.append(f"{module_name}.{attribute}")
    oracle = kt.Oracle(objective="val_accuracy")
    oracle._set_project_dir("/tmp", "mnist_zoo_probe")  # _project_dir needs one
    missing += [f"Oracle.{name}" for name in PRIVATE_ORACLE_NAMES if not hasattr(oracle, name)]
    hyperband = kt.oracles.HyperbandOracle(objective="val_accuracy", max_epochs=3)
    missing += [f"HyperbandOracle.{name}" for name in PRIVATE_HYPERBAND_NAMES
                if not hasattr(hyperband, name)]
    bayesian = kt.oracles.BayesianOptimizationOracle(objective="val_accuracy")
    missing += [f"BayesianOptimizationOracle.{name}" for name in ("_random_state", "_make_gpr")
                if not hasattr(bayesian, name)]
    servicer = _servicer_class()(oracle)
    if not hasattr(servicer, "stop_triggered"):
        missing.append("OracleServicer.stop_triggered")
    return missing


def quiet_failed_trials() -> None:
    """keras-tuner (1.4.8 ships DEBUG = True) prints every failed trial's traceback; a
    failed trial's row holds a one-line error and its folder the trace."""
    kt_config.DEBUG = False


def is_chief() -> bool:
    return kt_dist.is_chief_oracle()


def trial_dir(oracle, trial_id: str) -> Path:
    return Path(oracle._get_trial_dir(trial_id))


def values_hash(oracle, values: dict) -> str:
    return oracle._compute_values_hash(values)


def project_dir(oracle) -> Path:
    return Path(oracle._project_dir)


def seed_oracle(oracle, seed: int) -> None:
    """keras-tuner takes a seed of 0 for none (`seed or random.randint(1, 10000)`): the
    search's default seed 0 would draw other points on every fresh start. 0 is a seed."""
    oracle.seed = oracle._seed_state = seed
    if hasattr(oracle, "_make_gpr"):  # Bayesian: its random state and regressor too
        import numpy as np

        oracle._random_state = np.random.RandomState(seed)
        oracle.gpr = oracle._make_gpr()


def draws_ahead(oracle, first: dict, count: int) -> list[dict]:
    """The next `count` values the oracle's random draws will give after `first` (keras-
    tuner draws from a seed that counts up and skips repeats, so they are known before
    they are handed out); the oracle's own state is left as it was."""
    seed_state, tried = oracle._seed_state, set(oracle._tried_so_far)
    oracle._tried_so_far.add(oracle._compute_values_hash(first))
    draws = []
    try:
        for _ in range(count):
            values = oracle._random_values()
            if values is None:
                break
            oracle._tried_so_far.add(oracle._compute_values_hash(values))
            draws.append(values)
    finally:
        oracle._seed_state, oracle._tried_so_far = seed_state, tried
    return draws


def hyperband_round(oracle, trial_id: str):
    """(bracket number, the round's entries, the earlier round's entries, the round's
    size) of the round a Hyperband trial was just picked for; None if it is in none."""
    for bracket in oracle._brackets:
        for number, entries in enumerate(bracket["rounds"]):
            if any(entry["id"] == trial_id for entry in entries):
                earlier = bracket["rounds"][number - 1] if number else []
                return (bracket["bracket_num"], entries, earlier,
                        oracle._get_size(bracket["bracket_num"], number))
    return None


def hyperband_size(oracle) -> int:
    """How many trials a Hyperband oracle hands out: keras-tuner's bracket and round sizes."""
    brackets = oracle._get_num_brackets()
    return oracle.hyperband_iterations * sum(
        oracle._get_size(bracket, rnd) for bracket in range(brackets) for rnd in range(bracket + 1))


def retry_later(oracle, trial_ids: list[str]) -> None:
    """Queue trials to be handed out again (keras-tuner's own queue of interrupted trials)."""
    oracle._retry_queue.extend(t for t in trial_ids if t not in oracle._retry_queue)


def pause_when_idle(oracle) -> None:
    """Wrap the oracle's create_trial (in a worker: keras-tuner's gRPC client) to pause
    when it answers IDLE, instead of asking again at once."""
    create_trial = oracle.create_trial

    def create(tuner_id):
        trial = create_trial(tuner_id)
        if trial.status == TrialStatus.IDLE:
            time.sleep(IDLE_PAUSE_SECONDS)
        return trial
    oracle.create_trial = create


def set_chief_timeout(seconds: float) -> None:
    """How long a worker's every call waits for the chief to answer (keras-tuner waits 60
    minutes, silently, for a chief that may never come): a DEADLINE_EXCEEDED after it."""
    from keras_tuner.src.distribute import oracle_client

    oracle_client.TIMEOUT = seconds


def _servicer_class():
    from keras_tuner.src.distribute import oracle_chief

    return oracle_chief.OracleServicer


def serve_trials(oracle, poll_seconds: float = IDLE_PAUSE_SECONDS) -> None:
    """keras-tuner's chief (oracle_chief.start_server, 1.4.8) but for how it ends: once a
    worker is told the grid is done, keras-tuner checks every 20 s whether the others
    are too, so a finished grid waited up to 20 s for its report. This checks twice a
    second."""
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    # A call that fails here (the chief cannot save its state: a read-only or full
    # --out) reaches the worker as an error, which stops the search in one line; gRPC's
    # own log of it would add a traceback per call.
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    server.add_insecure_port(f"{os.environ['KERASTUNER_ORACLE_IP']}:"
                             f"{os.environ['KERASTUNER_ORACLE_PORT']}")
    server.start()
    while not (servicer.stop_triggered and oracle_chief.exit_chief(oracle)):
        time.sleep(poll_seconds)
    server.stop(grace=1)
