"""plot_results, which draws every chart a CSV allows, and the thin command line over it."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import matplotlib

from mnist_zoo.cli import Parser, command, output_folder
from mnist_zoo.plot import _style as style
from mnist_zoo.plot._curves import plot_curves
from mnist_zoo.plot._data import PlotError, Results
from mnist_zoo.plot._history import plot_history
from mnist_zoo.plot._importance import Importance, importance_data, plot_importance
from mnist_zoo.plot._interactions import TOP_PAIRS, plot_interactions
from mnist_zoo.plot._kinds import CONTINUOUS_VALUES
from mnist_zoo.plot._lines import plot_lines
from mnist_zoo.plot._optimizer_activation import plot_optimizer_activation
from mnist_zoo.plot._parallel_coordinates import plot_parallel_coordinates
from mnist_zoo.plot._ranking import plot_ranking
from mnist_zoo.plot._read import left_out, load_results, normalise_column
from mnist_zoo.plot._report import write_report
from mnist_zoo.plot._slice import plot_slice
from mnist_zoo.plot._what_matters import plot_what_matters


def draw_charts(res: Results, out: Path, fmt: str = "png", top: int = 5,
                pairs: list[tuple[str, str]] | None = None,
                top_pairs: int = TOP_PAIRS, importance: Importance | None = None
                ) -> tuple[list[style.Chart], list[str]]:
    """Every chart the results allow, and a line for each chart left out saying why.

    importance: importance_data(res), where the caller has it already."""
    importance = importance_data(res) if importance is None else importance
    with matplotlib.rc_context(style.STYLE):
        charts = [*plot_ranking(res, out, fmt), *plot_importance(res, out, fmt, importance),
                  *plot_slice(res, out, fmt, importance.shares), *plot_lines(res, out, fmt),
                  *plot_interactions(res, out, fmt, pairs, top_pairs),
                  *plot_parallel_coordinates(res, out, fmt),
                  *plot_optimizer_activation(res, out, fmt),
                  *plot_what_matters(res, out, fmt), *plot_curves(res, out, fmt, top),
                  *plot_history(res, out, fmt)]
    return charts, not_drawn(res, charts, top)


def not_drawn(res: Results, charts: list[style.Chart], top: int) -> list[str]:
    names = {chart.path.stem for chart in charts}
    notes = []
    if len(res.axes) < 2:
        varies = f"only {style.name(res.axes[0])}" if res.axes else "no setting"
        notes.append("lines, heatmaps and parallel coordinates: they need two settings that "
                     f"vary, and these {res.unit}s vary {varies}")
    elif len(res.categorical) < 2:
        continuous = " and ".join(map(style.name, res.continuous))
        notes.append(f"lines: they need two settings that are categories, and {continuous} "
                     f"{'is' if len(res.continuous) == 1 else 'are'} continuous (the slice "
                     "chart shows them on number lines)")
    elif not any(name.startswith("lines_by_") for name in names):
        notes.append(f"lines: no {res.unit} passes the threshold {res.format(res.threshold)}")
    if "slice" not in names and res.axes:
        notes.append("slice: no setting is continuous (a setting is when it came from a range "
                     f"or has more than {CONTINUOUS_VALUES} numeric values)")
    if "optimisation_history" not in names:
        notes.append("optimisation history: the CSV has no seconds column")
    if top > 0 and "training_curves" not in names:
        notes.append("training curves: " + (
            "the CSV has no history_path column" if "history_path" not in res.trials else
            f"none of the best {res.unit}s has a readable per-epoch history file"))
    return notes


def run_plot(csv_path, out_dir=None, metric: str = "val_accuracy",
             threshold: float | None = None, fmt: str = "png", top: int = 5,
             pairs: list[tuple[str, str]] | None = None,
             top_pairs: int = TOP_PAIRS) -> tuple[list[Path], list[str]]:
    """plot_results, also returning a line for each thing left out (rows, charts)."""
    if fmt not in style.FORMATS:
        raise PlotError(f"unknown format {fmt!r}; choose one of {', '.join(style.FORMATS)}")
    if threshold is not None and not math.isfinite(threshold):
        raise PlotError(f"--threshold must be a finite number, got {threshold}")
    res = load_results(csv_path, metric, threshold)
    out = output_folder(Path(csv_path).parent / "plots" if out_dir is None else out_dir,
                        PlotError)
    importance = importance_data(res)
    charts, notes = draw_charts(res, out, fmt, top, pairs, top_pairs, importance)
    report = write_report(res, charts, out, notes, importance)
    reasons = left_out(res)
    if len(reasons):
        counts = ", ".join(f"{n} {reason}" for reason, n in reasons.value_counts().items())
        notes.insert(0, f"{len(reasons)} of {len(res.table)} rows left out of the charts "
                        f"({counts}); {report.name} lists them")
    return [chart.path for chart in charts] + [report], notes


def plot_results(csv_path, out_dir=None, metric: str = "val_accuracy",
                 threshold: float | None = None, fmt: str = "png", top: int = 5,
                 pairs: list[tuple[str, str]] | None = None,
                 top_pairs: int = TOP_PAIRS) -> list[Path]:
    """Write every chart the CSV allows and report.html into out_dir (default: plots/
    beside the CSV); return their paths.

    pairs: the heatmaps to draw, as (rows, columns) settings, instead of the `top_pairs`
    pairs that interact most."""
    return run_plot(csv_path, out_dir, metric, threshold, fmt, top, pairs, top_pairs)[0]


def pair_argument(text: str) -> tuple[str, str]:
    """'learning_rate:momentum' -> ('learning_rate', 'momentum')."""
    parts = [normalise_column(part) for part in text.split(":")]
    if len(parts) != 2 or not all(parts):
        raise argparse.ArgumentTypeError(f"expected two settings as ROWS:COLUMNS, e.g. "
                                         f"learning_rate:momentum, got {text!r}")
    return parts[0], parts[1]


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def whole_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text!r}")
    return value


def build_parser(description: str = "") -> argparse.ArgumentParser:
    parser = Parser(  # one-line errors
        prog="python -m mnist_zoo.plot", description=description)
    parser.add_argument("csv", metavar="CSV", help="results CSV of mnist_zoo.search (or a lab CSV)")
    parser.add_argument("--out", default=None,
                        help="output folder (default: plots/ beside the CSV, so "
                             "results/plots for results/experiment_results.csv)")
    parser.add_argument("--metric", default="val_accuracy",
                        help="column to chart, e.g. val_accuracy, test_accuracy or val_loss "
                             "(lower is better for losses)")
    parser.add_argument("--threshold", type=finite_float, default=None,
                        help="leave trials worse than this out of the line chart and grey them "
                             "elsewhere, e.g. 0.5 to hide failed, near-chance runs")
    parser.add_argument("--pairs", type=pair_argument, action="append", metavar="ROWS:COLUMNS",
                        help="draw the heatmap of these two settings (repeat for more) instead "
                             "of the pairs that interact most, e.g. learning_rate:momentum")
    parser.add_argument("--top-pairs", type=whole_number, default=TOP_PAIRS, metavar="N",
                        help=f"heatmaps of the N pairs of settings that interact most "
                             f"(default {TOP_PAIRS}; at least the strongest one is drawn)")
    parser.add_argument("--format", dest="fmt", default="png", choices=style.FORMATS,
                        help="chart file format")
    parser.add_argument("--top", type=whole_number, default=5,
                        help="trials in the training-curve chart (0: none)")
    return parser


@command
def main(argv=None) -> int:
    from mnist_zoo import plot  # the package's docstring is the --help text

    args = build_parser(plot.__doc__).parse_args(argv)
    written, notes = run_plot(args.csv, args.out, metric=args.metric,
                              threshold=args.threshold, fmt=args.fmt, top=args.top,
                              pairs=args.pairs, top_pairs=args.top_pairs)
    for path in written:
        print(path)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return 0
