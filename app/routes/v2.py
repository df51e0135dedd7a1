"""KServe Open Inference Protocol (V2) endpoints, so Triton's and KServe's clients work unchanged."""
from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.deps import LimitsDep, RepositoryDep
from app.errors import ModelNotFound, ModelNotReady
from app.payloads import read_body
from app.protocol_v2 import HEADER_LENGTH, decode_infer, encode_infer, model_metadata
from app.repository import version_dirs
from app.schemas import ERROR_RESPONSES

router = APIRouter(prefix="/v2", tags=["kserve-v2"])

INFER_BODY = {"required": True, "content": {
    "application/json": {"example": {"inputs": [{"name": "image", "shape": [1, 28, 28, 1], "datatype": "FP32",
                                                  "data": [0.0] * 784}]}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"},
                                 "description": "binary tensor extension: JSON header of "
                                                "Inference-Header-Content-Length bytes, then raw tensors"}}}


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
@router.get("/models/{name}/versions/{version}", responses=ERROR_RESPONSES)
async def get_model_metadata(name: str, repository: RepositoryDep, version: int | None = None) -> dict[str, object]:
    """Model metadata: versions and the input and output tensors."""
    versions = sorted(version_dirs(repository.root / name))
    if not versions or (version is not None and version not in versions):
        raise ModelNotFound(f"no model {name!r}" + (f" version {version}" if version is not None else ""))
    return model_metadata(name, versions)


@router.get("/models/{name}/ready", responses=ERROR_RESPONSES)
@router.get("/models/{name}/versions/{version}/ready", responses=ERROR_RESPONSES)
async def get_model_ready(name: str, repository: RepositoryDep, version: int | None = None) -> dict[str, object]:
    """200 when the model (or that version) can answer now."""
    served = repository.serving(name)
    if served is None or (version is not None and version != served.version):
        if version is not None and version in version_dirs(repository.root / name):
            return {"name": name, "version": str(version), "ready": True}  # loaded on first request
        raise ModelNotReady(f"model {name!r} is not ready")
    return {"name": name, "version": str(served.version), "ready": True}


@router.post("/models/{name}/infer", responses=ERROR_RESPONSES, openapi_extra={"requestBody": INFER_BODY})
@router.post("/models/{name}/versions/{version}/infer", responses=ERROR_RESPONSES,
             openapi_extra={"requestBody": INFER_BODY})
async def infer(name: str, request: Request, repository: RepositoryDep, limits: LimitsDep,
                version: int | None = None) -> Response:
    """Run inference: input `image` FP32 or UINT8 [N,28,28,1] (or [N,784]); output `probabilities` FP32 [N,10]."""
    body = await read_body(request, limits.max_body_bytes)
    decoded = decode_infer(body, request.headers.get(HEADER_LENGTH), limits.max_instances)
    served, probabilities = await repository.predict(name, version, decoded.images)
    content, headers = encode_infer(served.name, served.version, decoded, probabilities)
    media = headers.pop("content-type")
    return Response(content, media_type=media, headers=headers)
