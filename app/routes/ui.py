"""The draw-a-digit page and the API docs (Swagger UI, Redoc): static files served by the app itself
(no CDN, no front-end server; the docs' scripts are vendored under static/vendor/)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
VENDOR_URL = "/static/vendor"
FAVICON_URL = f"{VENDOR_URL}/swagger-ui/favicon-32x32.png"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"

router = APIRouter(tags=["ui"])


@router.get("/", response_class=FileResponse, include_in_schema=False)
async def get_page() -> FileResponse:
    """The page: draw or upload a digit, see what the model saw and answered."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


@router.get("/docs", include_in_schema=False)
async def get_swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI on the vendored bundle; the online validator (validator.swagger.io) is switched off."""
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} - Swagger UI",
        oauth2_redirect_url=OAUTH2_REDIRECT_URL,
        swagger_js_url=f"{VENDOR_URL}/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{VENDOR_URL}/swagger-ui/swagger-ui.css",
        swagger_favicon_url=FAVICON_URL,
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
async def get_swagger_ui_redirect() -> HTMLResponse:
    """Where Swagger UI's OAuth2 authorisation flow returns to."""
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc", include_in_schema=False)
async def get_redoc(request: Request) -> HTMLResponse:
    """Redoc on the vendored bundle, with the browser's own fonts (no Google Fonts)."""
    return get_redoc_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{VENDOR_URL}/redoc/redoc.standalone.js",
        redoc_favicon_url=FAVICON_URL,
        with_google_fonts=False,
    )
