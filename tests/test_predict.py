"""mnist_zoo.predict: MNIST-style preparation of image files, and reading them."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from mnist_zoo import predict as predict_lib
from mnist_zoo.data import read_idx
from mnist_zoo.predict import ImageError, predict, preprocess_image
from mnist_zoo.models.saved import load_model

# MNIST test digits 8000-8009: mnist-8k2k's test part, which the model never trained on.
FIRST_DIGIT = 8000
VARIANTS = ("as_is", "inverted", "off_centre", "scaled_up")


@pytest.fixture(scope="module")
def zoo_ten_digits(zoo_mnist_test_dir):
    images = read_idx(zoo_mnist_test_dir / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(zoo_mnist_test_dir / "t10k-labels-idx1-ubyte.gz")
    return images[FIRST_DIGIT:FIRST_DIGIT + 10], labels[FIRST_DIGIT:FIRST_DIGIT + 10]


def make_variant(digit: np.ndarray, variant: str) -> Image.Image:
    image = Image.fromarray(digit)
    if variant == "inverted":  # black ink on white paper
        return Image.fromarray(255 - digit)
    if variant == "off_centre":  # low and left in a bigger, non-square canvas
        canvas = Image.new("L", (90, 64))
        canvas.paste(image, (4, 34))
        return canvas
    if variant == "scaled_up":
        return image.resize((200, 200), Image.Resampling.BICUBIC)
    return image


@pytest.fixture(scope="module")
def zoo_digit_files(zoo_ten_digits, tmp_path_factory):
    """The ten digits saved as PNG files in each variant."""
    folder = tmp_path_factory.mktemp("zoo_digits")
    images, _ = zoo_ten_digits
    files = {}
    for variant in VARIANTS:
        files[variant] = []
        for number, digit in enumerate(images):
            path = folder / f"{variant}_{number}.png"
            make_variant(digit, variant).save(path)
            files[variant].append(path)
    return files


@pytest.fixture(scope="module")
def zoo_lenet_keras(zoo_lenet_run):
    return load_model(zoo_lenet_run.run_dir / "model.keras")


@pytest.mark.parametrize("variant", VARIANTS)
def test_digits_are_recognised(variant, zoo_digit_files, zoo_ten_digits, zoo_lenet_keras):
    _, labels = zoo_ten_digits

    results = predict(zoo_lenet_keras, zoo_digit_files[variant])

    assert all(result.ok for result in results)
    recognised = sum(result.digit == label for result, label in zip(results, labels))
    assert recognised >= 9, [(r.digit, int(label)) for r, label in zip(results, labels)]
    assert all(0.1 < result.probability <= 1 for result in results)


@pytest.mark.parametrize("variant", VARIANTS[1:])
def test_variants_prepare_like_the_original(variant, zoo_ten_digits):
    """Inverting, moving or enlarging a digit gives back nearly MNIST's own 28x28 image."""
    images, _ = zoo_ten_digits
    for digit in images:
        prepared = preprocess_image(make_variant(digit, variant))

        assert prepared.shape == (28, 28, 1) and prepared.dtype == np.float32
        assert prepared.min() >= 0 and prepared.max() == pytest.approx(1.0)
        original = digit / 255.0
        # Enlarging blurs strokes; exact placement may differ by a pixel.
        assert np.abs(prepared[..., 0] - original).mean() < 0.06


def test_prepared_digit_is_centred_and_fits_20_pixels():
    # A thin dark bar on light paper, far from the centre of a wide photo.
    photo = np.full((300, 400), 230, dtype=np.uint8)
    photo[20:140, 300:320] = 10

    prepared = preprocess_image(Image.fromarray(photo))[..., 0]

    rows, cols = np.nonzero(prepared > 0.2)
    assert rows.max() - rows.min() + 1 == 20  # the longer side fills the 20-pixel box
    assert cols.max() - cols.min() + 1 <= 5  # and the aspect ratio is kept: still a bar
    mass = prepared.sum()
    centre = ((np.arange(28)[:, None] * prepared).sum() / mass,
              (np.arange(28)[None, :] * prepared).sum() / mass)
    assert centre == pytest.approx((14, 14), abs=0.6)


def test_other_kinds_of_image(tmp_path, zoo_ten_digits):
    digit = zoo_ten_digits[0][0]
    ink = Image.new("RGBA", (28, 28), (0, 0, 0, 0))
    ink.putalpha(Image.fromarray(digit))  # black ink whose opacity is the digit
    rgb = Image.fromarray(255 - digit).convert("RGB")
    # Dark blue ink on grey paper, as a dim photo would have it, saved lossily.
    paper = np.array([120, 120, 110]) - digit[..., None] / 255.0 * np.array([90, 90, 40])
    photo = Image.fromarray(paper.astype(np.uint8)).resize((112, 112), Image.Resampling.BICUBIC)
    for name, image, tolerance in (("transparent.png", ink, 0.01), ("rgb.png", rgb, 0.01),
                                   ("photo.jpg", photo, 0.08)):
        image.save(tmp_path / name)
        prepared = preprocess_image(tmp_path / name)[..., 0]
        assert np.abs(prepared - digit / 255.0).mean() < tolerance, name


def test_blank_and_broken_images_are_clear_errors(tmp_path):
    with pytest.raises(ImageError, match="blank"):
        preprocess_image(Image.new("L", (40, 40), 255))
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    with pytest.raises(ImageError, match="not an image"):
        preprocess_image(text)
    with pytest.raises(ImageError, match="cannot read"):
        preprocess_image(tmp_path / "missing.png")


def test_bad_file_does_not_stop_the_others(tmp_path, zoo_digit_files, zoo_lenet_keras):
    text = tmp_path / "readme.txt"
    text.write_text("a text file, not a digit")
    images = [zoo_digit_files["as_is"][0], text, zoo_digit_files["as_is"][1]]

    results = predict(zoo_lenet_keras, images)

    assert [r.ok for r in results] == [True, False, True]
    assert "readme.txt" in results[1].error and results[1].digit is None
    alone = predict(zoo_lenet_keras, [images[0], images[2]])
    assert [results[0].digit, results[2].digit] == [r.digit for r in alone]


def test_cli(tmp_path, zoo_lenet_run, zoo_digit_files, capsys):
    saved_model = zoo_lenet_run.run_dir / "saved_model"
    text = tmp_path / "readme.txt"
    text.write_text("a text file, not a digit")
    images = [str(p) for p in zoo_digit_files["inverted"][:3]]

    assert predict_lib.main([str(saved_model), *images]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for line, path in zip(lines, images):
        assert re.fullmatch(rf"{re.escape(path)}: \d \(\d+\.\d%\)", line), line

    assert predict_lib.main([str(saved_model), images[0], str(text)]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith(images[0])
    assert captured.err.startswith("error: ") and "readme.txt" in captured.err


def test_cli_model_error(tmp_path, capsys):
    assert predict_lib.main([str(tmp_path / "none.keras"), "digit.png"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        predict_lib.main(["--help"])
    assert exit_info.value.code == 0
    assert "IMAGE" in capsys.readouterr().out
