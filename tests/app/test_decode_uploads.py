"""Uploads decoded as the service decodes them (app/imaging/decode.py): every format and pixel mode to the
same digit, EXIF orientation, animations, and hostile or broken files refused before they cost memory; the
picture shown back to users."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from app.errors import BadImage, ImageTooLarge
from app.imaging import NoDigit, preprocess_image, to_png
from app.imaging.segment import segment_number
from tests.app.imaging_helpers import (
    ONE,
    SEVEN,
    TWO,
    assert_mnist_like,
    correlation,
    encode,
    on_paper,
    png,
    shifted_correlation,
)

# ---- formats and pixel modes ---------------------------------------------------------------------


def _mode(digit: np.ndarray, mode: str) -> Image.Image:
    return Image.fromarray(digit).convert(mode)


def _sixteen_bit(digit: np.ndarray) -> Image.Image:
    image = Image.fromarray(digit.astype(np.uint16) * 257)  # full 16-bit range: L-conversion would clip it
    assert image.mode == "I;16"
    return image


def _cmyk(digit: np.ndarray) -> Image.Image:
    return Image.fromarray(255 - digit).convert("RGB").convert("CMYK")


@pytest.mark.parametrize(
    ("build", "fmt", "options", "opened_mode"),
    [
        pytest.param(lambda d: _mode(d, "L"), "JPEG", {"quality": 90}, "L", id="jpeg-gray"),
        pytest.param(lambda d: _mode(255 - d, "RGB"), "JPEG", {"quality": 90}, "RGB", id="jpeg-rgb-dark-ink"),
        pytest.param(_cmyk, "JPEG", {"quality": 95}, "CMYK", id="jpeg-cmyk"),
        pytest.param(lambda d: _mode(d, "RGB"), "BMP", {}, "RGB", id="bmp"),
        pytest.param(lambda d: _mode(d, "L"), "WEBP", {"lossless": True}, "RGB", id="webp-lossless"),
        pytest.param(lambda d: _mode(d, "RGB"), "WEBP", {"quality": 90}, "RGB", id="webp-lossy"),
        pytest.param(_sixteen_bit, "PNG", {}, "I;16", id="png-16-bit"),
        pytest.param(lambda d: _mode(d, "P"), "PNG", {}, "P", id="png-palette"),
        pytest.param(lambda d: _mode(d, "LA"), "PNG", {}, "LA", id="png-gray-alpha-opaque"),
        pytest.param(lambda d: _mode(d, "RGBA"), "PNG", {}, "RGBA", id="png-rgba-opaque"),
        pytest.param(lambda d: Image.fromarray(d > 127), "PNG", {}, "1", id="png-1-bit"),
        pytest.param(lambda d: Image.fromarray(d).convert("P"), "GIF", {}, "P", id="gif"),
    ],
)
def test_formats_and_modes_decode_to_the_same_digit(build, fmt: str, options: dict, opened_mode: str) -> None:
    data = encode(build(SEVEN), fmt, **options)
    assert Image.open(io.BytesIO(data)).mode == opened_mode  # the test exercises the mode it names
    out = preprocess_image(data)
    assert_mnist_like(out)
    assert shifted_correlation(out, preprocess_image(png(SEVEN))) > 0.95


def test_exif_orientation_is_applied() -> None:
    upright = Image.fromarray(on_paper(SEVEN, size=(240, 320), at=(20, 60), side=200))
    stored = upright.rotate(90, expand=True)  # the camera's sensor orientation
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    out = preprocess_image(encode(stored, "JPEG", quality=90, exif=exif))
    reference = preprocess_image(encode(upright, "JPEG", quality=90))
    assert shifted_correlation(out, reference) > 0.95
    assert shifted_correlation(preprocess_image(encode(stored, "JPEG", quality=90)), reference) < 0.7


def test_animated_gif_uses_the_first_frame() -> None:
    frames = [Image.fromarray(SEVEN).convert("P"), Image.fromarray(ONE).convert("P")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    out = preprocess_image(data)
    assert correlation(out, preprocess_image(png(SEVEN))) > 0.95
    assert correlation(out, preprocess_image(png(ONE))) < 0.5


@pytest.mark.parametrize("alpha", [0, 10])
@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_a_fully_transparent_image_shows_no_digit_whatever_its_hidden_colours(mode: str, alpha: int) -> None:
    # An outside check's finding: a transparent PNG whose hidden colour channels hold a digit was read as that digit
    # (a 1 at 0.9999) by /predict and /read. A viewer shows nothing there: it is a blank image.
    image = Image.fromarray(255 - upscaled_seven()).convert(mode)
    image.putalpha(alpha)
    data = encode(image, "PNG")
    with pytest.raises(NoDigit) as raised:
        preprocess_image(data)
    assert raised.value.reason == "no_ink"
    assert segment_number(data).reason == "no_ink"


def upscaled_seven() -> np.ndarray:
    return np.asarray(Image.fromarray(SEVEN).resize((112, 112), Image.Resampling.BICUBIC))


# ---- hostile and broken uploads ------------------------------------------------------------------


def _chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header for a 1-bit image of any size with a few bytes of data: tiny file, huge claim.

    Decoding it would fail as truncated, so ImageTooLarge proves the size is checked first."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("data", "max_pixels"),
    [
        pytest.param(png_claiming(5_000, 5_000), 16_000_000, id="over-our-limit"),
        pytest.param(png_claiming(10_000, 10_000), 10**12, id="pillow-bomb-warning"),
        pytest.param(png_claiming(30_000, 30_000), 10**12, id="pillow-bomb-error"),
        pytest.param(png_claiming(30_000, 30_000), 16_000_000, id="30000x30000-default"),
        pytest.param(encode(Image.new("1", (4_100, 4_100))), 16_000_000, id="real-all-black-bomb"),
        pytest.param(png(SEVEN), 28 * 28 - 1, id="max-pixels-parameter"),
    ],
)
def test_too_many_pixels_is_refused_before_decoding(data: bytes, max_pixels: int) -> None:
    assert len(data) < 200_000  # each is a small upload
    with pytest.raises(ImageTooLarge):
        preprocess_image(data, max_pixels=max_pixels)


def test_max_pixels_allows_an_image_at_the_limit() -> None:
    assert_mnist_like(preprocess_image(png(SEVEN), max_pixels=28 * 28))


def _tiff() -> bytes:
    return encode(Image.fromarray(SEVEN), "TIFF")


def _broken_crc() -> bytes:
    data = bytearray(png(SEVEN))
    data[-20] ^= 0xFF  # inside the IDAT chunk
    return bytes(data)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="zero-bytes"),
        pytest.param(png(SEVEN)[:60], id="truncated-png"),
        pytest.param(png(SEVEN)[:-30], id="png-missing-its-end"),
        pytest.param(_broken_crc(), id="corrupt-idat"),
        pytest.param(b"hello, this is a text file named digit.png\n", id="text"),
        pytest.param(np.random.default_rng(3).bytes(4096), id="random-bytes"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + np.random.default_rng(4).bytes(512), id="png-signature-then-noise"),
        pytest.param(_tiff(), id="tiff-not-accepted"),
        pytest.param(b"<svg xmlns='http://www.w3.org/2000/svg'/>", id="svg"),
    ],
)
def test_unreadable_uploads_are_bad_images(data: bytes) -> None:
    with pytest.raises(BadImage) as caught:
        preprocess_image(data)
    assert type(caught.value) is BadImage
    assert "image" in caught.value.message


# ---- the picture shown back to users --------------------------------------------------------------


def test_to_png_round_trips() -> None:
    array = preprocess_image(png(TWO))
    image = Image.open(io.BytesIO(to_png(array)))
    assert (image.format, image.mode, image.size) == ("PNG", "L", (28, 28))
    np.testing.assert_allclose(np.asarray(image) / 255, array, atol=0.5 / 255 + 1e-6)
    np.testing.assert_allclose(preprocess_image(to_png(array)), array, atol=0.01)


@pytest.mark.parametrize(
    ("max_pixels", "limit"),
    [
        pytest.param(16_000_000, "at most 16,000,000 pixels are accepted", id="the-service-limit"),
        # over Pillow's own limit, Pillow's applies: its warning, at MAX_IMAGE_PIXELS, is an error here
        pytest.param(10**12, f"at most {Image.MAX_IMAGE_PIXELS:,} pixels are decoded", id="pillows-limit"),
    ],
)
def test_an_image_over_pillows_bomb_limit_names_the_limit_that_refused_it(max_pixels: int, limit: str) -> None:
    """A 20000x20000 upload was refused with Pillow's message, which names its own limit (178956970 pixels),
    not the service's; a 5000x5000 one with the service's."""
    with pytest.raises(ImageTooLarge) as caught:
        preprocess_image(png_claiming(20_000, 20_000), max_pixels=max_pixels)
    assert caught.value.message.startswith("image is 400,000,000 pixels; ") and caught.value.message.endswith(limit)
    assert "178956970" not in caught.value.message


def test_an_image_over_the_service_limit_is_sized_as_a_bomb_is() -> None:
    """Both refusals count the pixels the same way (a new user's review: a 30000x30000 bomb was "image is
    900,000,000 pixels", a 4001x4001 image "image is 4001x4001 pixels")."""
    with pytest.raises(ImageTooLarge) as caught:
        preprocess_image(png_claiming(4001, 4001), max_pixels=16_000_000)
    assert caught.value.message == "image is 4001x4001, 16,008,001 pixels; at most 16,000,000 pixels are accepted"
