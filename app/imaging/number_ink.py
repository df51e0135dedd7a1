"""Where a number's ink is (`find_ink`, for `app.imaging.segment`): the upload decoded and brought to the number's work
size, then its ink found as for one digit, by the canvas, clean or photo path, with the paper put back around an image
cut to its ink and a box's lines along its edges painted over (`app.imaging.margins`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from app.imaging import ink as clean
from app.imaging.decode import LOSSY_FORMATS, canvas_margin, channels, composite, decode, shrink, upload_size
from app.imaging.digit import ALPHA_VARIES, MIN_PHOTO_SIDE
from app.imaging.level import tilt, turned
from app.imaging.margins import (
    DIGIT_MARGIN,
    TIGHT_MARGIN,
    clean_paper_put_back,
    cut_to_its_ink,
    on_paper,
    with_paper_margin,
    without_the_box,
)
from app.imaging.page import page_inside
from app.imaging.photo import cropped_tight, paper_ink, work_frame

NUMBER_SIDE = 1024  # work frame's longer side: twelve digits in a row keep ~80 pixels each
CLEAN_MASK = 0.25  # clean-path ink (peak 1.0) at least this strong makes a digit's pieces
Region = tuple[int, int, int, int]  # (x, y, width, height) in an upload's pixels as shown


@dataclass(frozen=True)
class NumberInk:
    """A number's ink at its work size, and how to map it back to the upload."""

    mask: np.ndarray  # uint8 pieces of strokes
    ink: np.ndarray  # float32 strength, 0 on paper
    photo: bool  # strokes brought to MNIST's width as on the photo path
    scale: tuple[float, float]  # upload pixels per work pixel (x, y)
    origin: tuple[int, int] = (0, 0)  # the upload pixel (x, y) of the work frame's corner (a region's)
    # Writing at a tilt, turned level (app.imaging.level): the 2x3 affine map from a work pixel to the pixel of the work
    # frame (`shape`: height, width) before the turn, which `scale` and `origin` map to the upload's
    turn: np.ndarray | None = None
    shape: tuple[int, int] = (0, 0)

    def box(self, left: float, top: float, right: float, bottom: float) -> tuple[int, int, int, int]:
        """The box (x, y, width, height) in the upload's pixels of the work frame's from (left, top) to (right, bottom);
        of writing read turned level, the box round that one turned back."""
        (sx, sy), (ox, oy) = self.scale, self.origin
        if self.turn is None:
            x, y = math.floor(left * sx) + ox, math.floor(top * sy) + oy
            return x, y, max(1, round((right - left) * sx)), max(1, round((bottom - top) * sy))
        corners = np.array([[left, right, left, right], [top, top, bottom, bottom]], np.float64)
        xs, ys = (self.turn[:, :2] @ corners + self.turn[:, 2:]) * [[sx], [sy]] + [[ox], [oy]]
        # within the part of the upload read (a corner turned back may fall outside it)
        x, y = max(ox, math.floor(float(xs.min()))), max(oy, math.floor(float(ys.min())))
        x1 = min(ox + round(self.shape[1] * sx), round(float(xs.max())))
        y1 = min(oy + round(self.shape[0] * sy), round(float(ys.max())))
        return x, y, max(1, x1 - x), max(1, y1 - y)

    def unturned(self, top: int, left: int, mask: np.ndarray) -> tuple[int, int, np.ndarray]:
        """A mask of work pixels from (top, left) as the work frame's before any turn (each of its pixels the nearest
        one's of the mask)."""
        if self.turn is None:
            return top, left, mask
        height, width = mask.shape
        corners = np.array([[left, left + width, left, left + width], [top, top, top + height, top + height]], float)
        xs, ys = self.turn[:, :2] @ corners + self.turn[:, 2:]
        x0, y0 = max(0, math.floor(float(xs.min()))), max(0, math.floor(float(ys.min())))
        x1, y1 = min(self.shape[1], math.ceil(float(xs.max()))), min(self.shape[0], math.ceil(float(ys.max())))
        forward = self.turn.copy()  # the mask's own pixels to the box's
        forward[:, 2] += self.turn[:, :2] @ np.array([left, top], float) - np.array([x0, y0], float)
        out = cv2.warpAffine(
            mask.astype(np.uint8), forward, (max(1, x1 - x0), max(1, y1 - y0)), flags=cv2.INTER_NEAREST
        )
        return y0, x0, out > 0


def find_ink(data: bytes, max_pixels: int, region: Region | None = None) -> NumberInk | str:
    """The ink of an upload as `digit.prepare` finds it, at the number's work size; or the no-digit reason. With
    `region` ((x, y, width, height) in the upload's pixels as shown), that part of the upload, decoded at full size, as
    if it were the upload (a closer look: app.imaging.closer), but never taken for a number cut to its ink. Writing at
    a clear tilt (app.imaging.level) is turned level."""
    image = decode(data, max_pixels, side=NUMBER_SIDE, full=region is not None)
    gray, alpha = channels(image)
    width, height = upload_size(image)  # boxes are in its pixels
    origin = (0, 0)
    if region is not None:
        x, y, width, height = region
        x, y = min(max(x, 0), gray.shape[1] - 1), min(max(y, 0), gray.shape[0] - 1)
        gray = gray[y : y + height, x : x + width]
        alpha = None if alpha is None else alpha[y : y + height, x : x + width]
        (height, width), origin = gray.shape, (x, y)
    found = _ink_of(gray, alpha, (width, height), origin, image.format in LOSSY_FORMATS, region is not None)
    degrees = 0.0 if isinstance(found, str) else tilt(found.mask)
    if isinstance(found, str) or not degrees:
        return found
    mask, ink, back = turned(found.mask, found.ink, degrees)
    return replace(found, mask=mask, ink=ink, turn=back, shape=found.mask.shape)


def _ink_of(
    gray: np.ndarray,
    alpha: np.ndarray | None,
    size: tuple[float, float],
    origin: tuple[int, int],
    lossy: bool,
    closer: bool,
) -> NumberInk | str:
    """`find_ink` of the decoded image (or region) `gray`, which stands for `size` (width, height) of the upload's
    pixels from `origin`."""
    width, height = size
    # the photo path brings it to NUMBER_SIDE by area: shrink's whole factor halved a 1,100-pixel photo
    upload_gray = gray
    gray, alpha = shrink(gray, NUMBER_SIDE), None if alpha is None else shrink(alpha, NUMBER_SIDE)
    canvas = alpha is not None and float(np.ptp(alpha)) > ALPHA_VARIES
    margin = 0
    if canvas and alpha is not None:
        margin = canvas_margin(alpha, DIGIT_MARGIN)
        gray = composite(gray, alpha, margin)
    on_clean_path = canvas or min(gray.shape) < MIN_PHOTO_SIDE or clean.flat_border(gray)
    unboxed = None if canvas else without_the_box(gray)  # a number in a drawn box (a form's field): its lines painted
    gray = gray if unboxed is None else unboxed  # over
    if on_clean_path:
        if not canvas:  # even paper close round the ink: paper put back on every side
            gray, margin = clean_paper_put_back(gray, TIGHT_MARGIN)
        strokes = clean.clean_ink(gray, lossy=lossy)
        if strokes is None:
            return "no_ink"
        if margin:  # back to the image as uploaded: boxes are in its pixels
            strokes, gray = strokes[margin:-margin, margin:-margin], gray[margin:-margin, margin:-margin]
        mask = (strokes >= CLEAN_MASK).astype(np.uint8)
        scale = (width / gray.shape[1], height / gray.shape[0])
        return NumberInk(mask, strokes.astype(np.float32), False, scale, origin)
    frame = work_frame(gray if unboxed is not None else upload_gray, NUMBER_SIDE)
    scale = (width / frame.shape[1], height / frame.shape[0])
    page = page_inside(frame)
    if page is not None:  # a sheet on a desk: only the page is read
        x, y, page_width, page_height = page
        frame = frame[y : y + page_height, x : x + page_width]
        origin = (origin[0] + math.floor(x * scale[0]), origin[1] + math.floor(y * scale[1]))
    paper = paper_ink(frame, number=True)
    # Even paper (a digital image, a scan) close round the ink: its level.
    # Not a closer look's region, which has paper round the number by its making (app.imaging.closer): a notebook page's
    # margin line running to its top and bottom made it look cut to its ink, and with paper put round it, its rules, no
    # longer across the whole frame, stayed in the ink (an outside check's "67786" read as no digit).
    level = cut_to_its_ink(frame) if paper.reason is None and not closer else None
    even = level is not None
    if even or (paper.reason is None and cropped_tight(paper.mask)):
        margin = max(1, round(TIGHT_MARGIN * min(frame.shape)))
        # On even paper, paper on every side (a single digit cut to its ink reaches the sides too); else above and
        # below only, each edge's paper carried outward (`with_paper_margin`), printed lines still across the frame.
        sides = margin if even else 0
        inside = (slice(margin, margin + frame.shape[0]), slice(sides, sides + frame.shape[1]))
        again = paper_ink(
            on_paper(frame, margin, level) if level is not None else with_paper_margin(frame, margin),
            number=True,
            padded=margin,
        )
        paper = replace(again, mask=again.mask[inside], ink=again.ink[inside], strength=again.strength[inside])
        paper = paper if paper.mask.any() else replace(paper, reason=again.reason or "no_ink")
    if paper.reason is not None:
        return paper.reason
    return NumberInk(paper.mask, paper.ink, True, scale, origin)
