"""Draw a digit: a local web page where every zoo model reads your handwriting.

    python -m mnist_zoo.demo                      # http://127.0.0.1:7860
    python -m mnist_zoo.demo --model results/search/models --model my_run/

The page has a canvas to draw on and an upload box for a photo or scan. Beside the
drawing it shows the 28x28 image the models see (prepared as `mnist_zoo.predict` does:
cropped to the ink, scaled into 20x20, centred by mass), and below each model's top three
answers with probabilities, its test accuracy from the model card, and a mark where it
agrees with the most common answer. A switch picks MNIST digits or Fashion-MNIST and the
weights trained on it. --model adds your own models: a .keras file, a run folder, a
SavedModel folder, or a search's output folder (its exported top-k models).

The same reading is an HTTP API (Gradio's, endpoint /predict): an image file in, each
model's label and probabilities out as JSON. The page runs offline (no analytics, no
fonts or scripts from the network) and binds 127.0.0.1 unless --host says otherwise.
Needs the demo extra: pip install -e '.[demo]'.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

from mnist_zoo.cli import Parser, command, positive_int
from mnist_zoo.errors import ImageError, ModelError, SettingsError, ZooError

DATASETS = {"mnist": "MNIST digits", "fashion_mnist": "Fashion-MNIST"}
TOP = 3  # answers shown per model
# Pillow refuses images over ~179 megapixels; a web page should refuse far less, since
# decoding 100 megapixels takes seconds and half a gigabyte for one request.
MAX_PIXELS = 40_000_000
MAX_UPLOAD = "25mb"  # Gradio refuses larger files before they reach the models
PREPARED_SCALE = 8  # the 28x28 field is shown 224 pixels wide, each pixel a square
INSTALL_HINT = "the demo needs Gradio: pip install -e '.[demo]'"


# --------------------------------------------------------------------------- models
@dataclasses.dataclass
class DemoModel:
    """One model on the page: what it is called, what it was trained on, how good it is."""

    name: str
    dataset: str | None  # None: a user's model whose run folder does not say
    accuracy: float | None  # test accuracy from the card or the run's record
    loaded: object  # a mnist_zoo.models.saved.LoadedModel
    yours: bool = False

    @property
    def title(self) -> str:
        accuracy = f"{self.accuracy:.2%}" if self.accuracy is not None else "accuracy unknown"
        return f"{self.name} ({'your model, ' if self.yours else ''}test {accuracy})"


def zoo_models(datasets=tuple(DATASETS), names=None) -> list[DemoModel]:
    """The zoo models (all, or those in `names`) with shipped weights for `datasets`,
    loaded through `load_model`, with the test accuracy their weights' sidecar records."""
    from mnist_zoo.models import pretrained
    from mnist_zoo.models.saved import load_model

    found = []
    for key, card in pretrained.list_weights().items():
        if card["dataset"] in datasets and (names is None or card["model"] in names):
            found.append(DemoModel(card["model"], card["dataset"], card.get("test_accuracy"),
                                   load_model(key)))
    return found


def expand_model_path(path: str | os.PathLike) -> list[Path]:
    """The models a --model PATH names: the path itself when it is a model, or else the
    models inside it (a search's output folder holds its top-k under models/)."""
    from mnist_zoo.models.saved import pretrained_name, resolve_model_path

    path = Path(path)
    if pretrained_name(path):
        return [path]
    try:
        resolve_model_path(path)
        return [path]
    except ModelError:
        if not path.is_dir():
            raise
    inside = path / "models" if (path / "models").is_dir() else path
    found = [child for child in sorted(inside.iterdir()) if _is_model(child)]
    if not found:
        raise ModelError(f"{path} holds no model: expected a .keras file, a run folder, a "
                         "SavedModel folder or a search folder with exported models/")
    return found


def _is_model(path: Path) -> bool:
    from mnist_zoo.models.saved import resolve_model_path

    try:
        resolve_model_path(path)
    except ModelError:
        return False
    return True


def expand_model_paths(paths) -> list[Path]:
    return [model for given in paths for model in expand_model_path(given)]


def user_models(paths) -> list[DemoModel]:
    """The user's --model paths, loaded through the loader `evaluate` and `predict` use."""
    from mnist_zoo.models.saved import check_model_fits, load_model

    found = []
    for path in expand_model_paths(paths):
        loaded = load_model(path)
        check_model_fits(loaded, np.zeros((1, 28, 28, 1), np.float32), 10, "28x28 images")
        found.append(DemoModel(loaded.name, loaded.trained_on, recorded_accuracy(loaded.path),
                               loaded, yours=True))
    return found


def recorded_accuracy(model_path: Path) -> float | None:
    """Test accuracy from the run's record beside the model: metrics.json of a training
    run ({"test": {"accuracy"}}), run.json of a search trial ({"test_accuracy"})."""
    folder = Path(model_path).parent
    for record, keys in (("metrics.json", ("test", "accuracy")), ("run.json", ("test_accuracy",))):
        try:
            value = json.loads((folder / record).read_text())
            for key in keys:
                value = value[key]
            value = float(value)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if np.isfinite(value):
            return value
    return None


# --------------------------------------------------------------------------- reading
@dataclasses.dataclass
class Reading:
    """What the models made of one image."""

    prepared: np.ndarray  # (28, 28) in [0, 1], as the models see it
    dataset: str
    answers: list[dict]  # per model: name, title, label, top (label, probability), agrees
    consensus: str
    votes: int


class Reader:
    """The models, loaded once, and the one lock that keeps TensorFlow calls in turn."""

    def __init__(self, models: list[DemoModel]):
        self.models = list(models)
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Thread] = {}
        self._failed: dict[str, str] = {}

    def load_later(self, dataset: str, load) -> None:
        """Load `dataset`'s models with `load()` in the background: the page starts
        serving meanwhile, and the first reading of `dataset` waits for them."""
        def run():
            try:
                models = load()
            except Exception as err:  # said on the page, at the first reading that needs them
                self._failed[dataset] = f"the {dataset} models failed to load: {err}"
                print(f"error: {self._failed[dataset]}", file=sys.stderr)
                return
            with self._lock:
                self.models += models

        self._loading[dataset] = threading.Thread(target=run, daemon=True,
                                                  name=f"load {dataset}")
        self._loading[dataset].start()

    def for_dataset(self, dataset: str) -> list[DemoModel]:
        if dataset in self._loading:
            self._loading[dataset].join()
        if dataset in self._failed:
            raise ModelError(self._failed[dataset])
        return [model for model in self.models if model.dataset in (dataset, None)]

    def read(self, image, dataset: str, names=None) -> Reading:
        """Prepare `image` (a path or PIL image) and ask each model of `dataset` (those
        named, when `names` is given); an ImageError says why an image cannot be read."""
        from mnist_zoo.data import CLASS_NAMES

        if dataset not in DATASETS:
            raise SettingsError(f"unknown dataset {dataset!r}; choose one of "
                                f"{', '.join(DATASETS)}")
        prepared = prepare(image, dataset)
        models = [model for model in self.for_dataset(dataset)
                  if names is None or model.title in names or model.name in names]
        if not models:
            raise SettingsError("no model selected: tick at least one")
        classes = CLASS_NAMES[dataset]
        with self._lock:
            rows = [model.loaded(prepared[None, ..., None])[0] for model in models]
        return summarise(prepared, dataset, models, rows, classes)


def prepare(image, dataset: str = "mnist") -> np.ndarray:
    """`image` as `dataset`'s models see it, by `mnist_zoo.predict.preprocess_image`; an
    image too large for a web request is refused before it is decoded."""
    from PIL import Image

    from mnist_zoo.predict import PREPARATION, preprocess_image

    if image is None:
        raise ImageError("no image: draw a digit or upload a file")
    if not isinstance(image, Image.Image):
        try:
            with Image.open(image) as header:  # reads the size only, not the pixels
                width, height = header.size
        except Exception:  # preprocess_image below names the problem
            width = height = 0
        if width * height > MAX_PIXELS:
            raise ImageError(f"image too large ({width}x{height} pixels, over "
                             f"{MAX_PIXELS // 1_000_000} megapixels): scale it down first")
    try:
        return preprocess_image(image, **PREPARATION[dataset])[..., 0]
    except ImageError as err:
        # The server's temporary path means nothing to the person who uploaded the file.
        raise ImageError(str(err).replace(f"{image}: ", "").replace(str(image), "the upload")
                         ) from None
    except Exception as err:  # an odd image mode: a message, never a crashed request
        raise ImageError(f"cannot read the image ({type(err).__name__}: {err})") from None


def summarise(prepared, dataset, models, rows, classes) -> Reading:
    """Each model's top answers, and which agree with the most common first answer (a tie
    goes to the answer of the model listed first)."""
    firsts = [int(np.argmax(row)) for row in rows]
    counts = Counter(firsts)
    consensus = max(counts, key=lambda label: (counts[label], -firsts.index(label)))
    answers = []
    for model, row, first in zip(models, rows, firsts):
        # A stable sort: equal probabilities keep class order, on every CPU.
        order = np.argsort(-np.round(row, 9), kind="stable")[:TOP]
        answers.append({
            "model": model.name, "title": model.title, "trained_on": model.dataset,
            "test_accuracy": model.accuracy, "label": classes[first], "class": first,
            "agrees": first == consensus,
            "top": [(classes[i], float(row[i])) for i in order],
            "probabilities": {classes[i]: float(row[i]) for i in range(len(classes))}})
    return Reading(prepared, dataset, answers, classes[consensus], counts[consensus])


def as_json(reading: Reading) -> dict:
    """The API's answer: the consensus and each model's label and probabilities."""
    return {"dataset": reading.dataset, "label": reading.consensus,
            "agreeing": reading.votes, "models": [
                {key: answer[key] for key in ("model", "label", "probabilities",
                                              "test_accuracy", "trained_on", "agrees")}
                for answer in reading.answers]}


# --------------------------------------------------------------------------- the page
def prepared_picture(prepared: np.ndarray) -> np.ndarray:
    """The 28x28 field enlarged with square pixels, light ink on black as the models see it."""
    grey = np.round(prepared * 255).astype(np.uint8)
    return np.kron(grey, np.ones((PREPARED_SCALE, PREPARED_SCALE), np.uint8))


def answers_table(reading: Reading) -> str:
    """Each model's top answers as an HTML table; the models that agree are marked."""
    head = "".join(f"<th>{title}</th>" for title in ("model", "1st", "2nd", "3rd", "agrees"))
    rows = []
    for answer in reading.answers:
        cells = [f"<td class='model'>{html.escape(answer['title'])}</td>"]
        cells += [f"<td>{html.escape(label)} <small>{probability:.1%}</small></td>"
                  for label, probability in answer["top"]]
        mark = "✓ agrees" if answer["agrees"] else ""
        cells.append(f"<td class='mark'>{mark}</td>")
        css = "agrees" if answer["agrees"] else "differs"
        rows.append(f"<tr class='{css}' data-label='{html.escape(answer['label'])}'>"
                    f"{''.join(cells)}</tr>")
    return (f"<table class='answers'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def headline(reading: Reading) -> str:
    return (f"## Answer: {reading.consensus}\n{reading.votes} of {len(reading.answers)} "
            f"models agree ({DATASETS[reading.dataset]})")


def page_outputs(reader: Reader, image, dataset: str, names) -> tuple:
    """What the page shows for `image`: the prepared field, the headline, the table; or,
    for an image that cannot be read, a message in place of the headline."""
    try:
        reading = reader.read(image, dataset, names)
    except ZooError as err:
        return None, f"### {err}", ""
    return prepared_picture(reading.prepared), headline(reading), answers_table(reading)


def drawing_image(sketch):
    """The canvas as one PIL image (None for an untouched canvas)."""
    return sketch.get("composite") if isinstance(sketch, dict) else sketch


CSS = """
.answers { border-collapse: collapse; width: 100%; }
.answers td, .answers th { padding: 4px 10px; text-align: left; }
.answers tr.agrees { background: rgba(26, 127, 55, 0.12); }
.answers td.mark { color: #1a7f37; font-weight: 600; }
"""


def build_page(reader: Reader, dataset: str = "mnist"):
    """The Gradio page over `reader`'s models, with the /predict API endpoint."""
    import gradio as gr

    def titles(name):
        return [model.title for model in reader.for_dataset(name)]

    def read(source, sketch, file, name, chosen):
        """Read the input used last: the drawing or the uploaded file."""
        if source == "upload":
            if file is None:
                return None, "", ""
            return page_outputs(reader, file, name, chosen)
        if drawing_image(sketch) is None:  # untouched or cleared
            return None, "### The canvas is blank: pick the brush and draw a digit", ""
        return page_outputs(reader, drawing_image(sketch), name, chosen)

    def switch(name):
        return gr.CheckboxGroup(choices=titles(name), value=titles(name))

    with gr.Blocks(analytics_enabled=False, title="mnist_zoo: draw a digit") as page:
        gr.Markdown("# Draw a digit\nPick the brush and draw on the canvas, or upload a photo "
                    "or scan; every model below reads it. The image beside the canvas is what "
                    "the models see: the ink cropped and, for digits, scaled into 20x20 and "
                    "centred by mass in 28x28 (Fashion-MNIST items fill the 28x28).")
        chosen_dataset = gr.Radio([(label, key) for key, label in DATASETS.items()],
                                  value=dataset, label="Dataset", elem_id="dataset")
        with gr.Row(equal_height=True):
            sketch = gr.Sketchpad(type="pil", image_mode="L", canvas_size=(280, 280),
                                  brush=gr.Brush(default_size=20, colors=["#000000"],
                                                 color_mode="fixed"),
                                  layers=False, transforms=(), label="Draw here",
                                  elem_id="canvas")
            seen = gr.Image(label="What the models see (28x28)", interactive=False,
                            elem_id="prepared", format="png")
        upload = gr.File(label="... or upload an image (a photo or scan of one digit)",
                         type="filepath", elem_id="upload", height=120)
        message = gr.Markdown(elem_id="consensus")
        chosen = gr.CheckboxGroup(titles(dataset), value=titles(dataset), label="Models")
        table = gr.HTML(elem_id="answers")
        source = gr.State("drawing")
        shown = [seen, message, table]
        inputs = [source, sketch, upload, chosen_dataset, chosen]
        private = {"api_visibility": "private", "show_progress": "hidden"}
        for component, name in ((sketch, "drawing"), (upload, "upload")):
            component.change(lambda name=name: name, None, source, **private).then(
                read, inputs, shown, trigger_mode="always_last", **private)
        chosen_dataset.change(switch, chosen_dataset, chosen, **private).then(
            read, inputs, shown, **private)
        chosen.input(read, inputs, shown, **private)
        add_api(reader, gr)
    return page


def add_api(reader: Reader, gr) -> None:
    """The /predict endpoint: an image file (and a dataset) in, JSON out."""
    def predict(image_file, dataset):
        try:
            return as_json(reader.read(image_file, dataset or "mnist"))
        except ZooError as err:  # the client gets the message as its error
            raise gr.Error(str(err), print_exception=False) from None

    api_image = gr.File(visible=False, label="image")
    api_dataset = gr.Textbox("mnist", visible=False, label="dataset")
    api_answer = gr.JSON(visible=False, label="answer")
    gr.Button(visible=False).click(predict, [api_image, api_dataset], api_answer,
                                   api_name="predict", api_description=(
                                       "An image file in; each model's label and "
                                       "probabilities out. dataset: mnist or fashion_mnist"))


def launch(page, host: str = "127.0.0.1", port: int = 7860, share: bool = False):
    """Start serving `page` without blocking; returns its local address. Requests queue
    (one model call at a time) rather than being dropped."""
    page.queue(default_concurrency_limit=1, max_size=None)
    try:
        _, url, share_url = page.launch(
            server_name=host, server_port=port, share=share, prevent_thread_lock=True,
            quiet=True, show_error=True, max_file_size=MAX_UPLOAD, ssr_mode=False,
            mcp_server=False, footer_links=["api"], css=CSS)
    except OSError:  # Gradio: "Cannot find empty port in range: ..." and how to set one
        raise SettingsError(f"cannot serve on {host}:{port}: the port is in use or the host "
                            "is not an address of this computer; pass another --port or "
                            "--host") from None
    return url, share_url


# --------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    parser = Parser(  # one-line errors
        prog="python -m mnist_zoo.demo", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this computer only; "
                             "0.0.0.0 opens the page to the network)")
    parser.add_argument("--port", type=positive_int, default=7860, help="port (default 7860)")
    parser.add_argument("--model", action="append", default=[], metavar="PATH",
                        help="add your own model: a .keras file, a run folder, a SavedModel "
                             "folder or a search's output folder (repeatable)")
    parser.add_argument("--dataset", choices=DATASETS, default="mnist",
                        help="the dataset the page starts on")
    parser.add_argument("--share", action="store_true",
                        help="also ask Gradio for a public share link (off by default)")
    return parser


def offline() -> None:
    """No analytics, update checks or telemetry: the page works without a network."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def load_reader(dataset: str, paths) -> Reader:
    """The starting dataset's zoo models and the user's models."""
    return Reader(zoo_models((dataset,)) + user_models(paths))


def load_other_datasets(reader: Reader, dataset: str) -> None:
    """The other datasets' zoo models, in the background once the page serves."""
    for other in DATASETS:
        if other != dataset:
            reader.load_later(other, lambda other=other: zoo_models((other,)))


@command
def main(argv=None) -> int:
    import importlib.util
    from concurrent.futures import ThreadPoolExecutor

    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    if importlib.util.find_spec("gradio") is None:
        raise SettingsError(INSTALL_HINT)
    paths = expand_model_paths(args.model)  # a wrong path fails now, not after loading
    offline()
    # TensorFlow and Gradio take seconds each to import: load the models meanwhile.
    with ThreadPoolExecutor(1) as pool:
        loading = pool.submit(load_reader, args.dataset, paths)
        import gradio  # noqa: F401
        reader = loading.result()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: --host {args.host} lets other computers on the network use this "
              "page; anyone who can reach it can run the models", file=sys.stderr)
    url, share_url = launch(build_page(reader, args.dataset), args.host, args.port,
                            args.share)
    ready = len(reader.models)
    import tensorflow as tf

    # Each model traces its own predict function once; Keras' retracing notice is noise here.
    tf.get_logger().setLevel("ERROR")
    load_other_datasets(reader, args.dataset)
    print(f"{ready} models ready in {time.perf_counter() - started:.1f} s; "
          f"open {url}" + (f" (public link: {share_url})" if share_url else ""), flush=True)
    try:
        threading.Event().wait()  # serve until interrupted
    except KeyboardInterrupt:
        print("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
