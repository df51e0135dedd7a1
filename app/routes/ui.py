"""The draw-a-digit page: static files served by the app itself (no CDN, no front-end server)."""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

router = APIRouter(tags=["ui"])


@router.get("/", response_class=FileResponse, include_in_schema=False)
async def get_page() -> FileResponse:
    """The page: draw or upload a digit, see what the model saw and answered."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")
