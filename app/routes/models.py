from __future__ import annotations

from fastapi import APIRouter

from app.deps import RepositoryDep
from app.schemas import ModelsResponse

router = APIRouter(tags=["models"])


@router.get("/models", response_model=ModelsResponse)
async def list_models(repository: RepositoryDep) -> dict[str, object]:
    """Every model and version in the repository, its metadata, and which version is serving."""
    return {"models": repository.describe()}
