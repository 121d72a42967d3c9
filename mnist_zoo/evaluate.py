"""Scoring a trained model: accuracy, loss, per-class precision/recall/F1, confusion matrix.

    python -m mnist_zoo.evaluate results/runs/lenet5_relu_adam_lr0.001_bs64/model.keras \\
        --data-dir DIR

MODEL is a .keras file, a SavedModel folder (from model.export), a run folder, a zoo
name with shipped weights (lenet5:mnist), or an .onnx or .tflite file from
mnist_zoo.export (run in onnxruntime or LiteRT; `pip install -e '.[export]'`). The
output folder (default results/evaluation/<model name>/) then holds:

  metrics.json              accuracy, loss, per-class scores, confusion matrix, gallery indices
  classification_report.csv per-class precision, recall, F1 and support
  confusion_matrix.png      all predictions, and the mistakes alone
  misclassified.png         the most confident mistakes
  correct.png               correct predictions the model was least sure of
  samples.png               a random sample of predictions against the truth
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import classification_report

from mnist_zoo.cli import Parser, command
from mnist_zoo.errors import DataError, SettingsError
from mnist_zoo.models.saved import check_model_fits
from mnist_zoo.scores import crossentropy, score_predictions

SPLITS = ("test", "val", "train")
# Ink dark on white reads more naturally than MNIST's own white-on-black.
DIGIT_CMAP = "gray_r"
RIGHT, WRONG = "#1a7f37", "#cf222e"
# Digits a gallery page shows (5 columns, 20 rows); more would take minutes to draw into
# an image too tall to read (100,000 asked: 500 s and 1.8 GB before any file).
MAX_GALLERY = 100


# --------------------------------------------------------------------------- saved models
def evaluate(model_path, dataset: str = "mnist", data_dir=None, out=None, *,
             split: str = "test", gallery_size: int = 25, seed: int = 0,
             verbose: bool = True) -> dict:
    """Score a saved model on one split of a dataset and write the report folder.

    Returns the metrics written to metrics.json; its "galleries" entry holds, for each
    gallery, the dataset indices shown with their predicted and true labels.
    """
    from mnist_zoo import data as data_lib
    from mnist_zoo.cli import output_folder
    from mnist_zoo.models.saved import load_model

    if split not in SPLITS:
        raise SettingsError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    model = load_model(model_path)
    data = data_lib.load_dataset(dataset, data_dir, seed=seed)
    x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
    if len(x) == 0:
        raise DataError(f"the {split} split of {dataset} is empty")
    check_model_fits(model, x[:1], len(data.class_names), data.name)
    if model.trained_on and model.trained_on != data.name:
        print(f"warning: {model.name} was trained on {model.trained_on}, evaluated here on "
              f"{data.name}; pass --dataset {model.trained_on} to score it on the images it "
              "was trained for", file=sys.stderr)
    if gallery_size > MAX_GALLERY:
        print(f"warning: --gallery-size {gallery_size} is more than a page shows; each gallery "
              f"shows {MAX_GALLERY}", file=sys.stderr)
        gallery_size = MAX_GALLERY
    out = output_folder(out if out else Path("results/evaluation") / model.name)

    probabilities = model(x)
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    names = data.class_names
    scores = score_predictions(y, probabilities, names)
    report_text = classification_report(y, predicted, labels=range(len(names)),
                                        target_names=names, digits=4, zero_division=0)
    galleries = pick_galleries(y, predicted, confidence, gallery_size, seed)

    files = {
        "classification_report": write_report_csv(y, predicted, names,
                                                   out / "classification_report.csv"),
        "confusion_matrix": plot_confusion_matrix(np.array(scores["confusion_matrix"]), names,
                                                  out / "confusion_matrix.png"),
    }
    titles = {"misclassified": f"The {len(galleries['misclassified'])} most confident mistakes",
              "correct": "Correct, but least confident",
              "samples": "A random sample: prediction (confidence) against the truth"}
    for key, title in titles.items():
        files[key] = plot_gallery(x, y, predicted, confidence, galleries[key], names,
                                  out / f"{key}.png", title)

    metrics = {
        "model": str(model.path), "model_kind": model.kind, "model_name": model.name,
        "dataset": data.name, "data_source": data.source, "split": split, "images": len(x),
        "accuracy": scores["accuracy"], "loss": crossentropy(y, probabilities),
        "errors": int((predicted != y).sum()),
        "macro_avg": scores["macro_avg"], "per_class": scores["per_class"],
        "confusion_matrix": scores["confusion_matrix"],
        "galleries": {key: {"indices": idx.tolist(), "predicted": predicted[idx].tolist(),
                            "true": y[idx].tolist(), "confidence": confidence[idx].tolist()}
                      for key, idx in galleries.items()},
        "files": {key: path.name for key, path in files.items()},
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if verbose:
        print(report_text)
        print(f"{model.name}: {split} accuracy {metrics['accuracy']:.4f}, loss "
              f"{metrics['loss']:.4f}, {metrics['errors']} of {len(x)} wrong -> {out}")
    return metrics


def pick_galleries(y: np.ndarray, predicted: np.ndarray, confidence: np.ndarray,
                   size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Dataset indices for each gallery: confident mistakes, unsure successes, a random draw."""
    wrong = np.flatnonzero(predicted != y)
    right = np.flatnonzero(predicted == y)
    # A stable sort keeps equal confidences in dataset order, so galleries are reproducible.
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")][:size]
    right = right[np.argsort(confidence[right], kind="stable")][:size]
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(y), size=min(size, len(y)), replace=False))
    return {"misclassified": wrong, "correct": right, "samples": sample}


def write_report_csv(y: np.ndarray, predicted: np.ndarray, names: list[str], path: Path) -> Path:
    report = classification_report(y, predicted, labels=range(len(names)), target_names=names,
                                   output_dict=True, zero_division=0)
    accuracy = report.pop("accuracy")  # a bare number; it gets a row of its own below
    table = pd.DataFrame(report).T
    table.loc["accuracy"] = [np.nan, np.nan, accuracy, len(y)]
    table["support"] = table["support"].astype(int)
    table.index.name = "class"
    table.to_csv(path, float_format="%.4f")
    return path


# --------------------------------------------------------------------------- charts
def _figure(**kwargs):
    # A bare Figure needs no pyplot backend and leaves no global state behind.
    from matplotlib.figure import Figure

    return Figure(layout="constrained", **kwargs)


def plot_confusion_matrix(matrix: np.ndarray, names: list[str], path: Path) -> Path:
    """Counts on the left; on the right the mistakes alone, so rare confusions stand out."""
    from sklearn.metrics import ConfusionMatrixDisplay

    fig = _figure(figsize=(13, 6.2))
    axes = fig.subplots(1, 2)
    mistakes = matrix.copy()
    np.fill_diagonal(mistakes, 0)
    panels = [(matrix, "All predictions", "Blues"), (mistakes, "Mistakes only", "Reds")]
    for ax, (counts, title, cmap) in zip(axes, panels):
        display = ConfusionMatrixDisplay(counts, display_labels=names)
        display.plot(ax=ax, cmap=cmap, values_format="d", colorbar=False,
                     xticks_rotation=45 if max(map(len, names)) > 2 else "horizontal")
        for text in display.text_.ravel():  # zeros are noise in a mostly empty matrix
            if text.get_text() == "0":
                text.set_text("")
        ax.set_title(title, fontsize=13)
    fig.suptitle(f"Confusion matrix: {matrix.sum() - np.trace(matrix)} of {matrix.sum()} wrong",
                 fontsize=14)
    fig.savefig(path, dpi=100)
    return path


def plot_gallery(x: np.ndarray, y: np.ndarray, predicted: np.ndarray, confidence: np.ndarray,
                 indices: np.ndarray, names: list[str], path: Path, title: str) -> Path:
    """A grid of digits titled with prediction and confidence: green right, red wrong."""
    columns = 5
    rows = max(1, int(np.ceil(len(indices) / columns)))
    fig = _figure(figsize=(1.9 * columns, 2.1 * rows + 0.5))
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for ax in axes[len(indices):]:
        ax.set_axis_off()
    for ax, i in zip(axes, indices):
        ax.imshow(x[i].squeeze(), cmap=DIGIT_CMAP, vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        colour = RIGHT if predicted[i] == y[i] else WRONG
        for spine in ax.spines.values():  # a coloured frame tells right from wrong at a glance
            spine.set_edgecolor(colour)
            spine.set_linewidth(1.5)
        ax.set_title(f"said {names[predicted[i]]} ({confidence[i]:.0%})\nwas {names[y[i]]}",
                     color=colour, fontsize=10)
        ax.text(0.03, 0.03, f"#{i}", transform=ax.transAxes, fontsize=7, color="grey")
    if len(indices) == 0:
        fig.text(0.5, 0.5, "nothing to show", ha="center", va="center", fontsize=14)
    fig.suptitle(title, fontsize=13)
    fig.savefig(path, dpi=100)
    return path


# --------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    from mnist_zoo.cli import non_negative_int
    from mnist_zoo.data import add_data_arguments

    parser = Parser(  # one-line errors
        prog="python -m mnist_zoo.evaluate", description=__doc__)
    parser.add_argument("model", metavar="MODEL",
                        help=".keras, .onnx or .tflite file, SavedModel folder or run "
                             "folder to evaluate, or a zoo name with shipped weights such as "
                             "lenet5:mnist")
    add_data_arguments(parser)
    parser.add_argument("--split", default="test", choices=SPLITS,
                        help="which images to score (val and train as train.py splits them)")
    parser.add_argument("--out", default=None,
                        help="output folder (default results/evaluation/<model name>)")
    parser.add_argument("--gallery-size", type=non_negative_int, default=25,
                        help=f"digits in each gallery (at most {MAX_GALLERY})")
    parser.add_argument("--seed", type=int, default=0,
                        help="validation split and random sample seed")
    return parser


@command
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    evaluate(args.model, args.dataset, args.data_dir, args.out, split=args.split,
             gallery_size=args.gallery_size, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
