"""/docs and /redoc without the internet: their pages load only files of the service's own origin,
the service serves those files to anyone (the API itself still asks for a key), and each page's
Content-Security-Policy forbids every other origin and inline script.

The pages rendered in a browser with every other origin cut off: tests/console/test_docs_pages.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from tests.support.databases import DatabaseFactory
from wallet.api import create_app
from wallet.config import Settings
from wallet.service.keys import create_api_key
from wallet.storage import open_database

PAGES = ("/docs", "/redoc")
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
# What each page's own script must define: the asset is the real library, not a stand-in.
LIBRARIES = {"/docs": b"SwaggerUIBundle", "/redoc": b"Redoc"}


class Page(HTMLParser):
    """The addresses a page loads (script src, link href, img src), its inline scripts, and the
    OpenAPI document's address that it hands to Swagger UI or ReDoc."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.inline_scripts = 0
        self._in_script = False
        self.openapi_urls: dict[str, str] = {}
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("src", "href"):
            if tag in ("script", "link", "img") and found.get(name):
                self.loads.append(str(found[name]))
        for name, value in attrs:
            if name in ("data-openapi-url", "spec-url") and value:
                self.openapi_urls[name] = value
        if tag == "script":
            self._in_script = not found.get("src")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


def policy(header: str) -> dict[str, list[str]]:
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: sources for name, *sources in directives}


@pytest.fixture(scope="module")
def client(_factories: dict[str, DatabaseFactory]) -> Iterator[TestClient]:
    """The app with an API key, so that authentication is enforced."""
    database_url = _factories["sqlite"].fresh()
    database = open_database(Settings(database_url=database_url))
    try:
        create_api_key(database, "docs", ["read"])
    finally:
        database.close()
    with TestClient(create_app(Settings(database_url=database_url))) as test_client:
        yield test_client


@pytest.mark.parametrize("path", PAGES)
def test_the_page_loads_only_its_own_origins_files_and_they_are_served_to_anyone(
    client: TestClient, path: str
) -> None:
    assert client.get("/balance/user_001/GC").status_code == 401
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = Page(response.text)
    assert page.inline_scripts == 0
    scripts = [url for url in page.loads if url.endswith(".js")]
    assert scripts, page.loads
    for url in page.loads:
        assert url.startswith("/docs-assets/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rindex(".") :]
        assert asset.headers["content-type"].startswith(CONTENT_TYPES[suffix]), url
        assert asset.headers["x-content-type-options"] == "nosniff"
    assert any(LIBRARIES[path] in client.get(url).content for url in scripts)
    (openapi_url,) = page.openapi_urls.values()
    assert openapi_url == "/openapi.json"
    assert client.get(openapi_url).json()["info"]["title"] == "Wallet service"


@pytest.mark.parametrize("path", PAGES)
def test_the_pages_policy_allows_no_other_origin_nor_inline_script(
    client: TestClient, path: str
) -> None:
    directives = policy(client.get(path).headers["content-security-policy"])
    assert directives["default-src"] == ["'self'"]
    assert "script-src" not in directives
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    for name, sources in directives.items():
        for source in sources:
            assert source in ("'self'", "'none'", "data:", "blob:", "'unsafe-inline'"), name
            assert source != "'unsafe-inline'" or name == "style-src", name
            assert source != "blob:" or name == "worker-src", name
    # Swagger UI sets its styles from script; only ReDoc needs inline <style> elements.
    assert ("style-src" in directives) == (path == "/redoc")


def test_an_unknown_asset_is_a_404_not_a_401(client: TestClient) -> None:
    response = client.get("/docs-assets/no-such-file.js")
    assert response.status_code == 404
