"""The authorization matrix: every operation of the OpenAPI document × every kind of caller, on both stores.

The table below has a row per operation (some operations have a row per case: a vehicle's, a fleet's or a
global place...), and :func:`test_every_operation_has_a_row` fails as soon as the document lists an
operation without a row, or a row names one the document no longer has; routes left out of the document
must be in :data:`PUBLIC_OUTSIDE_OPENAPI`, and are checked to be public and to say nothing of the world.

Every cell is a test of its own. A cell is either the refusal the caller gets, as the API's convention is
(docs/security.md): 401 without a valid token, 403 for a credential of the wrong kind or a role that may
not, 404 for a vehicle - or a place or tariff of one - the caller does not see, so ids do not leak; the
body is then an error that names none of the world's data, and a refused write changed nothing (read back
as the admin). Or it is what the caller is given: for a read, the cars whose data the answer holds ("a"
for car-a, "abc", "-" for none), compared with what each car holds, exactly; for a write, ``ok``.

The world (tests/integration/world.py) gives car-a, car-b and car-c the same kind of history - two days of
drives, charges and states, an excluded record, a quarantined one, places and tariffs of every scope - at
positions and times no two cars share, so an answer that let a foreign car's data through differs from
the right one. It is built once per store and module; a write a caller may make is undone by its test.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from starlette.routing import Mount, WebSocketRoute

from microfleet.api import create_app
from microfleet.api.auth import SESSION_COOKIE
from microfleet.bootstrap import Services, build_services
from microfleet.domain.access import DevicePrincipal, Role
from microfleet.domain.alerts import Severity
from microfleet.domain.command_wire import Action
from microfleet.domain.tariffs import example_tariff_ids
from microfleet.services.live import StoredLiveEvent
from microfleet.services.live_feed import command_issuer
from microfleet.services.web_sessions import session_sha256
from microfleet.settings import Settings
from microfleet.store.migrate import current_revision
from microfleet.store.schema import vehicles
from microfleet.store.web_accounts import WebAccountStore
from tests.integration.conftest import NOW_MS, FrozenClock, MigratedSchemas
from tests.integration.live_client import read_until, receive_within, until_ready
from tests.integration.test_history_day import DAY0_MS
from tests.integration.world import (
    DAY_MS,
    PLACE_SCOPES,
    TARIFF_SCOPES,
    MatrixWorld,
    World,
    bearer,
    build_matrix_world,
    build_world,
)

# none: no token. ann: owns car-a. bob: owns only car-b (a foreign owner). dan: a driver allowed car-a.
# olga: operator of city-share, car-a's fleet. eve: operator of bus-co, another fleet (car-c's).
# root: admin. devA: car-a's device credential. devB: car-b's (a foreign device).
CALLERS = ("none", "ann", "bob", "dan", "olga", "eve", "root", "devA", "devB")
# Callers who receive, of a car's command events, only those of commands they issued (docs/live.md).
DRIVERS = ("dan",)
TOKEN_OF = {"devA": "device_a", "devB": "device_b"}

# A row: method, path as the OpenAPI document has it, [case], then one cell per caller (the header's order).
# ok: allowed (a write does what it should), rej: answered 200 with the record rejected (vehicle_mismatch).
MATRIX = """
method path                                            case     none ann  bob  dan  olga eve  root devA devB
GET    /healthz                                                 ok   ok   ok   ok   ok   ok   ok   ok   ok
GET    /readyz                                                  ok   ok   ok   ok   ok   ok   ok   ok   ok
POST   /api/v1/telemetry                                        401  403  403  403  403  403  403  ok   rej
GET    /osmand                                                  401  401  401  401  401  401  401  401  401
POST   /osmand                                                  401  401  401  401  401  401  401  401  401
GET    /api/v1/vehicles                                         401  a    b    a    a    c    abc  403  403
GET    /api/v1/fleet/latest                                     401  a    b    a    a    c    abc  403  403
GET    /api/v1/vehicles/{vehicle_id}                            401  a    404  a    a    404  a    403  403
GET    /api/v1/vehicles/{vehicle_id}                   car-b    401  404  b    404  404  404  b    403  403
GET    /api/v1/vehicles/{vehicle_id}/positions                  401  a    404  a    a    404  a    403  403
POST   /api/v1/vehicles/{vehicle_id}/device-credential          401  403  404  403  ok   404  ok   403  403
POST   /api/v1/vehicles/{vehicle_id}/device-credential car-b    401  404  403  404  404  404  ok   403  403
POST   /api/v1/vehicles/{vehicle_id}/tracker-key                401  ok   404  403  ok   404  ok   403  403
GET    /api/v1/vehicles/{vehicle_id}/tracker-key                401  a    404  403  a    404  a    403  403
GET    /api/v1/vehicles/{vehicle_id}/tracker-key       car-b    401  404  b    404  404  404  b    403  403
DELETE /api/v1/vehicles/{vehicle_id}/tracker-key                401  ok   404  403  ok   404  ok   403  403
GET    /api/v1/vehicles/{vehicle_id}/drives                     401  a    404  a    a    404  a    403  403
GET    /api/v1/vehicles/{vehicle_id}/drives            car-b    401  404  b    404  404  404  b    403  403
GET    /api/v1/vehicles/{vehicle_id}/drives.csv                 401  a    404  a    a    404  a    403  403
GET    /api/v1/vehicles/{vehicle_id}/drives.geojson             401  a    404  a    a    404  a    403  403
GET    /api/v1/vehicles/{vehicle_id}/drives.gpx                 401  a    404  a    a    404  a    403  403
GET    /api/v1/vehicles/{vehicle_id}/charges                    401  a    404  a    a    404  a    403  403
GET    /api/v1/vehicles/{vehicle_id}/states                     401  a    404  a    a    404  a    403  403
GET    /api/v1/vehicles/{vehicle_id}/excluded-records           401  a    404  a    a    404  a    403  403
GET    /api/v1/vehicles/{vehicle_id}/summary                    401  a    404  a    a    404  a    403  403
GET    /api/v1/route                                            401  a    404  a    a    404  a    403  403
GET    /api/v1/route                                   car-b    401  404  b    404  404  404  b    403  403
GET    /api/v1/route                                   prior    401  ok   ok   ok   ok   ok   ok   403  403
GET    /api/v1/vehicles/{vehicle_id}/routes                     401  a    404  a    a    404  a    403  403
GET    /api/v1/vehicles/{vehicle_id}/routes            car-b    401  404  b    404  404  404  b    403  403
GET    /api/v1/vehicles/{vehicle_id}/forecast                   401  a    404  a    a    404  a    403  403
GET    /api/v1/vehicles/{vehicle_id}/battery                    401  a    404  a    a    404  a    403  403
GET    /api/v1/vehicles/{vehicle_id}/battery           car-b    401  404  b    404  404  404  b    403  403
GET    /api/v1/vehicles/{vehicle_id}/battery/history            401  a    404  a    a    404  a    403  403
GET    /api/v1/vehicles/{vehicle_id}/battery/history   car-b    401  404  b    404  404  404  b    403  403
GET    /api/v1/vehicles/{vehicle_id}/parked-drain               401  a    404  a    a    404  a    403  403
GET    /api/v1/vehicles/{vehicle_id}/parked-drain      car-b    401  404  b    404  404  404  b    403  403
GET    /api/v1/vehicles/{vehicle_id}/charging-costs             401  a    404  a    a    404  a    403  403
GET    /api/v1/vehicles/{vehicle_id}/charging-costs    car-b    401  404  b    404  404  404  b    403  403
GET    /api/v1/vehicles/{vehicle_id}/maintenance                401  a    404  a    a    404  a    403  403
GET    /api/v1/vehicles/{vehicle_id}/maintenance       car-b    401  404  b    404  404  404  b    403  403
POST   /api/v1/vehicles/{vehicle_id}/maintenance/false-alarms   401  ok   404  403  ok   404  ok   403  403
POST   /api/v1/vehicles/{vehicle_id}/service-records            401  ok   404  403  ok   404  ok   403  403
GET    /api/v1/fleets/{fleet_id}/service-plan                   401  403  403  403  ok   403  ok   403  403
POST   /api/v1/fleets/{fleet_id}/service-intervals              401  403  403  403  ok   403  ok   403  403
GET    /api/v1/fleet/summary                                    401  a    b    a    a    c    abc  403  403
GET    /api/v1/fleet/summary                           city     401  a    -    a    a    -    a    403  403
GET    /api/v1/fleet/summary/zones                              401  a    b    a    a    c    abc  403  403
GET    /api/v1/fleet/summary/zones                     city     401  a    -    a    a    -    a    403  403
GET    /api/v1/fleet/utilisation                                401  a    b    a    a    c    abc  403  403
GET    /api/v1/fleet/utilisation                       city     401  a    -    a    a    -    a    403  403
GET    /api/v1/fleet/places                                     401  a    b    a    a    c    abc  403  403
GET    /api/v1/fleet/places                            city     401  a    -    a    a    -    a    403  403
POST   /api/v1/places                                  vehicle  401  ok   404  403  ok   404  ok   403  403
POST   /api/v1/places                                  fleet    401  403  403  403  ok   403  ok   403  403
POST   /api/v1/places                                  global   401  403  403  403  403  403  ok   403  403
GET    /api/v1/places                                           401  a    b    a    a    c    abc  403  403
GET    /api/v1/places                                  car-a    401  a    404  a    a    404  a    403  403
DELETE /api/v1/places/{place_id}                       vehicle  401  ok   404  403  ok   404  ok   403  403
DELETE /api/v1/places/{place_id}                       fleet    401  403  404  403  ok   404  ok   403  403
DELETE /api/v1/places/{place_id}                       global   401  403  403  403  403  403  ok   403  403
GET    /api/v1/vehicles/{vehicle_id}/places/suggested           401  a    404  a    a    404  a    403  403
GET    /api/v1/vehicles/{vehicle_id}/place-events               401  a    404  a    a    404  a    403  403
GET    /api/v1/alerts                                           401  a    b    a    a    c    abc  403  403
POST   /api/v1/alerts/{alert_id}/acknowledge                    401  ok   404  ok   ok   404  ok   403  403
POST   /api/v1/alerts/{alert_id}/resolve                        401  ok   404  403  ok   404  ok   403  403
GET    /api/v1/alert-rules                                      401  a    b    a    a    c    abc  403  403
POST   /api/v1/alert-rules                             vehicle  401  ok   404  403  ok   404  ok   403  403
POST   /api/v1/alert-rules                             fleet    401  403  403  403  ok   403  ok   403  403
POST   /api/v1/alert-rules                             global   401  403  403  403  403  403  ok   403  403
DELETE /api/v1/alert-rules/{rule_id}                   vehicle  401  ok   404  403  ok   404  ok   403  403
DELETE /api/v1/alert-rules/{rule_id}                   fleet    401  403  404  403  ok   404  ok   403  403
DELETE /api/v1/alert-rules/{rule_id}                   global   401  403  403  403  403  403  ok   403  403
GET    /api/v1/alert-subscriptions                              401  ok   ok   ok   ok   ok   ok   403  403
POST   /api/v1/alert-subscriptions                              401  ok   ok   ok   ok   ok   ok   403  403
DELETE /api/v1/alert-subscriptions/{subscription_id}            401  ok   404  404  404  404  ok   403  403
GET    /api/v1/alert-deliveries                                 401  a    b    a    a    c    abc  403  403
GET    /api/v1/tariffs                                          401  a    b    a    a    c    abc  403  403
GET    /api/v1/tariffs/{tariff_id}                     vehicle  401  a    404  a    a    404  a    403  403
GET    /api/v1/tariffs/{tariff_id}                     fleet    401  a    404  a    a    404  a    403  403
POST   /api/v1/tariffs                                 vehicle  401  ok   404  403  ok   404  ok   403  403
POST   /api/v1/tariffs                                 fleet    401  403  403  403  ok   403  ok   403  403
POST   /api/v1/tariffs                                 global   401  403  403  403  403  403  ok   403  403
PUT    /api/v1/tariffs/{tariff_id}                     vehicle  401  ok   404  403  ok   404  ok   403  403
PUT    /api/v1/tariffs/{tariff_id}                     builtin  401  403  403  403  403  403  403  403  403
DELETE /api/v1/tariffs/{tariff_id}                     vehicle  401  ok   404  403  ok   404  ok   403  403
DELETE /api/v1/tariffs/{tariff_id}                     fleet    401  403  404  403  ok   404  ok   403  403
DELETE /api/v1/tariffs/{tariff_id}                     global   401  403  403  403  403  403  ok   403  403
POST   /api/v1/tariffs/{tariff_id}/day-ahead                    401  ok   404  403  ok   404  ok   403  403
GET    /api/v1/quarantine                                       401  a    b    403  a    c    abc  403  403
POST   /api/v1/quarantine/{quarantine_id}/replay                401  403  403  403  403  403  ok   403  403
POST   /api/v1/session                                          ok   ok   ok   ok   ok   ok   ok   ok   ok
GET    /api/v1/session                                          401  ok   ok   ok   ok   ok   ok   403  403
DELETE /api/v1/session                                          ok   ok   ok   ok   ok   ok   ok   ok   ok
POST   /api/v1/session/password                                 401  ok   ok   ok   ok   ok   ok   403  403
GET    /api/v1/tokens                                           401  ok   ok   ok   ok   ok   ok   403  403
POST   /api/v1/tokens                                           401  ok   ok   ok   ok   ok   ok   403  403
DELETE /api/v1/tokens/{token_id}                                401  ok   404  404  404  404  404  403  403
POST   /api/v1/invitations                                      401  403  403  403  403  403  ok   403  403
GET    /api/v1/invitations                                      401  403  403  403  403  403  ok   403  403
DELETE /api/v1/invitations/{invitation_id}                      401  403  403  403  403  403  ok   403  403
POST   /api/v1/session/invitation                               ok   ok   ok   ok   ok   ok   ok   ok   ok
POST   /api/v1/vehicles/{vehicle_id}/commands                   401  ok   404  403  ok   404  ok   403  403
POST   /api/v1/vehicles/{vehicle_id}/commands          booked   401  ok   404  ok   ok   404  ok   403  403
GET    /api/v1/vehicles/{vehicle_id}/commands                   401  a    404  a    a    404  a    403  403
GET    /api/v1/vehicles/{vehicle_id}/commands/{command_id}      401  a    404  404  a    404  a    403  403
GET    /api/v1/vehicles/{vehicle_id}/command-keys               401  a    404  403  a    404  a    a    403
GET    /api/v1/vehicles/{vehicle_id}/command-keys      car-b    401  404  b    404  404  404  b    403  b
POST   /api/v1/vehicles/{vehicle_id}/command-keys/rotate        401  ok   404  403  ok   404  ok   403  403
POST   /api/v1/vehicles/{vehicle_id}/bookings                   401  403  404  403  ok   404  ok   403  403
GET    /api/v1/bookings                                         401  403  403  a    a    -    a    403  403
DELETE /api/v1/bookings/{booking_id}                            401  403  404  403  ok   404  ok   403  403
GET    /api/v1/drivers/me/score                                 401  -    -    a    -    -    -    403  403
GET    /api/v1/fleets/{fleet_id}/driver-scores                  401  403  403  403  a    403  a    403  403
GET    /api/v1/fleets/{fleet_id}/driver-scores         bus-co   401  403  403  403  403  c    c    403  403
GET    /api/v1/vehicles/{vehicle_id}/drives/{drive_id}/events         401 a   404 a   a   404 a   403 403
GET    /api/v1/vehicles/{vehicle_id}/drives/{drive_id}/events other   401 a   404 404 a   404 a   403 403
GET    /api/v1/vehicles/{vehicle_id}/drives/{drive_id}/events car-b   401 404 b   404 404 404 b   403 403
GET    /api/v1/fleets/{fleet_id}/charging-plan                  401  403  403  403  ok   403  ok   403  403
GET    /api/v1/fleets/{fleet_id}/charging-plan/chargers         401  403  403  403  ok   403  ok   403  403
POST   /api/v1/fleets/{fleet_id}/charging-plan                  401  403  403  403  ok   403  ok   403  403
GET    /api/v1/fleets/{fleet_id}/charging-sites                 401  403  403  403  ok   403  ok   403  403
POST   /api/v1/fleets/{fleet_id}/charging-sites                 401  403  403  403  ok   403  ok   403  403
GET    /api/v1/fleets/{fleet_id}/charge-points                  401  403  403  403  ok   403  ok   403  403
POST   /api/v1/charging-sites/{site_id}/charge-points           401  404  404  404  ok   404  ok   403  403
"""

# Served outside the OpenAPI document on purpose, to anyone, token or not: route path -> what to fetch.
PUBLIC_OUTSIDE_OPENAPI = {
    "/openapi.json": "/openapi.json",  # the contract itself
    "/docs": "/docs",  # the Swagger UI page
    "/docs/assets": "/docs/assets/swagger-ui.css",  # Swagger UI's packaged files (a mount)
    "/": "/",  # the web app's page: the same for everyone until its script logs in (docs/web.md)
    "/static": "/static/js/app.js",  # the web app's files (a mount)
    "/map/streets.geojson": "/map/streets.geojson",  # OpenStreetMap's streets, for the web app's map
}

# WebSocket routes are never in the OpenAPI document: each has a row here instead, every cell a test of its
# own (test_websocket_matrix). 1008: closed with that code before any event; letters: the cars whose
# events the caller receives, replayed from the log and live, and no other car's.
WEBSOCKET_MATRIX = """
path           none ann  bob  dan  olga eve  root devA devB
/api/v1/live   1008 a    b    a    a    c    abc  1008 1008
"""


def _websocket_rows(table: str) -> dict[str, dict[str, int | str]]:
    header, *lines = table.strip().splitlines()
    assert tuple(header.split()[1:]) == CALLERS, "the table's columns are not CALLERS"
    rows = {}
    for line in lines:
        path, *cells = line.split()
        rows[path] = {
            c: int(cell) if cell.isdigit() else cell for c, cell in zip(CALLERS, cells, strict=True)
        }
    return rows


WEBSOCKET_ROWS = _websocket_rows(WEBSOCKET_MATRIX)

# The same feed opened by the web app's page with the caller's session cookie and this server's Origin
# (docs/web.md): the same cars as the caller's token. "none" sends a cookie that names no session; devices
# have no session (-). A foreign or missing Origin is refused for every caller (test_live_cookie_origin).
WEBSOCKET_COOKIE_MATRIX = """
path           none ann  bob  dan  olga eve  root devA devB
/api/v1/live   1008 a    b    a    a    c    abc  -    -
"""
WEBSOCKET_COOKIE_ROWS = _websocket_rows(WEBSOCKET_COOKIE_MATRIX)


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    case: str
    cells: dict[str, int | str]

    @property
    def operation(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def name(self) -> str:
        return f"{self.operation} {self.case}".strip()


def _rows(table: str) -> list[Row]:
    header, *lines = table.strip().splitlines()
    assert tuple(header.split()[3:]) == CALLERS, "the table's columns are not CALLERS"
    rows = []
    for line in lines:
        words = line.split()
        method, path, case, cells = words[0], words[1], " ".join(words[2:-9]), words[-9:]
        parsed = {c: int(cell) if cell.isdigit() else cell for c, cell in zip(CALLERS, cells, strict=True)}
        rows.append(Row(method, path, case, parsed))
    return rows


ROWS = _rows(MATRIX)


# --- the world, once per store, and how a test calls the API


@dataclass
class Ctx:
    """One store's matrix world and a client of the real app over it."""

    client: TestClient
    services: Services
    world: MatrixWorld
    secrets: list[str] = field(default_factory=list)  # what no refusal may say
    web_passwords: set[str] = field(default_factory=set)  # users given WEB_PASSWORD
    case: str = ""  # the case of the row being checked
    method: str = ""  # and its method

    @property
    def target(self) -> str:
        """The vehicle a per-vehicle row asks about: car-a, or car-b in the rows of case car-b."""
        return "car-b" if self.case == "car-b" else "car-a"

    @property
    def vehicle_path(self) -> str:
        return f"/api/v1/vehicles/{self.target}"

    def headers(self, caller: str) -> dict[str, str]:
        return {} if caller == "none" else bearer(self.world.tokens[TOKEN_OF.get(caller, caller)])

    def call(self, caller: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers(caller), **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def root(self, method: str, path: str, **kwargs: Any) -> Any:
        """An admin's call that must succeed: how a test sets up, reads back and undoes."""
        response = self.call("root", method, path, **kwargs)
        assert response.status_code in (200, 201, 204), response.text
        return None if response.status_code == 204 else response.json()


# No background derivation: a write one row makes must not rework the history other rows read. The /osmand
# rows fail authentication by design, more often than the throttle's burst allows one client.
QUIET: dict[str, Any] = {
    "history_derive_interval_s": 0,
    "alerts_interval_s": 0,  # no alert evaluation or delivery in the background either
    "charging_replan_interval_s": 0,  # no charging re-plans in the background (POST re-plans on request)
    "auth_failure_burst": 1_000_000,
}


class Worlds:
    """Each store's world, built on first use and closed at the end of the module.

    Not a parametrized module fixture: the two stores' tests interleave, and pytest would tear one world
    down and build the other at every switch.
    """

    def __init__(self, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._request = request
        self._tmp = tmp_path_factory
        self._built: dict[str, Ctx] = {}
        self.closing = ExitStack()

    def get(self, store: str) -> Ctx:
        if store not in self._built:
            self._built[store] = self._build(store)
        return self._built[store]

    def _build(self, store: str) -> Ctx:
        if store == "sqlite":
            path = self._tmp.mktemp("authorization") / "microfleet.db"
            shutil.copyfile(self._request.getfixturevalue("migrated_sqlite"), path)
            settings = Settings(database_url=f"sqlite:///{path}", **QUIET)
        else:
            schemas: MigratedSchemas = self._request.getfixturevalue("migrated_schemas")
            schema = schemas.take()
            self.closing.callback(schemas.give_back, schema)
            database_url = self._request.getfixturevalue("postgres_database")
            settings = Settings(database_url=database_url, database_schema=schema, **QUIET)
        services = build_services(settings, migrate=False, clock=FrozenClock(NOW_MS))
        self.closing.callback(services.close)
        world = build_matrix_world(services, DAY0_MS, NOW_MS)
        client = self.closing.enter_context(TestClient(create_app(settings, services)))
        with services.engine.connect() as conn:
            names = [str(name) for name in conn.execute(select(vehicles.c.name)).scalars()]
        return Ctx(client, services, world, [*names, *world.place_names.values()])


@pytest.fixture(scope="module")
def worlds(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worlds]:
    built = Worlds(request, tmp_path_factory)
    with built.closing:
        yield built


# --- what every answer is checked against


def allowed(ctx: Ctx, response: httpx.Response, cell: int | str) -> httpx.Response | None:
    """The response of an allowed call; None once a refusal is checked: its status, an error body, no data."""
    if isinstance(cell, int):
        assert response.status_code == cell, response.text
        body = response.json()
        assert set(body) == {"code", "message"} and body["message"], body
        for secret in ctx.secrets:
            assert secret not in response.text
        return None
    assert response.status_code in (200, 201, 204), response.text
    return response


def cars(cell: int | str) -> list[str]:
    """The cars a cell says the answer holds: 'ab' is car-a and car-b, '-' none."""
    assert isinstance(cell, str)
    return [f"car-{c}" for c in cell if c != "-"]


def applying(vehicle_ids: list[str], prefix: str = "p") -> list[str]:
    """The places (or tariffs, prefix 't') that apply to these cars: theirs, their fleets', the global one."""
    fleets = {"car-a": "city-share", "car-c": "bus-co"}
    out = set()
    for other_id, (vehicle_id, fleet_id) in PLACE_SCOPES.items():
        if (vehicle_id is None and fleet_id is None) or vehicle_id in vehicle_ids:
            out.add(other_id)
        if fleet_id is not None and fleet_id in {fleets.get(v) for v in vehicle_ids}:
            out.add(other_id)
    return sorted(f"{prefix}{i[1:]}" for i in out)


def per_day(ctx: Ctx, vehicle_ids: list[str]) -> list[tuple[str, int, int, int]]:
    """(period start, vehicles, drives, charges) per UTC day, as a summary over these cars must say."""
    out = []
    for day_ms in (ctx.world.day0_ms - DAY_MS, ctx.world.day0_ms):

        def of_day(starts: list[int]) -> int:
            return sum(day_ms <= s < day_ms + DAY_MS for s in starts)  # noqa: B023

        drives = sum(of_day(ctx.world.cars[v].drives) for v in vehicle_ids)
        charges = sum(of_day(ctx.world.cars[v].charges) for v in vehicle_ids)
        if drives or charges:
            day = dt.datetime.fromtimestamp(day_ms / 1000, dt.UTC).date().isoformat()
            out.append((day, len(vehicle_ids), drives, charges))
    return out


CAR_A = "/api/v1/vehicles/car-a"
CIRCLE = {"type": "circle", "lat_deg": 31.2, "lon_deg": 121.4, "radius_m": 100}
TARIFF = {"kind": "per_kwh", "currency": "EUR", "price_per_kwh": 0.3}
SCOPES: dict[str, dict[str, Any]] = {
    "vehicle": {"vehicle_id": "car-a"},
    "fleet": {"fleet_id": "city-share"},
    "global": {"is_global": True},
}

Check = Callable[[Ctx, str, Any], None]
CHECKS: dict[str, Check] = {}


def check(*names: str) -> Callable[[Check], Check]:
    """Register the check of the rows with these names ('METHOD path[ case]')."""

    def register(fn: Check) -> Check:
        for name in names:
            CHECKS[name] = fn
        return fn

    return register


# --- reads and writes, one check per row


@check("GET /healthz")
def _healthz(ctx: Ctx, caller: str, cell: str) -> None:
    response = ctx.call(caller, "GET", "/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


@check("GET /readyz")
def _readyz(ctx: Ctx, caller: str, cell: str) -> None:
    response = ctx.call(caller, "GET", "/readyz")
    revision = current_revision(ctx.services.engine)
    assert (response.status_code, response.json()) == (200, {"status": "ready", "schema_revision": revision})


@check("POST /api/v1/telemetry")
def _post_telemetry(ctx: Ctx, caller: str, cell: int | str) -> None:
    # A minute of its own for each caller, after the world's records (positions rows never read it) and
    # where car-a already was, so the latest position the detail row checks stays car-a's.
    ts_ms = ctx.world.day0_ms + 14 * 3_600_000 + CALLERS.index(caller) * 60_000
    lat, lon = ctx.world.cars["car-a"].last_position
    record = {"vehicle_id": "car-a", "ts_ms": ts_ms, "soc_pct": 50.0, "lat_deg": lat, "lon_deg": lon}
    response = allowed(ctx, ctx.call(caller, "POST", "/api/v1/telemetry", json=[record]), cell)
    if response is not None:
        (result,) = response.json()["results"]
        expected = {"ok": ("accepted", None), "rej": ("rejected", "vehicle_mismatch")}[str(cell)]
        assert (result["status"], result["reason"]) == expected
    stored = ctx.root("GET", f"{CAR_A}/positions", params={"from_ms": ts_ms, "to_ms": ts_ms + 1})
    assert [p["ts_ms"] for p in stored["positions"]] == ([ts_ms] if cell == "ok" else [])


@check("GET /api/v1/vehicles")
def _list_vehicles(ctx: Ctx, caller: str, cell: int | str) -> None:
    response = allowed(ctx, ctx.call(caller, "GET", "/api/v1/vehicles"), cell)
    if response is not None:
        assert [v["vehicle_id"] for v in response.json()] == cars(cell)


@check("GET /api/v1/fleet/latest")
def _fleet_latest(ctx: Ctx, caller: str, cell: int | str) -> None:
    params = {"signals": "lat_deg,lon_deg"}
    response = allowed(ctx, ctx.call(caller, "GET", "/api/v1/fleet/latest", params=params), cell)
    if response is not None:
        body = response.json()
        assert [v["vehicle_id"] for v in body] == cars(cell)
        for entry in body:  # each car's own last position: another car's state would differ
            signals = entry["latest"]["signals"]
            assert set(signals) == {"lat_deg", "lon_deg"}
            where = (signals["lat_deg"]["value"], signals["lon_deg"]["value"])
            assert where == ctx.world.cars[entry["vehicle_id"]].last_position


@check("GET /api/v1/vehicles/{vehicle_id}/battery", "GET /api/v1/vehicles/{vehicle_id}/battery car-b")
def _vehicle_battery(ctx: Ctx, caller: str, cell: int | str) -> None:
    response = allowed(ctx, ctx.call(caller, "GET", f"{ctx.vehicle_path}/battery"), cell)
    if response is not None:  # the car's own newest SoC and its time (no two cars share one), nothing fitted
        body = response.json()
        soc = (ctx.services.telemetry.latest_state(ctx.target) or {})["signals"]["soc_pct"]
        assert (body["vehicle_id"], body["soc"]["bms_soc_pct"], body["soc"]["at_ms"]) == (
            ctx.target,
            soc["value"],
            soc["ts_ms"],
        )
        assert body["soh"]["available"] is False


@check(
    "GET /api/v1/vehicles/{vehicle_id}/battery/history",
    "GET /api/v1/vehicles/{vehicle_id}/battery/history car-b",
)
def _battery_history(ctx: Ctx, caller: str, cell: int | str) -> None:
    ctx.services.battery.refit(ctx.target)  # two days: too few sessions for a trend, but measured ones
    response = allowed(ctx, ctx.call(caller, "GET", f"{ctx.vehicle_path}/battery/history"), cell)
    if response is not None:  # the sessions measured are the target car's own charges (no two cars share one)
        body = response.json()
        assert body["vehicle_id"] == ctx.target and body["available"] is False
        assert [m["ts_ms"] for m in body["measurements"]] == ctx.world.cars[ctx.target].charges


@check(
    "GET /api/v1/vehicles/{vehicle_id}/parked-drain", "GET /api/v1/vehicles/{vehicle_id}/parked-drain car-b"
)
def _parked_drain(ctx: Ctx, caller: str, cell: int | str) -> None:
    from_ms, to_ms = ctx.world.window
    path = f"{ctx.vehicle_path}/parked-drain?from_ms={from_ms}&to_ms={to_ms}"
    response = allowed(ctx, ctx.call(caller, "GET", path), cell)
    if response is not None:  # every spell starts a parked or asleep span of the target car's own
        body = response.json()
        parked = {t for status, t in ctx.world.cars[ctx.target].states if status in ("parked", "asleep")}
        starts = {s["start_ts_ms"] for s in body["spells"]}
        assert body["vehicle_id"] == ctx.target and starts and starts <= parked


@check(
    "GET /api/v1/vehicles/{vehicle_id}/charging-costs",
    "GET /api/v1/vehicles/{vehicle_id}/charging-costs car-b",
)
def _charging_costs(ctx: Ctx, caller: str, cell: int | str) -> None:
    from_ms, to_ms = ctx.world.window
    path = f"{ctx.vehicle_path}/charging-costs?period=week&from_ms={from_ms}&to_ms={to_ms}"
    response = allowed(ctx, ctx.call(caller, "GET", path), cell)
    if response is not None:  # the target car's own charges, costed at its own places' tariffs
        body = response.json()
        own = ctx.services.history.charges(ctx.target, from_ms, to_ms, 100)
        assert body["vehicle_id"] == ctx.target and body["charges"] == len(ctx.world.cars[ctx.target].charges)
        assert sum(body["total_cost"].values()) == pytest.approx(sum(c.cost or 0.0 for c in own))


@check("GET /api/v1/vehicles/{vehicle_id}/maintenance", "GET /api/v1/vehicles/{vehicle_id}/maintenance car-b")
def _vehicle_maintenance(ctx: Ctx, caller: str, cell: int | str) -> None:
    ctx.services.maintenance.evaluate(ctx.target)
    response = allowed(ctx, ctx.call(caller, "GET", f"{ctx.vehicle_path}/maintenance"), cell)
    # the findings were judged on the target car's own newest record (no two cars share one)
    if response is not None:
        body = response.json()
        last = (ctx.services.telemetry.latest_state(ctx.target) or {})["last_ts_ms"]
        assert body["vehicle_id"] == ctx.target and body["findings"]
        assert {f["data_to_ms"] for f in body["findings"] if f["detector"] != "capacity"} == {last}


@check("POST /api/v1/vehicles/{vehicle_id}/maintenance/false-alarms")
def _maintenance_false_alarm(ctx: Ctx, caller: str, cell: int | str) -> None:
    ctx.services.maintenance.evaluate("car-a")
    marks = ctx.root("GET", f"{CAR_A}/maintenance")["false_alarms"].get("12v_battery", 0)
    body = {"condition": "12v_battery"}
    response = allowed(ctx, ctx.call(caller, "POST", f"{CAR_A}/maintenance/false-alarms", json=body), cell)
    after = ctx.root("GET", f"{CAR_A}/maintenance")["false_alarms"].get("12v_battery", 0)
    assert after == marks + (response is not None)


@check("POST /api/v1/vehicles/{vehicle_id}/service-records")
def _add_service_record(ctx: Ctx, caller: str, cell: int | str) -> None:
    item = f"check-{caller}-{secrets.token_hex(3)}"
    body = {"item": item, "done_at_ms": NOW_MS - DAY_MS}
    response = allowed(ctx, ctx.call(caller, "POST", f"{CAR_A}/service-records", json=body), cell)
    records = ctx.root("GET", f"{CAR_A}/maintenance")["records"]
    assert (item in {r["item"] for r in records}) == (response is not None)


@check("GET /api/v1/fleets/{fleet_id}/service-plan")
def _service_plan(ctx: Ctx, caller: str, cell: int | str) -> None:
    response = allowed(ctx, ctx.call(caller, "GET", "/api/v1/fleets/city-share/service-plan"), cell)
    if response is not None:  # city-share's cars only: car-a, never bus-co's car-c
        plan = response.json()
        assert plan["fleet_id"] == "city-share"
        assert [c["vehicle_id"] for c in plan["cars"]] == ["car-a"]
        assert {v["vehicle_id"] for v in plan["visits"]} <= {"car-a"}


@check("POST /api/v1/fleets/{fleet_id}/service-intervals")
def _add_service_interval(ctx: Ctx, caller: str, cell: int | str) -> None:
    item = f"every-{caller}-{secrets.token_hex(3)}"
    body = {"item": item, "every_days": 30}
    path = "/api/v1/fleets/city-share/service-intervals"
    response = allowed(ctx, ctx.call(caller, "POST", path, json=body), cell)
    due = ctx.root("GET", f"{CAR_A}/maintenance")["due"]
    assert (item in {d["item"] for d in due}) == (response is not None)


@check("GET /api/v1/vehicles/{vehicle_id}", "GET /api/v1/vehicles/{vehicle_id} car-b")
def _vehicle(ctx: Ctx, caller: str, cell: int | str) -> None:
    response = allowed(ctx, ctx.call(caller, "GET", ctx.vehicle_path), cell)
    if response is not None:
        body = response.json()
        registered = ctx.services.accounts.require_vehicle(ctx.target)
        assert (body["vehicle_id"], body["name"], body["fleet_id"]) == (
            ctx.target,
            registered.name,
            registered.fleet_id,
        )
        signals = body["latest"]["signals"]
        where = (signals["lat_deg"]["value"], signals["lon_deg"]["value"])
        assert where == ctx.world.cars[ctx.target].last_position  # the cars' homes are 1.1 km apart


@check("GET /api/v1/vehicles/{vehicle_id}/positions")
def _positions(ctx: Ctx, caller: str, cell: int | str) -> None:
    from_ms, to_ms = ctx.world.window
    params = {"from_ms": from_ms, "to_ms": to_ms, "limit": 10_000}
    response = allowed(ctx, ctx.call(caller, "GET", f"{CAR_A}/positions", params=params), cell)
    if response is not None:
        body = response.json()
        got = [(p["ts_ms"], p["lat_deg"], p["lon_deg"]) for p in body["positions"]]
        assert (body["vehicle_id"], got, body["next_from_ms"]) == (
            "car-a",
            ctx.world.cars["car-a"].positions,
            None,
        )


def _credentials(ctx: Ctx, vehicle_id: str) -> tuple[Any, ...]:
    # No API reads a credential back (it is shown once), so the store's row is read: hashes and expiry.
    with ctx.services.engine.connect() as conn:
        row = conn.execute(select(vehicles).where(vehicles.c.vehicle_id == vehicle_id)).one()
    return tuple(row)


@check(
    "POST /api/v1/vehicles/{vehicle_id}/device-credential",
    "POST /api/v1/vehicles/{vehicle_id}/device-credential car-b",
)
def _rotate(ctx: Ctx, caller: str, cell: int | str) -> None:
    before = {v: _credentials(ctx, v) for v in ("car-a", "car-b")}
    response = allowed(ctx, ctx.call(caller, "POST", f"{ctx.vehicle_path}/device-credential"), cell)
    if response is None:
        assert {v: _credentials(ctx, v) for v in before} == before
        return
    other = "car-b" if ctx.target == "car-a" else "car-a"
    assert _credentials(ctx, other) == before[other]
    body = response.json()
    assert body["vehicle_id"] == ctx.target and _credentials(ctx, ctx.target) != before[ctx.target]
    principal = ctx.services.accounts.authenticate(body["device_credential"], "test")
    assert principal == DevicePrincipal(ctx.target)
    # The car takes its new credential, as its unit must before the overlap ends: a second rotation ends
    # the first credential, and other rows still call as its device.
    ctx.world.tokens[f"device_{ctx.target[-1]}"] = body["device_credential"]


@check("GET /osmand", "POST /osmand")
def _osmand(ctx: Ctx, caller: str, cell: int | str) -> None:
    # A phone authenticates with the car's tracker key in ``id``: the caller's bearer token, sent as the
    # header and as the key, is neither (test_osmand_takes_a_tracker_key shows a key is taken).
    ts_ms = ctx.world.day0_ms + 15 * 3_600_000 + CALLERS.index(caller) * 60_000
    lat, lon = ctx.world.cars["car-a"].last_position
    report = {"lat": lat, "lon": lon, "timestamp": ts_ms}
    if caller != "none":
        report["id"] = ctx.world.tokens[TOKEN_OF.get(caller, caller)]
    response = ctx.call(caller, ctx.method, "/osmand", params=report)
    assert allowed(ctx, response, cell) is None
    stored = ctx.root("GET", f"{CAR_A}/positions", params={"from_ms": ts_ms, "to_ms": ts_ms + 1})
    assert stored["positions"] == []


@check(
    "POST /api/v1/vehicles/{vehicle_id}/tracker-key",
    "GET /api/v1/vehicles/{vehicle_id}/tracker-key",
    "GET /api/v1/vehicles/{vehicle_id}/tracker-key car-b",
    "DELETE /api/v1/vehicles/{vehicle_id}/tracker-key",
)
def _tracker_key_row(ctx: Ctx, caller: str, cell: int | str) -> None:
    # The key is shown once: what is stored is read back masked, as the service lists it.
    def keys() -> dict[str, list[Any]]:
        listed = ctx.services.tracker_keys.list()
        return {v: [k for k in listed if k.vehicle_id == v] for v in ("car-a", "car-b")}

    before = keys()
    assert before["car-a"] and before["car-b"]
    response = allowed(ctx, ctx.call(caller, ctx.method, f"{ctx.vehicle_path}/tracker-key"), cell)
    after = keys()
    other = "car-b" if ctx.target == "car-a" else "car-a"
    assert after[other] == before[other]
    if response is None or ctx.method == "GET":
        assert after == before
    if response is None:
        return
    if ctx.method == "GET":
        (key,) = after[ctx.target]
        assert response.json() == {
            "vehicle_id": ctx.target,
            "key_hint": key.key_hint,
            "issued_at_ms": key.issued_at_ms,
        }
    elif ctx.method == "POST":
        body = response.json()
        assert (body["vehicle_id"], body["replaced"]) == (ctx.target, True)
        assert ctx.services.tracker_keys.authenticate(body["tracker_key"], "test") == ctx.target
        ctx.world.tokens[f"tracker_{ctx.target[-1]}"] = body["tracker_key"]
    else:
        assert response.status_code == 204 and after[ctx.target] == []
        issued = ctx.services.tracker_keys.issue(ctx.target, replace=True)  # undone, for the other rows
        ctx.world.tokens[f"tracker_{ctx.target[-1]}"] = issued.key


def _history_rows(
    path: str, key: Callable[[dict[str, Any]], tuple[Any, ...]], expected: str, *cases: str
) -> None:
    @check(*(f"GET /api/v1/vehicles/{{vehicle_id}}/{path} {case}".strip() for case in ("", *cases)))
    def _read(ctx: Ctx, caller: str, cell: int | str) -> None:
        response = allowed(ctx, ctx.call(caller, "GET", f"{ctx.vehicle_path}/{path}"), cell)
        if response is not None:
            want = getattr(ctx.world.cars[ctx.target], expected)
            assert [key(item) for item in _items(path, response)] == [
                (ctx.target, *(w if isinstance(w, tuple) else (w,))) for w in want
            ]


def _items(path: str, response: httpx.Response) -> list[dict[str, Any]]:
    """An export's or a list's items as dicts (CSV rows keep their text)."""
    if path.endswith(".csv"):
        assert response.headers["content-type"].startswith("text/csv")
        return list(csv.DictReader(io.StringIO(response.text)))
    if path.endswith(".geojson"):
        body = response.json()
        assert body["type"] == "FeatureCollection"
        return [f["properties"] for f in body["features"]]
    if path.endswith(".gpx"):  # a track per drive: its car (src) and its start (name, UTC ISO 8601)
        assert response.headers["content-type"].startswith("application/gpx+xml")
        ns = {"g": "http://www.topografix.com/GPX/1/1"}
        tracks = ElementTree.fromstring(response.text).findall("g:trk", ns)
        starts = [dt.datetime.fromisoformat(trk.findtext("g:name", "", ns)) for trk in tracks]
        return [
            {"vehicle_id": trk.findtext("g:src", namespaces=ns), "start_ts_ms": round(t.timestamp() * 1e3)}
            for trk, t in zip(tracks, starts, strict=True)
        ]
    items: list[dict[str, Any]] = response.json()
    return items


_history_rows("drives", lambda d: (d["vehicle_id"], d["start_ts_ms"]), "drives", "car-b")
_history_rows("drives.csv", lambda d: (d["vehicle_id"], int(d["start_ts_ms"])), "drives")
_history_rows("drives.geojson", lambda d: (d["vehicle_id"], d["start_ts_ms"]), "drives")
_history_rows("drives.gpx", lambda d: (d["vehicle_id"], d["start_ts_ms"]), "drives")
_history_rows("charges", lambda c: (c["vehicle_id"], c["start_ts_ms"]), "charges")
_history_rows("states", lambda s: (s["vehicle_id"], s["status"], s["start_ts_ms"]), "states")
_history_rows("excluded-records", lambda e: (e["vehicle_id"], e["ts_ms"], e["reason"]), "excluded")


def _summary(body: list[dict[str, Any]]) -> list[tuple[str, int, int, int]]:
    return [(s["period_start"], s["vehicle_count"], s["drive_count"], s["charge_count"]) for s in body]


@check("GET /api/v1/vehicles/{vehicle_id}/summary")
def _vehicle_summary(ctx: Ctx, caller: str, cell: int | str) -> None:
    response = allowed(ctx, ctx.call(caller, "GET", f"{CAR_A}/summary", params={"period": "day"}), cell)
    if response is not None:
        assert _summary(response.json()) == per_day(ctx, cars(cell))


@check("GET /api/v1/vehicles/{vehicle_id}/routes", "GET /api/v1/vehicles/{vehicle_id}/routes car-b")
def _vehicle_routes(ctx: Ctx, caller: str, cell: int | str) -> None:
    response = allowed(ctx, ctx.call(caller, "GET", f"{ctx.vehicle_path}/routes"), cell)
    if response is not None:  # two days are too few to learn from: the car's own drives, counted
        body = response.json()
        mine = [t for t in ctx.world.cars[ctx.target].drives if t <= NOW_MS]
        assert (body["vehicle_id"], body["status"], body["drives"], body["newest_drive_ts_ms"]) == (
            ctx.target,
            "needs_more_drives",
            len(mine),
            max(mine),
        )


@check("GET /api/v1/vehicles/{vehicle_id}/forecast")
def _vehicle_forecast(ctx: Ctx, caller: str, cell: int | str) -> None:
    at_ms = DAY0_MS + 3 * DAY_MS
    response = allowed(ctx, ctx.call(caller, "GET", f"{CAR_A}/forecast", params={"at_ms": at_ms}), cell)
    if response is not None:
        body = response.json()
        mine = ctx.world.cars["car-a"].drives
        assert (body["vehicle_id"], body["drives"], body["newest_drive_ts_ms"], body["at_ts_ms"]) == (
            "car-a",
            len(mine),
            max(mine),
            at_ms,
        )


@check("GET /api/v1/route", "GET /api/v1/route car-b", "GET /api/v1/route prior")
def _route(ctx: Ctx, caller: str, cell: int | str) -> None:
    # People's Square to the Bund, on the shipped Shanghai extract; with a car, that car's own model
    params: dict[str, Any] = {"from": "31.2304,121.4737", "to": "31.2400,121.4900", "hour_local": 8}
    if ctx.case != "prior":
        params["vehicle_id"] = ctx.target
    response = allowed(ctx, ctx.call(caller, "GET", "/api/v1/route", params=params), cell)
    if response is not None:
        body = response.json()
        mine = [t for t in ctx.world.cars[ctx.target].drives if t <= NOW_MS]
        expected = None if ctx.case == "prior" else ctx.target
        assert (body["vehicle_id"], body["route"]["objective"]) == (expected, "energy")
        assert body["drives_learned"] <= (0 if expected is None else len(mine))


@check("GET /api/v1/fleet/summary", "GET /api/v1/fleet/summary city")
def _fleet_summary(ctx: Ctx, caller: str, cell: int | str) -> None:
    # The city case asks for city-share's figures by name: whoever sees none of its cars gets none.
    params = {"period": "day", **({"fleet_id": "city-share"} if ctx.case == "city" else {})}
    response = allowed(ctx, ctx.call(caller, "GET", "/api/v1/fleet/summary", params=params), cell)
    if response is not None:
        assert _summary(response.json()) == per_day(ctx, cars(cell))


@check("GET /api/v1/fleet/summary/zones", "GET /api/v1/fleet/summary/zones city")
def _zone_summary(ctx: Ctx, caller: str, cell: int | str) -> None:
    params = {"period": "day", **({"fleet_id": "city-share"} if ctx.case == "city" else {})}
    response = allowed(ctx, ctx.call(caller, "GET", "/api/v1/fleet/summary/zones", params=params), cell)
    if response is not None:
        zones = response.json()
        days: dict[str, list[int]] = {}
        for z in zones:  # the zones of a day sum to the fleet's figures of that day
            day = days.setdefault(z["period_start"], [z["vehicle_count"], 0, 0])
            assert z["vehicle_count"] == day[0]
            day[1] += z["drive_count"]
            day[2] += z["charge_count"]
        assert [(d, *figures) for d, figures in days.items()] == per_day(ctx, cars(cell))
        assert {z["zone_place_id"] for z in zones} <= {*applying(cars(cell)), None}


def _hour_window(ctx: Ctx) -> dict[str, Any]:
    first = ctx.world.window[0] // 3_600_000 * 3_600_000
    return {"from_ms": first, "to_ms": NOW_MS}


@check("GET /api/v1/fleet/utilisation", "GET /api/v1/fleet/utilisation city")
def _utilisation(ctx: Ctx, caller: str, cell: int | str) -> None:
    from microfleet.domain.utilisation import utilisation_by_bucket

    window = _hour_window(ctx)
    params = {**window, **({"fleet_id": "city-share"} if ctx.case == "city" else {})}
    response = allowed(ctx, ctx.call(caller, "GET", "/api/v1/fleet/utilisation", params=params), cell)
    if response is not None:  # the hours of exactly these cars' states, as the admin reads them
        spans = {v: ctx.root("GET", f"/api/v1/vehicles/{v}/states") for v in cars(cell)}
        expected = utilisation_by_bucket(spans, window["from_ms"], NOW_MS, 3_600_000, NOW_MS)
        hours = response.json()
        assert [(h["start_ms"], h["vehicle_count"]) for h in hours] == [
            (b.start_ms, b.vehicle_count) for b in expected
        ]
        for h, b in zip(hours, expected, strict=True):
            assert h["driving"] == round(b.shares["driving"], 4)
            assert h["available"] == round(b.available_share, 4)


@check("GET /api/v1/fleet/places", "GET /api/v1/fleet/places city")
def _places_activity(ctx: Ctx, caller: str, cell: int | str) -> None:
    params = {**_hour_window(ctx), **({"fleet_id": "city-share"} if ctx.case == "city" else {})}
    response = allowed(ctx, ctx.call(caller, "GET", "/api/v1/fleet/places", params=params), cell)
    if response is not None:
        rows = response.json()
        # only the places that apply to these cars; each of these cars somewhere, no other car anywhere
        assert {r["place_id"] for r in rows} - {None} <= set(applying(cars(cell)))
        assert {v for r in rows for v in r["cars_now"]} == set(cars(cell))
        drives = sum(len([t for t in ctx.world.cars[v].drives if t < NOW_MS]) for v in cars(cell))
        charges = sum(len([t for t in ctx.world.cars[v].charges if t < NOW_MS]) for v in cars(cell))
        assert sum(r["arrivals"] for r in rows) == drives
        assert sum(r["charges"] for r in rows) == charges


def _place_ids(ctx: Ctx) -> set[str]:
    return {p["place_id"] for p in ctx.root("GET", "/api/v1/places")}


@check("POST /api/v1/places vehicle", "POST /api/v1/places fleet", "POST /api/v1/places global")
def _create_place(ctx: Ctx, caller: str, cell: int | str) -> None:
    scope = SCOPES[ctx.case]
    before = _place_ids(ctx)
    place = {"name": f"Gate of {caller}", "geometry": CIRCLE, **scope}
    response = allowed(ctx, ctx.call(caller, "POST", "/api/v1/places", json=place), cell)
    if response is None:
        assert _place_ids(ctx) == before
        return
    body = response.json()
    try:
        assert response.status_code == 201 and body["name"] == place["name"] and body["scope"] == ctx.case
        assert (body["vehicle_id"], body["fleet_id"]) == (scope.get("vehicle_id"), scope.get("fleet_id"))
        assert _place_ids(ctx) == before | {body["place_id"]}
    finally:
        ctx.root("DELETE", f"/api/v1/places/{body['place_id']}")


@check("GET /api/v1/places", "GET /api/v1/places car-a")
def _list_places(ctx: Ctx, caller: str, cell: int | str) -> None:
    params = {"vehicle_id": "car-a"} if ctx.case == "car-a" else {}
    response = allowed(ctx, ctx.call(caller, "GET", "/api/v1/places", params=params), cell)
    if response is not None:
        got = sorted((p["place_id"], p["name"]) for p in response.json())
        assert got == [(p, ctx.world.place_names[p]) for p in applying(cars(cell))]


@check("DELETE /api/v1/places/{place_id} vehicle", "DELETE /api/v1/places/{place_id} fleet")
@check("DELETE /api/v1/places/{place_id} global")
def _delete_place(ctx: Ctx, caller: str, cell: int | str) -> None:
    place = {"name": "To delete", "geometry": CIRCLE, **SCOPES[ctx.case]}
    place_id = ctx.root("POST", "/api/v1/places", json=place)["place_id"]
    try:
        response = allowed(ctx, ctx.call(caller, "DELETE", f"/api/v1/places/{place_id}"), cell)
        assert (place_id in _place_ids(ctx)) == (response is None)
    finally:
        if place_id in _place_ids(ctx):
            ctx.root("DELETE", f"/api/v1/places/{place_id}")


@check("GET /api/v1/vehicles/{vehicle_id}/places/suggested")
def _suggested(ctx: Ctx, caller: str, cell: int | str) -> None:
    # Car-a ends a drive at its far end on each day: one place with two visits (car-b's is 1.1 km away).
    response = allowed(
        ctx, ctx.call(caller, "GET", f"{CAR_A}/places/suggested", params={"min_visits": 2}), cell
    )
    if response is not None:
        (suggested,) = response.json()
        far_lat, far_lon = ctx.world.cars["car-a"].far_end
        assert suggested["visits"] == 2
        assert (suggested["lat_deg"], suggested["lon_deg"]) == pytest.approx((far_lat, far_lon), abs=0.002)


@check("GET /api/v1/vehicles/{vehicle_id}/place-events")
def _place_events(ctx: Ctx, caller: str, cell: int | str) -> None:
    # Every place of the world covers car-a's home: one that does not apply to car-a showing up is a leak.
    from_ms, to_ms = ctx.world.window
    params = {"from_ms": from_ms, "to_ms": to_ms}
    response = allowed(ctx, ctx.call(caller, "GET", f"{CAR_A}/place-events", params=params), cell)
    if response is not None:
        body = response.json()
        mine = applying(["car-a"])
        assert body["inside_at_start"] == mine
        assert sorted({(e["place_id"], e["place_name"]) for e in body["events"]}) == [
            (p, ctx.world.place_names[p]) for p in mine
        ]


# --- alerts: each car has one seeded alert, a rule of every scope applies, each user has a subscription


@check("GET /api/v1/alerts")
def _list_alerts(ctx: Ctx, caller: str, cell: int | str) -> None:
    response = allowed(ctx, ctx.call(caller, "GET", "/api/v1/alerts", params={"limit": 1000}), cell)
    if response is not None:
        body = response.json()
        seeded = {a: v for v, a in ctx.world.alert_ids.items()}
        # Other rows raise alerts on car-a: the seeded ones are compared exactly, and every alert must be of
        # a car the caller sees.
        assert sorted(seeded[a["alert_id"]] for a in body if a["alert_id"] in seeded) == cars(cell)
        assert {a["vehicle_id"] for a in body} <= set(cars(cell))


def _fresh_alert(ctx: Ctx, caller: str, verb: str) -> int:
    """An open alert on car-a of this test's own."""
    alert = ctx.services.alerts.raise_external("car-a", "matrix", f"{verb}-{caller}", Severity.INFO, "Fresh")
    return alert.alert_id


def _alert_step(ctx: Ctx, caller: str, cell: int | str, verb: str, status: str) -> None:
    alert_id = _fresh_alert(ctx, caller, verb)
    before = ctx.services.alerts.all_alerts(vehicle_id="car-a", limit=10_000)
    response = allowed(ctx, ctx.call(caller, "POST", f"/api/v1/alerts/{alert_id}/{verb}"), cell)
    after = {a.alert_id: a for a in ctx.services.alerts.all_alerts(vehicle_id="car-a", limit=10_000)}
    try:
        if response is None:
            assert after[alert_id] == next(a for a in before if a.alert_id == alert_id)
        else:
            assert response.json()["status"] == status == after[alert_id].status.value
    finally:
        ctx.services.alerts.resolve(alert_id)


@check("POST /api/v1/alerts/{alert_id}/acknowledge")
def _acknowledge(ctx: Ctx, caller: str, cell: int | str) -> None:
    _alert_step(ctx, caller, cell, "acknowledge", "acknowledged")


@check("POST /api/v1/alerts/{alert_id}/resolve")
def _resolve(ctx: Ctx, caller: str, cell: int | str) -> None:
    _alert_step(ctx, caller, cell, "resolve", "resolved")


def _rule_names(ctx: Ctx, body: list[dict[str, Any]]) -> list[str]:
    names = {rule_id: name for name, rule_id in ctx.world.rule_ids.items()}
    return sorted(names[r["rule_id"]] for r in body if r["rule_id"] in names)


@check("GET /api/v1/alert-rules")
def _list_rules(ctx: Ctx, caller: str, cell: int | str) -> None:
    response = allowed(ctx, ctx.call(caller, "GET", "/api/v1/alert-rules"), cell)
    if response is not None:
        assert _rule_names(ctx, response.json()) == applying(cars(cell), "r")


def _rule_ids(ctx: Ctx) -> set[int]:
    return {r["rule_id"] for r in ctx.root("GET", "/api/v1/alert-rules")}


@check("POST /api/v1/alert-rules vehicle", "POST /api/v1/alert-rules fleet")
@check("POST /api/v1/alert-rules global")
def _create_rule(ctx: Ctx, caller: str, cell: int | str) -> None:
    before = _rule_ids(ctx)
    rule = {"kind": "soc_low", "params": {"below_pct": 15}, **SCOPES[ctx.case]}
    response = allowed(ctx, ctx.call(caller, "POST", "/api/v1/alert-rules", json=rule), cell)
    if response is None:
        assert _rule_ids(ctx) == before
        return
    body = response.json()
    try:
        assert (response.status_code, body["scope"], body["params"]["below_pct"]) == (201, ctx.case, 15.0)
        assert _rule_ids(ctx) == before | {body["rule_id"]}
    finally:
        ctx.root("DELETE", f"/api/v1/alert-rules/{body['rule_id']}")


@check("DELETE /api/v1/alert-rules/{rule_id} vehicle", "DELETE /api/v1/alert-rules/{rule_id} fleet")
@check("DELETE /api/v1/alert-rules/{rule_id} global")
def _delete_rule(ctx: Ctx, caller: str, cell: int | str) -> None:
    rule = {"kind": "soc_low", **SCOPES[ctx.case]}
    rule_id = ctx.root("POST", "/api/v1/alert-rules", json=rule)["rule_id"]
    try:
        response = allowed(ctx, ctx.call(caller, "DELETE", f"/api/v1/alert-rules/{rule_id}"), cell)
        assert (rule_id in _rule_ids(ctx)) == (response is None)
    finally:
        if rule_id in _rule_ids(ctx):
            ctx.root("DELETE", f"/api/v1/alert-rules/{rule_id}")


def _user_id(ctx: Ctx, caller: str) -> int:
    return ctx.services.alerts.user_id_of(caller)


@check("GET /api/v1/alert-subscriptions")
def _list_subscriptions(ctx: Ctx, caller: str, cell: int | str) -> None:
    response = allowed(ctx, ctx.call(caller, "GET", "/api/v1/alert-subscriptions"), cell)
    if response is not None:
        body = response.json()
        assert {s["user_id"] for s in body} == {_user_id(ctx, caller)}
        assert ctx.world.subscription_ids[caller] in {s["subscription_id"] for s in body}


def _subscription_ids(ctx: Ctx) -> set[int]:
    return {s.subscription_id for s in ctx.services.alerts.all_subscriptions()}


@check("POST /api/v1/alert-subscriptions")
def _create_subscription(ctx: Ctx, caller: str, cell: int | str) -> None:
    before = _subscription_ids(ctx)
    body = {"channel_url": "json://127.0.0.1:9/new", "min_severity": "warning"}
    response = allowed(ctx, ctx.call(caller, "POST", "/api/v1/alert-subscriptions", json=body), cell)
    if response is None:
        assert _subscription_ids(ctx) == before
        return
    created = response.json()
    try:
        assert (response.status_code, created["user_id"]) == (201, _user_id(ctx, caller))
        assert _subscription_ids(ctx) == before | {created["subscription_id"]}
    finally:
        ctx.services.alerts.delete_subscription(created["subscription_id"])


@check("DELETE /api/v1/alert-subscriptions/{subscription_id}")
def _delete_subscription(ctx: Ctx, caller: str, cell: int | str) -> None:
    sub = ctx.services.alerts.subscribe(_user_id(ctx, "ann"), "json://127.0.0.1:9/to-delete")
    try:
        path = f"/api/v1/alert-subscriptions/{sub.subscription_id}"
        response = allowed(ctx, ctx.call(caller, "DELETE", path), cell)
        assert (sub.subscription_id in _subscription_ids(ctx)) == (response is None)
    finally:
        if sub.subscription_id in _subscription_ids(ctx):
            ctx.services.alerts.delete_subscription(sub.subscription_id)


@check("GET /api/v1/alert-deliveries")
def _list_deliveries(ctx: Ctx, caller: str, cell: int | str) -> None:
    response = allowed(ctx, ctx.call(caller, "GET", "/api/v1/alert-deliveries", params={"limit": 1000}), cell)
    if response is not None:
        seeded = {a: v for v, a in ctx.world.alert_ids.items()}
        body = [d for d in response.json() if d["alert_id"] in seeded and d["channel"] == "apprise"]
        mine = ctx.world.subscription_ids[caller]
        # Each car's alert went to the subscription of every user who sees the car; one sees only their own.
        got = sorted(seeded[d["alert_id"]] for d in body if d["subscription_id"] == mine)
        assert got == cars(cell)
        if caller != "root":
            assert {d["subscription_id"] for d in response.json()} <= {mine}


def _tariff_ids(ctx: Ctx) -> set[str]:
    return {t["tariff_id"] for t in ctx.root("GET", "/api/v1/tariffs")}


@check("GET /api/v1/tariffs")
def _list_tariffs(ctx: Ctx, caller: str, cell: int | str) -> None:
    response = allowed(ctx, ctx.call(caller, "GET", "/api/v1/tariffs"), cell)
    if response is not None:
        body = response.json()
        assert sorted(t["tariff_id"] for t in body if t["scope"] == "builtin") == sorted(example_tariff_ids())
        assert sorted(t["tariff_id"] for t in body if t["scope"] != "builtin") == applying(cars(cell), "t")


@check("GET /api/v1/tariffs/{tariff_id} vehicle", "GET /api/v1/tariffs/{tariff_id} fleet")
def _tariff(ctx: Ctx, caller: str, cell: int | str) -> None:
    tariff_id = {"vehicle": "t-a", "fleet": "t-city"}[ctx.case]
    response = allowed(ctx, ctx.call(caller, "GET", f"/api/v1/tariffs/{tariff_id}"), cell)
    if response is not None:
        body = response.json()
        assert (body["tariff_id"], body["vehicle_id"], body["fleet_id"]) == (
            tariff_id,
            *TARIFF_SCOPES[tariff_id],
        )


def _fresh_tariff(ctx: Ctx, caller: str, spec: dict[str, Any] = TARIFF) -> str:
    """A tariff of the row's case created by the admin for this test."""
    tariff_id = f"t-{ctx.case}-{caller}".lower()
    ctx.root("POST", "/api/v1/tariffs", json={"tariff_id": tariff_id, **spec, **SCOPES[ctx.case]})
    return tariff_id


@check("POST /api/v1/tariffs vehicle", "POST /api/v1/tariffs fleet", "POST /api/v1/tariffs global")
def _create_tariff(ctx: Ctx, caller: str, cell: int | str) -> None:
    before = _tariff_ids(ctx)
    tariff_id = f"t-new-{ctx.case}-{caller}".lower()
    tariff = {"tariff_id": tariff_id, **TARIFF, **SCOPES[ctx.case]}
    response = allowed(ctx, ctx.call(caller, "POST", "/api/v1/tariffs", json=tariff), cell)
    if response is None:
        assert _tariff_ids(ctx) == before
        return
    try:
        body = response.json()
        assert (response.status_code, body["tariff_id"], body["scope"]) == (201, tariff_id, ctx.case)
        assert _tariff_ids(ctx) == before | {tariff_id}
    finally:
        ctx.root("DELETE", f"/api/v1/tariffs/{tariff_id}")


@check("PUT /api/v1/tariffs/{tariff_id} vehicle", "PUT /api/v1/tariffs/{tariff_id} builtin")
def _replace_tariff(ctx: Ctx, caller: str, cell: int | str) -> None:
    builtin = ctx.case == "builtin"
    tariff_id = example_tariff_ids()[0] if builtin else _fresh_tariff(ctx, caller)
    before = ctx.root("GET", f"/api/v1/tariffs/{tariff_id}")
    try:
        new = {**TARIFF, "price_per_kwh": 0.45}
        response = allowed(ctx, ctx.call(caller, "PUT", f"/api/v1/tariffs/{tariff_id}", json=new), cell)
        after = ctx.root("GET", f"/api/v1/tariffs/{tariff_id}")
        if response is None:
            assert after == before
        else:
            assert response.json() == after and (after["price_per_kwh"], after["vehicle_id"]) == (
                0.45,
                "car-a",
            )
    finally:
        if not builtin:
            ctx.root("DELETE", f"/api/v1/tariffs/{tariff_id}")


@check("DELETE /api/v1/tariffs/{tariff_id} vehicle", "DELETE /api/v1/tariffs/{tariff_id} fleet")
@check("DELETE /api/v1/tariffs/{tariff_id} global")
def _delete_tariff(ctx: Ctx, caller: str, cell: int | str) -> None:
    tariff_id = _fresh_tariff(ctx, caller)
    try:
        response = allowed(ctx, ctx.call(caller, "DELETE", f"/api/v1/tariffs/{tariff_id}"), cell)
        assert (tariff_id in _tariff_ids(ctx)) == (response is None)
    finally:
        if tariff_id in _tariff_ids(ctx):
            ctx.root("DELETE", f"/api/v1/tariffs/{tariff_id}")


@check("POST /api/v1/tariffs/{tariff_id}/day-ahead")
def _day_ahead(ctx: Ctx, caller: str, cell: int | str) -> None:
    spec = {"kind": "day_ahead", "currency": "EUR", "timezone": "Europe/Paris"}
    tariff_id = f"t-day-ahead-{caller}".lower()
    ctx.root("POST", "/api/v1/tariffs", json={"tariff_id": tariff_id, **spec, "vehicle_id": "car-a"})
    try:
        prices = "start,price_per_kwh\n2025-11-24T00:00Z,0.1\n"
        headers = {"Content-Type": "text/csv"}
        path = f"/api/v1/tariffs/{tariff_id}/day-ahead"
        response = allowed(ctx, ctx.call(caller, "POST", path, content=prices, headers=headers), cell)
        after = ctx.root("GET", f"/api/v1/tariffs/{tariff_id}")
        assert after["series_intervals"] == (0 if response is None else 1)
        if response is not None:
            assert response.json() == {"read": 1, "tariff": after}
    finally:
        ctx.root("DELETE", f"/api/v1/tariffs/{tariff_id}")


@check("GET /api/v1/quarantine")
def _quarantine(ctx: Ctx, caller: str, cell: int | str) -> None:
    response = allowed(ctx, ctx.call(caller, "GET", "/api/v1/quarantine", params={"limit": 1000}), cell)
    if response is not None:
        items = response.json()["items"]
        seeded = {q for car in ctx.world.cars.values() for q in car.quarantine_ids}
        # Other rows add entries (a foreign device's record lands under its own credential): the world's
        # entries are compared exactly, and every entry must be of a car the caller sees.
        assert sorted(i["quarantine_id"] for i in items if i["quarantine_id"] in seeded) == sorted(
            q for v in cars(cell) for q in ctx.world.cars[v].quarantine_ids
        )
        assert {i["credential_vehicle_id"] for i in items} == set(cars(cell))


@check("POST /api/v1/quarantine/{quarantine_id}/replay")
def _replay(ctx: Ctx, caller: str, cell: int | str) -> None:
    (quarantine_id,) = ctx.world.cars["car-a"].quarantine_ids
    before = ctx.services.quarantine.get(quarantine_id)
    response = allowed(ctx, ctx.call(caller, "POST", f"/api/v1/quarantine/{quarantine_id}/replay"), cell)
    after = ctx.services.quarantine.get(quarantine_id)
    if response is None:
        assert after == before
    else:  # still a state of charge no battery has
        assert response.json() == {
            "quarantine_id": quarantine_id,
            "status": "rejected",
            "reason": "out_of_range",
            "detail": response.json()["detail"],
        }
        assert (after.replayed_at_ms, after.replay_status) == (NOW_MS, "rejected")


# --- driver scores (docs/driver-score.md): dan's booking holds car-a from DAY0 on, so of car-a's drives only
# the second day's are his; the first day's belong to no one. A leak between drivers or cars shows as a
# drive counted for the wrong one.


def _dans_booking(ctx: Ctx) -> int:
    return ctx.services.bookings.create("car-a", "dan", DAY0_MS, NOW_MS + 3_600_000).booking_id


def _scored_drives(ctx: Ctx, vehicle_ids: list[str]) -> tuple[int, int]:
    """(dan's drives, drives of no booking) among these cars' drives of the last 30 days."""
    starts = [s for v in vehicle_ids for s in ctx.world.cars[v].drives if NOW_MS - 30 * DAY_MS <= s < NOW_MS]
    dans = [s for s in ctx.world.cars["car-a"].drives if "car-a" in vehicle_ids and DAY0_MS <= s < NOW_MS]
    return len(dans), len(starts) - len(dans)


@check("GET /api/v1/drivers/me/score")
def _my_driver_score(ctx: Ctx, caller: str, cell: int | str) -> None:
    booking = _dans_booking(ctx)
    try:
        response = allowed(ctx, ctx.call(caller, "GET", "/api/v1/drivers/me/score"), cell)
    finally:
        ctx.services.bookings.cancel(booking)
    if response is not None:
        body = response.json()
        assert body["driver"] == caller
        assert body["drives"] == _scored_drives(ctx, cars(cell))[0]
        assert body["drives"] > 0 or cell == "-"


@check("GET /api/v1/fleets/{fleet_id}/driver-scores", "GET /api/v1/fleets/{fleet_id}/driver-scores bus-co")
def _fleet_driver_scores(ctx: Ctx, caller: str, cell: int | str) -> None:
    fleet = "bus-co" if ctx.case == "bus-co" else "city-share"
    booking = _dans_booking(ctx)
    try:
        response = allowed(ctx, ctx.call(caller, "GET", f"/api/v1/fleets/{fleet}/driver-scores"), cell)
    finally:
        ctx.services.bookings.cancel(booking)
    if response is not None:
        body = response.json()
        dans, nobodys = _scored_drives(ctx, cars(cell))
        assert body["fleet_id"] == fleet
        assert {d["driver"]: d["drives"] for d in body["drivers"]} == ({"dan": dans} if dans else {})
        assert body["unattributed_drives"] == nobodys > 0


# the drive's id is its start (UTC epoch ms); "other": a drive of car-a outside dan's booking
_EVENTS_ROWS = [
    "GET /api/v1/vehicles/{vehicle_id}/drives/{drive_id}/events",
    "GET /api/v1/vehicles/{vehicle_id}/drives/{drive_id}/events other",
    "GET /api/v1/vehicles/{vehicle_id}/drives/{drive_id}/events car-b",
]


@check(*_EVENTS_ROWS)
def _drive_events(ctx: Ctx, caller: str, cell: int | str) -> None:
    day = [s for s in ctx.world.cars[ctx.target].drives if (s < DAY0_MS) == (ctx.case == "other")]
    booking = _dans_booking(ctx)
    try:
        path = f"{ctx.vehicle_path}/drives/{day[0]}/events"
        response = allowed(ctx, ctx.call(caller, "GET", path), cell)
    finally:
        ctx.services.bookings.cancel(booking)
    if response is not None:
        body = response.json()
        assert (body["vehicle_id"], body["start_ts_ms"]) == (ctx.target, day[0])
        dans = ctx.target == "car-a" and ctx.case != "other"
        assert body["driver"] == ("dan" if dans else None)


# --- remote commands and bookings (docs/commands.md): dan is a driver granted car-a, booked only in "booked"


def _booking(ctx: Ctx, driver: str = "dan") -> int:
    """A booking of car-a for ``driver`` around the world's frozen now, made by the admin."""
    window = {"driver": driver, "start_ms": NOW_MS - 3_600_000, "end_ms": NOW_MS + 3_600_000}
    return int(ctx.root("POST", f"{CAR_A}/bookings", json=window)["booking_id"])


def _commands(ctx: Ctx) -> dict[str, Any]:
    return dict(ctx.root("GET", f"{CAR_A}/commands", params={"limit": 1000}))


@check("POST /api/v1/vehicles/{vehicle_id}/commands", "POST /api/v1/vehicles/{vehicle_id}/commands booked")
def _issue_command(ctx: Ctx, caller: str, cell: int | str) -> None:
    booking = _booking(ctx) if ctx.case == "booked" else None
    before = _commands(ctx)
    try:
        body = {"action": "locate", "expires_in_s": 30}
        response = allowed(ctx, ctx.call(caller, "POST", f"{CAR_A}/commands", json=body), cell)
    finally:
        if booking is not None:
            ctx.root("DELETE", f"/api/v1/bookings/{booking}")
    after = _commands(ctx)
    if response is None:
        assert after["commands"] == before["commands"]  # nothing stored, nothing sent
        audited = isinstance(cell, int) and cell in (403, 404) and caller not in TOKEN_OF
        assert len(after["refused_attempts"]) == len(before["refused_attempts"]) + audited
        if audited:
            assert after["refused_attempts"][0]["actor"] == f"user:{caller}"
        return
    command = response.json()
    assert response.status_code == 201 and (command["vehicle_id"], command["status"]) == ("car-a", "queued")
    assert {c["command_id"] for c in after["commands"]} == {
        command["command_id"],
        *(c["command_id"] for c in before["commands"]),
    }


@check("GET /api/v1/vehicles/{vehicle_id}/commands")
def _list_commands(ctx: Ctx, caller: str, cell: int | str) -> None:
    dan = next(u for u in ctx.services.admin.list_users() if u.name == "dan")
    booking = ctx.services.bookings.create("car-a", "dan", NOW_MS - 1, NOW_MS + 1)
    try:
        dans = ctx.services.commands.issue(dan, "car-a", Action.WAKE, {})[0].command_id
    finally:
        ctx.services.bookings.cancel(booking.booking_id)
    roots = ctx.root("POST", f"{CAR_A}/commands", json={"action": "wake"})["command_id"]
    response = allowed(ctx, ctx.call(caller, "GET", f"{CAR_A}/commands"), cell)
    if response is not None:
        listed = response.json()["commands"]
        ids = {c["command_id"] for c in listed}
        assert {c["vehicle_id"] for c in listed} == {"car-a"}
        if caller == "dan":  # a driver sees only their own commands
            assert dans in ids and {c["issued_by"] for c in listed} == {"user:dan"}
        else:
            assert {dans, roots} <= ids


@check("GET /api/v1/vehicles/{vehicle_id}/commands/{command_id}")
def _get_command(ctx: Ctx, caller: str, cell: int | str) -> None:
    command_id = ctx.root("POST", f"{CAR_A}/commands", json={"action": "lock"})["command_id"]
    response = allowed(ctx, ctx.call(caller, "GET", f"{CAR_A}/commands/{command_id}"), cell)
    if response is not None:
        body = response.json()
        assert (body["command"]["command_id"], body["command"]["vehicle_id"]) == (command_id, "car-a")
        assert [e["event"] for e in body["events"]] == ["queued"]


@check(
    "GET /api/v1/vehicles/{vehicle_id}/command-keys", "GET /api/v1/vehicles/{vehicle_id}/command-keys car-b"
)
def _command_keys(ctx: Ctx, caller: str, cell: int | str) -> None:
    response = allowed(ctx, ctx.call(caller, "GET", f"{ctx.vehicle_path}/command-keys"), cell)
    if response is not None:
        body = response.json()
        assert body["vehicle_id"] == ctx.target
        assert [k["public_key"] for k in body["keys"]] == ctx.services.commands.public_keys(ctx.target)
        assert "private" not in response.text and "sealed" not in response.text


@check("POST /api/v1/vehicles/{vehicle_id}/command-keys/rotate")
def _rotate_command_key(ctx: Ctx, caller: str, cell: int | str) -> None:
    before = ctx.services.commands.public_keys("car-a")
    response = allowed(ctx, ctx.call(caller, "POST", f"{CAR_A}/command-keys/rotate"), cell)
    after = ctx.services.commands.public_keys("car-a")
    if response is None:
        assert after == before
        return
    assert after[0] not in before and before[0] in after[1:]  # the replaced key stays listed
    assert [k["public_key"] for k in response.json()["keys"]] == after


def _booking_ids(ctx: Ctx) -> set[int]:
    return {b["booking_id"] for b in ctx.root("GET", "/api/v1/bookings") if b["cancelled_at_ms"] is None}


@check("POST /api/v1/vehicles/{vehicle_id}/bookings")
def _create_booking(ctx: Ctx, caller: str, cell: int | str) -> None:
    before = _booking_ids(ctx)
    window = {"driver": "dan", "start_ms": NOW_MS + 86_400_000, "end_ms": NOW_MS + 90_000_000}
    response = allowed(ctx, ctx.call(caller, "POST", f"{CAR_A}/bookings", json=window), cell)
    if response is None:
        assert _booking_ids(ctx) == before
        return
    booking = response.json()
    ctx.root("DELETE", f"/api/v1/bookings/{booking['booking_id']}")
    assert (response.status_code, booking["vehicle_id"], booking["driver"]) == (201, "car-a", "dan")


@check("GET /api/v1/bookings")
def _list_bookings(ctx: Ctx, caller: str, cell: int | str) -> None:
    booking = _booking(ctx)
    try:
        response = allowed(ctx, ctx.call(caller, "GET", "/api/v1/bookings"), cell)
    finally:
        ctx.root("DELETE", f"/api/v1/bookings/{booking}")
    if response is not None:
        listed = response.json()
        assert {b["vehicle_id"] for b in listed} <= set(cars(cell))
        assert (booking in {b["booking_id"] for b in listed}) == (cell == "a")


@check("DELETE /api/v1/bookings/{booking_id}")
def _cancel_booking(ctx: Ctx, caller: str, cell: int | str) -> None:
    booking = _booking(ctx)
    try:
        response = allowed(ctx, ctx.call(caller, "DELETE", f"/api/v1/bookings/{booking}"), cell)
        assert (booking in _booking_ids(ctx)) == (response is None)
    finally:
        if booking in _booking_ids(ctx):
            ctx.root("DELETE", f"/api/v1/bookings/{booking}")


# --- the tests


# --- a browser's session (docs/web.md); the cookie's own rules: tests/integration/test_web_sessions.py

WEB_PASSWORD = "matrix password"


@check("POST /api/v1/session")
def _log_in(ctx: Ctx, caller: str, cell: int | str) -> None:
    # Anyone may try to log in, whatever else they send; the session opened is the named user's, never the
    # caller's. The shared client keeps no cookie: the next row's caller "none" must stay no one.
    user = next(u for u in ctx.services.admin.list_users() if u.name == "ann")
    if "ann" not in ctx.web_passwords:
        ctx.services.web_sessions.set_password(user, WEB_PASSWORD)
        ctx.web_passwords.add("ann")
    body = {"user_name": "ann", "password": WEB_PASSWORD}
    try:
        response = allowed(ctx, ctx.call(caller, "POST", "/api/v1/session", json=body), cell)
        assert response is not None and response.json()["user_name"] == "ann"
    finally:
        ctx.client.cookies.clear()


@check("GET /api/v1/session")
def _who(ctx: Ctx, caller: str, cell: int | str) -> None:
    response = allowed(ctx, ctx.call(caller, "GET", "/api/v1/session"), cell)
    if response is not None:
        assert (response.json()["user_name"], response.json()["csrf_token"]) == (caller, None)


@check("DELETE /api/v1/session")
def _log_out(ctx: Ctx, caller: str, cell: int | str) -> None:
    # Without a session cookie there is nothing to end, whoever calls.
    response = ctx.call(caller, "DELETE", "/api/v1/session")
    assert response.status_code == 204


@check("POST /api/v1/session/password")
def _change_password(ctx: Ctx, caller: str, cell: int | str) -> None:
    user = next((u for u in ctx.services.admin.list_users() if u.name == caller), None)
    if user is not None:
        ctx.services.web_sessions.set_password(user, WEB_PASSWORD)
        ctx.web_passwords.add(caller)
    body = {"current_password": WEB_PASSWORD, "new_password": f"{WEB_PASSWORD} of {caller}"}
    response = allowed(ctx, ctx.call(caller, "POST", "/api/v1/session/password", json=body), cell)
    if response is not None:
        assert response.json()["user_name"] == caller
        assert user is not None
        ctx.services.web_sessions.set_password(user, WEB_PASSWORD)  # undone


# --- each user's own API tokens (docs/web.md)


def _user(ctx: Ctx, name: str) -> Any:
    return next(u for u in ctx.services.admin.list_users() if u.name == name)


def _live_labels(ctx: Ctx, name: str) -> list[str]:
    return [t.label for t in ctx.services.api_tokens.list(_user(ctx, name))]


@check("GET /api/v1/tokens")
def _tokens(ctx: Ctx, caller: str, cell: int | str) -> None:
    # ann holds a labelled token of her own: only ann's list may show it
    mine = ctx.services.api_tokens.create(_user(ctx, "ann"), f"ann's script {secrets.token_hex(3)}")
    try:
        response = allowed(ctx, ctx.call(caller, "GET", "/api/v1/tokens"), cell)
        if response is not None:
            labels = [t["label"] for t in response.json()]
            assert labels == _live_labels(ctx, caller)
            assert (mine.info.label in labels) == (caller == "ann")
            assert all(set(t) == {"token_id", "label", "created_at_ms"} for t in response.json())
    finally:
        ctx.services.api_tokens.revoke(_user(ctx, "ann"), mine.info.token_id)


@check("POST /api/v1/tokens")
def _make_token(ctx: Ctx, caller: str, cell: int | str) -> None:
    label = f"made by {caller} {secrets.token_hex(3)}"
    response = allowed(ctx, ctx.call(caller, "POST", "/api/v1/tokens", json={"label": label}), cell)
    if response is None:
        return
    made = response.json()
    assert made["label"] == label and label in _live_labels(ctx, caller)
    who = ctx.client.get("/api/v1/session", headers={"Authorization": f"Bearer {made['token']}"})
    assert who.json()["user_name"] == caller  # the new token has the caller's rights, no one else's
    ctx.services.api_tokens.revoke(_user(ctx, caller), made["token_id"])  # undone


@check("DELETE /api/v1/tokens/{token_id}")
def _revoke_token(ctx: Ctx, caller: str, cell: int | str) -> None:
    # ann's token, whoever asks: only ann may revoke it; for anyone else it does not exist
    target = ctx.services.api_tokens.create(_user(ctx, "ann"), f"ann's phone {secrets.token_hex(3)}")
    try:
        path = f"/api/v1/tokens/{target.info.token_id}"
        response = allowed(ctx, ctx.call(caller, "DELETE", path), cell)
        still = target.info.label in _live_labels(ctx, "ann")
        assert still == (response is None)
        if response is not None:
            gone = ctx.client.get("/api/v1/session", headers={"Authorization": f"Bearer {target.token}"})
            assert gone.status_code == 401
    finally:
        if target.info.label in _live_labels(ctx, "ann"):
            ctx.services.api_tokens.revoke(_user(ctx, "ann"), target.info.token_id)


# --- invitations (docs/web.md): only an administrator invites; anyone holding a live code accepts it


def _invite(ctx: Ctx, who: str) -> Any:
    root = _user(ctx, "root")
    return ctx.services.invitations.invite(root, f"{who}-{secrets.token_hex(3)}", Role.OWNER, None)


@check("POST /api/v1/invitations")
def _make_invitation(ctx: Ctx, caller: str, cell: int | str) -> None:
    name = f"invited-by-{caller}-{secrets.token_hex(3)}"
    body = {"user_name": name, "role": "driver", "fleet_id": "city-share"}
    response = allowed(ctx, ctx.call(caller, "POST", "/api/v1/invitations", json=body), cell)
    pending = [i.user_name for i in ctx.services.invitations.pending(_user(ctx, "root"))]
    assert (name in pending) == (response is not None)
    if response is not None:
        ctx.services.invitations.revoke(_user(ctx, "root"), response.json()["invitation_id"])  # undone


@check("GET /api/v1/invitations")
def _invitations(ctx: Ctx, caller: str, cell: int | str) -> None:
    made = _invite(ctx, "listed")
    try:
        response = allowed(ctx, ctx.call(caller, "GET", "/api/v1/invitations"), cell)
        if response is not None:
            assert made.invitation.user_name in [i["user_name"] for i in response.json()]
            assert made.code not in response.text  # a code is shown once, when made
    finally:
        ctx.services.invitations.revoke(_user(ctx, "root"), made.invitation.invitation_id)


@check("DELETE /api/v1/invitations/{invitation_id}")
def _withdraw_invitation(ctx: Ctx, caller: str, cell: int | str) -> None:
    made = _invite(ctx, "withdrawn")
    path = f"/api/v1/invitations/{made.invitation.invitation_id}"
    response = allowed(ctx, ctx.call(caller, "DELETE", path), cell)
    pending = [i.invitation_id for i in ctx.services.invitations.pending(_user(ctx, "root"))]
    assert (made.invitation.invitation_id in pending) == (response is None)
    if response is None:
        ctx.services.invitations.revoke(_user(ctx, "root"), made.invitation.invitation_id)


@check("POST /api/v1/session/invitation")
def _accept_invitation(ctx: Ctx, caller: str, cell: int | str) -> None:
    # Whoever sends a live code becomes the invited user, never the caller; the shared client keeps no cookie.
    made = _invite(ctx, "accepting")
    body = {"code": made.code, "password": "invited password 1"}
    try:
        response = allowed(ctx, ctx.call(caller, "POST", "/api/v1/session/invitation", json=body), cell)
        assert response is not None
        assert (response.json()["user_name"], response.json()["role"]) == (made.invitation.user_name, "owner")
        again = ctx.call(caller, "POST", "/api/v1/session/invitation", json=body)
        assert again.status_code == 401  # the code worked once
    finally:
        ctx.client.cookies.clear()


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
@pytest.mark.parametrize(
    ("row", "caller"),
    [pytest.param(row, caller, id=f"{row.name}|{caller}") for row in ROWS for caller in CALLERS],
)
def test_authorization_matrix(worlds: Worlds, store: str, row: Row, caller: str) -> None:
    ctx = worlds.get(store)
    ctx.case, ctx.method = row.case, row.method
    CHECKS[row.name](ctx, caller, row.cells[caller])


def _app(tmp_path: Path) -> FastAPI:
    return create_app(Settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}"))


def _operations(app: FastAPI) -> set[str]:
    return {f"{method.upper()} {path}" for path, ops in app.openapi()["paths"].items() for method in ops}


def test_every_operation_has_a_row(tmp_path: Path) -> None:
    """A new route is in the OpenAPI document, so it fails here until the matrix says who may call it."""
    documented = _operations(_app(tmp_path))
    in_matrix = {row.operation for row in ROWS}
    assert sorted(documented - in_matrix) == [], "operations without a row in the authorization matrix"
    assert sorted(in_matrix - documented) == [], "rows of operations the API no longer has"
    assert set(CHECKS) == {row.name for row in ROWS}


def test_every_route_is_documented_or_listed_public(tmp_path: Path) -> None:
    """A route hidden from the document (include_in_schema=False, a mount) must be one listed as public."""
    app = _app(tmp_path)
    documented = _operations(app)
    hidden = set()
    websockets = set()
    for route in iter_route_contexts(app.routes):
        if isinstance(route.route, WebSocketRoute):
            websockets.add(route.path)
        elif isinstance(route.route, Mount) or not route.include_in_schema:
            hidden.add(route.path)
        else:
            assert {f"{m} {route.path}" for m in route.methods or ()} - {"HEAD " + route.path} <= documented
    assert hidden == set(PUBLIC_OUTSIDE_OPENAPI)
    # /ocpp/{id} takes chargers only, with their own Basic-auth passwords: test_ocpp_refuses_every_caller
    assert websockets == {*WEBSOCKET_ROWS, OCPP_PATH}, "WebSocket routes without a row in WEBSOCKET_MATRIX"


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
@pytest.mark.parametrize(
    ("path", "caller"),
    [pytest.param(path, caller, id=f"{path}|{caller}") for path in WEBSOCKET_ROWS for caller in CALLERS],
)
def test_websocket_matrix(worlds: Worlds, store: str, path: str, caller: str) -> None:
    ctx = worlds.get(store)
    cell = WEBSOCKET_ROWS[path][caller]
    assert path == "/api/v1/live"
    headers = ctx.headers(caller)
    with ctx.client.websocket_connect(f"{path}?after=0", headers=headers) as ws:
        if caller == "none":
            ws.send_text("{}")  # a browser's first message, without a token
        _check_feed(ctx, ws, cell, caller)


def _session_cookie(ctx: Ctx, caller: str) -> str:
    """A session of the caller opened in the store (no Argon2 login: test_web_sessions.py logs in)."""
    token = f"mfs_matrix_{caller}_{secrets.token_urlsafe(8)}"
    store = WebAccountStore(ctx.services.engine, lambda: NOW_MS)
    store.open_session(_user_id(ctx, caller), session_sha256(token), "csrf", NOW_MS + 3_600_000)
    ctx.secrets.append(token)
    return f"{SESSION_COOKIE}={token}"


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
@pytest.mark.parametrize(
    ("path", "caller"),
    [
        pytest.param(path, caller, id=f"{path}|cookie|{caller}")
        for path, row in WEBSOCKET_COOKIE_ROWS.items()
        for caller in CALLERS
        if row[caller] != "-"
    ],
)
def test_websocket_cookie_matrix(worlds: Worlds, store: str, path: str, caller: str) -> None:
    ctx = worlds.get(store)
    cell = WEBSOCKET_COOKIE_ROWS[path][caller]
    cookie = f"{SESSION_COOKIE}=mfs_no_such_session" if caller == "none" else _session_cookie(ctx, caller)
    headers = {"cookie": cookie, "origin": "http://testserver"}  # the page this server served
    with ctx.client.websocket_connect(f"{path}?after=0", headers=headers) as ws:
        _check_feed(ctx, ws, cell, caller)


@pytest.mark.parametrize("store", ["sqlite"])
@pytest.mark.parametrize("caller", ["ann", "dan", "olga", "root"])
def test_live_cookie_origin(worlds: Worlds, store: str, caller: str) -> None:
    """A session cookie from a foreign page (cross-site WebSocket hijacking) or no page is refused: 1008."""
    ctx = worlds.get(store)
    cookie = _session_cookie(ctx, caller)
    for origin in (
        "http://evil.example",
        "http://testserver.evil.example",
        "null",
        "http://testserver:8080",
        None,
    ):
        headers = {"cookie": cookie} | ({} if origin is None else {"origin": origin})
        with ctx.client.websocket_connect("/api/v1/live?after=0", headers=headers) as ws:
            message = receive_within(ws)
        assert (message["type"], message["code"]) == ("websocket.close", 1008), (origin, message)
        assert "Origin" in message["reason"] and "mfs_" not in message["reason"]


def _check_feed(ctx: Ctx, ws: Any, cell: int | str, caller: str) -> None:
    """The cell's close code before any event, or exactly the cell's cars' events, replayed and live.

    A driver's events leave out the commands others issued for the same car (other rows of the matrix
    issue commands, so which there are depends on the order the tests ran in).
    """
    if isinstance(cell, int):
        message = receive_within(ws)
        assert (message["type"], message["code"]) == ("websocket.close", cell), message
        for secret in [*ctx.secrets, *ctx.world.tokens.values(), "car-"]:
            assert secret not in message["reason"]
        return
    replayed = read_until(ws, until_ready)
    # Live: each car gets an event, twice round; a caller's last car's second one closes the read, and
    # any other car's first-round event, numbered before it, would have come first.
    markers = []
    for round_ in (1, 2):
        for vehicle_id in ("car-c", "car-b", "car-a"):
            ctx.services.live_events.publish(vehicle_id, "probe", NOW_MS, {"round": round_})
    log = ctx.services.live_log.after(0, 1_000_000)
    markers = {e.event_id for e in log[-3:] if e.vehicle_id in cars(cell)}
    live = read_until(ws, lambda got: markers <= {e["event_id"] for e in got})
    got = [e for e in replayed + live if e["kind"] not in ("ready", "gap")]
    own_only = caller in DRIVERS

    def receives(e: StoredLiveEvent) -> bool:
        return not (own_only and e.kind == "command" and command_issuer(e) != _user_id(ctx, caller))

    expected = [
        e.event_id for e in log if e.vehicle_id in cars(cell) and e.event_id <= max(markers) and receives(e)
    ]
    assert [e["event_id"] for e in got] == expected
    assert {e["vehicle_id"] for e in got} == set(cars(cell))


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("route", list(PUBLIC_OUTSIDE_OPENAPI))
def test_routes_outside_the_document_are_public_and_say_nothing(
    worlds: Worlds, route: str, caller: str
) -> None:
    ctx = worlds.get("sqlite")
    path = PUBLIC_OUTSIDE_OPENAPI[route]
    anonymous = ctx.client.get(path, follow_redirects=False)
    response = ctx.call(caller, "GET", path, follow_redirects=False)
    assert response.status_code == 200
    assert (response.status_code, response.content) == (anonymous.status_code, anonymous.content)
    if route == "/openapi.json":
        assert response.json() == ctx.client.app.openapi()  # type: ignore[attr-defined]
    for secret in [*ctx.secrets, *ctx.world.tokens.values(), "car-a", "city-share"]:
        assert secret not in response.text


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_osmand_takes_a_tracker_key(worlds: Worlds, method: str) -> None:
    """The /osmand rows' refusals are not the route refusing everyone: car-a's key stores car-a's report."""
    ctx = worlds.get("sqlite")
    ts_ms = ctx.world.day0_ms + 15 * 3_600_000 + (30 if method == "GET" else 31) * 60_000
    lat, lon = ctx.world.cars["car-a"].last_position
    report = {"id": ctx.world.tokens["tracker_a"], "lat": lat, "lon": lon, "timestamp": ts_ms}
    response = ctx.client.request(method, "/osmand", params=report)
    assert response.json()["accepted"] == 1, response.text
    stored = ctx.root("GET", f"{CAR_A}/positions", params={"from_ms": ts_ms, "to_ms": ts_ms + 1})
    assert [(p["ts_ms"], p["lat_deg"], p["lon_deg"]) for p in stored["positions"]] == [(ts_ms, lat, lon)]


# --- tokens


@pytest.fixture
def world_client(services: Services) -> Iterator[tuple[World, TestClient]]:
    world = build_world(services)
    with TestClient(create_app(services.settings, services)) as client:
        yield world, client


RECORD = {"vehicle_id": "car-a", "ts_ms": NOW_MS - 60_000, "soc_pct": 55.0, "lat_deg": 31.2, "lon_deg": 121.4}


def test_a_wrong_or_revoked_token_is_refused(
    world_client: tuple[World, TestClient], services: Services
) -> None:
    world, client = world_client
    assert client.get("/api/v1/vehicles", headers=bearer(world.tokens["ann"])).status_code == 200
    assert client.get("/api/v1/vehicles", headers=bearer("mfu_not-a-token")).status_code == 401
    assert client.get("/api/v1/vehicles", headers={"Authorization": "Basic abc"}).status_code == 401
    services.admin.revoke_tokens("ann")
    response = client.get("/api/v1/vehicles", headers=bearer(world.tokens["ann"]))
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"
    assert (
        client.post("/api/v1/telemetry", json=[RECORD], headers=bearer(world.tokens["device_a"])).json()[
            "accepted"
        ]
        == 1
    )
    new_device = services.accounts.rotate_device_credential("car-a", end_previous_now=True).token
    old = client.post("/api/v1/telemetry", json=[RECORD], headers=bearer(world.tokens["device_a"]))
    assert old.status_code == 401
    fresh = client.post("/api/v1/telemetry", json=[RECORD], headers=bearer(new_device))
    assert fresh.json()["duplicate"] == 1


def test_tokens_are_stored_only_hashed(world_client: tuple[World, TestClient], services: Services) -> None:
    world, _ = world_client
    with services.engine.connect() as conn:
        stored = " ".join(
            str(row) for t in ("api_tokens", "vehicles") for row in conn.execute(text(f"SELECT * FROM {t}"))
        )
    assert "car-a" in stored  # the tables were read
    for token in world.tokens.values():
        assert token not in stored


# --- charging: a site and a charger of each fleet, so that an answer holding the other fleet's shows it

OCPP_PATH = "/ocpp/{charge_point_id}"
CITY_SITES = "/api/v1/fleets/city-share/charging-sites"


def _charging_world(ctx: Ctx) -> None:
    from microfleet.domain.access import Role, UserPrincipal

    points = ctx.services.charge_points
    admin = UserPrincipal(0, "root", Role.ADMIN, None)
    if points.sites_for(admin, "city-share"):
        return
    for fleet, site, cp in (("city-share", "depot-city", "cp-city"), ("bus-co", "depot-bus", "cp-bus")):
        points.add_site_for(admin, fleet, site, f"Depot of {fleet}", 22.0)
        points.add_charge_point_for(
            admin,
            site,
            cp,
            connectors=2,
            max_kw=11.0,
            min_current_a=6.0,
            phases=3,
            voltage_v=230.0,
            smart=True,
        )


def _city_sites(ctx: Ctx) -> set[str]:
    return {s["site_id"] for s in ctx.root("GET", CITY_SITES)}


@check("GET /api/v1/fleets/{fleet_id}/charging-plan", "POST /api/v1/fleets/{fleet_id}/charging-plan")
def _charging_plan(ctx: Ctx, caller: str, cell: int | str) -> None:
    _charging_world(ctx)
    response = allowed(ctx, ctx.call(caller, ctx.method, "/api/v1/fleets/city-share/charging-plan"), cell)
    if response is not None:
        plan = response.json()
        assert plan["fleet_id"] == "city-share"
        assert set(plan["peak_kw_by_site"]) == _city_sites(ctx)  # never bus-co's depot
        assert {c["vehicle_id"] for c in plan["cars"]} <= {"car-a"}


@check("GET /api/v1/fleets/{fleet_id}/charging-plan/chargers")
def _charging_plan_chargers(ctx: Ctx, caller: str, cell: int | str) -> None:
    _charging_world(ctx)
    path = "/api/v1/fleets/city-share/charging-plan/chargers"
    response = allowed(ctx, ctx.call(caller, "GET", path), cell)
    if response is not None:  # city-share's sites and chargers, never bus-co's depot or charger
        view = response.json()
        assert {s["site_id"] for s in view["sites"]} == _city_sites(ctx)
        points = {c["charge_point_id"] for s in view["sites"] for c in s["connectors"]}
        assert "cp-city" in points and "cp-bus" not in points
        assert {c["vehicle_id"] for s in view["sites"] for c in s["connectors"]} <= {"car-a", None}
        assert set(view["unplaced"]) <= {"car-a"}


@check("GET /api/v1/fleets/{fleet_id}/charging-sites")
def _charging_sites(ctx: Ctx, caller: str, cell: int | str) -> None:
    _charging_world(ctx)
    response = allowed(ctx, ctx.call(caller, "GET", CITY_SITES), cell)
    if response is not None:
        sites = response.json()
        assert {s["fleet_id"] for s in sites} == {"city-share"}
        assert "depot-city" in {s["site_id"] for s in sites}


@check("POST /api/v1/fleets/{fleet_id}/charging-sites")
def _add_charging_site(ctx: Ctx, caller: str, cell: int | str) -> None:
    _charging_world(ctx)
    site_id = f"site-{caller}-{secrets.token_hex(3)}"
    body = {"site_id": site_id, "name": "A new depot", "power_limit_kw": 50.0}
    response = allowed(ctx, ctx.call(caller, "POST", CITY_SITES, json=body), cell)
    assert (site_id in _city_sites(ctx)) == (response is not None)
    if response is not None:
        assert response.json()["fleet_id"] == "city-share"


@check("GET /api/v1/fleets/{fleet_id}/charge-points")
def _charge_points(ctx: Ctx, caller: str, cell: int | str) -> None:
    _charging_world(ctx)
    response = allowed(ctx, ctx.call(caller, "GET", "/api/v1/fleets/city-share/charge-points"), cell)
    if response is not None:
        points = response.json()
        assert {p["site_id"] for p in points} <= _city_sites(ctx)
        assert "cp-city" in {p["charge_point_id"] for p in points}
        assert all("password" not in p for p in points)


@check("POST /api/v1/charging-sites/{site_id}/charge-points")
def _add_charge_point(ctx: Ctx, caller: str, cell: int | str) -> None:
    _charging_world(ctx)
    cp = f"cp-{caller}-{secrets.token_hex(3)}"
    body = {"charge_point_id": cp, "max_kw": 7.4, "phases": 1}
    response = allowed(
        ctx, ctx.call(caller, "POST", "/api/v1/charging-sites/depot-city/charge-points", json=body), cell
    )
    listed = {p["charge_point_id"] for p in ctx.root("GET", "/api/v1/fleets/city-share/charge-points")}
    assert (cp in listed) == (response is not None)
    if response is not None:
        created = response.json()
        assert created["site_id"] == "depot-city" and len(created["password"]) >= 16


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
@pytest.mark.parametrize("caller", CALLERS)
def test_ocpp_refuses_every_caller(worlds: Worlds, store: str, caller: str) -> None:
    """No API token, user's or device's, opens a charger's OCPP socket: only its own password does."""
    from starlette.websockets import WebSocketDisconnect

    ctx = worlds.get(store)
    _charging_world(ctx)
    headers = {**ctx.headers(caller), "sec-websocket-protocol": "ocpp1.6"}
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        ctx.client.websocket_connect("/ocpp/cp-city", headers=headers),
    ):
        pass
    assert refused.value.code == 1008
