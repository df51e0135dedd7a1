"""Uploads into pixels: a format allow-list, a pixel guard before decoding, EXIF orientation, and
luminance plus alpha as float arrays in 0..1 at a working size."""

from __future__ import annotations

import io
import math
import re
import struct
import warnings

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from app.errors import BadImage, ImageTooLarge
from app.imaging.ink import MIN_CONTRAST

DEFAULT_MAX_PIXELS = 16_000_000
# TIFF and the long tail of Pillow plugins stay out: more decoder, more attack surface, no users.
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")
LOSSY_FORMATS = ("JPEG", "WEBP")
# What Pillow's decoders raise on hostile or damaged input (see Pillow's own fuzzing tests).
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, TypeError)

WORK_SIDE = 512  # bigger images are box-averaged down first: a 20x20 result needs no more
UPLOAD_SIZE = "lenet_serve_upload_size"  # the image's info key: (width, height) as uploaded (`upload_size`)
_TURNED = (5, 6, 7, 8)  # EXIF orientations shown turned a quarter: width and height swap


def decode(data: bytes, max_pixels: int, *, side: int = WORK_SIDE, full: bool = False) -> Image.Image:
    """The upload as an image, its EXIF orientation applied; a big JPEG decoded at 1/2..1/8 of its size (at least
    `side` pixels each way) unless `full` (its own pixels: a closer look at a small part of it)."""
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
                raise ImageTooLarge(
                    f"image is {width}x{height}, {width * height:,} pixels; at most {max_pixels:,} pixels are accepted"
                )
            if image.format == "JPEG" and not full:
                image.draft(None, (side, side))  # decode big photos at 1/2..1/8 scale: much faster
            image.load()  # GIF, APNG and WebP load their first frame
            turned = image.getexif().get(ExifTags.Base.Orientation) in _TURNED
            ImageOps.exif_transpose(image, in_place=True)  # phone photos are stored sideways plus a tag
            image.info[UPLOAD_SIZE] = (height, width) if turned else (width, height)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(_bomb_message(exc, max_pixels)) from exc
    except UnidentifiedImageError as exc:
        raise BadImage(f"not a readable image: expected one of {', '.join(FORMATS)}") from exc
    except _DECODE_ERRORS as exc:
        raise BadImage(f"not a readable image: {exc}") from exc
    return image


def upload_size(image: Image.Image) -> tuple[int, int]:
    """(width, height) of a `decode`d image as uploaded and shown (its EXIF orientation applied): a JPEG is decoded
    smaller (its draft), and what is reported in pixels (a reading's boxes) is in the upload's."""
    size: tuple[int, int] = image.info.get(UPLOAD_SIZE, image.size)
    return size


def _bomb_message(exc: Exception, max_pixels: int) -> str:
    """Pillow refuses a header claiming over MAX_IMAGE_PIXELS (its warning, an error here) before the size
    check above can: the answer names the limit that applied, the service's when it is the lower, not
    Pillow's (whose error names twice its warning's)."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"image is {int(found.group(1)):,} pixels" if found else "image has too many pixels"
    pillows = Image.MAX_IMAGE_PIXELS  # None: Pillow's check off (then it raised nothing)
    if pillows is None or max_pixels <= pillows:
        return f"{size}; at most {max_pixels:,} pixels are accepted"
    return f"{size}; at most {pillows:,} pixels are decoded"


def channels(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
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
    if alpha is not None and float(alpha.max(initial=0)) < MIN_CONTRAST:
        # Transparent all over: a viewer shows nothing, whatever the hidden colours hold (they were read as a digit).
        return np.ones_like(gray), None
    return gray, alpha


def _unit(values: np.ndarray) -> np.ndarray:
    """Scale 16/32-bit integer or float pixels to 0..1 by the range their values imply."""
    top = float(values.max(initial=0))
    scale = 1.0 if values.dtype.kind == "f" and top <= 1 else 255.0 if top <= 255 else max(65535.0, top)
    return (np.clip(values.astype(np.float64), 0, None) / scale).astype(np.float32)


def shrink(values: np.ndarray, side: int = WORK_SIDE) -> np.ndarray:
    """Box-averaged down by a whole factor until the longer side is at most `side` pixels."""
    height, width = values.shape
    factor = math.ceil(max(height, width) / side)
    if factor <= 1:
        return values
    size = (max(1, width // factor), max(1, height // factor))
    return np.asarray(Image.fromarray(values.astype(np.float32)).resize(size, Image.Resampling.BOX))


def canvas_margin(alpha: np.ndarray, share: float) -> int:
    """The transparent background to put back around a canvas whose strokes reach its edge (alpha over half its peak in
    the outermost pixels: a drawing app's "crop to content"): `share` of its shorter side. Composited with no paper
    around them, the strokes' ink at the edges was taken for paper. 0 when the strokes stay clear of the edge."""
    ring = np.concatenate([alpha[0], alpha[-1], alpha[:, 0], alpha[:, -1]])
    return max(1, round(share * min(alpha.shape))) if float(ring.max()) > 0.5 * float(alpha.max()) else 0


def composite(gray: np.ndarray, alpha: np.ndarray, margin: int = 0) -> np.ndarray:
    """Flatten onto paper that contrasts with the strokes, so a transparent pixel is background; with `margin` pixels
    of that background around it (`canvas_margin`)."""
    if margin:
        gray, alpha = np.pad(gray, margin, mode="edge"), np.pad(alpha, margin)
    stroke = float((gray * alpha).sum() / alpha.sum())
    paper = 1.0 if stroke < 0.5 else 0.0
    flat: np.ndarray = gray * alpha + paper * (1 - alpha)
    return flat
