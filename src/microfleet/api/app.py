"""The HTTP API: ``create_app(settings)`` builds the FastAPI application. OpenAPI is the contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from microfleet import __version__
from microfleet.api.errors import ErrorBody, install_error_handlers
from microfleet.api.routes import (
    alerts,
    battery,
    bookings,
    charging,
    commands,
    driving,
    fleet_views,
    health,
    history,
    invitations,
    live,
    maintenance,
    ocpp,
    osmand,
    places,
    quarantine,
    route,
    session,
    tariffs,
    telemetry,
    tokens,
    tracker_keys,
    vehicle_insights,
    vehicle_routes,
    vehicles,
)
from microfleet.bootstrap import Services, build_services, settle_heap
from microfleet.domain.telemetry import TelemetryRecord
from microfleet.settings import Settings
from microfleet.store.partitions import PartitionKeeper, TelemetryPartitions
from microfleet.web import add_web_app


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """Build the API for ``settings``; pass ``services`` to share them with the caller (tests, demo)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = services is None
        app.state.services = services if services is not None else build_services(settings)
        if settings.history_derive_interval_s > 0:
            app.state.services.derivations.start()
        if settings.command_expire_interval_s > 0:  # commands past expiry -> expired (docs/commands.md)
            app.state.services.commands.start_expiring(settings.command_expire_interval_s)
        if settings.alerts_interval_s > 0:
            app.state.services.alert_worker.start()
        if settings.maintenance_interval_s > 0:  # detectors off the request path (docs/maintenance.md)
            app.state.services.maintenance_worker.start()
        # OCPP 1.6J chargers at /ocpp/{id}; the charging worker re-plans and steers them (docs/charging.md)
        from microfleet.ingest.ocpp_central import OcppCentral

        app.state.ocpp = OcppCentral(app.state.services.charge_points)
        if settings.charging_replan_interval_s > 0:
            app.state.services.charging_worker.start(app.state.ocpp, app.state.services.commands)
        if settings.battery_refit_interval_s > 0:  # battery models refit off the request path
            app.state.services.battery_worker.start()
        # PostgreSQL: telemetry's months ahead, created again every 6 h as the server runs (docs/postgres.md)
        partition_keeper = PartitionKeeper(TelemetryPartitions(app.state.services.engine))
        partition_keeper.start()
        try:
            yield
        finally:
            partition_keeper.stop()
            await app.state.services.live_feed.stop()
            app.state.services.derivations.stop()
            app.state.services.commands.stop_expiring()
            app.state.services.alert_worker.stop()
            app.state.services.maintenance_worker.stop()
            await app.state.services.charging_worker.stop()
            app.state.services.battery_worker.stop()
            if owned:
                app.state.services.close()

    app = FastAPI(
        title="Microfleet",
        version=__version__,
        summary="Telematics for small electric city cars: telemetry in, derived history out.",
        lifespan=lifespan,
        docs_url=None,  # /docs is served below from the packaged Swagger UI, not FastAPI's CDN page
        redoc_url=None,
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
    osmand.hide_tracker_keys_from_access_log()
    for module in (health, telemetry, osmand, vehicles, tracker_keys, history, places, tariffs, quarantine):
        app.include_router(module.router)
    app.include_router(commands.router)  # remote commands and their keys (docs/commands.md)
    app.include_router(bookings.router)
    app.include_router(session.router)  # a browser's login (docs/web.md)
    app.include_router(tokens.router)  # your own API tokens
    app.include_router(invitations.router)  # an administrator's invitations
    app.include_router(live.router)  # a WebSocket: outside the OpenAPI document (docs/live.md)
    app.include_router(alerts.router)
    app.include_router(route.router)  # energy-aware routing (docs/routes.md)
    app.include_router(charging.router)  # sites, chargers, the fleet's plan (docs/charging.md)
    app.include_router(ocpp.router)  # OCPP 1.6J chargers' WebSocket: outside the OpenAPI document
    app.include_router(battery.router)  # a car's SoC, SoH, range, advice (docs/battery.md)
    app.include_router(maintenance.router)  # detectors, service records, service plan (docs/maintenance.md)
    app.include_router(driving.router)  # driver scores, harsh events (docs/driver-score.md)
    app.include_router(vehicle_routes.router)  # learned routes and the next-trip forecast (docs/routes.md)
    app.include_router(vehicle_insights.router)  # a car's SoH trend, parked drain, costs (docs/web.md)
    app.include_router(fleet_views.router)  # the fleet page's hourly use, plan per charger, places
    _add_telemetry_schema(app)
    _add_docs(app)
    add_web_app(app, settings)  # the pages at / (docs/web.md)
    return app


def app_from_environment() -> FastAPI:
    """The API configured from ``MICROFLEET_*`` environment variables (``microfleet serve --workers N``)."""
    app = create_app(Settings())
    settle_heap()  # a worker process serves until it ends: its modules out of the collector's way
    return app


DOCS_ASSETS_PATH = "/docs/assets"


def _add_docs(app: FastAPI) -> None:
    """Serve the API docs (Swagger UI) from the installed ``swagger-ui-bundle-v2`` package, offline.

    FastAPI's own /docs loads Swagger UI from a CDN, so a server without internet showed a blank page.
    """
    app.mount(DOCS_ASSETS_PATH, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url or '/openapi.json'}",
            title=f"{app.title} API",
            swagger_js_url=f"{root}{DOCS_ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS_PATH}/favicon-32x32.png",
        )


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
