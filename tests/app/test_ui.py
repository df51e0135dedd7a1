"""The page and the API docs on the real app with a fake model: everything they load comes from the app."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from app.routes import ui

ASSET_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


class LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value is not None]


def linked_urls(html: str) -> list[str]:
    parser = LinkParser()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize(
    "path, script",
    [
        pytest.param("/docs", "/static/vendor/swagger-ui/swagger-ui-bundle.js", id="swagger-ui"),
        pytest.param("/redoc", "/static/vendor/redoc/redoc.standalone.js", id="redoc"),
    ],
)
async def test_the_api_docs_load_only_vendored_assets_from_the_app(client, path, script):
    response = await client.get(path)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text
    urls = linked_urls(response.text)
    assert script in urls
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and parts.path.startswith("/static/vendor/"), url
    assert "://" not in response.text  # not in inline script either (validator, fonts, CDN)
    for url in urls:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        expected = ASSET_TYPES[url[url.rindex(".") :]]
        assert asset.headers["content-type"].split(";")[0] == expected, url
        assert len(asset.content) > 500, url


async def test_the_oauth2_redirect_page_is_served_and_the_docs_stay_out_of_the_schema(client):
    response = await client.get("/docs/oauth2-redirect")
    assert response.status_code == 200 and "swaggerUIRedirectOauth2" in response.text
    openapi = (await client.get("/openapi.json")).json()
    assert not {"/docs", "/redoc", "/docs/oauth2-redirect"} & set(openapi["paths"])


@pytest.mark.parametrize("folder", [pytest.param("swagger-ui", id="swagger-ui"), pytest.param("redoc", id="redoc")])
def test_each_vendored_package_carries_its_licence_and_origin(folder):
    vendor = ui.STATIC_DIR / "vendor" / folder
    assert (vendor / "LICENSE").stat().st_size > 500
    assert "npm package" in (vendor / "README.md").read_text()
    assert not list(vendor.glob("*.map"))
    for bundle in vendor.glob("*.js"):  # Redoc's badge logo came from cdn.redoc.ly: see its README
        assert "https://cdn." not in bundle.read_text(), bundle
