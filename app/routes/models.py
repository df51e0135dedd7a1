from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import FileResponse

from app.deps import RepositoryDep
from app.schemas import ERROR_RESPONSES, ModelsResponse

router = APIRouter(tags=["models"])

Figure = Literal["learning_curves.png", "confusion_matrix.png", "samples.png", "misclassified.png"]


@router.get("/models", response_model=ModelsResponse)
async def list_models(repository: RepositoryDep) -> dict[str, object]:
    """Every model and version in the repository, its metadata, and which version is serving."""
    return {"models": repository.describe()}


@router.get("/models/{name}/versions/{version}", responses=ERROR_RESPONSES)
async def get_version_metadata(name: str, version: int, repository: RepositoryDep) -> dict[str, object]:
    """A version's full metadata.json: training configuration, per-layer parameters, history, accuracy."""
    return {"name": name, "version": version, **repository.metadata(name, version)}


@router.get(
    "/models/{name}/versions/{version}/report/{figure}",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}, 404: ERROR_RESPONSES[404]},
)
async def get_version_figure(name: str, version: int, figure: Figure, repository: RepositoryDep) -> FileResponse:
    """A figure drawn when the version was trained (learning curves, confusion matrix, sample grids)."""
    path = repository.report_figure(name, version, figure)
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "max-age=3600"})
