"""KServe Open Inference Protocol (V2) endpoints, so Triton's and KServe's clients work unchanged."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.deps import LimitsDep, RepositoryDep
from app.errors import ModelNotFound, ModelNotReady
from app.payloads import Limits, read_body
from app.protocol_v2 import HEADER_LENGTH, decode_infer, encode_infer, model_metadata
from app.repository import ModelRepository
from app.schemas import ERROR_RESPONSES

router = APIRouter(prefix="/v2", tags=["kserve-v2"])

INFER_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["inputs"],
                "properties": {
                    "id": {"type": "string"},
                    "inputs": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["name", "shape", "datatype"],
                            "properties": {
                                "name": {"type": "string", "enum": ["image"]},
                                "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                                "datatype": {"type": "string", "enum": ["FP32", "FP64", "FP16", "UINT8"]},
                                "data": {"type": "array"},
                                "parameters": {"type": "object"},
                            },
                        },
                    },
                    "outputs": {"type": "array", "items": {"type": "object"}},
                    "parameters": {"type": "object"},
                },
            },
            "example": {
                "inputs": [{"name": "image", "shape": [1, 28, 28, 1], "datatype": "FP32", "data": [0.0] * 784}]
            },
        },
        "application/octet-stream": {
            "schema": {"type": "string", "format": "binary"},
            "description": "binary tensor extension: JSON header of "
            "Inference-Header-Content-Length bytes, then raw tensors",
        },
    },
}


@router.get("")
async def server_metadata() -> dict[str, object]:
    """Server metadata: name, version and supported extensions."""
    return {"name": "lenet-serve", "version": "0.1.0", "extensions": ["binary_tensor_data", "model_repository"]}


@router.get("/health/live")
async def server_live() -> dict[str, bool]:
    """The process is up."""
    return {"live": True}


@router.get("/health/ready", responses=ERROR_RESPONSES)
async def server_ready(repository: RepositoryDep) -> dict[str, bool]:
    """The default model is loaded and warmed up (503 until then)."""
    if not repository.ready:
        raise ModelNotReady("the default model is not loaded yet")
    return {"ready": True}


@router.get("/models/{name}", responses=ERROR_RESPONSES)
async def get_model_metadata(name: str, repository: RepositoryDep) -> dict[str, object]:
    """Model metadata: versions and the input and output tensors."""
    return _metadata(repository, name, None)


@router.get("/models/{name}/versions/{version}", responses=ERROR_RESPONSES)
async def get_version_metadata(name: str, version: int, repository: RepositoryDep) -> dict[str, object]:
    """Metadata of one version."""
    return _metadata(repository, name, version)


def _versions(repository: ModelRepository, name: str, version: int | None) -> list[int]:
    """The model's versions on disk; 404 when the model, or the version asked for, is not there."""
    versions = sorted(repository.versions(name))
    if not versions or (version is not None and version not in versions):
        raise ModelNotFound(f"no model {name!r}" + (f" version {version}" if version is not None else ""))
    return versions


def _metadata(repository: ModelRepository, name: str, version: int | None) -> dict[str, object]:
    return model_metadata(name, _versions(repository, name, version))


@router.get("/models/{name}/ready", responses=ERROR_RESPONSES)
async def get_model_ready(name: str, repository: RepositoryDep) -> dict[str, object]:
    """200 when the model can answer now; 503 while it loads; 404 for an unknown model."""
    return await _ready(repository, name, None)


@router.get("/models/{name}/versions/{version}/ready", responses=ERROR_RESPONSES)
async def get_version_ready(name: str, version: int, repository: RepositoryDep) -> dict[str, object]:
    """200 when an infer on that version would succeed (an older version is loaded by this check, as by its
    first request); 503 while it loads or when it was refused as broken; 404 when it is not there."""
    return await _ready(repository, name, version)


async def _ready(repository: ModelRepository, name: str, version: int | None) -> dict[str, object]:
    _versions(repository, name, version)
    if not await repository.can_answer(name, version):
        what = f"model {name!r}" + (f" version {version}" if version is not None else "")
        raise ModelNotReady(f"{what} cannot answer: not loaded yet, or refused as broken (see GET /models)")
    served = repository.serving(name)
    return {
        "name": name,
        "version": str(version if version is not None else (served.version if served else "")),
        "ready": True,
    }


@router.post("/models/{name}/infer", responses=ERROR_RESPONSES, openapi_extra={"requestBody": INFER_BODY})
async def infer(name: str, request: Request, repository: RepositoryDep, limits: LimitsDep) -> Response:
    """Run inference: input `image` FP32 or UINT8 [N,28,28,1] (or [N,784]); output `probabilities` FP32 [N,10]."""
    return await _infer(name, None, request, repository, limits)


@router.post(
    "/models/{name}/versions/{version}/infer", responses=ERROR_RESPONSES, openapi_extra={"requestBody": INFER_BODY}
)
async def infer_version(
    name: str, version: int, request: Request, repository: RepositoryDep, limits: LimitsDep
) -> Response:
    """Run inference on a pinned version."""
    return await _infer(name, version, request, repository, limits)


async def _infer(
    name: str, version: int | None, request: Request, repository: ModelRepository, limits: Limits
) -> Response:
    repository.admit(name)  # shed load before reading the body when the queue is full
    body = await read_body(request, limits.max_body_bytes, limits.body_timeout_s)
    decoded = decode_infer(body, request.headers.get(HEADER_LENGTH), limits.max_instances)
    served, probabilities = await repository.predict(name, version, decoded.images)
    content, headers = encode_infer(served.name, served.version, decoded, probabilities)
    media = headers.pop("content-type")
    return Response(content, media_type=media, headers=headers)
