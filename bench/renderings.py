"""Renderings of MNIST test digits the way users send them: canvas exports, scans, phone photos of
paper (pencil or ballpoint, grey or white paper, plain, ruled or squared, uneven light, shadows,
perspective, blur, noise, JPEG). Each renderer takes a 28x28 uint8 digit (white on black) and a
numpy Generator and returns the bytes of an image file. Used by bench/preprocess_accuracy.py."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image
from skimage.morphology import skeletonize

from training.wrong_cuts import slanted as _tilt  # the one rule that tilts a written digit

Render = Callable[[np.ndarray, np.random.Generator], bytes]
BLOB = 1.5  # a pen fills the brush's ink where discs this many times its strokes' half-width fit (`_thinned`)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def stroke(digit: np.ndarray, side: int) -> np.ndarray:
    """The digit's ink cropped, upscaled with smoothing to `side` pixels along its longer side, edges
    sharpened like a brush stroke: float32 0..1."""
    rows, cols = np.nonzero(digit)
    crop = Image.fromarray(digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1])
    scale = side / max(crop.size)
    size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
    smooth = np.asarray(crop.resize(size, Image.Resampling.BICUBIC), np.float32) / 255
    return np.clip((smooth - 0.25) / 0.4, 0, 1)


def render_mnist(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """The control: the 28x28 test digit itself as a PNG."""
    return encode(Image.fromarray(digit), "PNG")


def render_canvas(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A 280x280 browser canvas export: transparent black background, black strokes, off-centre."""
    ink = (stroke(digit, int(rng.integers(90, 230))) * 255).astype(np.uint8)
    alpha = np.zeros((280, 280), np.uint8)
    top, left = (int(rng.integers(0, 280 - n + 1)) for n in ink.shape)
    alpha[top : top + ink.shape[0], left : left + ink.shape[1]] = ink
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., 3] = alpha
    return encode(Image.fromarray(rgba), "PNG")


def render_scan(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A clean flatbed scan: near-white paper, dark pen, a little sensor noise, lossless PNG."""
    height, width = 300, 260
    ink = _thinned(stroke(digit, int(rng.integers(110, 200))), rng.uniform(0.07, 0.12))
    share = _place(ink, (height, width), rng)
    paper = rng.uniform(225, 250)
    gray = paper * (1 - share * rng.uniform(0.75, 0.95)) + rng.normal(0, 2, (height, width))
    return encode(Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8)), "PNG")


def render_light_photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A good phone photo of paper: grey paper with a lighting gradient, dark tilted ink, noise, JPEG q70."""
    width, height = 200, 240
    ink = Image.fromarray((stroke(digit, int(rng.integers(100, 180))) * 255).astype(np.uint8))
    ink = ink.rotate(float(rng.uniform(-8, 8)), Image.Resampling.BICUBIC, expand=True)
    share = _place(np.asarray(ink, np.float32) / 255, (height, width), rng)
    angle = rng.uniform(0, 2 * np.pi)
    rows, cols = np.mgrid[0:height, 0:width]
    ramp = (np.cos(angle) * (cols / width - 0.5) + np.sin(angle) * (rows / height - 0.5)) * rng.uniform(0, 60)
    paper = rng.uniform(170, 230) + ramp
    gray = paper * (1 - share) + rng.uniform(20, 60) * share + rng.normal(0, 6, (height, width))
    tint = np.array([1.0, 0.98, 0.93])  # warm room light
    return encode(Image.fromarray(np.clip(gray[..., None] * tint, 0, 255).astype(np.uint8)), "JPEG", quality=70)


@dataclass(frozen=True)
class PhotoLevel:
    """How hard a phone photo is. Ranges are (low, high) drawn uniformly per image."""

    contrast: tuple[float, float]  # share of the paper's light the ink absorbs
    stroke: tuple[float, float]  # stroke width as a share of the digit's height
    digit: tuple[float, float]  # digit height as a share of the frame's height
    tilt: float  # rotation and shear of the writing, degrees
    perspective: float  # corner displacement as a share of the frame
    light: float  # depth of the lighting gradient and vignetting (0..1 of the paper's level)
    shadow: float  # probability of a soft shadow across part of the page
    shadow_depth: tuple[float, float]  # share of the light the shadow takes
    blur: tuple[float, float]  # Gaussian sigma in pixels of the 480-pixel frame
    noise: tuple[float, float]  # sensor noise sigma, 0..255
    quality: tuple[int, int]  # JPEG quality
    grain: float  # pencil grain: how much the stroke's darkness varies along it (0..1)


LEVELS = {
    "easy": PhotoLevel(
        (0.45, 0.7), (0.07, 0.11), (0.4, 0.6), 5, 0.03, 0.2, 0.0, (0.2, 0.3), (0.3, 0.8), (2, 4), (75, 90), 0.1
    ),
    "medium": PhotoLevel(
        (0.3, 0.5), (0.045, 0.09), (0.3, 0.6), 10, 0.06, 0.35, 0.3, (0.25, 0.45), (0.5, 1.3), (3, 6), (60, 75), 0.25
    ),
    "hard": PhotoLevel(
        (0.2, 0.35), (0.035, 0.07), (0.25, 0.6), 15, 0.1, 0.5, 0.5, (0.3, 0.55), (0.8, 1.8), (4, 8), (55, 65), 0.4
    ),
}
PAPERS = ("plain", "ruled", "grid")


def phone_photo(level: str, paper: str = "plain", *, shadow: bool | None = None) -> Render:
    """A renderer of phone photos of a digit written on paper, at one difficulty level."""
    spec = LEVELS[level]

    def render(digit: np.ndarray, rng: np.random.Generator) -> bytes:
        return _phone_photo(digit, rng, spec, paper, shadow)

    return render


def _phone_photo(
    digit: np.ndarray, rng: np.random.Generator, spec: PhotoLevel, paper: str, shadow: bool | None
) -> bytes:
    height, width = 480, int(rng.integers(360, 481))  # portrait or square, as phones crop
    u = rng.uniform
    # The page: white or grey paper, warm or cool, with its printed lines.
    level = u(200, 245) if u() < 0.6 else u(150, 200)
    page = np.full((height, width), 1.0, np.float32)
    lines = _ruling(paper, (height, width), rng)
    line_colour = np.array([u(0.55, 0.8), u(0.6, 0.85), u(0.85, 1.0)], np.float32)  # bluish print
    # The digit: pencil or ballpoint, thinner than MNIST's strokes, tilted and sheared, off-centre.
    share = np.zeros((height, width), np.float32)
    if digit.any():
        ink = _thinned(stroke(digit, int(u(*spec.digit) * height)), u(*spec.stroke))
        ink = _tilt(ink, rng, spec.tilt)
        if spec.grain:
            ink = ink * (1 - spec.grain * _smooth_noise(ink.shape, rng, scale=4))
        share = _place(ink, (height, width), rng, margin=0.08) * u(*spec.contrast)
    pencil = u() < 0.5
    ink_colour = np.array([1.0, 1.0, 1.0]) * 0.25 if pencil else np.array([0.2, 0.25, 0.55])  # grey or blue pen
    # Reflectance per colour channel: paper, minus printed lines, minus ink.
    rgb = page[..., None] * (1 - lines[..., None] * (1 - line_colour))
    rgb = rgb * (1 - share[..., None] * (1 - ink_colour) / max(1 - ink_colour.min(), 1e-3))
    # Camera: perspective, light (gradient, vignetting, shadow), blur, noise, JPEG.
    rgb = _perspective(rgb, rng, spec.perspective)
    light = _lighting((height, width), rng, spec, shadow)
    tint = np.array([1.0, u(0.94, 1.0), u(0.85, 0.97)], np.float32)  # warm room light
    rgb = rgb * light[..., None] * tint * level
    sigma = u(*spec.blur)
    rgb = cv2.GaussianBlur(rgb.astype(np.float32), (0, 0), sigma)
    rgb = rgb + rng.normal(0, u(*spec.noise), rgb.shape)
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    return encode(image, "JPEG", quality=int(rng.integers(spec.quality[0], spec.quality[1] + 1)))


def blank_paper(level: str = "medium", paper: str = "plain") -> Render:
    """A phone photo of paper with nothing written on it (the digit is ignored)."""
    spec = LEVELS[level]

    def render(digit: np.ndarray, rng: np.random.Generator) -> bytes:
        return _phone_photo(np.zeros_like(digit), rng, spec, paper, None)

    return render


def _ruling(paper: str, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Printed lines as a 0..1 coverage map: notebook rules (with a margin) or a squared grid."""
    height, width = shape
    lines = np.zeros(shape, np.float32)
    if paper == "plain":
        return lines
    spacing = int(rng.integers(28, 46))
    thickness = int(rng.integers(1, 4))
    strength = float(rng.uniform(0.5, 1.0))
    for y in range(int(rng.integers(0, spacing)), height, spacing):
        cv2.line(lines, (0, y), (width - 1, y), strength, thickness)
    if paper == "grid":
        for x in range(int(rng.integers(0, spacing)), width, spacing):
            cv2.line(lines, (x, 0), (x, height - 1), strength, thickness)
    elif rng.uniform() < 0.5:  # a red margin line
        x = int(rng.integers(20, width // 4))
        cv2.line(lines, (x, 0), (x, height - 1), strength, thickness + 1)
    return cv2.GaussianBlur(lines, (0, 0), 0.6)


def _thinned(ink: np.ndarray, width_share: float) -> np.ndarray:
    """Re-draw the strokes at `width_share` of the digit's height: a pen is thinner than MNIST's brush.
    The pen follows the strokes' skeleton; where the writer filled a loop in (a blob BLOB times wider than
    the brush's strokes), the pen fills it too, shrunk as the strokes are. The skeleton of a blob is a
    line: without this, a 9 whose loop was filled became a hook, and a bold 3 or 8 an open curve or a 6."""
    mask = (ink > 0.5).astype(np.uint8)
    target = max(1.0, width_share * ink.shape[0])
    # The skeleton, dilated to the target width (a disc of that diameter).
    ridge = skeletonize(mask > 0)
    radius = max(1, round(target / 2))
    redrawn = cv2.dilate(ridge.astype(np.uint8), _disc(radius))
    # The brush's half-width along its strokes; discs BLOB times that fit only in blobs.
    distance = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    half = float(np.median(distance[ridge])) if ridge.any() else 0.0
    if (big := round(BLOB * half)) > radius:
        blobs = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _disc(big))
        if (thinner := round(half) - radius) > 0:  # the blob's edge drawn in as far as the strokes' edges are
            blobs = cv2.erode(blobs, _disc(thinner))
        redrawn |= blobs
    return cv2.GaussianBlur(redrawn.astype(np.float32), (0, 0), 0.7)


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _place(ink: np.ndarray, shape: tuple[int, int], rng: np.random.Generator, margin: float = 0.0) -> np.ndarray:
    """The ink on an empty frame of `shape`, at a random place (off-centre) at least `margin` of the
    frame from its edges, shrunk if it does not fit."""
    height, width = shape
    pad_y, pad_x = int(margin * height), int(margin * width)
    room_y, room_x = height - 2 * pad_y, width - 2 * pad_x
    if ink.shape[0] > room_y or ink.shape[1] > room_x:
        scale = min(room_y / ink.shape[0], room_x / ink.shape[1])
        ink = cv2.resize(ink, (max(1, int(ink.shape[1] * scale)), max(1, int(ink.shape[0] * scale))))
    out = np.zeros(shape, np.float32)
    top = pad_y + int(rng.integers(0, room_y - ink.shape[0] + 1))
    left = pad_x + int(rng.integers(0, room_x - ink.shape[1] + 1))
    out[top : top + ink.shape[0], left : left + ink.shape[1]] = ink
    return out


def _smooth_noise(shape: tuple[int, ...], rng: np.random.Generator, scale: float) -> np.ndarray:
    """Random 0..1 texture with features about `scale` pixels across."""
    noise = cv2.GaussianBlur(rng.uniform(0, 1, shape).astype(np.float32), (0, 0), scale)
    return (noise - noise.min()) / max(float(np.ptp(noise)), 1e-6)


def _perspective(rgb: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Photograph the page from a little off its axis: move each corner by up to `amount` of the frame.
    The page continues beyond the frame (reflected), as a photo of a bigger sheet does."""
    height, width = rgb.shape[:2]
    corners = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    moved = (corners + rng.uniform(-amount, amount, (4, 2)) * [width, height]).astype(np.float32)
    matrix = cv2.getPerspectiveTransform(corners, moved)
    return cv2.warpPerspective(rgb.astype(np.float32), matrix, (width, height), borderMode=cv2.BORDER_REFLECT)


def _lighting(shape: tuple[int, int], rng: np.random.Generator, spec: PhotoLevel, shadow: bool | None) -> np.ndarray:
    """Light falling on the page: a gradient, vignetting, and sometimes a soft shadow (a hand, a phone)."""
    height, width = shape
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    y, x = rows / height - 0.5, cols / width - 0.5
    angle = rng.uniform(0, 2 * np.pi)
    light = 1 - spec.light * rng.uniform(0.3, 1) * (0.5 + np.cos(angle) * x + np.sin(angle) * y)
    light *= 1 - spec.light * rng.uniform(0.2, 0.8) * (x**2 + y**2) * 2  # vignetting
    if shadow if shadow is not None else rng.uniform() < spec.shadow:
        # A half-plane through a random point, its edge softened over 3-12% of the frame.
        direction = rng.uniform(0, 2 * np.pi)
        offset = rng.uniform(-0.3, 0.3)
        distance = np.cos(direction) * x + np.sin(direction) * y - offset
        softness = rng.uniform(0.03, 0.12)
        inside = 1 / (1 + np.exp(-distance / softness))
        light *= 1 - rng.uniform(*spec.shadow_depth) * inside
    return np.clip(light, 0.2, 1.2)


def renderings() -> dict[str, Render]:
    """Every condition the benchmark reports, by title."""
    out: dict[str, Render] = {
        "MNIST 28x28 PNG (control)": render_mnist,
        "browser canvas 280x280 RGBA": render_canvas,
        "clean scan PNG": render_scan,
        "light photo of paper JPEG q70": render_light_photo,
    }
    for level in LEVELS:
        for paper in PAPERS:
            out[f"phone photo, {level}, {paper} paper"] = phone_photo(level, paper)
    out["phone photo, medium, plain, with a shadow"] = phone_photo("medium", "plain", shadow=True)
    out["phone photo, hard, grid, with a shadow"] = phone_photo("hard", "grid", shadow=True)
    return out
