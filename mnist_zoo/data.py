"""Loading MNIST-style data: IDX folders, the Debian Fashion-MNIST folder, or Keras' download.

`load_dataset()` returns a `DigitData` of normalised float32 arrays with a seeded
validation split; `make_batches()` turns one split into a shuffled, prefetched
`tf.data` pipeline, optionally augmented with Keras preprocessing layers.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import struct
import sys
from pathlib import Path

import numpy as np

from mnist_zoo.errors import DataError, SettingsError

DATASETS = ("mnist", "fashion_mnist")
DATA_DIR_ENV = "MNIST_ZOO_DATA_DIR"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
}
AUGMENTATIONS = ("rotate", "zoom", "translate", "crop", "flip")
# What "all" means: the presets that keep a digit a digit. "flip" (a horizontal mirror) is
# for garments only: a mirrored 2 or 7 is no digit, so it must be asked for by name.
ALL_PRESETS = ("rotate", "zoom", "translate", "crop")
# The original lab kept 5,000 of MNIST's 60,000 training images for validation.
DEFAULT_VALIDATION_FRACTION = 5_000 / 60_000

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclasses.dataclass
class DigitData:
    """Normalised images (N, 28, 28, 1) float32 and integer labels for each split."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    source: str
    class_names: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def one_hot(self, labels: np.ndarray) -> np.ndarray:
        return np.eye(self.num_classes, dtype=np.float32)[labels]


# --------------------------------------------------------------------------- IDX files
def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip or plain) and check its header against its size."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except PermissionError:
        raise DataError(f"{path}: cannot be read (permission denied); make the file readable "
                        "for this user, e.g. chmod a+r") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder, not an IDX file") from None
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except (OSError, EOFError) as err:  # EOFError: truncated gzip stream
        raise DataError(f"{path}: cannot read IDX file ({err}); the file is corrupt or "
                        "truncated, download it again") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex()!r}); "
                        "expected e.g. 00000803 for images or 00000801 for labels")
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    ndim = raw[3]
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DataError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header_size != expected:
        raise DataError(f"{path}: IDX header says shape {shape} ({expected} bytes of data) "
                        f"but the file holds {len(raw) - header_size} bytes; the file is "
                        "truncated or corrupt, download it again")
    return np.frombuffer(raw, dtype, offset=header_size).reshape(shape)


def _find_idx(folder: Path, names: set[str], stem: str) -> Path | None:
    """The entry of `folder` (listed as `names`) that holds `stem`, a plain file first."""
    present = [name for name in (stem + ".gz", stem, stem.replace("-idx", ".idx"))
               if name in names]
    # os.path.isfile, unlike Path.is_file, never raises; a folder or unreadable entry of
    # the right name is still returned, so that read_idx says what is wrong with it.
    files = [name for name in present if os.path.isfile(folder / name)]
    return folder / (files or present)[0] if present else None


def _list_folder(folder: Path) -> set[str]:
    """The names in a data folder, or a DataError saying why it cannot be listed."""
    try:
        return set(os.listdir(folder))
    except FileNotFoundError:
        raise DataError(f"data folder {folder} does not exist; point --data-dir or "
                        f"{DATA_DIR_ENV} to a folder holding {_four_files()}") from None
    except NotADirectoryError:
        raise DataError(f"{folder} is a file, not a folder; --data-dir and {DATA_DIR_ENV} "
                        f"take the folder that holds {_four_files()}") from None
    except PermissionError:
        raise DataError(f"data folder {folder} cannot be read (permission denied); make it "
                        "readable for this user, e.g. chmod a+rx") from None
    except OSError as err:
        raise DataError(f"data folder {folder} cannot be read ({err})") from None


def load_idx_folder(folder: str | os.PathLike, num_classes: int = 10):
    """Read the four MNIST IDX files of `folder`: ((x_train, y_train), (x_test, y_test)).

    The images must be 28x28 and the labels whole numbers below `num_classes`.
    """
    folder = Path(folder)
    names = _list_folder(folder)
    paths = {key: _find_idx(folder, names, stem) for key, stem in IDX_FILES.items()}
    missing = [IDX_FILES[key] + ".gz" for key, path in paths.items() if path is None]
    if len(missing) == len(IDX_FILES):
        raise DataError(f"data folder {folder} holds none of the four IDX files "
                        f"{_four_files()}; point --data-dir or {DATA_DIR_ENV} to the folder "
                        "that holds them")
    if missing:
        found = ", ".join(path.name for path in paths.values() if path is not None)
        raise DataError(f"data folder {folder} lacks {', '.join(missing)} (it has {found})")
    splits = []
    for part in ("train", "test"):
        images = read_idx(paths[f"{part}_images"])
        labels = read_idx(paths[f"{part}_labels"])
        if images.ndim != 3 or labels.ndim != 1:
            raise DataError(f"{paths[f'{part}_images']}: expected images (N, rows, cols) and "
                            f"labels (N,), got {images.shape} and {labels.shape}")
        if len(images) != len(labels):
            raise DataError(f"{folder}: {len(images)} {part} images but {len(labels)} labels; "
                            f"{paths[f'{part}_images'].name} and "
                            f"{paths[f'{part}_labels'].name} do not belong together")
        check_images(images, paths[f"{part}_images"])
        check_labels(labels, num_classes, paths[f"{part}_labels"])
        splits.append((images, labels))
    return tuple(splits)


def check_images(images: np.ndarray, where) -> None:
    """The zoo's models take 28x28 digits; other sizes would fail deep inside training."""
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{where}: images must be 28x28 pixels, found "
                        f"{' x '.join(map(str, images.shape[1:]))} (array shape {images.shape})")


def check_labels(labels: np.ndarray, num_classes: int, where) -> None:
    """Labels must be whole numbers 0..num_classes-1, the rows of the one-hot table."""
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{where}: labels must be whole numbers 0 to {num_classes - 1}, "
                        f"found {labels.dtype} values")
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if len(bad):
        values = ", ".join(map(str, np.unique(labels[bad])[:5]))
        raise DataError(f"{where}: labels must be 0 to {num_classes - 1}, found {len(bad)} "
                        f"outside that range (values {values}; the first at index {bad[0]})")


def _four_files() -> str:
    return ", ".join(stem + ".gz" for stem in IDX_FILES.values())


# --------------------------------------------------------------------------- sources
def _load_raw(name: str, data_dir: str | os.PathLike | None):
    """Return ((x_train, y_train), (x_test, y_test)) as uint8 arrays, and where they came from."""
    folder = data_dir or os.environ.get(DATA_DIR_ENV)
    num_classes = len(CLASS_NAMES[name])
    if folder:
        return load_idx_folder(folder, num_classes), str(folder)
    if name == "fashion_mnist" and DEBIAN_FASHION_DIR.is_dir():
        return load_idx_folder(DEBIAN_FASHION_DIR, num_classes), str(DEBIAN_FASHION_DIR)
    import keras  # imported late: reading IDX folders needs no TensorFlow

    loader = getattr(keras.datasets, name)
    try:
        return loader.load_data(), f"keras.datasets.{name}"
    except Exception as err:  # offline: urllib/HTTP errors of many kinds
        hint = (" or install Debian's dataset-fashion-mnist "
                f"({DEBIAN_FASHION_DIR})") if name == "fashion_mnist" else ""
        raise DataError(
            f"no {name} data found: Keras could not download it ({type(err).__name__}: {err}). "
            f"Pass --data-dir DIR (or set {DATA_DIR_ENV}=DIR) to a folder holding "
            f"{_four_files()}{hint}.") from err


def load_dataset(name: str = "mnist", data_dir: str | os.PathLike | None = None, *,
                 validation_size: int | float | None = None, normalize: str = "unit",
                 subset: int | None = None, seed: int = 0) -> DigitData:
    """Load a dataset, normalise it and split off a seeded validation set.

    validation_size: count, or fraction of the training set; default 1/12
        (55,000/5,000 for MNIST's 60,000 as in the original lab).
    normalize: "unit" scales pixels to [0, 1]; "standard" to zero mean, unit
        variance using the training split's statistics.
    subset: keep only this many training images (before the validation split),
        drawn with `seed`; the test set is kept whole.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if subset is not None and subset < 0:
        raise DataError(f"subset must be a positive number of images, got {subset}")
    ((x_train, y_train), (x_test, y_test)), source = _load_raw(name, data_dir)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x_train))
    if subset and subset > len(order):
        # Not an error: "as many as there are" is a fair reading, but the user should know.
        print(f"warning: subset {subset} is more than the {len(order)} training images of "
              f"{source}; using all {len(order)}", file=sys.stderr)
    if subset:
        order = order[:subset]
    if validation_size is None:
        validation_size = DEFAULT_VALIDATION_FRACTION
    n_val = int(round(validation_size * len(order))) if isinstance(validation_size, float) \
        else int(validation_size)
    if not 0 <= n_val < len(order):
        raise DataError(f"validation_size {validation_size} leaves no training images "
                        f"out of {len(order)}")
    val_idx, train_idx = order[:n_val], np.sort(order[n_val:])
    x_train, x_val = _to_float(x_train[train_idx]), _to_float(x_train[val_idx])
    x_test = _to_float(x_test)
    if normalize == "standard":
        mean, std = x_train.mean(), x_train.std()
        x_train, x_val, x_test = ((x - mean) / std for x in (x_train, x_val, x_test))
    elif normalize != "unit":
        raise DataError(f"unknown normalize {normalize!r}; choose 'unit' or 'standard'")
    return DigitData(x_train, y_train[train_idx].astype(np.int64),
                     x_val, y_train[val_idx].astype(np.int64),
                     x_test, y_test.astype(np.int64),
                     name=name, source=source, class_names=CLASS_NAMES[name])


def data_identity(data: DigitData) -> dict:
    """What tells one loaded dataset from another: name, source, split sizes and a checksum
    of every image and label (a resumed search must not mix data)."""
    import hashlib

    digest = hashlib.sha1()
    for array in (data.x_train, data.y_train, data.x_val, data.y_val, data.x_test, data.y_test):
        digest.update(np.ascontiguousarray(array).data)
    return {"dataset": data.name, "source": data.source, "train": len(data.x_train),
            "val": len(data.x_val), "test": len(data.x_test), "sha1": digest.hexdigest()[:16]}


def _to_float(images: np.ndarray) -> np.ndarray:
    return (images.astype(np.float32) / 255.0)[..., None]


def add_data_arguments(parser) -> None:
    """--dataset and --data-dir, the same on every command that loads data."""
    parser.add_argument("--dataset", default="mnist", choices=DATASETS)
    parser.add_argument("--data-dir", default=None,
                        help=f"folder with the four IDX files (or set {DATA_DIR_ENV}); "
                             "default: Keras' cached download")


# --------------------------------------------------------------------------- pipelines
def parse_augment(augment) -> tuple[str, ...]:
    """Accept None/'none', 'all' (ALL_PRESETS), 'rotate+zoom', 'crop,flip' or a list of names."""
    if not augment or augment == "none":
        return ()
    if isinstance(augment, str):
        augment = ALL_PRESETS if augment == "all" else augment.replace("+", ",").split(",")
    names = tuple(a.strip() for a in augment if a.strip())
    unknown = [a for a in names if a not in AUGMENTATIONS]
    if unknown:
        raise SettingsError(f"unknown augmentation {unknown}; choose from "
                            f"{', '.join(AUGMENTATIONS)}, 'all' or 'none'")
    return names


def make_augmenter(augment, seed: int = 0):
    """A Keras Sequential of random layers for training batches (None when no augmentation).

    The presets are mild on purpose. MNIST centres each digit by mass in a 20x20 box
    inside 28x28, so only ~4 px of margin exist, and test digits are never enlarged:
    every step keeps a digit's size on average and its strokes inside the frame.
    """
    names = parse_augment(augment)
    if not names:
        return None
    import keras

    layers = {
        "rotate": lambda: keras.layers.RandomRotation(8 / 360, fill_mode="constant", seed=seed),
        # A factor range around 0 shrinks as often as it enlarges (±8 %).
        "zoom": lambda: keras.layers.RandomZoom(0.08, fill_mode="constant", seed=seed),
        # ±1 px with nearest sampling: a whole-pixel shift that does not blur the strokes.
        "translate": lambda: keras.layers.RandomTranslation(
            1 / 28, 1 / 28, fill_mode="constant", interpolation="nearest", seed=seed),
        # Pad 2 px of background and crop a 28x28 window back: a whole-pixel shift of up
        # to ±2 px, no scaling (scaling a 24x24 window up to 28x28 enlarged every training
        # digit by 17 %). Written as a translation because keras.layers.RandomCrop draws
        # one window per batch, not one per image.
        "crop": lambda: keras.layers.RandomTranslation(
            2 / 28, 2 / 28, fill_mode="constant", interpolation="nearest", seed=seed),
        # Left-right mirror of half the images: a shirt seen mirrored is still a shirt
        # (Fashion-MNIST's usual augmentation); never in "all", which digits use.
        "flip": lambda: keras.layers.RandomFlip("horizontal", seed=seed),
    }
    return keras.Sequential([layers[name]() for name in names], name="augment")


def make_batches(x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool = False,
                 augment=None, seed: int = 0):
    """An in-memory `tf.data` pipeline: shuffled each epoch, augmented, prefetched."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    augmenter = make_augmenter(augment, seed)
    if augmenter is not None:
        ds = ds.map(lambda images, labels: (augmenter(images, training=True), labels),
                    num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
