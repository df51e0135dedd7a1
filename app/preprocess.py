"""Turn uploads into what LeNet-5 was trained on: 28x28 float32, 0..1, white digit on black,
fitted into a 20x20 box and centred by centre of mass (LeCun et al.'s MNIST construction).
numpy and Pillow only; TensorFlow stays in app.model."""

from __future__ import annotations

import io
import math
import struct
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from app.errors import BadImage, ImageTooLarge

SIDE = 28
BOX = 20  # MNIST digits fit a 20x20 box inside the 28x28 field
CENTRE = 14  # where MNIST puts the centre of mass (row and column index, measured on the data set)
DEFAULT_MAX_PIXELS = 16_000_000

# TIFF and the long tail of Pillow plugins stay out: more decoder, more attack surface, no users.
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")
LOSSY_FORMATS = ("JPEG", "WEBP")
# What Pillow's decoders raise on hostile or damaged input (see Pillow's own fuzzing tests).
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, TypeError)

WORK_SIDE = 512  # bigger images are box-averaged down first: a 20x20 result needs no more
ALPHA_VARIES = 0.05  # below this spread the alpha channel carries no drawing
MIN_CONTRAST = 0.08  # ink fainter than ~20/255 above the paper is treated as a blank image
NOISE_SIGMAS = 4.0  # paper noise up to this many standard deviations is not ink
CORE_SHARE = 0.3  # ink at least this strong (of the stretched 1.0) makes the digit's extent
LOSSY_FLOOR = 0.15  # of the peak: JPEG ringing reaches ~12% of the stroke contrast at quality 70
SPECK_FRACTION = 0.1  # isolated bits below this share of the peak vanish after a 3x3 blur


def preprocess_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file into a (28, 28) float32 MNIST-like array in 0..1.

    Dark ink on light paper is inverted, the paper's level (and a linear lighting gradient) is
    removed, and a transparent background (a browser canvas export) counts as paper. An image with
    no ink in it (one colour, a 1x1 pixel) gives all zeros rather than an error: the model then
    answers with low confidence, which is the honest answer.

    Raises BadImage for anything unreadable and ImageTooLarge above `max_pixels`, before decoding.
    """
    image = _decode(data, max_pixels)
    gray, alpha = _channels(image)
    gray, alpha = _shrink(gray), None if alpha is None else _shrink(alpha)
    if alpha is not None and float(np.ptp(alpha)) > ALPHA_VARIES:  # a drawing on a transparent canvas
        gray = _composite(gray, alpha)
    if alpha is None and gray.shape == (SIDE, SIDE) and image.format not in LOSSY_FORMATS and _mnist_like(gray):
        # Already an MNIST digit (the common API case): white ink on a clean black border needs no
        # paper removal; only the strongest stroke stretched to 1 before fitting and centring.
        return _fit_and_centre(gray / float(gray.max()))
    ink = _ink(gray, lossy=image.format in LOSSY_FORMATS)
    if ink is None:
        return np.zeros((SIDE, SIDE), np.float32)
    return _fit_and_centre(ink)


def _decode(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise BadImage("empty upload: expected an image file")
    try:
        with warnings.catch_warnings():
            # A damaged upload's metadata warnings are not ours to log; a bomb warning is an answer.
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
            width, height = image.size
            if width * height > max_pixels:
                raise ImageTooLarge(f"image is {width}x{height} pixels; at most {max_pixels:,} pixels are accepted")
            if image.format == "JPEG":
                image.draft(None, (WORK_SIDE, WORK_SIDE))  # decode big photos at 1/2..1/8 scale: much faster
            image.load()  # GIF, APNG and WebP load their first frame
            ImageOps.exif_transpose(image, in_place=True)  # phone photos are stored sideways plus a tag
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"image has too many pixels to decode safely: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise BadImage(f"not a readable image: expected one of {', '.join(FORMATS)}") from exc
    except _DECODE_ERRORS as exc:
        raise BadImage(f"not a readable image: {exc}") from exc
    return image


def _channels(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Luminance and alpha (None if the image has none) as float arrays in 0..1."""
    if image.mode.startswith("I") or image.mode == "F":
        return _unit(np.asarray(image)), None  # convert("L") would clip 16-bit values, not scale them
    try:
        if image.mode == "P":
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        if image.mode in ("LA", "La", "PA", "RGBa"):
            image = image.convert("RGBA")
        alpha = np.asarray(image.getchannel("A"), np.float32) / 255 if image.mode == "RGBA" else None
        if image.mode == "CMYK":
            image = image.convert("RGB")
        gray = np.asarray(image.convert("L"), np.float32) / 255
    except ValueError as exc:
        raise BadImage(f"unsupported pixel mode {image.mode}: {exc}") from exc
    return gray, alpha


def _unit(values: np.ndarray) -> np.ndarray:
    """Scale 16/32-bit integer or float pixels to 0..1 by the range their values imply."""
    top = float(values.max(initial=0))
    scale = 1.0 if values.dtype.kind == "f" and top <= 1 else 255.0 if top <= 255 else max(65535.0, top)
    return (np.clip(values.astype(np.float64), 0, None) / scale).astype(np.float32)


def _shrink(values: np.ndarray) -> np.ndarray:
    height, width = values.shape
    factor = math.ceil(max(height, width) / WORK_SIDE)
    if factor <= 1:
        return values
    size = (max(1, width // factor), max(1, height // factor))
    return np.asarray(Image.fromarray(values.astype(np.float32)).resize(size, Image.Resampling.BOX))


def _composite(gray: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Flatten onto paper that contrasts with the strokes, so a transparent pixel is background."""
    stroke = float((gray * alpha).sum() / alpha.sum())
    paper = 1.0 if stroke < 0.5 else 0.0
    flat: np.ndarray = gray * alpha + paper * (1 - alpha)
    return flat


def _ink(gray: np.ndarray, *, lossy: bool) -> np.ndarray | None:
    """Ink intensity in 0..1 (1 = darkest stroke) with the paper at 0, or None for a blank image."""
    frame = _frame(gray.shape)
    paper = float(np.median(gray[frame]))
    smooth = _box3(gray)
    # Ink is whatever strays furthest from the paper: below it means dark ink on light paper.
    dark_ink = paper - float(smooth.min()) > float(smooth.max()) - paper
    background, sigma = _background(1 - gray if dark_ink else gray, frame)
    above = (1 - gray if dark_ink else gray) - background
    if dark_ink:
        # Paper reflects light and ink absorbs a share of it: measure ink against the local paper
        # brightness, so strokes under the dim side of a lighting gradient weigh as much as the rest.
        paper_level = np.clip(1 - background, MIN_CONTRAST, None)
        above, sigma = above / paper_level, sigma / float(np.median(paper_level))
    peak = float(_box3(above).max())
    if peak < MIN_CONTRAST:
        return None
    # Lossy codecs ring around strokes even where the border is clean; lossless files are taken
    # at their word, so MNIST PNGs pass unchanged.
    floor = max(NOISE_SIGMAS * sigma, LOSSY_FLOOR * peak if lossy else 0.0)
    ink = np.clip(above - floor, 0, None)
    # Drop specks: lone noise pixels fade under a 3x3 blur, strokes (even 1 px wide) keep a third.
    ink *= _box3((_box3(ink) > SPECK_FRACTION * peak).astype(np.float32)) > 0
    top = float(ink.max())
    # Stretch so the strongest stroke reaches 1.0, as in MNIST (lone hot pixels are gone by now).
    return ink / top if top > 0 else None


def _mnist_like(gray: np.ndarray) -> bool:
    """28x28, an all-black outer ring of pixels, and ink bright enough to count."""
    return (
        not gray[0].any()
        and not gray[-1].any()
        and not gray[:, 0].any()
        and not gray[:, -1].any()
        and float(gray.max()) >= MIN_CONTRAST
    )


def _frame(shape: tuple[int, int]) -> np.ndarray:
    """The border strip where the paper shows: ~6% of the shorter side, at least one pixel."""
    height, width = shape
    band = max(1, min(height, width) // 16)
    mask = np.ones(shape, bool)
    mask[band : height - band, band : width - band] = False
    return mask


def _background(gray: np.ndarray, frame: np.ndarray) -> tuple[np.ndarray | np.float64, float]:
    """A plane fitted to the border (lighting gradients are near linear) and the paper's noise.

    Refitted once without the pixels well above it: ink that touches the border is not paper."""
    border = gray[frame]
    if border.min() == border.max():  # clean digital paper (MNIST files, canvas exports): nothing to fit
        return np.float64(border[0]), 0.0
    height, width = gray.shape
    rows, cols = np.nonzero(frame)
    design = np.column_stack([np.ones(rows.size), rows / height, cols / width])
    values = gray[frame].astype(np.float64)
    keep = np.ones(values.size, bool)
    for _ in range(2):
        coef = np.linalg.lstsq(design[keep], values[keep], rcond=None)[0]
        residual = values - design @ coef
        spread = residual[keep] - np.median(residual[keep])
        sigma = 1.4826 * float(np.median(np.abs(spread)))  # MAD: robust to the ink it still sees
        keep = residual <= 3 * sigma + 1 / 255
    grid_rows, grid_cols = np.mgrid[0:height, 0:width]
    return coef[0] + coef[1] * grid_rows / height + coef[2] * grid_cols / width, sigma


def _box3(values: np.ndarray) -> np.ndarray:
    """3x3 mean with edge padding, as two separable passes (this runs several times per image)."""
    padded = np.concatenate([values[:1], values, values[-1:]])  # edge padding; np.pad costs 5x more
    padded = np.concatenate([padded[:, :1], padded, padded[:, -1:]], axis=1)
    rows = padded[:-2] + padded[1:-1] + padded[2:]
    mean: np.ndarray = (rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]) / 9
    return mean


def _ink_box(ink: np.ndarray) -> tuple[slice, slice]:
    """The box of the solid strokes widened by one output pixel's worth of fringe. Fainter ink
    further out (JPEG ringing, smudges, shadows) would otherwise shrink the digit."""
    rows, cols = np.nonzero(ink >= CORE_SHARE)
    margin = max(1, round((max(np.ptp(rows), np.ptp(cols)) + 1) / BOX))
    top, left = max(rows.min() - margin, 0), max(cols.min() - margin, 0)
    window = ink[top : rows.max() + margin + 1, left : cols.max() + margin + 1]
    inked_rows, inked_cols = np.nonzero(window.any(axis=1))[0], np.nonzero(window.any(axis=0))[0]
    return (
        slice(top + inked_rows[0], top + inked_rows[-1] + 1),
        slice(left + inked_cols[0], left + inked_cols[-1] + 1),
    )


def _fit_and_centre(ink: np.ndarray) -> np.ndarray:
    digit = ink[_ink_box(ink)].astype(np.float32)
    height, width = digit.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    fitted = np.asarray(Image.fromarray(digit).resize(size, Image.Resampling.LANCZOS))
    fitted = np.clip(fitted, 0, 1)  # Lanczos rings below 0 and above 1
    fitted = fitted / max(float(fitted.max()), 1e-6)  # thin strokes dim when shrunk; MNIST strokes peak at 1
    mass = fitted.sum()
    grid_rows, grid_cols = np.mgrid[0 : size[1], 0 : size[0]]
    top = round(CENTRE - float((grid_rows * fitted).sum() / mass))
    left = round(CENTRE - float((grid_cols * fitted).sum() / mass))
    top = min(max(top, 0), SIDE - size[1])  # keep the whole digit in the field
    left = min(max(left, 0), SIDE - size[0])
    out = np.zeros((SIDE, SIDE), np.float32)
    out[top : top + size[1], left : left + size[0]] = fitted
    return out


def to_png(array: np.ndarray) -> bytes:
    """A (28, 28) 0..1 array as a grayscale PNG: the image the model actually saw."""
    pixels = np.round(np.clip(np.asarray(array, np.float64), 0, 1) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
