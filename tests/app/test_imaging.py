from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from app.errors import BadImage, ImageTooLarge
from app.imaging import NoDigit, preprocess_image, to_png
from tests.conftest import FIXTURE_MNIST

with np.load(FIXTURE_MNIST) as _data:
    DIGITS = _data["x_test"][:10]  # white on black uint8; labels 7 2 1 0 4 1 4 9 5 9
SEVEN, TWO, ONE = DIGITS[0], DIGITS[1], DIGITS[2]


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png(pixels: np.ndarray) -> bytes:
    return encode(Image.fromarray(pixels))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def shifted_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Best correlation over shifts of up to one pixel: centring rounds to whole pixels, so a
    re-encoded digit may land one pixel over, as MNIST digits themselves do."""
    return max(correlation(np.roll(a, (dr, dc), axis=(0, 1)), b) for dr in (-1, 0, 1) for dc in (-1, 0, 1))


def centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    rows, cols = np.mgrid[0:a.shape[0], 0:a.shape[1]]
    return float((rows * a).sum() / a.sum()), float((cols * a).sum() / a.sum())


def box_size(a: np.ndarray) -> tuple[int, int]:
    rows, cols = np.nonzero(a > 0.05)
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def assert_mnist_like(a: np.ndarray) -> None:
    assert a.shape == (28, 28) and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1


def upscaled(digit: np.ndarray, side: int) -> np.ndarray:
    """The digit's 28x28 field enlarged with smoothing, as 0..1 ink."""
    image = Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC)
    return np.asarray(image, np.float32) / 255


def on_paper(digit: np.ndarray, *, size: tuple[int, int] = (280, 280), at: tuple[int, int] = (0, 0),
             side: int = 280, paper: float = 255, ink: float = 0) -> np.ndarray:
    """Dark ink on paper: an L image of `size` (width, height) with the digit at `at` (left, top)."""
    share = np.zeros((size[1], size[0]), np.float32)
    share[at[1]:at[1] + side, at[0]:at[0] + side] = upscaled(digit, side)
    return np.clip(paper * (1 - share) + ink * share, 0, 255).astype(np.uint8)


# ---- images that already look like MNIST -------------------------------------------------------

@pytest.mark.parametrize("index", [pytest.param(i, id=f"test-digit-{i}") for i in range(5)])
def test_mnist_png_comes_back_nearly_unchanged(index: int) -> None:
    digit = DIGITS[index]
    out = preprocess_image(png(digit))
    assert_mnist_like(out)
    assert correlation(out, digit / 255) > 0.999
    assert np.abs(out - digit / 255).max() < 0.02
    rows, cols = centre_of_mass(out)
    assert abs(rows - 14) <= 1 and abs(cols - 14) <= 1


def test_dark_ink_on_white_paper_is_inverted() -> None:
    out = preprocess_image(png(255 - SEVEN))
    assert np.abs(out - SEVEN / 255).max() < 0.02


@pytest.mark.parametrize(
    ("paper", "ink"),
    [
        pytest.param(180, 30, id="grey-paper-dark-ink"),
        pytest.param(230, 120, id="white-paper-pencil"),
        pytest.param(230, 170, id="faint-pencil"),
        pytest.param(40, 200, id="chalk-on-blackboard"),
    ],
)
def test_paper_level_is_removed(paper: int, ink: int) -> None:
    out = preprocess_image(png(on_paper(SEVEN, paper=paper, ink=ink)))
    reference = preprocess_image(png(SEVEN))
    assert out[:, :3].max() == 0 and out[:, -3:].max() == 0  # the paper is black, not grey
    assert out.max() == pytest.approx(1.0)
    assert correlation(out, reference) > 0.95


def test_lighting_gradient_and_noise_leave_a_clean_background() -> None:
    rng = np.random.default_rng(7)
    gradient = np.linspace(150, 225, 300)[None, :]
    share = np.zeros((240, 300), np.float32)
    share[40:200, 90:250] = upscaled(TWO, 160)
    photo = gradient * (1 - share) + 35 * share + rng.normal(0, 8, share.shape)
    out = preprocess_image(encode(Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)), "JPEG", quality=70))
    reference = preprocess_image(png(TWO))
    assert correlation(out, reference) > 0.9
    assert (out[reference == 0] > 0.2).mean() < 0.02  # no speckle where the digit is not


def test_thin_pen_strokes_reach_full_intensity() -> None:
    # A 3 px line shrunk 15x would peak near 0.3; MNIST strokes peak at 1.0 and the model expects that.
    image = Image.new("L", (400, 400), 255)
    ImageDraw.Draw(image).line([(80, 60), (320, 60), (180, 350)], fill=0, width=3)
    out = preprocess_image(encode(image))
    assert out.max() == pytest.approx(1.0)
    assert max(box_size(out)) == 20


def test_faint_smudge_does_not_shrink_the_digit() -> None:
    share = np.zeros((300, 300), np.float32)
    share[20:220, 20:220] = upscaled(TWO, 200)
    clean = preprocess_image(png((255 * (1 - share)).astype(np.uint8)))
    share[235:265, 235:275] = 0.2  # a pencil smudge away from the digit (and off the border)
    out = preprocess_image(png((255 * (1 - share)).astype(np.uint8)))
    rows, cols = np.nonzero(out > 0.3)
    assert max(np.ptp(rows), np.ptp(cols)) + 1 >= 18  # fitted with the smudge, the 2 would be 15 px tall
    assert correlation(out, clean) > 0.98


# ---- browser canvas exports: ink is in the alpha channel -----------------------------------------

@pytest.mark.parametrize(
    "colour",
    [pytest.param((0, 0, 0), id="black-strokes"), pytest.param((255, 255, 255), id="white-strokes"),
     pytest.param((30, 60, 200), id="blue-strokes")],
)
def test_transparent_canvas_strokes_become_white_ink(colour: tuple[int, int, int]) -> None:
    alpha = (upscaled(SEVEN, 200) * 255).astype(np.uint8)
    canvas = np.zeros((280, 280, 4), np.uint8)  # transparent black, as canvas.toBlob() writes it
    canvas[50:250, 20:220, :3] = colour
    canvas[50:250, 20:220, 3] = alpha
    out = preprocess_image(png(canvas))
    reference = preprocess_image(png(SEVEN))
    assert out[0].max() == 0 and out[-1].max() == 0
    assert out.max() == pytest.approx(1.0)
    assert correlation(out, reference) > 0.9


def test_transparent_palette_image_uses_its_transparency() -> None:
    image = Image.fromarray((SEVEN > 127).astype(np.uint8), mode=None).convert("P")
    image.putpalette([0, 0, 0, 0, 0, 0])  # both entries black: only transparency tells them apart
    data = encode(image, transparency=0)
    out = preprocess_image(data)
    assert correlation(out, preprocess_image(png(np.where(SEVEN > 127, 255, 0).astype(np.uint8)))) > 0.99


# ---- geometry: fit into 20x20, centre of mass at the centre --------------------------------------

@pytest.mark.parametrize(
    "at",
    [pytest.param((10, 10), id="top-left"), pytest.param((300, 200), id="bottom-right"),
     pytest.param((180, 20), id="top-right")],
)
def test_off_centre_digit_in_big_canvas_is_centred_and_fitted(at: tuple[int, int]) -> None:
    out = preprocess_image(png(on_paper(TWO, size=(480, 360), at=at, side=150)))
    rows, cols = centre_of_mass(out)
    assert abs(rows - 14) <= 1 and abs(cols - 14) <= 1
    assert max(box_size(out)) in (19, 20, 21)


@pytest.mark.parametrize(
    ("bar", "expected"),
    [
        pytest.param((slice(50, 250), slice(140, 152)), "tall", id="tall-thin-one"),
        pytest.param((slice(140, 152), slice(30, 270)), "wide", id="wide-dash"),
    ],
)
def test_aspect_ratio_is_kept(bar: tuple[slice, slice], expected: str) -> None:
    pixels = np.full((300, 300), 255, np.uint8)
    pixels[bar] = 0
    height, width = box_size(preprocess_image(png(pixels)))
    long_side, short_side = (height, width) if expected == "tall" else (width, height)
    assert long_side == 20
    assert 1 <= short_side <= 3  # 12:200 of 20 px is ~1 px, not stretched into a square


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


# ---- hostile and broken uploads ------------------------------------------------------------------

def _chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header for a 1-bit image of any size with a few bytes of data: tiny file, huge claim.

    Decoding it would fail as truncated, so ImageTooLarge proves the size is checked first."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _chunk(b"IEND", b""))


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


# ---- nothing to see -------------------------------------------------------------------------------

def _noisy_blank_paper() -> bytes:
    noise = np.random.default_rng(5).normal(0, 3, (200, 200))
    return encode(Image.fromarray(np.clip(200 + noise, 0, 255).astype(np.uint8)), "JPEG", quality=70)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(png(np.array([[255]], np.uint8)), id="1x1-white"),
        pytest.param(png(np.array([[0]], np.uint8)), id="1x1-black"),
        pytest.param(png(np.full((50, 80), 128, np.uint8)), id="uniform-grey"),
        pytest.param(png(np.zeros((280, 280, 4), np.uint8)), id="empty-transparent-canvas"),
        pytest.param(_noisy_blank_paper(), id="photo-of-blank-paper"),
    ],
)
def test_a_blank_image_holds_no_digit(data: bytes) -> None:
    with pytest.raises(NoDigit) as caught:
        preprocess_image(data)
    assert caught.value.reason == "no_ink"



# ---- the picture shown back to users --------------------------------------------------------------

def test_to_png_round_trips() -> None:
    array = preprocess_image(png(TWO))
    image = Image.open(io.BytesIO(to_png(array)))
    assert (image.format, image.mode, image.size) == ("PNG", "L", (28, 28))
    np.testing.assert_allclose(np.asarray(image) / 255, array, atol=0.5 / 255 + 1e-6)
    np.testing.assert_allclose(preprocess_image(to_png(array)), array, atol=0.01)


# ---- phone photos of paper (app/imaging/photo.py) ---------------------------------------------------

def _photo_of_paper(digit: np.ndarray | None, *, lines: str, shadow: bool, seed: int = 0) -> bytes:
    """Pencil on ruled or squared paper: only moderately darker than the paper, a soft shadow over
    the left part, a lighting gradient, noise and JPEG at quality 60, the digit off-centre."""
    rng = np.random.default_rng(seed)
    height, width = 480, 360
    paper = np.ones((height, width), np.float32)
    if lines != "plain":
        for y in range(17, height, 34):
            paper[y:y + 2] *= 0.72  # printed rules, a little lighter than the pencil
        if lines == "grid":
            for x in range(11, width, 34):
                paper[:, x:x + 2] *= 0.72
    share = np.zeros((height, width), np.float32)
    if digit is not None:
        share[150:350, 150:350] = upscaled(digit, 200)
        share = (share > 0.5) * 0.55  # solid pencil strokes, absorbing 55% of the light
    cols = np.arange(width)[None, :] / width
    light = 0.75 + 0.25 * cols  # brighter to the right
    if shadow:
        light = light * (1 - 0.4 / (1 + np.exp((cols - 0.3) / 0.05)))  # a soft shadow over the left third
    gray = 230 * paper * (1 - share) * light + rng.normal(0, 4, (height, width))
    return encode(Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8)), "JPEG", quality=60)


@pytest.mark.parametrize(
    ("lines", "shadow"),
    [
        pytest.param("plain", True, id="plain-paper-shadow"),
        pytest.param("ruled", False, id="ruled-paper"),
        pytest.param("grid", True, id="squared-paper-shadow"),
    ],
)
@pytest.mark.parametrize("index", [pytest.param(0, id="seven"), pytest.param(1, id="two")])
def test_a_photo_of_a_digit_on_paper_gives_the_digit_without_lines_or_shadow(lines: str, shadow: bool, index: int) -> None:
    out = preprocess_image(_photo_of_paper(DIGITS[index], lines=lines, shadow=shadow))
    reference = preprocess_image(png(DIGITS[index]))
    assert_mnist_like(out)
    assert shifted_correlation(out, reference) > 0.75
    # Nothing of the printed lines or the shadow is left: no ink where the digit is not.
    assert (out[reference == 0] > 0.3).mean() < 0.05


@pytest.mark.parametrize("lines", ["plain", "ruled", "grid"])
def test_a_photo_of_blank_paper_holds_no_digit(lines: str) -> None:
    with pytest.raises(NoDigit):
        preprocess_image(_photo_of_paper(None, lines=lines, shadow=True))


def test_photo_path_is_taken_only_by_photos() -> None:
    from app.imaging.digit import prepare

    assert prepare(png(SEVEN)).path == "mnist"
    assert prepare(png(on_paper(SEVEN, size=(300, 300), at=(50, 50), side=200))).path == "clean"
    assert prepare(_photo_of_paper(SEVEN, lines="ruled", shadow=False)).path == "photo"
