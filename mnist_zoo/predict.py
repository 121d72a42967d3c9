"""Read digits from image files with a trained model.

    python -m mnist_zoo.predict results/runs/lenet5_relu_adam_lr0.001_bs64/model.keras \\
        photo.jpg scan.png

MODEL is a .keras file, a SavedModel folder (from model.export), a run folder, a zoo
name with shipped weights (lenet5:mnist), or an .onnx or .tflite file from
mnist_zoo.export. Each
image is prepared the way MNIST's digits were: grey levels, light ink on a dark
background (dark-on-light images are inverted), cropped to the ink, scaled to fit
20x20 pixels and placed by its centre of mass in a 28x28 field. One line per image is
printed: the digit and its probability. An image that cannot be read is reported on
stderr and the others are still read; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mnist_zoo.cli import Parser, command
from mnist_zoo.errors import ImageError

SIZE = 28  # the model's input field
BOX = 20  # MNIST fitted each digit into 20x20 pixels ...
CENTRE = 14.0  # ... and put its centre of mass here (13.99, 14.01 on the test set)
INK_LEVEL = 0.2  # fainter pixels (paper texture, JPEG noise) do not widen the crop
MIN_CONTRAST = 0.1  # less than this between ink and background: a blank image
# The preparation of each dataset's images (preprocess_image's keywords), as each was made:
# digits into 20x20 centred by mass, Fashion-MNIST items filling 28 pixels, box centred.
PREPARATION = {"mnist": {}, "fashion_mnist": {"box": 28, "by_mass": False}}


@dataclasses.dataclass
class Prediction:
    image: str
    digit: int | None = None
    probability: float | None = None
    probabilities: np.ndarray | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


# --------------------------------------------------------------------------- preparation
def preprocess_image(image: str | os.PathLike | Image.Image, box: int = BOX,
                     by_mass: bool = True) -> np.ndarray:
    """An image file or PIL image as a (28, 28, 1) float32 MNIST-style digit in [0, 1].

    box=SIZE, by_mass=False is Fashion-MNIST's preparation: the item's longer side scaled
    to 28 and its bounding box centred (digits' 20x20 costs a Fashion-MNIST model about a
    fifth of its accuracy: cnn_bn 74 % against 95 % on 300 test images).
    """
    pixels = _grey_levels(_open(image))
    # Ink darker than its background (a border brighter than the image's mean) is ink on
    # paper, even grey paper in a dim photo; MNIST has light ink on black.
    if np.median(_border(pixels)) > pixels.mean():
        pixels = 1.0 - pixels
    ink = _remove_background(pixels)
    digit = _fit_box(_crop_to_ink(ink), box)
    placed = _centre_by_mass(digit, SIZE) if by_mass else _centre_box(digit, SIZE)
    return placed[..., None].astype(np.float32)


def _open(image) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    try:
        opened = Image.open(image)
        opened.load()  # decode now, so a truncated file fails here and not later
    except UnidentifiedImageError as err:
        raise ImageError(f"{image}: not an image file Pillow can read") from err
    except Image.DecompressionBombError:
        # Pillow refuses images so large that decoding them could exhaust memory.
        raise ImageError(f"{image}: image too large to read safely (over "
                         f"{2 * Image.MAX_IMAGE_PIXELS:,} pixels); scale it down first") from None
    except IsADirectoryError:
        raise ImageError(f"{image} is a folder, not an image file") from None
    except OSError as err:  # missing, unreadable or truncated
        raise ImageError(f"{image}: cannot read image ({err})") from err
    return ImageOps.exif_transpose(opened)  # phone photos store their rotation in EXIF


# Pillow's modes for grey images deeper than 8 bits, with their full-scale value:
# convert("L") would clip them at 255 rather than scale them (a 16-bit PNG went white).
DEEP_GREY = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535}


def _grey_levels(image: Image.Image) -> np.ndarray:
    """Grey levels in [0, 1], scaled by the image's bit depth; transparent areas count as
    white paper."""
    if image.mode in DEEP_GREY and "transparency" not in image.info:
        pixels = np.asarray(image, dtype=np.float64)
        # Pillow opens a 16-bit PNG as "I;16" or as 32-bit "I"; wider values are 32-bit data.
        full_scale = DEEP_GREY[image.mode] if pixels.max() <= 65535 else 2.0 ** 32 - 1
        return (pixels / full_scale).astype(np.float32)
    if image.mode == "F":  # floating-point grey: [0, 1] already, or 0..255
        pixels = np.asarray(image, dtype=np.float32)
        return np.clip(pixels / (255.0 if pixels.max() > 1 else 1.0), 0.0, 1.0)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        paper = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(paper, image.convert("RGBA"))
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def _border(pixels: np.ndarray) -> np.ndarray:
    """The outermost rows and columns, where a centred digit leaves only background."""
    return np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])


def _remove_background(pixels: np.ndarray) -> np.ndarray:
    """Stretch grey levels: background 0, strongest ink 1 (for grey paper and dim photos)."""
    background = float(np.median(_border(pixels)))
    contrast = float(pixels.max()) - background
    if contrast < MIN_CONTRAST:
        raise ImageError("no digit found: the image is blank")
    return np.clip((pixels - background) / contrast, 0.0, 1.0)


def _crop_to_ink(ink: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero((ink > INK_LEVEL).any(axis=1))
    cols = np.flatnonzero((ink > INK_LEVEL).any(axis=0))
    return ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _fit_box(digit: np.ndarray, box: int) -> np.ndarray:
    """Scale so the longer side is `box` pixels, keeping the aspect ratio (a 1 stays thin)."""
    height, width = digit.shape
    scale = box / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # LANCZOS averages over the source pixels when shrinking, as MNIST's anti-aliasing did.
    resized = np.asarray(Image.fromarray(digit.astype(np.float32))
                         .resize(size, Image.Resampling.LANCZOS))
    resized = np.clip(resized, 0.0, None)  # LANCZOS rings slightly below 0 next to strokes
    return np.clip(resized / resized.max(), 0.0, 1.0)


def _centre_by_mass(digit: np.ndarray, size: int) -> np.ndarray:
    """Paste `digit` into a size x size field with its centre of mass at the centre."""
    rows, cols = np.indices(digit.shape)
    mass = digit.sum()
    centre_row, centre_col = (rows * digit).sum() / mass, (cols * digit).sum() / mass
    height, width = digit.shape
    # A lopsided digit could be pushed off the field; keep all of it inside.
    top = int(np.clip(round(CENTRE - centre_row), 0, size - height))
    left = int(np.clip(round(CENTRE - centre_col), 0, size - width))
    field = np.zeros((size, size), dtype=np.float32)
    field[top:top + height, left:left + width] = digit
    return field


def _centre_box(item: np.ndarray, size: int) -> np.ndarray:
    """Paste `item` into a size x size field with its bounding box centred."""
    height, width = item.shape
    top, left = (size - height) // 2, (size - width) // 2
    field = np.zeros((size, size), dtype=np.float32)
    field[top:top + height, left:left + width] = item
    return field


# --------------------------------------------------------------------------- prediction
def predict(model, images) -> list[Prediction]:
    """Predict each image (paths or PIL images) with `model` (a path or a loaded model).

    An image that cannot be prepared gets a Prediction with `error` set; the others are
    still predicted.
    """
    from mnist_zoo.models.saved import LoadedModel, check_model_fits, load_model

    if not isinstance(model, LoadedModel):
        model = load_model(model)
    results, inputs = [], []
    for number, image in enumerate(images):
        name = str(image) if not isinstance(image, Image.Image) else f"<image {number}>"
        try:
            inputs.append(preprocess_image(image))
            results.append(Prediction(name))
        except ImageError as err:
            message = str(err) if name in str(err) else f"{name}: {err}"
            results.append(Prediction(name, error=message))
        except Exception as err:  # e.g. an odd image mode: one bad file must not stop the rest
            results.append(Prediction(name, error=f"{name}: cannot read image "
                                                  f"({type(err).__name__}: {err})"))
    ready = [result for result in results if result.ok]
    if ready:
        check_model_fits(model, inputs[0][None], 10, "digit images")
        probabilities = model(np.stack(inputs))
        for result, row in zip(ready, probabilities):
            result.digit = int(row.argmax())
            result.probability = float(row.max())
            result.probabilities = row
    return results


def describe(result: Prediction) -> str:
    return f"{result.image}: {result.digit} ({result.probability:.1%})"


# --------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    parser = Parser(  # one-line errors
        prog="python -m mnist_zoo.predict", description=__doc__)
    parser.add_argument("model", metavar="MODEL",
                        help=".keras, .onnx or .tflite file, SavedModel folder or run "
                             "folder, or a zoo name with shipped weights such as lenet5:mnist")
    parser.add_argument("images", metavar="IMAGE", nargs="+",
                        help="image files (PNG, JPEG, ...): one digit each")
    return parser


@command
def main(argv=None) -> int:
    from mnist_zoo.models.saved import load_model

    args = build_parser().parse_args(argv)
    model = load_model(args.model)
    results = predict(model, [Path(image) for image in args.images])
    failed = 0
    for result in results:
        if result.ok:
            print(describe(result))
        else:
            failed += 1
            print(f"error: {result.error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
