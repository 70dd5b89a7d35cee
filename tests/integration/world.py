"""A small world of accounts for API tests: two owners' cars, a driver, a fleet operator, an admin."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from microfleet.bootstrap import Services
from microfleet.domain.access import Role
from microfleet.domain.places import Circle, Place, PlaceKind
from microfleet.domain.tariffs import parse_tariff
from microfleet.domain.telemetry import TelemetryRecord
from tests.integration.test_history_day import HOME, body, day_records


@dataclass
class World:
    tokens: dict[str, str]  # caller name -> bearer token


def build_world(services: Services) -> World:
    admin = services.admin
    admin.add_fleet("city-share", "City car-sharing pilot")
    tokens: dict[str, str] = {}
    tokens["device_a"] = admin.add_vehicle(
        "car-a", name="Mini EV of Ann", model_id=None, fleet_id="city-share"
    )
    tokens["device_b"] = admin.add_vehicle("car-b", name="Ami of Bob")
    for name, role, fleet in [
        ("ann", Role.OWNER, None),
        ("bob", Role.OWNER, None),
        ("dan", Role.DRIVER, None),
        ("olga", Role.OPERATOR, "city-share"),
        ("root", Role.ADMIN, None),
    ]:
        admin.add_user(name, role, fleet)
        tokens[name] = admin.issue_token(name, "tests")
    admin.grant("car-a", user_name="ann")
    admin.grant("car-b", user_name="bob")
    admin.grant("car-a", user_name="dan")
    return World(tokens)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- the authorization matrix's world: three cars with the same kind of history --------------------------

OTHER_FLEET = "bus-co"
# Each car lives a little north of the one before and keeps its own clock, so no two cars share a position
# or a timestamp: an answer that let another car's data through cannot look like the car asked for.
CAR_OFFSETS = {"car-a": (0.0, 0), "car-b": (0.01, 7 * 60_000), "car-c": (0.02, 13 * 60_000)}
DAY_MS = 86_400_000
# Every place is this circle around car-a's home (3 km: every car's home is inside, their far ends are
# not): a place that applies to another car covers car-a's fixes too, so leaking it shows in car-a's events.
PLACE_RADIUS_M = 3_000.0
# place id -> (vehicle_id, fleet_id); both None: global. Tariffs have the same scopes ('t-a' for 'p-a').
PLACE_SCOPES: dict[str, tuple[str | None, str | None]] = {
    "p-all": (None, None),
    "p-city": (None, "city-share"),
    "p-bus": (None, OTHER_FLEET),
    "p-a": ("car-a", None),
    "p-b": ("car-b", None),
    "p-c": ("car-c", None),
}
TARIFF_SCOPES = {f"t-{place_id[2:]}": scope for place_id, scope in PLACE_SCOPES.items()}


@dataclass
class CarData:
    """What one car of the matrix world holds, to compare every answer with."""

    positions: list[tuple[int, float, float]]  # (ts_ms, lat, lon) of every record sent, in time order
    last_position: tuple[float, float]
    far_end: tuple[float, float]  # where its morning drives end, twice: the one place to suggest
    drives: list[int] = field(default_factory=list)  # start_ts_ms
    charges: list[int] = field(default_factory=list)
    states: list[tuple[str, int]] = field(default_factory=list)
    excluded: list[tuple[int, str]] = field(default_factory=list)
    quarantine_ids: list[int] = field(default_factory=list)


@dataclass
class MatrixWorld:
    """build_world's accounts, another fleet, and each car's history, places, tariffs and quarantine.

    car-c is bus-co's, whose operator is eve; car-a, car-b and car-c each have two days of history.
    """

    world: World
    cars: dict[str, CarData]
    place_names: dict[str, str]
    day0_ms: int  # the second day's midnight, UTC
    window: tuple[int, int]  # every record of the world is in [from_ms, to_ms)
    # Alerts (docs/alerts.md): each car's one open alert, the rules by scope name ('r-a', 'r-city'...,
    # as PLACE_SCOPES), each user's subscription.
    alert_ids: dict[str, int] = field(default_factory=dict)
    rule_ids: dict[str, int] = field(default_factory=dict)
    subscription_ids: dict[str, int] = field(default_factory=dict)

    @property
    def tokens(self) -> dict[str, str]:
        return self.world.tokens


def build_matrix_world(services: Services, day0_ms: int, now_ms: int) -> MatrixWorld:
    """Accounts through the admin service, data through the ingest, place, tariff and derivation services."""
    world = build_world(services)
    admin = services.admin
    admin.add_fleet(OTHER_FLEET, "Shuttle fleet of another company")
    world.tokens["device_c"] = admin.add_vehicle(
        "car-c", name="Spring of the shuttle fleet", fleet_id=OTHER_FLEET
    )
    admin.add_user("eve", Role.OPERATOR, OTHER_FLEET)
    world.tokens["eve"] = admin.issue_token("eve", "tests")

    for vehicle_id in ("car-a", "car-b"):  # a phone of each reports with its key (OsmAnd / Traccar Client)
        world.tokens[f"tracker_{vehicle_id[-1]}"] = services.tracker_keys.issue(vehicle_id, replace=True).key
    names = {place_id: f"Place {place_id} of the matrix" for place_id in PLACE_SCOPES}
    home_lat, home_lon = HOME
    for place_id, (vehicle_id, fleet_id) in PLACE_SCOPES.items():
        circle = Circle(home_lat, home_lon, PLACE_RADIUS_M)
        services.places.add(
            Place(place_id, names[place_id], PlaceKind.OTHER, circle),
            vehicle_id=vehicle_id,
            fleet_id=fleet_id,
        )
    for tariff_id, (vehicle_id, fleet_id) in TARIFF_SCOPES.items():
        spec = {"tariff_id": tariff_id, "kind": "per_kwh", "currency": "EUR", "price_per_kwh": 0.3}
        services.tariffs.add(parse_tariff(spec), vehicle_id=vehicle_id, fleet_id=fleet_id)

    cars: dict[str, CarData] = {}
    for vehicle_id, (north_deg, late_ms) in CAR_OFFSETS.items():
        records: list[TelemetryRecord] = []
        for day in (day0_ms - DAY_MS, day0_ms):
            # Each day starts at odometer 1200 km: the second goes on from where the first ended.
            odo_km = max((r.odometer_km or 0.0 for r in records), default=1200.0) - 1200.0
            records += [
                msgspec.structs.replace(
                    r,
                    ts_ms=r.ts_ms + late_ms,
                    lat_deg=(r.lat_deg or 0.0) + north_deg,
                    odometer_km=None if r.odometer_km is None else round(r.odometer_km + odo_km, 2),
                )
                for r in day_records(vehicle_id, day)
            ]
        # A GPS jump of 55 km in 2.5 min while parked at night: stored, then left out of the history.
        night = records[36]
        jump = msgspec.structs.replace(
            night, ts_ms=night.ts_ms + 150_000, lat_deg=(night.lat_deg or 0.0) + 0.5
        )
        records.insert(37, jump)
        report = services.ingest.ingest(
            body(records), "application/json", credential_vehicle_id=vehicle_id, source="world", now_ms=now_ms
        )
        assert report.accepted == len(records), report
        # A state of charge no battery has: refused and quarantined under this car's credential.
        junk = [{"vehicle_id": vehicle_id, "ts_ms": day0_ms + late_ms + 1, "soc_pct": 400}]
        services.ingest.ingest(
            msgspec.json.encode(junk),
            "application/json",
            credential_vehicle_id=vehicle_id,
            source="world",
            now_ms=now_ms,
        )
        drives = [r for r in records if r.speed_kmh]
        cars[vehicle_id] = CarData(
            positions=[
                (r.ts_ms, r.lat_deg, r.lon_deg)
                for r in records
                if r.lat_deg is not None and r.lon_deg is not None
            ],
            last_position=(records[-1].lat_deg or 0.0, records[-1].lon_deg or 0.0),
            far_end=max((r.lat_deg or 0.0, r.lon_deg or 0.0) for r in drives),
        )
    for vehicle_id, car in cars.items():
        services.deriver.rederive(vehicle_id)
        far = 2**62
        car.drives = [d.start_ts_ms for d in services.history.drives(vehicle_id, 0, far, 10_000)]
        car.charges = [c.start_ts_ms for c in services.history.charges(vehicle_id, 0, far, 10_000)]
        car.states = [
            (s["status"], s["start_ts_ms"]) for s in services.history.states(vehicle_id, 0, far, 10_000)
        ]
        car.excluded = [(e["ts_ms"], e["reason"]) for e in services.history.excluded(vehicle_id, 10_000)]
        car.quarantine_ids = [q.quarantine_id for q in services.quarantine.list(vehicle_ids=[vehicle_id])]
        # Every car has history of every kind, or a row could not tell its answer from another car's.
        assert (len(car.drives), len(car.charges), len(car.excluded), len(car.quarantine_ids)) == (
            4,
            2,
            1,
            1,
        ), (
            vehicle_id,
            car,
        )
    first = min(p[0] for car in cars.values() for p in car.positions)
    last = max(p[0] for car in cars.values() for p in car.positions)
    matrix = MatrixWorld(world, cars, names, day0_ms, (first, last + 1))
    _add_alerts(services, matrix)
    return matrix


def _add_alerts(services: Services, matrix: MatrixWorld) -> None:
    """A subscription per user (before any alert, so each gets its deliveries), a rule of every scope, and
    an open alert on each car, raised as a later model would."""
    from microfleet.domain.alerts import AlertKind, Severity

    alerts = services.alerts
    for user in ("ann", "bob", "dan", "olga", "eve", "root"):
        sub = alerts.subscribe(alerts.user_id_of(user), f"json://127.0.0.1:9/{user}", label=f"{user}'s hook")
        matrix.subscription_ids[user] = sub.subscription_id
    for place_id, (vehicle_id, fleet_id) in PLACE_SCOPES.items():
        rule = alerts.add_rule(
            AlertKind.SOC_LOW, Severity.WARNING, {}, vehicle_id=vehicle_id, fleet_id=fleet_id
        )
        matrix.rule_ids[f"r-{place_id[2:]}"] = rule.rule_id
    for vehicle_id in matrix.cars:
        alert = alerts.raise_external(vehicle_id, "matrix", "seeded", Severity.INFO, f"Alert of {vehicle_id}")
        matrix.alert_ids[vehicle_id] = alert.alert_id
