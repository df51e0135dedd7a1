from __future__ import annotations

import base64

import numpy as np
import orjson
from fastapi import APIRouter, Query, Request, Response

from app.deps import LimitsDep, RepositoryDep, get_metrics, request_deadline
from app.imaging import to_png
from app.payloads import Images, images_from_request
from app.repository import ModelRepository, ServedVersion
from app.schemas import ERROR_RESPONSES, PredictResponse

router = APIRouter(tags=["predict"])

# examples/digit.png (an MNIST 7), so that the documented example really works
EXAMPLE_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAABwAAAAcCAAAAABXZoBIAAAAxUlEQVR4nGNgGDaAEUKFpD77sfTFHeyS9xQYGBg+X4UKPuk6w8DA"
    "wMDAAuGm6l/TMnSweCzLwPDntSTDozPIOhkYGBgYBA3PmDIw/Lh1XShnGi5nBP+9KIRLTuzl/2AokwlDMlv0/U1cGq1//rPDJcfQ"
    "+m83Ky45zrM/rHBqrPu3Daec9+8PlrjkhO/+W4ZLjvn0v9vKuCTV/v3zxSUn/+BfMSMuydZ//0xwydl+QpdEClsbHoa7X1AkWZA5"
    "F53f4TIWEwAAaRE8kJuHrgAAAAAASUVORK5CYII="
)

REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["image"],
                "properties": {
                    "image": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "description": "one or more image files (PNG, JPEG, BMP, GIF, WebP)",
                    }
                },
            },
        },
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["instances"],
                "properties": {
                    "instances": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "anyOf": [
                                {
                                    "type": "array",
                                    "description": "28x28 nested list (or flat 784), white on black, 0..255 or 0..1",
                                },
                                {"type": "object", "required": ["b64"], "properties": {"b64": {"type": "string"}}},
                            ]
                        },
                    }
                },
            },
            "example": {"instances": [{"b64": EXAMPLE_PNG}]},
        },
    },
}


@router.post(
    "/predict", response_model=PredictResponse, responses=ERROR_RESPONSES, openapi_extra={"requestBody": REQUEST_BODY}
)
async def predict_digits(
    request: Request,
    repository: RepositoryDep,
    limits: LimitsDep,
    model: str | None = Query(None, description="model name (default: the configured default model)"),
    version: int | None = Query(None, ge=1, description="pin a version (default: the highest)"),
    return_image: bool = Query(False, description="include the 28x28 image the model saw, as base64 PNG"),
) -> Response:
    """Recognise the digit in each uploaded image or JSON instance, in order (null, with a reason, where none)."""
    repository.admit(model)  # shed load before reading the body when the queue is full
    images = await images_from_request(request, limits)
    if any(images.reasons):  # rare: the hot path pays no dependency for metrics
        metrics = await get_metrics(request)
        for reason in images.reasons:
            if reason is not None:
                metrics.no_digit.labels(reason).inc()
    served, probabilities = await predict_with_digit(repository, model, version, images, request_deadline(request))
    body = {
        "model": {"name": served.name, "version": served.version},
        "predictions": predictions(probabilities, images, return_image),
    }
    return Response(orjson.dumps(body), media_type="application/json")


async def predict_with_digit(
    repository: ModelRepository, model: str | None, version: int | None, images: Images, deadline: float
) -> tuple[ServedVersion, np.ndarray]:
    """Probabilities of the images that hold a digit, in order; when none does, the model is not called, but the
    version that would have served them is still resolved (and a missing model still answers 404)."""
    with_digit = images.with_digit
    if not len(with_digit):
        return await repository.resolve(model, version), np.empty((0, 10), np.float32)
    pixels = images.pixels if len(with_digit) == len(images.pixels) else images.pixels[with_digit]  # no copy
    return await repository.predict(model, version, pixels, deadline)


def predictions(probabilities: np.ndarray, images: Images, return_image: bool) -> list[dict[str, object]]:
    """One item per image: `probabilities` holds a row for each image with a digit, in order."""
    digits = probabilities.argmax(axis=1).tolist()
    rounded = np.round(probabilities.astype(np.float64), 6).tolist()  # vectorised: a 256-image answer stays cheap
    rows = iter(zip(digits, rounded))
    out = []
    for index, reason in enumerate(images.reasons):
        item: dict[str, object]
        if reason is None:
            digit, row = next(rows)
            item = {"digit": digit, "confidence": row[digit], "probabilities": row}
        else:
            item = {"digit": None, "confidence": None, "probabilities": None, "reason": reason}
        if return_image:
            item["image"] = base64.b64encode(to_png(images.pixels[index, :, :, 0])).decode()
        out.append(item)
    return out
