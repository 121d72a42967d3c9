"""Exported files of every zoo model: size, test accuracy and speed (issue #33, item 5).

    python bench/export.py      # 16 shipped models x 3 files: about 10 min on an idle 2-core machine
    python bench/export.py --models lenet5:mnist --data-dir ../shared/data/mnist-8k2k \\
        --csv /tmp/export.csv --chart /tmp/export.png --card /tmp/card.md   # check the tool

For each zoo model with shipped weights, on its dataset's test set (MNIST: the official
10,000 in ../shared/data/mnist-full; Fashion-MNIST: Debian's folder), `mnist_zoo.export`
writes an ONNX float32, a LiteRT float16 and a LiteRT int8 file (each checked against
Keras; a file that fails is a row with passed=False), and this records one row per file
and one for the Keras model itself: size, test accuracy, the share of images given the
same digit as Keras, latency for one image and throughput in batches of 1,000 (medians of
`--repeats` timed runs after warm-up, time.perf_counter). Then it writes the CSV
(docs/model_zoo_export.csv), the chart of accuracy against latency and against size
(docs/model_zoo_export.png) and the card's table between <!-- export --> markers in
docs/model_zoo.md. `--card-only` redraws the chart and table from the CSV.

Timings need the machine to itself: run it alone on an idle machine (the CSV records the
CPU, the load average at the start and TensorFlow's kernels).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))  # model_zoo: the card's machine facts and markers
MNIST_DIR = ROOT.parent / "shared" / "data" / "mnist-full"
CSV = ROOT / "docs" / "model_zoo_export.csv"
CHART = ROOT / "docs" / "model_zoo_export.png"
CARD = ROOT / "docs" / "model_zoo.md"
# The card's three file kinds (#33 item 5), after the Keras reference.
KINDS = (("onnx", "float32"), ("litert", "float16"), ("litert", "int8"))
LABELS = {("keras", "float32"): "Keras", ("onnx", "float32"): "ONNX float32",
          ("litert", "float16"): "LiteRT float16", ("litert", "int8"): "LiteRT int8"}
COLUMNS = ["model", "dataset", "format", "quantize", "bytes", "accuracy", "agreement",
           "largest_difference", "latency_ms", "images_per_s", "passed", "test_images",
           "calibration_images", "cpu", "load_average", "kernels", "date"]


def measure(name: str, data_dir: str | None, repeats: int, workdir: Path) -> list[dict]:
    """Rows for one zoo model: Keras, then each exported kind."""
    from mnist_zoo import export as export_lib

    rows = []
    for fmt, quantize in KINDS:
        out = workdir / f"{name.replace(':', '_')}_{quantize}{export_lib.FORMATS[fmt]}"
        try:
            report = export_lib.export(name, fmt, quantize, out, data_dir=data_dir,
                                       timing_repeats=repeats, verbose=False)
        except export_lib.ExportCheckFailed as failed:
            report = failed.report  # the measurement of the file that failed, kept as a row
        if not rows:
            rows.append(_row(report, "keras", "float32", "keras"))
        rows.append(_row(report, fmt, quantize, "file"))
        print(f"{name} {LABELS[fmt, quantize]}: {report['file_accuracy']:.2%} "
              f"({report['keras_accuracy']:.2%} Keras), {report['file_bytes'] / 1024:,.0f} KB, "
              f"{report['file_latency_ms']:.3f} ms", flush=True)
    return rows


def _row(report: dict, fmt: str, quantize: str, side: str) -> dict:
    model, dataset = report["model"].split(":")
    keras = side == "keras"
    return {"model": model, "dataset": dataset, "format": fmt, "quantize": quantize,
            "bytes": report[f"{side}_bytes"],
            "accuracy": report[f"{side}_accuracy"],
            "agreement": 1.0 if keras else report["agreement"],
            "largest_difference": 0.0 if keras else report["largest_difference"],
            "latency_ms": report[f"{side}_latency_ms"],
            "images_per_s": report[f"{side}_images_per_s"],
            "passed": True if keras else report["passed"], "test_images": report["images"],
            "calibration_images": 0 if keras else report["calibration_images"]}


def machine() -> dict:
    """What the timings depend on, recorded beside them."""
    from model_zoo import cpu_kernels, cpu_name

    return {"cpu": cpu_name() or platform.machine(), "load_average": os.getloadavg()[0],
            "kernels": cpu_kernels(), "date": time.strftime("%Y-%m-%d")}


def write_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for key in ("bytes", "accuracy", "agreement", "largest_difference", "latency_ms",
                    "images_per_s", "load_average"):
            row[key] = float(row[key])
    return rows


def chart(rows: list[dict], path: Path) -> None:
    """Accuracy against latency and against size, one panel row per dataset."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, NullFormatter

    datasets = sorted({row["dataset"] for row in rows})
    models = sorted({row["model"] for row in rows})
    markers = dict(zip(LABELS, "osD^"))
    # tab10 without its grey (C7): grey is the legend's colour for the file kinds.
    palette = [f"C{i}" for i in range(10) if i != 7]
    colours = {model: palette[i % len(palette)] for i, model in enumerate(models)}
    fig = Figure(figsize=(12, 4.6 * len(datasets)), layout="constrained")
    axes = fig.subplots(len(datasets), 2, squeeze=False)
    for (ax_time, ax_size), dataset in zip(axes, datasets):
        for row in (r for r in rows if r["dataset"] == dataset):
            style = dict(marker=markers[row["format"], row["quantize"]],
                         color=colours[row["model"]], s=45, alpha=0.85)
            ax_time.scatter(row["latency_ms"], 100 * row["accuracy"], **style)
            ax_size.scatter(row["bytes"] / 1024, 100 * row["accuracy"], **style)
        for ax, label in ((ax_time, "latency for one image (ms, log)"),
                          (ax_size, "file size (KB, log)")):
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())  # crowded on a short log range
            ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            ax.set_xlabel(label)
            ax.set_ylabel(f"{dataset} test accuracy (%)")
            ax.grid(alpha=0.3)
    handles = [axes[0][0].scatter([], [], color=colour, marker="o", label=model)
               for model, colour in colours.items()]
    handles += [axes[0][0].scatter([], [], color="black", marker=marker, label=LABELS[kind])
                for kind, marker in markers.items()]
    fig.legend(handles=handles, loc="outside right center", fontsize=9)
    fig.suptitle("Exported zoo models: accuracy against latency and size")
    fig.savefig(path, dpi=100)


def card_table(rows: list[dict]) -> str:
    """One line per model and dataset: Keras, then size · accuracy · latency of each file."""
    kinds = [("keras", "float32"), *KINDS]
    lines = ["| model | dataset | " + " | ".join(LABELS[k] for k in kinds) + " |",
             "|---|---|" + "---|" * len(kinds)]
    keys = sorted({(row["dataset"], row["model"]) for row in rows})
    by_key = {(r["dataset"], r["model"], r["format"], r["quantize"]): r for r in rows}
    for dataset, model in keys:
        cells = []
        for kind in kinds:
            row = by_key.get((dataset, model, *kind))
            cells.append(_cell(row) if row else "")
        lines.append(f"| {model} | {dataset} | " + " | ".join(cells) + " |")
    first = rows[0]
    lines.append("")
    lines.append(f"Each cell: size · test accuracy ({int(first['test_images']):,} images) · "
                 f"latency for one image, median. CPU: {first['cpu']} ({first['kernels']}), load "
                 f"average {first['load_average']:.2f} at the start, {first['date']}.")
    return "\n".join(lines)


def _cell(row: dict) -> str:
    flag = "" if str(row["passed"]) == "True" else " (failed the check)"
    latency = "" if math.isnan(row["latency_ms"]) else f" · {row['latency_ms']:.3f} ms"
    return f"{row['bytes'] / 1024:,.0f} KB · {row['accuracy']:.2%}{latency}{flag}"


def write_card(rows: list[dict], card: Path) -> None:
    from model_zoo import replace_between  # the card's other tables are written the same way

    card.write_text(replace_between(card.read_text(), "export", card_table(rows)))


def main(argv=None) -> int:
    import tempfile

    from mnist_zoo.models.pretrained import list_weights

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=None,
                        help="zoo names such as lenet5:mnist (default: every shipped one)")
    parser.add_argument("--data-dir", default=None,
                        help=f"MNIST folder (default {MNIST_DIR}); Fashion-MNIST is found "
                             "in Debian's folder")
    parser.add_argument("--repeats", type=int, default=100,
                        help="timed runs of one image (a tenth of them, at least 3, of 1,000)")
    parser.add_argument("--csv", type=Path, default=CSV)
    parser.add_argument("--chart", type=Path, default=CHART)
    parser.add_argument("--card", type=Path, default=CARD)
    parser.add_argument("--card-only", action="store_true",
                        help="redraw the chart and the card's table from --csv")
    args = parser.parse_args(argv)

    if not args.card_only:
        names = args.models or list(list_weights())
        where = machine()
        rows = []
        with tempfile.TemporaryDirectory() as workdir:
            for name in names:
                data_dir = (args.data_dir or str(MNIST_DIR)) if name.endswith(":mnist") \
                    else None
                rows += [{**row, **where}
                         for row in measure(name, data_dir, args.repeats, Path(workdir))]
        write_csv(rows, args.csv)
    rows = read_csv(args.csv)
    chart(rows, args.chart)
    write_card(rows, args.card)
    print(f"-> {args.csv}, {args.chart}, {args.card}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
