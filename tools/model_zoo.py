"""Train the reference recipes over seeds and write the model card's figures.

    python tools/model_zoo.py run lenet5/mnist mlp_bp/mnist --seeds 0 1 2
    python tools/model_zoo.py run lenet5/mnist --seeds 0 --augment none   # the "without" run
    python tools/model_zoo.py card                                         # docs/model_zoo.md
    python tools/model_zoo.py ship lenet5/mnist                            # weights again

`run` trains each recipe x seed through mnist_zoo.train.train() and appends one row per
run to docs/model_zoo_runs.csv (a run already in the CSV is skipped, so an interrupted
bench resumes). The seed-0 run of every recipe also writes the package's
pretrained weights (mnist_zoo/models/weights/, through `save_weights` here: the
package itself only reads them). `card` rewrites the tables of docs/model_zoo.md
between their markers from the CSV alone: every figure in the card is a measured one.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS_CSV = ROOT / "docs" / "model_zoo_runs.csv"
CARD = ROOT / "docs" / "model_zoo.md"
MNIST_DIR = ROOT.parent / "shared" / "data" / "mnist-full"
SHIP_SEED = 0  # the seed-0 run of every recipe ships its weights
COLUMNS = ("recipe", "model", "dataset", "variant", "augment", "seed", "epochs",
           "test_accuracy", "val_accuracy", "train_accuracy", "params", "seconds",
           "seconds_per_epoch", "load_average", "weights_file")


def read_runs(path: Path = RUNS_CSV) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _run_key(row: dict) -> tuple[str, str, int]:
    return row["recipe"], row["variant"], int(row["seed"])


def replace_run(row: dict, path: Path = RUNS_CSV) -> None:
    """Put `row` in place of the CSV's row of the same recipe, variant and seed (a run
    trained again), rewriting the file through a temporary one so no reader sees half."""
    rows = [r for r in read_runs(path) if _run_key(r) != _run_key(row)] + [row]
    temporary = path.with_suffix(".csv.tmp")
    with open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(temporary, path)


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


def append_run(row: dict, path: Path = RUNS_CSV) -> None:
    new = not path.is_file()
    # One short line per append: two bench processes can share the file.
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow(row)


# --------------------------------------------------------------------------- training
def run_one(recipe: str, seed: int, augment: str | None, out: Path, mnist_dir: Path) -> dict:
    from mnist_zoo.train.recipes import recipe_settings
    from mnist_zoo.train import train

    settings = recipe_settings(recipe)
    variant = "recipe" if augment is None else f"augment={augment}"
    if augment is not None:
        settings["augment"] = augment
    data_dir = str(mnist_dir) if settings["dataset"] == "mnist" else None
    name = f"{recipe.replace('/', '_')}_{variant.replace('=', '_')}_seed{seed}"
    load = os.getloadavg()[0]  # how busy the shared cores were as the run began
    result = train(**settings, data_dir=data_dir, seed=seed, out=out, name=name,
                   export=False, verbose=2)
    metrics = result.metrics
    weights_file = ""
    if variant == "recipe" and seed == SHIP_SEED:
        path = save_weights(result.model, model=settings["model"],
                                       dataset=settings["dataset"], recipe=recipe, seed=seed,
                                       settings=settings, metrics=metrics)
        weights_file = path.name
    return {
        "recipe": recipe, "model": settings["model"], "dataset": settings["dataset"],
        "variant": variant, "augment": settings["augment"], "seed": seed,
        "epochs": metrics["epochs_run"],
        "test_accuracy": f"{metrics['test']['accuracy']:.4f}",
        "val_accuracy": f"{metrics['val']['accuracy']:.4f}",
        "train_accuracy": f"{metrics['train']['accuracy']:.4f}",
        "params": metrics["params"], "seconds": metrics["seconds"],
        "seconds_per_epoch": f"{metrics['seconds'] / metrics['epochs_run']:.1f}",
        "load_average": f"{load:.2f}", "weights_file": weights_file,
    }


def save_weights(net, *, model: str, dataset: str, recipe: str, seed: int, settings: dict,
                 metrics: dict) -> Path:
    """Write `net`'s weights and their sidecar into the package; the stated accuracy is
    `metrics`' test score."""
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
    bare.save_weights(path)
    entry = {
        "model": model, "dataset": dataset, "recipe": recipe, "seed": seed,
        "settings": architecture,
        "test_accuracy": metrics["test"]["accuracy"],
        "val_accuracy": metrics["val"]["accuracy"] if metrics.get("val") else None,
        "params": metrics["params"], "bytes": path.stat().st_size,
    }
    sidecar_path(model, dataset).write_text(json.dumps(entry, indent=2) + "\n")
    return path


def ship(recipes: list[str], out: Path) -> None:
    """Write the package weights again from the seed-0 runs' model.keras in `out`."""
    import keras

    from mnist_zoo.train.recipes import recipe_settings

    for recipe in recipes:
        settings = recipe_settings(recipe)
        row = next(r for r in read_runs() if r["recipe"] == recipe and r["variant"] == "recipe"
                   and int(r["seed"]) == SHIP_SEED)
        run_dir = out / f"{recipe.replace('/', '_')}_recipe_seed{SHIP_SEED}"
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert f"{metrics['test']['accuracy']:.4f}" == row["test_accuracy"], run_dir
        net = keras.models.load_model(run_dir / "model.keras", compile=False)
        path = save_weights(net, model=settings["model"], dataset=settings["dataset"],
                                       recipe=recipe, seed=SHIP_SEED, settings=settings,
                                       metrics=metrics)
        print(f"{path}: {path.stat().st_size} bytes")


def run(recipes: list[str], seeds: list[int], augment: str | None, out: Path,
        mnist_dir: Path) -> None:
    variant = "recipe" if augment is None else f"augment={augment}"
    for recipe in recipes:
        for seed in seeds:
            why = needs_run(recipe, variant, seed, read_runs())
            if why is None:
                print(f"skip {recipe} {variant} seed {seed}: already in {RUNS_CSV.name}")
                continue
            row = run_one(recipe, seed, augment, out, mnist_dir)
            if why == "ship":
                replace_run(row)
            else:
                append_run(row)
            print(f"{recipe} {variant} seed {seed}: test {row['test_accuracy']}, "
                  f"val {row['val_accuracy']}, {row['seconds_per_epoch']} s/epoch", flush=True)


# --------------------------------------------------------------------------- the card
def _mean_std(values: list[float]) -> str:
    mean = statistics.mean(values)
    if len(values) < 2:
        return f"{100 * mean:.2f}"
    return f"{100 * mean:.2f} ± {100 * statistics.stdev(values):.2f}"


def results_table(runs: list[dict]) -> str:
    """One row per recipe: test (and val) accuracy over its seeds, size, speed, command."""
    from mnist_zoo.models.pretrained import WEIGHTS_DIR

    lines = ["| model | dataset | test accuracy % (mean ± std) | n (seeds) | val accuracy % "
             "| parameters | s/epoch (2 cores) | weights file | command |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    recipes = sorted({r["recipe"] for r in runs if r["variant"] == "recipe"},
                     key=lambda name: (name.split("/")[1] != "mnist", name))
    for recipe in recipes:
        rows = sorted((r for r in runs if r["recipe"] == recipe and r["variant"] == "recipe"),
                      key=lambda r: int(r["seed"]))
        model, dataset = recipe.split("/")
        seeds = ",".join(r["seed"] for r in rows)
        weights = next((r["weights_file"] for r in rows if r["weights_file"]), "")
        size = ""
        if weights and (WEIGHTS_DIR / weights).is_file():
            size = f"`{weights}` ({(WEIGHTS_DIR / weights).stat().st_size / 1024:.0f} KiB)"
        per_epoch = statistics.mean(float(r["seconds_per_epoch"]) for r in rows)
        lines.append(
            f"| {model} | {dataset} | {_mean_std([float(r['test_accuracy']) for r in rows])} "
            f"| {len(rows)} ({seeds}) | {_mean_std([float(r['val_accuracy']) for r in rows])} "
            f"| {int(rows[0]['params']):,} | {per_epoch:.0f} | {size or '—'} "
            f"| `python -m mnist_zoo.train --recipe {recipe}` |")
    return "\n".join(lines)


def augment_table(runs: list[dict]) -> str:
    """Each recipe that has "augment=..." runs, against its own recipe run of the same seed."""
    lines = ["| recipe | seed | epochs | augment | test accuracy % | val accuracy % "
             "| train accuracy % | s/epoch |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    pairs = sorted({(r["recipe"], r["seed"]) for r in runs if r["variant"] != "recipe"})
    for recipe, seed in pairs:
        rows = [r for r in runs if r["recipe"] == recipe and r["seed"] == seed]
        for r in sorted(rows, key=lambda r: (r["variant"] != "recipe", r["augment"])):
            lines.append(f"| {recipe} | {seed} | {r['epochs']} | {r['augment']} "
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


def write_card(runs: list[dict], card: Path = CARD) -> None:
    text = card.read_text()
    text = replace_between(text, "results", results_table(runs))
    text = replace_between(text, "augmentation", augment_table(runs))
    text = replace_between(text, "goals", goals_table(runs))
    card.write_text(text)
    print(f"updated {card} from {len(runs)} runs")


# --------------------------------------------------------------------------- command line
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    runner = commands.add_parser("run", help="train recipes x seeds, append to the CSV")
    runner.add_argument("recipes", nargs="+", help="recipe names such as lenet5/mnist")
    runner.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    runner.add_argument("--augment", default=None,
                        help="override the recipe's augmentation (a with/without comparison)")
    runner.add_argument("--out", type=Path, default=ROOT / "results" / "zoo_runs")
    runner.add_argument("--mnist-dir", type=Path, default=MNIST_DIR)
    runner.add_argument("--no-card", action="store_true",
                        help="leave docs/model_zoo.md alone (run `card` afterwards)")
    commands.add_parser("card", help="rewrite docs/model_zoo.md's tables from the CSV")
    shipper = commands.add_parser("ship", help="rewrite the package weights from seed-0 runs")
    shipper.add_argument("recipes", nargs="+")
    shipper.add_argument("--out", type=Path, default=ROOT / "results" / "zoo_runs")
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.recipes, args.seeds, args.augment, args.out, args.mnist_dir)
        if args.no_card:
            return 0
    elif args.command == "ship":
        ship(args.recipes, args.out)
    write_card(read_runs())
    return 0


if __name__ == "__main__":
    sys.exit(main())
