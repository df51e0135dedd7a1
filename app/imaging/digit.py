"""One digit in an uploaded image, as the model was trained to see it (`preprocess_image`), or the
reason there is none (`NoDigit`)."""

from __future__ import annotations

import numpy as np

from app.imaging import ink, mnist
from app.imaging.decode import DEFAULT_MAX_PIXELS, LOSSY_FORMATS, channels, composite, decode, shrink

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


def preprocess_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file into a (28, 28) float32 MNIST-like array in 0..1.

    Dark ink on light paper is inverted, the paper's level (and a linear lighting gradient) is
    removed, and a transparent background (a browser canvas export) counts as paper.

    Raises BadImage for anything unreadable, ImageTooLarge above `max_pixels` (before decoding) and
    NoDigit when nothing in the image is a digit (one colour, paper only, noise).
    """
    image = decode(data, max_pixels)
    gray, alpha = channels(image)
    gray, alpha = shrink(gray), None if alpha is None else shrink(alpha)
    if alpha is not None and float(np.ptp(alpha)) > ALPHA_VARIES:  # a drawing on a transparent canvas
        gray = composite(gray, alpha)
    if alpha is None and image.format not in LOSSY_FORMATS and mnist.mnist_like(gray):
        # Already an MNIST digit (the common API case): white ink on a clean black border needs no
        # paper removal; only the strongest stroke stretched to 1 before fitting and centring.
        return mnist.fit_and_centre(gray / float(gray.max()))
    found = ink.clean_ink(gray, lossy=image.format in LOSSY_FORMATS)
    if found is None:
        raise NoDigit("no_ink")
    return mnist.fit_and_centre(found)
