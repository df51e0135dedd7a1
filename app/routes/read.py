"""POST /read: the handwritten number in each image, digits left to right. Segmentation is
app.imaging.segment's; this route reads the request, sends every candidate digit of the request to the
model as one batch, and lets the probabilities pick each reading."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import orjson
from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from app.deps import LimitsDep, ReadingDep, RepositoryDep, request_deadline
from app.errors import ServiceError, TooManyCandidates, TooManyDigits
from app.imaging import closer
from app.imaging.line import views
from app.imaging.number_ink import Region
from app.imaging.reading import Reading, finer_cuts_wanted, read_number
from app.imaging.segment import CANDIDATES_PER_DIGIT, FINER_WIDE_PIECE, WIDE_PIECE, Segmented, segment_number
from app.payloads import Limits, image_files_from_request
from app.repository import ModelRepository, ServedVersion
from app.routes.predict import REQUEST_BODY
from app.schemas import ERROR_RESPONSES, ReadResponse

router = APIRouter(tags=["read"])

# A small copy of examples/number.png ("4021", MNIST test digits), so that the documented example works.
EXAMPLE_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAF8AAAAkCAAAAADKwrkrAAAC9klEQVR42u2WX0hTYRjGn/Oebzj/RJQt542aI22lkpWVYEh2VUniUuui"
    "SIKgUSApCOKFVxrZX8W66KK6CTTTdEZmYGhCUBiVlWAobUGWyIxQsxzt6+Kcs51t5+SQgi723ex53/Psx7v3vN/3TeD4p4sQ4Uf4y19s"
    "eV+7sDByF/bco0s7+dJrzk45zoBMGRER0XqXhntMaFZFQfwXybLo++hPvmeMWoLxG88UEdVr8FvFDlUU1J++n7Jw3GhVctPlQT95+B42"
    "OdbELe58PaPRkFexNt3+ePLMsrqZqeSadjPGqKx50OdysMxJznl9FD0OLX8k1s51+/NIrJHVRVHJEWOMEWOWYZ/N6eac8yzS4rcLA7r8"
    "kfi0WVnmK/y9ICIyrSOiQFCjkXLnQ/k5KXO6/EPG57JyQ6YNpBJj7LRjsI6xa2pvj5HMA6H4D0I61+O3r8hQZCUVSHYzI2apnufcmcji"
    "Li36zXVEFRrTc0vI0+WXiVeVKhIM/b7R3DPNOee8mREb93mLoql8VoNfJTh0+Um+d1ojZvhGf7u8iZw7VPxJE60d18A/Xb1lISChPn8+"
    "HVbUBDJk5fU+S5IH2ev11imGg24csWgMf//MBqPu+bA1yy2JKVL2axVjylN1f7qjqECrO7xE6AxMqPevpWN/JYC3Ey4BgpTq8W3i0QbA"
    "ZJACd4MHm+M0yv8ylF6sf76NlsaIoigmmJkofpdSaUr9FYyx1CfK6yGyaZZ/Vijn+vVb77ycAFCCY7cRHVjFvjEA1l1ydAlo0SofLqz6"
    "4/mfnQ0ASAXeZMovFb048RleAnBf5ZwxAFhp8HzD18uAeC5GbmdhOPcL55DwsFejkEAAASfVliwAKE2capNCcy0ADE2Fd38JgqJs56cl"
    "YbJeT/R3q1v6bAfACAe2IQ8A0PUrOz8c/g8oQ5zc2tUEAKg9pXre2egB3rUBx1Ngs/rzD1AihnM/JsRf8Qe9xcz2sNcVxj3Kc4tCDlRN"
    "fmE//1tLiPy/jfD/Y/5v2C9ly09MnukAAAAASUVORK5CYII="
)
READ_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": REQUEST_BODY["content"]["multipart/form-data"],  # type: ignore[index]
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["instances"],
                "properties": {
                    "instances": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "object", "required": ["b64"], "properties": {"b64": {"type": "string"}}},
                    }
                },
            },
            "example": {"instances": [{"b64": EXAMPLE_PNG}]},
        },
    },
}


@dataclass
class _Looks:
    """What every look at a request's images shares: the repository, the images, the limits, and the request's budget of
    candidate digits (`request_budget`: `whole`, and what is `left` of it as each look segments an image)."""

    repository: ModelRepository
    files: list[tuple[str, bytes]]
    limits: Limits
    whole: int
    left: int
    deadline: float  # the request's (app.deps.get_deadline): each model call's queue wait ends there

    async def segment(self, i: int, wide_piece: float = WIDE_PIECE, region: Region | None = None) -> Segmented:
        """Image `i`'s candidates (`_segment`), taken from what is left of the budget."""
        where, data = self.files[i]
        found = await _segment(where, data, self.limits, self.left, self.whole, wide_piece, region)
        self.left -= len(found.candidates)
        return found


@router.post("/read", response_model=ReadResponse, responses=ERROR_RESPONSES, openapi_extra={"requestBody": READ_BODY})
async def read_numbers(
    request: Request,
    repository: RepositoryDep,
    limits: LimitsDep,
    reading_slots: ReadingDep,
    model: str | None = Query(
        None,
        description="model name (default: the reading model, LENET_READ_MODEL, while it is served; else the default model)",
    ),
    version: int | None = Query(None, ge=1, description="pin a version (default: the highest)"),
) -> Response:
    """Read the handwritten number (digits on one line) in each uploaded image or JSON instance, in order."""
    model = model or repository.reading_model()
    repository.admit(model)  # shed load before reading the body when the queue is full
    files = await image_files_from_request(request, limits)
    whole = request_budget(repository.settings.max_queue_images, limits)  # its candidates go to the model at once
    deadline = request_deadline(request)
    looks = _Looks(repository, files, limits, whole, whole, deadline)
    async with reading_slots.hold(deadline):  # so many requests read at once, so many wait, the rest are turned away
        segmented = [await looks.segment(i) for i in range(len(files))]
        served, readings, line_of = await _read(looks, model, version, segmented)
        readings = await _second_look(looks, served, readings, line_of)
        readings = await _closer_look(looks, served, readings, segmented)
    for (where, _), reading in zip(files, readings):
        if len(reading.digits) > limits.max_read_digits:
            raise TooManyDigits(f"{where}: {len(reading.digits)} digits; at most {limits.max_read_digits} are read")
    body = {"model": {"name": served.name, "version": served.version}, "readings": [reading_body(r) for r in readings]}
    return Response(orjson.dumps(body), media_type="application/json")


async def _read(
    looks: _Looks, model: str, version: int | None, segmented: list[Segmented]
) -> tuple[ServedVersion, list[Reading], dict[int, np.ndarray]]:
    """Every candidate of the images to the model as one batch; each image's reading from its share. When
    the version also reads whole lines, the images' lines go to it as a second batch, each line in its views
    (app.imaging.line.views; app.imaging.reading weighs both)."""
    repository = looks.repository
    pixels = np.concatenate([s.pixels for s in segmented])
    if len(pixels):
        served, probabilities = await repository.predict(model, version, pixels[..., None], looks.deadline)
    else:  # no image holds ink: the model is not called, but the version is resolved (a missing one is 404)
        served, probabilities = await repository.resolve(model, version), np.empty((0, 10), np.float32)
    lines = {i: views(image.line) for i, image in enumerate(segmented) if image.line is not None and image.candidates}
    frames = await repository.read_lines(served, np.concatenate(list(lines.values()))[..., None]) if lines else None
    line_of = dict(zip(lines, np.split(frames, len(lines)), strict=True)) if frames is not None else {}
    # milliseconds per image with a line reader (its beam search and the paths per text): off the event loop
    return served, await run_in_threadpool(_readings, segmented, probabilities, line_of), line_of


async def _second_look(
    looks: _Looks,
    served: ServedVersion,
    readings: list[Reading],
    line_of: dict[int, np.ndarray],
    parts: list[tuple[int, Region]] | None = None,
) -> list[Reading]:
    """Where the line reader counts more digits than the reading found (finer_cuts_wanted), the image cut
    again with narrower pieces cut too (a 7 and a 1 touching), its new candidates read by the same version
    with the same line's frames (the line does not change). An image whose second look would pass the
    request's budget keeps its first reading. `parts`: for each reading, the request's image it is of and the part
    of it that the first look read (`_closer_look`); by default, each image of the request whole, in order."""
    if not line_of:
        return readings
    # a beam search over each line's frames: off the event loop, as the readings are
    wanted = await run_in_threadpool(lambda: [finer_cuts_wanted(r, line_of.get(i)) for i, r in enumerate(readings)])
    finer: dict[int, Segmented] = {}
    for i, want in enumerate(wanted):
        if want:
            try:
                image, region = (i, None) if parts is None else parts[i]
                finer[i] = await looks.segment(image, FINER_WIDE_PIECE, region)
            except TooManyDigits:
                continue
    if not finer:
        return readings
    pixels = np.concatenate([look.pixels for look in finer.values()])
    _, probabilities = await looks.repository.predict(served.name, served.version, pixels[..., None], looks.deadline)
    lines = {j: line_of[i] for j, i in enumerate(finer)}
    second = await run_in_threadpool(_readings, list(finer.values()), probabilities, lines)
    looked = dict(zip(finer, second, strict=True))
    return [looked.get(i, reading) for i, reading in enumerate(readings)]


async def _closer_look(
    looks: _Looks, served: ServedVersion, readings: list[Reading], segmented: list[Segmented]
) -> list[Reading]:
    """Where an image's number is written small in a large upload (app.imaging.closer: a whole phone frame), that part
    of the upload read again at its own resolution by the same version, as the first look read the image (its
    candidates, its line, a second look), and that reading taken when it has digits. An image whose closer look would
    pass the request's budget, or hold too many digits, keeps its first reading."""
    regions = {i: found for i, look in enumerate(segmented) if (found := closer.region(look, readings[i])) is not None}
    closer_looks: dict[int, Segmented] = {}
    for i, region in regions.items():
        try:
            closer_looks[i] = await looks.segment(i, region=region)
        except (TooManyDigits, TooManyCandidates):
            continue
    if not closer_looks:
        return readings
    _, again, line_of = await _read(looks, served.name, served.version, list(closer_looks.values()))
    again = await _second_look(looks, served, again, line_of, [(i, regions[i]) for i in closer_looks])
    closer_readings = dict(zip(closer_looks, again, strict=True))
    return [
        closer_readings[i] if i in closer_readings and closer_readings[i].digits else reading
        for i, reading in enumerate(readings)
    ]


def _readings(segmented: list[Segmented], probabilities: np.ndarray, line_of: dict[int, np.ndarray]) -> list[Reading]:
    readings, start = [], 0
    for i, image in enumerate(segmented):
        share = probabilities[start : start + len(image.candidates)]
        readings.append(read_number(image, share, line_of.get(i)))
        start += len(image.candidates)
    return readings


async def _segment(
    where: str,
    data: bytes,
    limits: Limits,
    left: int,
    whole: int,
    wide_piece: float = WIDE_PIECE,
    region: Region | None = None,
) -> Segmented:
    """One image's candidates, within what is `left` of the request's `whole` budget of them (`request_budget`); with
    `region`, those of that part of it (`_closer_look`)."""
    if left <= 0:
        raise TooManyDigits(_over_budget(where, whole))
    try:  # tens to hundreds of milliseconds of OpenCV per image: off the event loop
        return await run_in_threadpool(
            partial(
                segment_number,
                max_digits=limits.max_read_digits,
                max_candidates=left,
                wide_piece=wide_piece,
                region=region,
            ),
            data,
            max_pixels=limits.max_image_pixels,
        )
    except TooManyCandidates as exc:  # the request's share ran out before the image's own bound: say which
        exc.message = _over_budget(where, whole) if left < _own_bound(limits) else f"{where}: {exc.message}"
        raise
    except ServiceError as exc:
        exc.message = f"{where}: {exc.message}"
        raise


def request_budget(queue_images: int, limits: Limits) -> int:
    """The candidate digits one request's images may offer the model together: at most half the batching
    queue, and at most what four images of the most digits may offer (a bound on the work a request may cost)."""
    return min(queue_images // 2, 4 * _own_bound(limits))


def _own_bound(limits: Limits) -> int:
    return CANDIDATES_PER_DIGIT * limits.max_read_digits  # one image's (segment_number's own limit)


def _over_budget(where: str, whole: int) -> str:
    return (
        f"{where}: with the images before it, the request offers more than the {whole} candidate digits one request "
        "may (half LENET_MAX_QUEUE_IMAGES, and at most four images of LENET_MAX_READ_DIGITS digits' worth); "
        "send fewer images per request"
    )


def reading_body(reading: Reading) -> dict[str, object]:
    confidence = reading.confidence
    body: dict[str, object] = {
        "text": reading.text,
        "confidence": None if confidence is None else round(confidence, 6),
        "digits": [
            {"digit": d.digit, "confidence": round(d.confidence, 6), "box": list(d.box)} for d in reading.digits
        ],
    }
    if reading.reason is not None:
        body["reason"] = reading.reason
    return body
