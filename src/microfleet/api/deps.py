"""The services a route may depend on, one dependency each: a route names the use case it calls.

The process's services are built once by the app's lifespan (``microfleet.bootstrap``); these functions
hand a route the one it uses, so no route sees the rest or builds a store per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from microfleet.bootstrap import Services
from microfleet.ingest.http import HttpTelemetryAdapter
from microfleet.services.accounts import AccountService
from microfleet.services.health import StoreStatus
from microfleet.services.history import HistoryService
from microfleet.services.places import PlaceService
from microfleet.services.quarantine import QuarantineService
from microfleet.services.vehicles import VehicleService
from microfleet.settings import Settings

# ``async def`` so FastAPI resolves them on the event loop instead of a worker thread: each is an
# attribute read.


def _services(request: Request) -> Services:
    built: Services = request.app.state.services
    return built


async def accounts(request: Request) -> AccountService:
    """Authentication and vehicle visibility."""
    return _services(request).accounts


async def vehicles(request: Request) -> VehicleService:
    """A vehicle's latest state and positions."""
    return _services(request).vehicles


async def http_ingest(request: Request) -> HttpTelemetryAdapter:
    """Telemetry in over HTTP (protocol v1)."""
    return _services(request).http_ingest


async def quarantine(request: Request) -> QuarantineService:
    """Refused records and their replay."""
    return _services(request).quarantine


async def history(request: Request) -> HistoryService:
    """Derived history and summaries."""
    return _services(request).history


async def places(request: Request) -> PlaceService:
    """Places, suggestions and enter/exit events."""
    return _services(request).places


async def store_status(request: Request) -> StoreStatus:
    """The store's reachability and schema revision."""
    return _services(request).store_status


async def settings(request: Request) -> Settings:
    """The process's settings (limits an entry point enforces itself, such as the body size)."""
    return _services(request).settings


async def clock(request: Request) -> int:
    """Now, in UTC epoch ms, by the process's clock."""
    return _services(request).clock()


AccountsDep = Annotated[AccountService, Depends(accounts)]
VehiclesDep = Annotated[VehicleService, Depends(vehicles)]
HttpIngestDep = Annotated[HttpTelemetryAdapter, Depends(http_ingest)]
QuarantineDep = Annotated[QuarantineService, Depends(quarantine)]
HistoryDep = Annotated[HistoryService, Depends(history)]
PlacesDep = Annotated[PlaceService, Depends(places)]
StoreStatusDep = Annotated[StoreStatus, Depends(store_status)]
SettingsDep = Annotated[Settings, Depends(settings)]
NowMsDep = Annotated[int, Depends(clock)]
