"""The web app's routes: the one page at ``/``, its static files, and the streets as GeoJSON.

Everything here is public and says nothing of the world: the page is the same for everyone until its
script logs in through the API (``/api/v1/session``), and the streets are OpenStreetMap's.
"""

from __future__ import annotations

import gzip
import threading
from pathlib import Path
from typing import Final

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from microfleet.domain.reference_data import reference_data_dir
from microfleet.errors import NotFoundError
from microfleet.settings import Settings
from microfleet.web.streets import StreetMap, streets_geojson

STATIC_DIR: Final = Path(__file__).parent / "static"
STATIC_PATH: Final = "/static"
STREETS_PATH: Final = "/map/streets.geojson"

# The page loads only its own files: no CDN, no inline script. MapLibre builds its worker from a blob:
# URL and sets inline styles on the map's elements; its canvas reads images from blob: and data: URLs.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; worker-src blob:; child-src blob:; img-src 'self' data: blob:; "
    "style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)


class _Streets:
    """The streets of the data folder's OSM extracts, read once on first use (about 2 s for Shanghai)."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._lock = threading.Lock()
        self._map: StreetMap | None = None
        self._gzipped = b""

    def get(self) -> tuple[StreetMap, bytes]:
        with self._lock:
            if self._map is None:
                paths = sorted(self._folder.glob("*.osm"))
                if not paths:
                    raise NotFoundError(
                        f"no OpenStreetMap extract (*.osm) in {self._folder}: the map shows cars without "
                        "streets (set MICROFLEET_DATA_DIR_PATH)"
                    )
                self._map = streets_geojson(paths)
                self._gzipped = gzip.compress(self._map.body, compresslevel=6)
            return self._map, self._gzipped


def add_web_app(app: FastAPI, settings: Settings) -> None:
    """Serve the web app at ``/``, its files under ``/static`` and the streets at ``/map/streets.geojson``."""
    app.mount(STATIC_PATH, StaticFiles(directory=str(STATIC_DIR)), name="web-static")
    streets = _Streets(reference_data_dir(settings.data_dir_path) / "osm")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(
            STATIC_DIR / "index.html",
            headers={"Cache-Control": "no-cache", "Content-Security-Policy": CONTENT_SECURITY_POLICY},
        )

    @app.get(STREETS_PATH, include_in_schema=False)
    def street_map(request: Request) -> Response:
        found, gzipped = streets.get()
        headers = {"ETag": found.etag, "Cache-Control": "public, max-age=86400", "Vary": "Accept-Encoding"}
        if request.headers.get("if-none-match") == found.etag:
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(gzipped, media_type="application/geo+json", headers=headers)
        return Response(found.body, media_type="application/geo+json", headers=headers)
