"""The API docs and the web app work without internet: /docs, / and every asset they load come from here."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.settings import Settings

# Every URL the page names: attributes (src, href) and string literals in its inline script.
_URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*["']([^"']+)["']""")
_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}


def _client(tmp_path: Path) -> TestClient:
    # No lifespan (no `with`): the docs need no store.
    return TestClient(create_app(Settings(database_url=f"sqlite:///{tmp_path / 'docs.db'}")))


def test_docs_page_and_its_assets_are_served_by_this_server(tmp_path: Path) -> None:
    client = _client(tmp_path)
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert not re.search(r"https?://", page.text), "the docs page must not load anything from the internet"
    urls = [a or b for a, b in _URL.findall(page.text)]
    assert {Path(u).suffix for u in urls} >= {".js", ".css", ".png", ".json"}
    for url in urls:
        assert url.startswith("/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert _TYPES[Path(url).suffix] in asset.headers["content-type"], (url, asset.headers["content-type"])
        assert len(asset.content) > 0
    assert "SwaggerUIBundle" in client.get("/docs/assets/swagger-ui-bundle.js").text


def test_the_root_is_the_web_app_and_loads_nothing_from_the_internet(tmp_path: Path) -> None:
    client = _client(tmp_path)
    page = client.get("/", follow_redirects=False)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    # What the page loads (scripts, styles, icons); the footer's link to OSM's copyright page is only a link.
    loaded = re.findall(r"<(?:script|link)[^>]*(?:src|href)=\"([^\"]+)\"", page.text)
    assert {Path(u).suffix for u in loaded} >= {".js", ".css"}
    for url in loaded:
        assert url.startswith(("/", "data:")), url
        if url.startswith("/"):
            assert client.get(url).status_code == 200, url
    modules = sorted(Path(__file__).parents[2].glob("src/microfleet/web/static/js/*.js"))
    for module in modules:  # every ES module the page imports is served from here too
        served = client.get(f"/static/js/{module.name}")
        assert served.status_code == 200 and "javascript" in served.headers["content-type"], module.name
        assert not re.search(r"""(?:import|from)\s*["']https?://""", served.text), module.name


def test_the_old_cdn_docs_pages_are_gone(tmp_path: Path) -> None:
    client = _client(tmp_path)
    assert client.get("/redoc").status_code == 404
    assert client.get("/docs/oauth2-redirect").status_code == 404
