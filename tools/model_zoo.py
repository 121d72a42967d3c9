"""Train the reference recipes over seeds and write the model card's figures.

    python tools/model_zoo.py run lenet5/mnist mlp_bp/mnist --seeds 0 1 2
    python tools/model_zoo.py run lenet5/mnist --seeds 0 --augment none   # the "without" run
    python tools/model_zoo.py card                                         # docs/model_zoo.md
    python tools/model_zoo.py ship lenet5/mnist                            # weights again
    python tools/model_zoo.py promote cnn_bn/mnist epochs=16               # a variant -> recipe
    python tools/model_zoo.py speed                                        # on an idle machine

`run` trains each recipe x seed through mnist_zoo.train.train() and appends one row per
run to docs/model_zoo_runs.csv (a run already in the CSV is skipped, so an interrupted
bench resumes). The seed-0 run of every recipe also writes the package's pretrained
weights (mnist_zoo/models/weights/, through `save_weights` here: the package itself only
reads them). A file whose float32 arrays would pass FLOAT16_ABOVE bytes is stored as
float16; the accuracy stated for every file (its JSON sidecar and the CSV's
shipped_test_accuracy) is measured on the test set after loading the file back, as a
user gets it. `speed` times training and inference one model at a time, alone, and
writes docs/model_zoo_speed.csv. `card` rewrites the tables of docs/model_zoo.md between
their markers from those two CSVs alone: every figure in the card is a measured one.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# This checkout's package, whatever else is installed: the tool writes this checkout's
# weights and card (an editable install may point at another copy).
sys.path.insert(0, str(ROOT))
RUNS_CSV = ROOT / "docs" / "model_zoo_runs.csv"
SPEED_CSV = ROOT / "docs" / "model_zoo_speed.csv"
CARD = ROOT / "docs" / "model_zoo.md"
MNIST_DIR = ROOT.parent / "shared" / "data" / "mnist-full"
SHIP_SEED = 0  # the seed-0 run of every recipe ships its weights
# A weights file that would pass 1 MiB as float32 (mlp_medium, 0.54 M parameters;
# mlp_complex, 1.49 M) ships as float16: half the bytes, and the package stays under
# ~15 MB with all sixteen files. Keras' load_weights casts the arrays back to float32.
FLOAT16_ABOVE = 1024 * 1024
COLUMNS = ("recipe", "model", "dataset", "variant", "augment", "seed", "epochs",
           "test_accuracy", "val_accuracy", "train_accuracy", "params", "seconds",
           "seconds_per_epoch", "load_average", "weights_file",
           # the shipping run's file, loaded back: its own test accuracy and how it is stored
           "shipped_test_accuracy", "weights_dtype")
SPEED_COLUMNS = ("recipe", "model", "dataset", "batch_size", "augment", "steps_per_epoch",
                 "timed_batches", "train_seconds_per_epoch", "inference_images",
                 "inference_images_per_second", "cpu", "cores", "kernels", "load_average",
                 "tensorflow", "date")
# Published and lab figures the card compares with (MNIST test accuracy). `models`: the
# zoo models that are that architecture, whose rows cite it; `lab`: a figure of the
# lab's own reports, which every MNIST recipe is compared with.
REFERENCES = (
    {"name": "LeNet-5, LeCun, Bottou, Bengio, Haffner 1998 (0.95 % error, no distortions)",
     "short": "LeCun 1998 LeNet-5", "accuracy": 0.9905, "models": ("lenet5",), "lab": False},
    {"name": "the lab's own LeNet-5", "short": "lab LeNet-5", "accuracy": 0.9897,
     "models": ("lenet5",), "lab": True},
    {"name": "the lab's back-propagation MLP, 784-128-10", "short": "lab BP 784-128-10",
     "accuracy": 0.9764, "models": ("mlp_bp",), "lab": True},
)
LOCK = Path(tempfile.gettempdir()) / "mnist_zoo_runs.csv.lock"


# --------------------------------------------------------------------------- the runs CSV
def read_runs(path: Path | None = None) -> list[dict]:
    path = path or RUNS_CSV  # looked up at call time: tests point it elsewhere
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        # A row written before a column existed reads "" there.
        return [{key: row.get(key) or "" for key in COLUMNS} for row in csv.DictReader(handle)]


@contextlib.contextmanager
def _locked():
    """One writer of the runs CSV at a time (a bench process and `ship` may overlap)."""
    import fcntl

    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _write_runs(rows: list[dict], path: Path) -> None:
    # Through a temporary file and a rename, so no reader ever sees half a file.
    temporary = path.with_suffix(".csv.tmp")
    with open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(temporary, path)


def _run_key(row: dict) -> tuple[str, str, int]:
    return row["recipe"], row["variant"], int(row["seed"])


def append_run(row: dict, path: Path | None = None) -> None:
    path = path or RUNS_CSV
    with _locked():
        header = None
        if path.is_file():
            with open(path, newline="") as handle:
                header = next(csv.reader(handle), None)
        if header is not None and tuple(header) != COLUMNS:
            _write_runs(read_runs(path) + [row], path)  # a CSV from before a new column
            return
        with open(path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, COLUMNS, restval="", extrasaction="ignore")
            if header is None:
                writer.writeheader()
            writer.writerow(row)


def replace_run(row: dict, path: Path | None = None) -> None:
    """Put `row` in place of the CSV's row of the same recipe, variant and seed (a run
    trained again)."""
    path = path or RUNS_CSV
    with _locked():
        _write_runs([r for r in read_runs(path) if _run_key(r) != _run_key(row)] + [row], path)


def update_run(key: tuple[str, str, int], fields: dict, path: Path | None = None) -> None:
    """Set `fields` in the CSV's row `key` (recipe, variant, seed)."""
    path = path or RUNS_CSV
    with _locked():
        rows = read_runs(path)
        matches = [r for r in rows if _run_key(r) == key]
        if not matches:
            raise SystemExit(f"{path.name} has no run {key}")
        for r in matches:
            r.update(fields)
        _write_runs(rows, path)


def needs_run(recipe: str, variant: str, seed: int, runs: list[dict]) -> str | None:
    """Why (recipe, variant, seed) must be trained: "new", "ship" (its row is the shipping
    run but wrote no weights: the first bench shipped only four models, so their seed-0
    runs are trained again and replace their rows; the card's n stays 3 and the shipped
    file is one of the runs it averages), or None when it is done."""
    row = next((r for r in runs if _run_key(r) == (recipe, variant, seed)), None)
    if row is None:
        return "new"
    if variant == "recipe" and seed == SHIP_SEED and not row["weights_file"]:
        return "ship"
    return None


# --------------------------------------------------------------------------- training
def _data_dir(dataset: str, mnist_dir: Path) -> str | None:
    # Fashion-MNIST comes from Debian's folder, which the package's loader finds itself.
    return str(mnist_dir) if dataset == "mnist" else None


def variant_name(overrides: dict) -> str:
    """"recipe", or the settings changed from it: "augment=none", "augment=crop+flip,epochs=20"."""
    return ",".join(f"{key}={value}" for key, value in sorted(overrides.items())) or "recipe"


def parse_overrides(recipe: str, pairs: list[str]) -> dict:
    """{"epochs": 20} from ["epochs=20"], each value of the type the recipe gives that key."""
    from mnist_zoo.train.recipes import FIELDS, recipe_settings

    settings, overrides = recipe_settings(recipe), {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in FIELDS or not value:
            raise SystemExit(f"--set {pair!r}: give KEY=VALUE with KEY one of {', '.join(FIELDS)}")
        kind = type(settings.get(key, 0.0))
        overrides[key] = kind(float(value)) if kind in (int, float) else value
    return overrides


def _run_folder(recipe: str, variant: str, seed: int) -> str:
    """The run's folder under --out: "cnn_bn_mnist_epochs_16_seed0"."""
    return (f"{recipe.replace('/', '_')}_"
            f"{variant.replace('=', '_').replace(',', '_')}_seed{seed}")


def run_one(recipe: str, seed: int, overrides: dict, out: Path, mnist_dir: Path) -> dict:
    from mnist_zoo.train.recipes import recipe_settings
    from mnist_zoo.train import train

    settings = {**recipe_settings(recipe), **overrides}
    variant = variant_name(overrides)
    data_dir = _data_dir(settings["dataset"], mnist_dir)
    name = _run_folder(recipe, variant, seed)
    load = os.getloadavg()[0]  # how busy the shared cores were as the run began
    result = train(**settings, data_dir=data_dir, seed=seed, out=out, name=name,
                   export=False, verbose=2)
    metrics = result.metrics
    row = {
        "recipe": recipe, "model": settings["model"], "dataset": settings["dataset"],
        "variant": variant, "augment": settings["augment"], "seed": seed,
        "epochs": metrics["epochs_run"],
        "test_accuracy": f"{metrics['test']['accuracy']:.4f}",
        "val_accuracy": f"{metrics['val']['accuracy']:.4f}",
        "train_accuracy": f"{metrics['train']['accuracy']:.4f}",
        "params": metrics["params"], "seconds": metrics["seconds"],
        "seconds_per_epoch": f"{metrics['seconds'] / metrics['epochs_run']:.1f}",
        "load_average": f"{load:.2f}", "weights_file": "", "shipped_test_accuracy": "",
        "weights_dtype": "",
    }
    if variant == "recipe" and seed == SHIP_SEED:
        row.update(save_weights(result.model, model=settings["model"],
                                dataset=settings["dataset"], recipe=recipe, seed=seed,
                                settings=settings, metrics=metrics, data_dir=data_dir))
    return row


def copy_as_float16(source: Path, target: Path) -> None:
    """Copy a Keras .weights.h5 file, its float32 arrays stored as float16."""
    import h5py
    import numpy as np

    with h5py.File(source, "r") as old, h5py.File(target, "w") as new:
        new.attrs.update(old.attrs)

        def copy(name, item):
            if isinstance(item, h5py.Group):
                new.require_group(name).attrs.update(item.attrs)
                return
            array = item[()]
            if getattr(array, "dtype", None) == np.float32:
                array = array.astype(np.float16)
            new.create_dataset(name, data=array).attrs.update(item.attrs)

        old.visititems(copy)


def shipped_accuracy(model: str, dataset: str, data_dir: str | None) -> tuple[float, float]:
    """Test accuracy of the shipped file as a user loads it (build_model(weights=...)), on
    the whole test set and on its seeded TEST_SUBSET sample (what tests/test_weights.py
    checks), scored as that test scores them."""
    from mnist_zoo.data import load_dataset
    from mnist_zoo.models import build_model

    data = load_dataset(dataset, data_dir)
    net = build_model(model, weights=dataset, compile=False)
    correct = net.predict(data.x_test, batch_size=1000, verbose=0).argmax(axis=1) == data.y_test
    sample = subset_indices(len(data.x_test))
    subset = net.predict(data.x_test[sample], batch_size=1000, verbose=0).argmax(axis=1)
    return float(correct.mean()), float((subset == data.y_test[sample]).mean())


# The tests check each shipped file on 2,000 test images, drawn with seed 0 (the same
# draw in tests/test_weights.py, from the sidecar's test_subset): a fifth of the
# inference of the whole test set.
TEST_SUBSET = {"images": 2000, "seed": 0}


def subset_indices(n_test: int):
    import numpy as np

    rng = np.random.default_rng(TEST_SUBSET["seed"])
    return np.sort(rng.choice(n_test, TEST_SUBSET["images"], replace=False))


def save_weights(net, *, model: str, dataset: str, recipe: str, seed: int, settings: dict,
                 metrics: dict, data_dir: str | None) -> dict:
    """Write `net`'s weights and their sidecar into the package, float16 where float32
    would pass FLOAT16_ABOVE bytes; measure the written file's test accuracy after loading
    it back. Returns the runs CSV's fields for it."""
    from mnist_zoo.models import build_model
    from mnist_zoo.models.pretrained import ARCHITECTURE, WEIGHTS_DIR, sidecar_path, weights_path

    WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    path = weights_path(model, dataset)
    architecture = {key: settings[key] for key in ARCHITECTURE if key in settings}
    # A compiled model's save_weights also writes the optimizer's state (Adam: two more
    # copies of every weight), and keras.models.clone_model compiles its clone alike; an
    # uncompiled twin writes the weights alone, a third of the size.
    bare = build_model(model, compile=False, **architecture)
    bare.set_weights(net.get_weights())
    with tempfile.TemporaryDirectory() as folder:
        float32 = Path(folder) / path.name  # Keras wants the .weights.h5 ending
        bare.save_weights(float32)
        dtype = "float16" if float32.stat().st_size > FLOAT16_ABOVE else "float32"
        written = Path(folder) / "written.h5"
        if dtype == "float16":
            copy_as_float16(float32, written)
        else:
            float32.rename(written)
        os.replace(written, path)
    entry = {
        "model": model, "dataset": dataset, "recipe": recipe, "seed": seed,
        "settings": architecture, "dtype": dtype,
        # the shipped file's own score, set below once it is measured
        "test_accuracy": None,
        "run_test_accuracy": metrics["test"]["accuracy"],
        "run_val_accuracy": metrics["val"]["accuracy"] if metrics.get("val") else None,
        "params": metrics["params"], "bytes": path.stat().st_size,
    }
    sidecar = sidecar_path(model, dataset)
    sidecar.write_text(json.dumps(entry, indent=2) + "\n")  # build_model reads its settings
    entry["test_accuracy"], on_subset = shipped_accuracy(model, dataset, data_dir)
    entry["test_subset"] = {**TEST_SUBSET, "accuracy": on_subset}
    sidecar.write_text(json.dumps(entry, indent=2) + "\n")
    return {"weights_file": path.name, "shipped_test_accuracy": f"{entry['test_accuracy']:.4f}",
            "weights_dtype": dtype}


def ship(recipes: list[str], out: Path, mnist_dir: Path) -> None:
    """Write the package weights again from each recipe's seed-0 run: its model.keras in
    `out` where the run folder is kept, else the file it shipped (results/ is not kept in
    git; shipping again stores it float16 if it is large and measures it as shipped)."""
    import keras

    from mnist_zoo.models import build_model
    from mnist_zoo.models.pretrained import get_weights
    from mnist_zoo.train.recipes import recipe_settings

    runs = read_runs()
    shipping = [r for r in runs if r["variant"] == "recipe" and int(r["seed"]) == SHIP_SEED]
    for recipe in recipes or sorted(r["recipe"] for r in shipping):
        settings = recipe_settings(recipe)
        model, dataset = settings["model"], settings["dataset"]
        row = next((r for r in shipping if r["recipe"] == recipe), None)
        if row is None:
            raise SystemExit(f"{recipe}: no seed-{SHIP_SEED} run in {RUNS_CSV.name}; run it first")
        run_dir = out / _run_folder(recipe, "recipe", SHIP_SEED)
        if (run_dir / "model.keras").is_file():
            metrics = json.loads((run_dir / "metrics.json").read_text())
            net = keras.models.load_model(run_dir / "model.keras", compile=False)
            source = run_dir / "model.keras"
        elif row["weights_file"]:
            source, entry = get_weights(model, dataset)
            net = build_model(model, weights=dataset, compile=False)
            metrics = {"test": {"accuracy": entry.get("run_test_accuracy",
                                                      entry["test_accuracy"])},
                       "val": {"accuracy": entry.get("run_val_accuracy",
                                                     entry.get("val_accuracy"))},
                       "params": entry["params"]}
        else:
            raise SystemExit(f"{recipe}: its seed-{SHIP_SEED} run shipped nothing and "
                             f"{run_dir} is gone; `run` trains it again")
        if f"{metrics['test']['accuracy']:.4f}" != row["test_accuracy"]:
            raise SystemExit(f"{source} scored {metrics['test']['accuracy']:.4f}, but the "
                             f"CSV's seed-{SHIP_SEED} row of {recipe} {row['test_accuracy']}: "
                             "not the same run")
        fields = save_weights(net, model=model, dataset=dataset, recipe=recipe,
                              seed=SHIP_SEED, settings=settings, metrics=metrics,
                              data_dir=_data_dir(dataset, mnist_dir))
        update_run((recipe, "recipe", SHIP_SEED), fields)
        print(f"{recipe}: {fields['weights_file']} from {source}, {fields['weights_dtype']}, "
              f"test accuracy as shipped {fields['shipped_test_accuracy']} "
              f"(run {row['test_accuracy']})", flush=True)


def run(recipes: list[str], seeds: list[int], sets: list[str], out: Path,
        mnist_dir: Path) -> None:
    for recipe in recipes:
        overrides = parse_overrides(recipe, sets)
        variant = variant_name(overrides)
        for seed in seeds:
            why = needs_run(recipe, variant, seed, read_runs())
            if why is None:
                print(f"skip {recipe} {variant} seed {seed}: already in {RUNS_CSV.name}")
                continue
            row = run_one(recipe, seed, overrides, out, mnist_dir)
            if why == "ship":
                replace_run(row)
            else:
                append_run(row)
            print(f"{recipe} {variant} seed {seed}: test {row['test_accuracy']}, "
                  f"val {row['val_accuracy']}, {row['seconds_per_epoch']} s/epoch"
                  + (f", shipped {row['weights_file']} ({row['weights_dtype']}) test "
                     f"{row['shipped_test_accuracy']}" if row["weights_file"] else ""),
                  flush=True)


def _toml_value(value) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def set_recipe_keys(recipe: str, overrides: dict, why: str,
                    path: Path | None = None) -> None:
    """Rewrite `overrides`' lines in recipe's table of recipes.toml, each with the comment
    `why` (the rest of the file, comments included, stays as it is)."""
    import re

    from mnist_zoo.train.recipes import RECIPES_FILE, load_recipes

    path = path or RECIPES_FILE
    lines = path.read_text().splitlines(keepends=True)
    table = "[" + recipe.replace("/", ".") + "]"
    start = next((i for i, line in enumerate(lines) if line.strip() == table), None)
    if start is None:
        raise SystemExit(f"{path.name} has no table {table}")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")),
               len(lines))
    for key, value in overrides.items():
        pattern = re.compile(rf"^{key}\s*=")
        found = [i for i in range(start + 1, end) if pattern.match(lines[i])]
        setting = f"{key} = {_toml_value(value)}"
        text = f"{setting:<23} # {why}\n"
        # the comment lines that continued the old one (indented "#") go with it
        if found:
            i = found[0]
            j = i + 1
            while j < end and lines[j].startswith(" ") and lines[j].strip().startswith("#"):
                j += 1
            lines[i:j] = [text]
            end -= j - i - 1
        else:
            lines.insert(end, text)
            end += 1
    path.write_text("".join(lines))
    load_recipes.cache_clear()


def promote(recipe: str, variant: str, out: Path, mnist_dir: Path) -> None:
    """Make `variant` (chosen on seed 0's validation accuracy, run on seeds 0, 1, 2) the
    recipe: recipes.toml takes its settings, its rows become the recipe's, the old recipe
    rows become a variant named after the old settings (kept: the card lists them beside
    the new), run folders are renamed alike, and the seed-0 run ships its weights."""
    from mnist_zoo.train.recipes import recipe_settings

    runs = read_runs()
    seed0 = {r["variant"]: r for r in runs if r["recipe"] == recipe and int(r["seed"]) == 0}
    seeds = sorted(int(r["seed"]) for r in runs if (r["recipe"], r["variant"]) == (recipe, variant))
    if seeds[:3] != [0, 1, 2] or "recipe" not in seed0:
        raise SystemExit(f"{recipe} {variant}: seeds {seeds} in {RUNS_CSV.name}; promote needs "
                         "0, 1 and 2 of it and the recipe's seed 0 (run them first)")
    overrides = parse_overrides(recipe, variant.split(","))
    old = variant_name({key: recipe_settings(recipe)[key] for key in overrides})
    why = (f"chosen on validation, seed 0: {100 * float(seed0[variant]['val_accuracy']):.2f} % "
           f"against {100 * float(seed0['recipe']['val_accuracy']):.2f} % with {old}")
    label = {"recipe": old, variant: "recipe"}
    moves = []  # run folders (old name, new name): the two sets swap names
    with _locked():
        rows = read_runs()
        for row in rows:
            if row["recipe"] == recipe and row["variant"] in label:
                if row["variant"] == "recipe":  # its weights file is about to be replaced
                    row.update(weights_file="", shipped_test_accuracy="", weights_dtype="")
                seed = int(row["seed"])
                moves.append((out / _run_folder(recipe, row["variant"], seed),
                              out / _run_folder(recipe, label[row["variant"]], seed)))
                row["variant"] = label[row["variant"]]
        _write_runs(rows, RUNS_CSV)
    moves = [(src, dst) for src, dst in moves if src.is_dir()]
    for src, _ in moves:
        src.rename(src.with_name(src.name + ".promoting"))
    for src, dst in moves:
        src.with_name(src.name + ".promoting").rename(dst)
    set_recipe_keys(recipe, overrides, why)
    print(f"{recipe}: {variant} is the recipe now ({why}); the old recipe's rows are "
          f"variant {old}")
    ship([recipe], out, mnist_dir)


# --------------------------------------------------------------------------- speed
def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_kernels() -> str:
    """Which CPU kernels this process' TensorFlow runs: oneDNN when TF_ENABLE_ONEDNN_OPTS=1,
    or unset on a CPU where TensorFlow turns it on itself (AVX512_VNNI, BF16 or AMX);
    else its own. tools/ is not one of the package's commands, which turn oneDNN on."""
    from mnist_zoo import onednn_by_default

    setting = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    if setting is None:
        return ("oneDNN (on by TensorFlow's default on this CPU)" if onednn_by_default()
                else "TensorFlow's own (oneDNN off by default: no AVX512_VNNI/BF16/AMX)")
    return "oneDNN" if setting == "1" else "TensorFlow's own (TF_ENABLE_ONEDNN_OPTS=0)"


def measure_speed(recipe: str, batches: int, images: int, mnist_dir: Path) -> dict:
    """Seconds per training epoch of `recipe` (its model, batch size, optimizer and
    augmentation, on its dataset's 55,000 training images) and inference images/second.

    Training runs two "epochs" of `batches` batches: the first builds the graph and warms
    up, the second is timed and scaled to a whole epoch (validation not included).
    Inference: batches of 1,000 test images as the tests score them, after a warm-up; the
    best of three passes."""
    import keras
    import tensorflow as tf

    from mnist_zoo import data as data_lib
    from mnist_zoo.models import build_model
    from mnist_zoo.train.fit import STEPS_PER_EXECUTION
    from mnist_zoo.train.recipes import recipe_settings

    settings = recipe_settings(recipe)
    model, dataset, batch_size = settings["model"], settings["dataset"], settings["batch_size"]
    data = data_lib.load_dataset(dataset, _data_dir(dataset, mnist_dir), seed=0)
    steps_per_epoch = math.ceil(len(data.x_train) / batch_size)
    # Whole calls of STEPS_PER_EXECUTION batches, as train() runs them.
    timed = STEPS_PER_EXECUTION * max(1, math.ceil(batches / STEPS_PER_EXECUTION))
    keras.utils.set_random_seed(0)
    net = build_model(model, activation=settings["activation"], optimizer=settings["optimizer"],
                      learning_rate=settings["learning_rate"],
                      momentum=settings.get("momentum", 0.0),
                      lr_schedule=settings["lr_schedule"],
                      decay_steps=steps_per_epoch * settings["epochs"],
                      steps_per_execution=STEPS_PER_EXECUTION,
                      **{key: settings[key] for key in ("dropout", "pooling") if key in settings})
    train_batches = data_lib.make_batches(data.x_train, data.y_train, batch_size, shuffle=True,
                                          augment=settings["augment"], seed=0).repeat()
    epoch_seconds = []

    class EpochClock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_seconds.append(time.perf_counter() - self.started)

    net.fit(train_batches, epochs=2, steps_per_epoch=timed, verbose=0, shuffle=False,
            callbacks=[EpochClock()])  # the pipeline shuffles, as in train()
    x = data.x_test[:images]
    net.predict(x[:1000], batch_size=1000, verbose=0)  # builds the predict graph
    passes = []
    for _ in range(3):
        started = time.perf_counter()
        net.predict(x, batch_size=1000, verbose=0)
        passes.append(time.perf_counter() - started)
    return {
        "recipe": recipe, "model": model, "dataset": dataset, "batch_size": batch_size,
        "augment": settings["augment"], "steps_per_epoch": steps_per_epoch,
        "timed_batches": timed,
        "train_seconds_per_epoch": f"{epoch_seconds[1] / timed * steps_per_epoch:.2f}",
        "inference_images": len(x),
        "inference_images_per_second": f"{len(x) / min(passes):.0f}",
        "cpu": cpu_name(), "cores": len(os.sched_getaffinity(0)), "kernels": cpu_kernels(),
        "load_average": "", "tensorflow": tf.__version__,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
    }


def read_speeds(path: Path = SPEED_CSV) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def speed(recipes: list[str], batches: int, images: int, mnist_dir: Path, path: Path) -> None:
    """Measure each recipe alone, one after the other, and put its row in `path` (a
    recipe measured again replaces its row)."""
    from mnist_zoo.train.recipes import list_recipes

    load = os.getloadavg()[0]
    if load > 0.5 or Path("/tmp/CPU_QUIET").exists():
        print(f"warning: the machine is not idle (load average {load:.2f}); these figures "
              "belong on an idle machine", file=sys.stderr)
    for recipe in recipes or list_recipes():
        row = measure_speed(recipe, batches, images, mnist_dir)
        row["load_average"] = f"{load:.2f}"  # before this command: later ones count its own
        rows = [r for r in read_speeds(path) if r["recipe"] != recipe] + [row]
        temporary = path.with_suffix(".csv.tmp")
        with open(temporary, "w", newline="") as handle:
            writer = csv.DictWriter(handle, SPEED_COLUMNS)
            writer.writeheader()
            writer.writerows(sorted(rows, key=lambda r: r["recipe"]))
        os.replace(temporary, path)
        print(f"{recipe}: {row['train_seconds_per_epoch']} s per training epoch, "
              f"{row['inference_images_per_second']} images/s inference "
              f"({row['cpu']}, {row['cores']} cores, load {row['load_average']})", flush=True)


# --------------------------------------------------------------------------- the card
def _mean_std(values: list[float]) -> str:
    mean = statistics.mean(values)
    if len(values) < 2:
        return f"{100 * mean:.2f}"
    return f"{100 * mean:.2f} ± {100 * statistics.stdev(values):.2f}"


def _recipe_rows(runs: list[dict]) -> dict[str, list[dict]]:
    """{recipe: its "recipe"-variant rows by seed}, MNIST recipes first."""
    recipes = sorted({r["recipe"] for r in runs if r["variant"] == "recipe"},
                     key=lambda name: (name.split("/")[1] != "mnist", name))
    return {recipe: sorted((r for r in runs if r["recipe"] == recipe
                            and r["variant"] == "recipe"), key=lambda r: int(r["seed"]))
            for recipe in recipes}


def _timed_as_now(speed_row: dict, settings: dict) -> bool:
    return (speed_row["augment"] == str(settings["augment"])
            and int(speed_row["batch_size"]) == int(settings["batch_size"]))


def results_table(runs: list[dict], speeds: list[dict]) -> str:
    """One row per recipe: test (and val) accuracy over its seeds, size, speed, the shipped
    file and its own accuracy, command; then where the speed was measured."""
    from mnist_zoo.models.pretrained import WEIGHTS_DIR
    from mnist_zoo.train.recipes import recipe_settings

    # A timing of the recipe as it was (another batch size or augmentation) is not its speed
    # now: such a row shows "—" until `speed` times the recipe again.
    speed_of = {r["recipe"]: r for r in speeds if _timed_as_now(r, recipe_settings(r["recipe"]))}
    lines = ["| model | dataset | test accuracy % (mean ± std) | n (seeds) | val accuracy % "
             "| parameters | training s/epoch | inference images/s | weights file "
             "| shipped file's test accuracy % | command |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for recipe, rows in _recipe_rows(runs).items():
        model, dataset = recipe.split("/")
        seeds = ",".join(r["seed"] for r in rows)
        shipping = next((r for r in rows if r["weights_file"]), None)
        weights, shipped = "—", "—"
        if shipping and (WEIGHTS_DIR / shipping["weights_file"]).is_file():
            size = (WEIGHTS_DIR / shipping["weights_file"]).stat().st_size / 1024
            dtype = shipping["weights_dtype"] or "float32"
            weights = f"`{shipping['weights_file']}` ({size:.0f} KiB, {dtype})"
            if shipping["shipped_test_accuracy"]:
                shipped = (f"{100 * float(shipping['shipped_test_accuracy']):.2f} "
                           f"(seed {shipping['seed']})")
        measured = speed_of.get(recipe)
        per_epoch = f"{float(measured['train_seconds_per_epoch']):.1f}" if measured else "—"
        per_second = f"{int(measured['inference_images_per_second']):,}" if measured else "—"
        lines.append(
            f"| {model} | {dataset} | {_mean_std([float(r['test_accuracy']) for r in rows])} "
            f"| {len(rows)} ({seeds}) | {_mean_std([float(r['val_accuracy']) for r in rows])} "
            f"| {int(rows[0]['params']):,} | {per_epoch} | {per_second} | {weights} "
            f"| {shipped} | `python -m mnist_zoo.train --recipe {recipe}` |")
    lines.append("")
    def machine_of(row: dict) -> tuple:
        return row["cpu"], row["cores"], row["tensorflow"], row.get("kernels") or ""

    machines = sorted({machine_of(r) for r in speeds})
    if not machines:
        lines.append("Speed: not measured yet (`python tools/model_zoo.py speed` on an idle "
                     "machine fills the two speed columns).")
    for machine in machines:
        measured = [r for r in speeds if machine_of(r) == machine]
        kernels = f", {machine[3]} kernels" if machine[3] else ""
        dates = ", ".join(sorted({r["date"] for r in measured}))
        loads = sorted(float(r["load_average"]) for r in measured)
        timed = ", ".join(sorted({r["timed_batches"] for r in measured}, key=int))
        lines.append(f"Speed measured by `tools/model_zoo.py speed` on {machine[0]}, "
                     f"{machine[1]} cores, TensorFlow {machine[2]}{kernels} ({dates}; "
                     f"{len(measured)} "
                     f"recipes, one model at a time, {timed} training batches timed; 1-minute "
                     f"load average {loads[0]:.2f}–{loads[-1]:.2f} before the command).")
    return "\n".join(lines)


def _signed(points: float) -> str:
    return f"+{points:.2f}" if points >= 0 else f"−{-points:.2f}"


def references_table() -> str:
    lines = ["| reference | MNIST test accuracy % | compared with |", "| --- | --- | --- |"]
    for ref in REFERENCES:
        rows = "every MNIST recipe" if ref["lab"] else ", ".join(f"{m}/mnist"
                                                                 for m in ref["models"])
        lines.append(f"| {ref['name']} | {100 * ref['accuracy']:.2f} | {rows} |")
    return "\n".join(lines)


def comparison_table(runs: list[dict]) -> str:
    """Per recipe: its mean test accuracy against the references of its own architecture,
    and against each lab figure (beaten or not, by how many points)."""
    labs = [ref for ref in REFERENCES if ref["lab"]]
    lines = ["| recipe | test accuracy % (n) | vs published references of its architecture "
             + "".join(f"| vs {ref['short']} {100 * ref['accuracy']:.2f} " for ref in labs) + "|",
             "| --- | --- | --- " + "| --- " * len(labs) + "|"]
    for recipe, rows in _recipe_rows(runs).items():
        model, dataset = recipe.split("/")
        values = [float(r["test_accuracy"]) for r in rows]
        mean = statistics.mean(values)
        spread = statistics.stdev(values) if len(values) > 1 else None
        head = f"| {recipe} | {100 * mean:.2f} ({len(rows)}) "
        if dataset != "mnist":
            # The cited figures are MNIST accuracies: no Fashion-MNIST row is compared.
            lines.append(head + "| no Fashion-MNIST reference cited " + "| — " * len(labs) + "|")
            continue

        def versus(ref):
            points = 100 * (mean - ref["accuracy"])
            verdict = "beats" if points > 0 else "below"
            # A lead smaller than the seeds' standard deviation is not shown to be real.
            if spread is not None and abs(points) < 100 * spread:
                verdict += ", within 1 std"
            return f"{_signed(points)} ({verdict})"

        # The lab's figures have their own columns.
        own = [f"{ref['short']}: {versus(ref)}" for ref in REFERENCES
               if model in ref["models"] and not ref["lab"]]
        lines.append(head + f"| {'; '.join(own) or 'none cited'} "
                     + "".join(f"| {versus(ref)} " for ref in labs) + "|")
    return "\n".join(lines)


def _augment_only(variant: str) -> bool:
    return variant.startswith("augment=") and "," not in variant


def variants_table(runs: list[dict], augment_only: bool) -> str:
    """Each recipe with variant runs (augment_only: those that change the augmentation
    alone; else every other), against its own recipe run of the same seed."""
    lines = ["| recipe | seed | variant | epochs | augment | test accuracy % | val accuracy % "
             "| train accuracy % | s/epoch |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    pairs = sorted({(r["recipe"], r["seed"]) for r in runs if r["variant"] != "recipe"
                    and _augment_only(r["variant"]) == augment_only})
    for recipe, seed in pairs:
        rows = [r for r in runs if r["recipe"] == recipe and r["seed"] == seed
                and (r["variant"] == "recipe" or _augment_only(r["variant"]) == augment_only)]
        for r in sorted(rows, key=lambda r: (r["variant"] != "recipe", r["variant"])):
            lines.append(f"| {recipe} | {seed} | {r['variant']} | {r['epochs']} | {r['augment']} "
                         f"| {100 * float(r['test_accuracy']):.2f} "
                         f"| {100 * float(r['val_accuracy']):.2f} "
                         f"| {100 * float(r['train_accuracy']):.2f} | {r['seconds_per_epoch']} |")
    return "\n".join(lines)


# Issue #9's goals: test accuracy, mean over seeds, of the best of these recipes.
GOALS = (
    ("MNIST: LeNet-5", ["lenet5/mnist"], 0.992),
    ("MNIST: best MLP", [f"{m}/mnist" for m in ("mlp_bp", "mlp_simple", "mlp_medium",
                                                 "mlp_complex", "mlp_residual")], 0.988),
    ("MNIST: best model", None, 0.996),
    ("Fashion-MNIST: LeNet-5", ["lenet5/fashion_mnist"], 0.905),
    ("Fashion-MNIST: best model", None, 0.935),
)


def goals_table(runs: list[dict]) -> str:
    """Each goal against the best measured recipe mean; n says how many seeds stand behind it."""
    by_recipe: dict[str, list[float]] = {}
    for r in runs:
        if r["variant"] == "recipe":
            by_recipe.setdefault(r["recipe"], []).append(float(r["test_accuracy"]))
    lines = ["| goal | target % | best recipe | measured % (n seeds) | met | gap (points) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for label, candidates, target in GOALS:
        dataset = "mnist" if label.startswith("MNIST") else "fashion_mnist"
        if candidates is None:
            candidates = [name for name in by_recipe if name.endswith("/" + dataset)]
        measured = {name: by_recipe[name] for name in candidates if name in by_recipe}
        if not measured:
            lines.append(f"| {label} | {100 * target:.1f} | — | not measured | — | — |")
            continue
        best = max(measured, key=lambda name: statistics.mean(measured[name]))
        mean = statistics.mean(measured[best])
        gap = 100 * (target - mean)
        n = len(measured[best])
        # The goals are means of 3 seeds: fewer seeds cannot show that one is met.
        met = "no" if gap > 0 else "yes" if n >= 3 else f"on {n} seed{'s' * (n > 1)} only"
        lines.append(f"| {label} | {100 * target:.1f} | {best} | {100 * mean:.2f} "
                     f"(n={n}) | {met} | {'—' if gap <= 0 else f'{gap:.2f}'} |")
    return "\n".join(lines)


def replace_between(text: str, marker: str, body: str) -> str:
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    if start not in text or end not in text:
        raise SystemExit(f"{CARD} lacks the markers {start} ... {end}")
    head, rest = text.split(start, 1)
    return f"{head}{start}\n{body}\n{end}{rest.split(end, 1)[1]}"


def write_card(runs: list[dict], speeds: list[dict], card: Path = CARD) -> None:
    text = card.read_text()
    text = replace_between(text, "results", results_table(runs, speeds))
    text = replace_between(text, "references", references_table())
    text = replace_between(text, "comparison", comparison_table(runs))
    text = replace_between(text, "augmentation", variants_table(runs, augment_only=True))
    text = replace_between(text, "candidates", variants_table(runs, augment_only=False))
    text = replace_between(text, "goals", goals_table(runs))
    card.write_text(text)
    print(f"updated {card} from {len(runs)} runs and {len(speeds)} speed measurements")


# --------------------------------------------------------------------------- command line
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    runner = commands.add_parser("run", help="train recipes x seeds, append to the CSV")
    runner.add_argument("recipes", nargs="+", help="recipe names such as lenet5/mnist")
    runner.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    runner.add_argument("--augment", default=None,
                        help="override the recipe's augmentation (a with/without comparison); "
                             "short for --set augment=...")
    runner.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe setting (repeatable), e.g. --set epochs=20: "
                             "a variant, kept apart from the recipe's runs")
    runner.add_argument("--out", type=Path, default=ROOT / "results" / "zoo_runs")
    runner.add_argument("--mnist-dir", type=Path, default=MNIST_DIR)
    runner.add_argument("--no-card", action="store_true",
                        help="leave docs/model_zoo.md alone (run `card` afterwards)")
    commands.add_parser("card", help="rewrite docs/model_zoo.md's tables from the CSVs")
    shipper = commands.add_parser("ship", help="rewrite the package weights from seed-0 runs")
    shipper.add_argument("recipes", nargs="*", help="default: every recipe with a seed-0 run")
    shipper.add_argument("--out", type=Path, default=ROOT / "results" / "zoo_runs")
    shipper.add_argument("--mnist-dir", type=Path, default=MNIST_DIR)
    promoter = commands.add_parser(
        "promote", help="make a variant run on seeds 0, 1, 2 the recipe, and ship it")
    promoter.add_argument("recipe", help="a recipe name such as cnn_bn/mnist")
    promoter.add_argument("variant", help="the variant as the CSV names it, e.g. epochs=16")
    promoter.add_argument("--out", type=Path, default=ROOT / "results" / "zoo_runs")
    promoter.add_argument("--mnist-dir", type=Path, default=MNIST_DIR)
    timer = commands.add_parser(
        "speed", help="time training and inference, one model at a time (idle machine)")
    timer.add_argument("recipes", nargs="*", help="default: every recipe")
    timer.add_argument("--batches", type=int, default=128,
                       help="training batches timed after as many warm-up ones (rounded up "
                            "to a multiple of 32); scaled to a whole epoch")
    timer.add_argument("--images", type=int, default=10_000, help="test images for inference")
    timer.add_argument("--csv", type=Path, default=SPEED_CSV)
    timer.add_argument("--mnist-dir", type=Path, default=MNIST_DIR)
    args = parser.parse_args(argv)
    if args.command == "run":
        sets = args.set + ([f"augment={args.augment}"] if args.augment is not None else [])
        run(args.recipes, args.seeds, sets, args.out, args.mnist_dir)
        if args.no_card:
            return 0
    elif args.command == "ship":
        ship(args.recipes, args.out, args.mnist_dir)
    elif args.command == "promote":
        promote(args.recipe, args.variant, args.out, args.mnist_dir)
    elif args.command == "speed":
        speed(args.recipes, args.batches, args.images, args.mnist_dir, args.csv)
        if args.csv != SPEED_CSV:
            return 0  # a trial measurement elsewhere does not reach the card
    write_card(read_runs(), read_speeds())
    return 0


if __name__ == "__main__":
    sys.exit(main())
