"""KServe Open Inference Protocol (V2) endpoints, so Triton's and KServe's clients work unchanged: health,
metadata, inference, and the model repository extension. Errors here are the protocol's {"error": "<message>"}
(app.errors.error_body decides by path)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.deps import AdminDep, LimitsDep, RepositoryDep, request_deadline
from app.errors import ModelNotFound, ModelNotReady
from app.payloads import Limits, read_body
from app.protocol_v2 import (
    HEADER_LENGTH,
    decode_infer,
    encode_infer,
    index_request,
    load_request,
    model_metadata,
    repository_index,
    unload_request,
)
from app.repository import ModelRepository, unloaded_error
from app.schemas import V2_ADMIN_RESPONSES, V2_INFER_BODY, V2_REPOSITORY_BODY, V2IndexEntry
from app.schemas import V2_ERROR_RESPONSES as ERROR_RESPONSES

router = APIRouter(prefix="/v2", tags=["kserve-v2"])
EXTENSIONS = ["binary_tensor_data", "model_repository"]


@router.get("", responses=ERROR_RESPONSES)
@router.get("/", include_in_schema=False)  # `/v2/` answers as `/v2`, rather than redirecting to it
async def server_metadata() -> dict[str, object]:
    """Server metadata: name, version and supported extensions."""
    return {"name": "lenet-serve", "version": "0.1.0", "extensions": EXTENSIONS}


@router.get("/health/live")
async def server_live() -> dict[str, bool]:
    """The process is up."""
    return {"live": True}


@router.get("/health/ready", responses=ERROR_RESPONSES)
async def server_ready(repository: RepositoryDep) -> dict[str, bool]:
    """The default model is loaded and warmed up (503 until then)."""
    if not repository.ready:
        raise repository.not_ready()
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
        if repository.is_unloaded(name):
            raise unloaded_error(name, what)
        raise ModelNotReady(f"{what} cannot answer: not loaded yet, or refused as broken (see GET /models)")
    served = repository.serving(name)
    return {
        "name": name,
        "version": str(version if version is not None else (served.version if served else "")),
        "ready": True,
    }


@router.post("/models/{name}/infer", responses=ERROR_RESPONSES, openapi_extra={"requestBody": V2_INFER_BODY})
async def infer(name: str, request: Request, repository: RepositoryDep, limits: LimitsDep) -> Response:
    """Run inference: input `image` FP32 or UINT8 [N,28,28,1] (or [N,784]); output `probabilities` FP32 [N,10]."""
    return await _infer(name, None, request, repository, limits)


@router.post(
    "/models/{name}/versions/{version}/infer", responses=ERROR_RESPONSES, openapi_extra={"requestBody": V2_INFER_BODY}
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
    await repository.resolve(name, version)  # an unknown or unloaded model is answered before its body is read
    body = await read_body(request, limits.max_body_bytes, limits.body_timeout_s)
    decoded = decode_infer(body, request.headers.get(HEADER_LENGTH), limits.max_instances)
    served, probabilities = await repository.predict(name, version, decoded.images, request_deadline(request))
    content, headers = encode_infer(served.name, served.version, decoded, probabilities)
    media = headers.pop("content-type")
    return Response(content, media_type=media, headers=headers)


# ----- the model repository extension -----
@router.post(
    "/repository/index",
    response_model=list[V2IndexEntry],
    response_model_exclude_none=True,
    responses=ERROR_RESPONSES,
    openapi_extra={"requestBody": V2_REPOSITORY_BODY["index"]},
)
async def repository_index_post(request: Request, repository: RepositoryDep, limits: LimitsDep) -> list[dict[str, str]]:
    """Every model and version in the repository with its state (READY, UNAVAILABLE, LOADING) and the reason;
    `{"ready": true}` lists only those ready for inference."""
    ready_only = index_request(await read_body(request, limits.max_body_bytes, limits.body_timeout_s))
    return repository_index(repository.describe(), ready_only)


@router.post(
    "/repository/models/{name}/load",
    dependencies=[AdminDep],
    responses=V2_ADMIN_RESPONSES,
    openapi_extra={"requestBody": V2_REPOSITORY_BODY["load"]},
)
async def repository_load(
    name: str, request: Request, repository: RepositoryDep, limits: LimitsDep
) -> dict[str, object]:
    """(admin) Serve the model now: its highest version that loads; it stays served, and follows new versions."""
    load_request(await read_body(request, limits.max_body_bytes, limits.body_timeout_s))
    await repository.load(name)
    return {}


@router.post(
    "/repository/models/{name}/unload",
    dependencies=[AdminDep],
    responses=V2_ADMIN_RESPONSES,
    openapi_extra={"requestBody": V2_REPOSITORY_BODY["unload"]},
)
async def repository_unload(
    name: str, request: Request, repository: RepositoryDep, limits: LimitsDep
) -> dict[str, object]:
    """(admin) Stop serving the model until it is loaded again (or the server restarts); queued requests finish."""
    unload_request(await read_body(request, limits.max_body_bytes, limits.body_timeout_s))
    await repository.unload(name)
    return {}
