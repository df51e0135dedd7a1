"""One digit in an uploaded image, as the model was trained to see it (`preprocess_image`), or the
reason there is none (`NoDigit`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.imaging import ink, mnist
from app.imaging.decode import DEFAULT_MAX_PIXELS, LOSSY_FORMATS, canvas_margin, channels, composite, decode, shrink
from app.imaging.margins import DIGIT_MARGIN, clean_paper_put_back, without_the_box
from app.imaging.photo import photo_digit

MIN_PHOTO_SIDE = 64  # smaller images are icons and digit crops, never photos of paper
ALPHA_VARIES = 0.05  # below this spread the alpha channel carries no drawing

# The short codes an answer carries when an image holds no digit, and what each means.
NO_DIGIT_REASONS = {
    "no_ink": "nothing stands out from the background: a blank or one-colour image, or paper only",
    "no_digit": "there are marks, but none shaped like a digit (noise, specks, lines)",
}


class NoDigit(Exception):
    """The image holds no digit. Not an error of the request: its answer says so, with `reason`."""

    def __init__(self, reason: str) -> None:
        assert reason in NO_DIGIT_REASONS, reason
        super().__init__(NO_DIGIT_REASONS[reason])
        self.reason = reason


@dataclass(frozen=True)
class Prepared:
    pixels: np.ndarray  # (28, 28) float32 in 0..1
    path: str  # which preprocessing it took: mnist, canvas, clean or photo


def preprocess_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file into a (28, 28) float32 MNIST-like array in 0..1.

    Raises BadImage for anything unreadable, ImageTooLarge above `max_pixels` (before decoding) and
    NoDigit when nothing in the image is a digit (one colour, paper only, noise)."""
    return prepare(data, max_pixels=max_pixels).pixels


def prepare(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Prepared:
    """`preprocess_image`, also saying which path the image took. Each path costs only its images:
    - mnist: already a 28x28 MNIST digit (the common API case), only re-centred;
    - canvas: a drawing on a transparent canvas, flattened onto paper, then as clean;
    - clean: a digital image on one exact paper colour (`ink.flat_border`), the paper's level removed;
    - photo: everything else (photos, scans): lighting flattened, lines removed, the digit chosen."""
    image = decode(data, max_pixels)
    gray, alpha = channels(image)
    gray, alpha = shrink(gray), None if alpha is None else shrink(alpha)
    path = "clean"
    if alpha is not None and float(np.ptp(alpha)) > ALPHA_VARIES:
        gray, path = composite(gray, alpha, canvas_margin(alpha, DIGIT_MARGIN)), "canvas"
    elif alpha is None and image.format not in LOSSY_FORMATS and mnist.mnist_like(gray):
        # White ink on a clean black border needs no paper removal; only the strongest stroke
        # stretched to 1 before fitting and centring.
        return Prepared(mnist.fit_and_centre(gray / float(gray.max())), "mnist")
    clean = path == "canvas" or min(gray.shape) < MIN_PHOTO_SIDE or ink.flat_border(gray)
    # A digit in a drawn box (a form's cell): its lines were taken for the paper or the digit.
    unboxed = without_the_box(gray) if path == "clean" else None
    gray = gray if unboxed is None else unboxed
    if clean:
        if path == "clean":  # cut to its ink: its paper put back on every side, as on the photo path
            gray, _ = clean_paper_put_back(gray, DIGIT_MARGIN)
        found = ink.clean_ink(gray, lossy=image.format in LOSSY_FORMATS)
        if found is None:
            raise NoDigit("no_ink")
        return Prepared(mnist.fit_and_centre(found), path)
    digit = photo_digit(gray)
    if digit.ink is None:
        raise NoDigit(digit.reason or "no_digit")
    return Prepared(mnist.fit_and_centre(digit.ink), "photo")
