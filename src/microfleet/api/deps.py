"""The services a route may depend on, one dependency each: a route names the use case it calls.

The process's services are built once by the app's lifespan (``microfleet.bootstrap``); these
dependencies hand a route the one it uses, so no route sees the rest or builds a store per request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from microfleet.bootstrap import Services
from microfleet.ingest.http import HttpTelemetryAdapter
from microfleet.ingest.osmand_adapter import OsmAndAdapter
from microfleet.services.accounts import AccountService
from microfleet.services.alerts import AlertService
from microfleet.services.api_tokens import ApiTokenService
from microfleet.services.battery import BatteryService
from microfleet.services.bookings import BookingService
from microfleet.services.commands import CommandService
from microfleet.services.driving import DrivingService
from microfleet.services.health import StoreStatus
from microfleet.services.history import HistoryService
from microfleet.services.invitations import InvitationService
from microfleet.services.places import PlaceService
from microfleet.services.quarantine import QuarantineService
from microfleet.services.routes import RouteService
from microfleet.services.tariffs import TariffService
from microfleet.services.tracker_keys import TrackerKeyService
from microfleet.services.vehicle_insights import VehicleInsightsService
from microfleet.services.vehicles import VehicleService
from microfleet.services.web_sessions import WebSessionService
from microfleet.settings import Settings

T = TypeVar("T")


def _one(pick: Callable[[Services], T]) -> Callable[[Request], Awaitable[T]]:
    # ``async`` so FastAPI resolves it on the event loop instead of a worker thread: it is an attribute read.
    async def dependency(request: Request) -> T:
        return pick(request.app.state.services)

    return dependency


AccountsDep = Annotated[AccountService, Depends(_one(lambda s: s.accounts))]
AlertsDep = Annotated[AlertService, Depends(_one(lambda s: s.alerts))]
BatteryDep = Annotated[BatteryService, Depends(_one(lambda s: s.battery))]
InsightsDep = Annotated[VehicleInsightsService, Depends(_one(lambda s: s.insights))]
VehiclesDep = Annotated[VehicleService, Depends(_one(lambda s: s.vehicles))]
HttpIngestDep = Annotated[HttpTelemetryAdapter, Depends(_one(lambda s: s.http_ingest))]
OsmAndIngestDep = Annotated[OsmAndAdapter, Depends(_one(lambda s: s.osmand_ingest))]
TrackerKeysDep = Annotated[TrackerKeyService, Depends(_one(lambda s: s.tracker_keys))]
CommandsDep = Annotated[CommandService, Depends(_one(lambda s: s.commands))]
DrivingDep = Annotated[DrivingService, Depends(_one(lambda s: s.driving))]
BookingsDep = Annotated[BookingService, Depends(_one(lambda s: s.bookings))]
QuarantineDep = Annotated[QuarantineService, Depends(_one(lambda s: s.quarantine))]
HistoryDep = Annotated[HistoryService, Depends(_one(lambda s: s.history))]
PlacesDep = Annotated[PlaceService, Depends(_one(lambda s: s.places))]
RoutesDep = Annotated[RouteService, Depends(_one(lambda s: s.routes))]
TariffsDep = Annotated[TariffService, Depends(_one(lambda s: s.tariffs))]
StoreStatusDep = Annotated[StoreStatus, Depends(_one(lambda s: s.store_status))]
SettingsDep = Annotated[Settings, Depends(_one(lambda s: s.settings))]
WebSessionsDep = Annotated[WebSessionService, Depends(_one(lambda s: s.web_sessions))]
ApiTokensDep = Annotated[ApiTokenService, Depends(_one(lambda s: s.api_tokens))]
InvitationsDep = Annotated[InvitationService, Depends(_one(lambda s: s.invitations))]
NowMsDep = Annotated[int, Depends(_one(lambda s: s.clock()))]
