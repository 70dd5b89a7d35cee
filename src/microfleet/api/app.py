"""The HTTP API: ``create_app(settings)`` builds the FastAPI application. OpenAPI is the contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from microfleet import __version__
from microfleet.api.errors import ErrorBody, install_error_handlers
from microfleet.api.routes import health, history, places, quarantine, tariffs, telemetry, vehicles
from microfleet.bootstrap import Services, build_services
from microfleet.domain.telemetry import TelemetryRecord
from microfleet.settings import Settings


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """Build the API for ``settings``; pass ``services`` to share them with the caller (tests, demo)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = services is None
        app.state.services = services if services is not None else build_services(settings)
        if settings.history_derive_interval_s > 0:
            app.state.services.derivations.start()
        try:
            yield
        finally:
            app.state.services.derivations.stop()
            if owned:
                app.state.services.close()

    app = FastAPI(
        title="Microfleet",
        version=__version__,
        summary="Telematics for small electric city cars: telemetry in, derived history out.",
        lifespan=lifespan,
        # Every error, request validation included, is an ErrorBody (see errors.py), not FastAPI's default.
        responses={
            422: {"model": ErrorBody, "description": "The request is invalid"},
            429: {"model": ErrorBody, "description": "Too many failed authentications from this client"},
            503: {"model": ErrorBody, "description": "The store is unavailable; retry after Retry-After"},
        },
    )
    if services is not None:
        app.state.services = services
    install_error_handlers(app)
    for module in (health, telemetry, vehicles, history, places, tariffs, quarantine):
        app.include_router(module.router)
    _add_telemetry_schema(app)
    return app


def app_from_environment() -> FastAPI:
    """The API configured from ``MICROFLEET_*`` environment variables (``microfleet serve``)."""
    return create_app(Settings())


def _add_telemetry_schema(app: FastAPI) -> None:
    """Publish protocol v1's record schema (from msgspec) in the OpenAPI components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            _, components = msgspec.json.schema_components(
                [TelemetryRecord], ref_template="#/components/schemas/{name}"
            )
            document.setdefault("components", {}).setdefault("schemas", {}).update(components)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
