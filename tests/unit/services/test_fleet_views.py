"""FleetViewService over fakes: which cars and places each view counts, and how a plan lands on chargers."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from microfleet.domain.access import Role, UserPrincipal
from microfleet.domain.charge_points import ChargePoint, ChargingSite, StoredPlan
from microfleet.domain.charges import ChargeSession
from microfleet.domain.drives import Drive
from microfleet.domain.places import Circle, Place, PlaceKind, StoredPlace
from microfleet.errors import InvalidInputError
from microfleet.services.fleet_views import FleetViewService

H = 3_600_000
OLGA = UserPrincipal(1, "olga", Role.OPERATOR, "city")
HOME = (31.23, 121.47)
FAR = (31.30, 121.47)  # about 8 km north


def drive(vehicle_id: str, start: str | None, end: str | None) -> Drive:
    fields = {f: None for f in Drive.__dataclass_fields__}
    values: dict[str, Any] = {**fields, "vehicle_id": vehicle_id, "start_ts_ms": H, "end_ts_ms": 2 * H}
    values.update(start_place_id=start, end_place_id=end, end_reason="stopped", distance_gps_km=1.0)
    values.update(duration_s=600.0, route=[])
    return Drive(**values)


def charge(vehicle_id: str, place_id: str | None, kwh: float) -> ChargeSession:
    fields = {f: None for f in ChargeSession.__dataclass_fields__}
    return ChargeSession(**{**fields, "vehicle_id": vehicle_id, "start_ts_ms": H, "place_id": place_id,
                            "energy_grid_kwh": kwh})  # fmt: skip


@dataclass
class Fakes:
    """What the service reads: olga's cars by fleet, their history, positions, places, plan and chargers."""

    cars: dict[str | None, list[str]] = field(default_factory=lambda: {None: ["a", "b"], "city": ["a", "b"]})
    spans: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    drives: dict[str, list[Drive]] = field(default_factory=dict)
    charges: dict[str, list[ChargeSession]] = field(default_factory=dict)
    positions: dict[str, tuple[float, float]] = field(default_factory=dict)
    places: list[StoredPlace] = field(default_factory=list)
    plan: dict[str, Any] = field(default_factory=dict)
    sites: list[ChargingSite] = field(default_factory=list)
    points: list[ChargePoint] = field(default_factory=list)

    def fleet_vehicle_ids(self, user: UserPrincipal, fleet_id: str | None) -> list[str]:
        return self.cars.get(fleet_id, [])

    def state_spans_overlapping(
        self, vehicle_ids: Sequence[str], from_ms: int, to_ms: int
    ) -> dict[str, list[dict[str, Any]]]:
        return {v: self.spans.get(v, []) for v in vehicle_ids}

    def latest_states(
        self, vehicle_ids: Sequence[str], signals: Collection[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        return {
            v: {
                "signals": {
                    "lat_deg": {"value": self.positions[v][0]},
                    "lon_deg": {"value": self.positions[v][1]},
                }
            }
            for v in vehicle_ids
            if v in self.positions
        }

    def visible_to(self, user: UserPrincipal) -> list[StoredPlace]:
        return self.places

    def plan_for(self, user: UserPrincipal, fleet_id: str) -> StoredPlan:
        return StoredPlan(7, fleet_id, 0, "", "request", "optimal", 1.0, 0.0, None, 0.0, None, self.plan)

    def sites_for(self, user: UserPrincipal, fleet_id: str) -> list[ChargingSite]:
        return self.sites

    def charge_points_for(self, user: UserPrincipal, fleet_id: str) -> list[ChargePoint]:
        return self.points


class Visits:
    """The store's grouped counts, from the fake drives and charges of the vehicles asked for."""

    def __init__(self, fakes: Fakes) -> None:
        self._f = fakes

    def place_visits(
        self, vehicle_ids: Sequence[str], from_ms: int, to_ms: int
    ) -> dict[str | None, dict[str, float]]:
        out: dict[str | None, dict[str, float]] = {}

        def add(place_id: str | None, key: str, value: float) -> None:
            row = out.setdefault(place_id, dict.fromkeys(("arrivals", "departures", "charges", "kwh"), 0.0))
            row[key] += value

        for v in vehicle_ids:
            for d in self._f.drives.get(v, []):
                add(d.end_place_id, "arrivals", 1)
                add(d.start_place_id, "departures", 1)
            for c in self._f.charges.get(v, []):
                add(c.place_id, "charges", 1)
                add(c.place_id, "kwh", c.energy_grid_kwh or c.energy_added_kwh or 0.0)
        return out


def service(f: Fakes, now_ms: int = 10 * H) -> FleetViewService:
    return FleetViewService(f, f, Visits(f), f, f, f, f, lambda: now_ms)  # type: ignore[arg-type]


def place(
    place_id: str, at: tuple[float, float], *, fleet: str | None = None, vehicle: str | None = None
) -> StoredPlace:
    return StoredPlace(
        Place(place_id, place_id.title(), PlaceKind.DEPOT, Circle(at[0], at[1], 500)), vehicle, fleet
    )


def test_utilisation_counts_the_users_cars_of_the_fleet_asked_for() -> None:
    f = Fakes(spans={"a": [{"status": "driving", "start_ts_ms": 0, "end_ts_ms": H, "is_open": False}]})
    (hour,) = service(f).utilisation(OLGA, "city", 0, H, 3600)
    assert (hour.vehicle_count, hour.in_use_share, hour.shares["unknown"]) == (2, 0.5, 0.5)  # b: no history
    assert service(f).utilisation(OLGA, "other", 0, H, 3600)[0].vehicle_count == 0


def test_utilisation_refuses_too_many_buckets_and_an_empty_window() -> None:
    with pytest.raises(InvalidInputError, match="at most 2000 buckets"):
        service(Fakes()).utilisation(OLGA, None, 0, 2001 * H, 3600)
    with pytest.raises(InvalidInputError, match="must be after"):
        service(Fakes()).utilisation(OLGA, None, H, H, 3600)
    assert service(Fakes(), now_ms=H).utilisation(OLGA, None, 2 * H, 3 * H, 3600) == []  # all to come


def test_the_plan_lands_on_the_connector_of_each_cars_transaction() -> None:
    f = Fakes(
        plan={
            "start_ms": 0,
            "slot_s": 900,
            "peak_kw_by_site": {"s1": 7.0},
            "cars": [
                {"vehicle_id": "a", "power_kw": [7.0, 3.0], "explanation": ""},
                {"vehicle_id": "b", "power_kw": [0.0, 2.0], "explanation": ""},
                {"vehicle_id": "c", "power_kw": [0.0, 0.0], "explanation": ""},
            ],
            "targets": [{"vehicle_id": "a", "charge_point_id": "cp2", "connector_id": 2, "smart": True}],
        },
        sites=[ChargingSite("s1", "city", "North", 22.0)],
        points=[
            ChargePoint("cp2", "s1", 2, 11.0, 6.0, 3, 230.0, True),
            ChargePoint("cp1", "s1", 1, 7.4, 6.0, 1, 230.0, True),
            ChargePoint("cp9", "elsewhere", 1, 7.4, 6.0, 1, 230.0, True),
        ],
    )
    view = service(f).charger_timeline(OLGA, "city")
    (site,) = view.sites
    assert (site.site_id, site.power_limit_kw, site.planned_peak_kw) == ("s1", 22.0, 7.0)
    assert [(c.charge_point_id, c.connector_id, c.vehicle_id) for c in site.connectors] == [
        ("cp1", 1, None),
        ("cp2", 1, None),
        ("cp2", 2, "a"),
    ]
    assert site.connectors[2].power_kw == [7.0, 3.0] and site.connectors[0].power_kw == [0.0, 0.0]
    assert site.total_kw == [7.0, 3.0]
    assert view.unplaced == {"b": [0.0, 2.0]}  # planned kW on no known charger is not hidden; c plans none


def test_places_count_cars_now_and_visits_and_fold_unseen_places_into_outside() -> None:
    f = Fakes(
        positions={"a": HOME, "b": FAR},
        places=[
            place("depot", HOME, fleet="city"),
            place("yard", HOME),  # global, overlapping: a is in both
            place("bus-yard", FAR, fleet="bus"),  # another fleet's, which visible_to would not give her
            place("home-b", FAR, vehicle="b"),
        ],
        drives={
            "a": [drive("a", "depot", "gone"), drive("a", None, "depot")],
            "b": [drive("b", "home-b", None)],
        },
        charges={"a": [charge("a", "depot", 4.0)], "b": [charge("b", None, 1.5)]},
    )
    rows = service(f).places(OLGA, "city", 0, H)
    by = {r.place_id: r for r in rows}
    assert [r.name for r in rows][-1] == "outside every place"
    assert "bus-yard" not in by  # with fleet_id: the global places, the fleet's and its cars' own
    assert by["depot"].cars_now == ["a"] and by["yard"].cars_now == ["a"]
    assert by["home-b"].cars_now == ["b"] and by[None].cars_now == []
    assert (by["depot"].arrivals, by["depot"].departures, by["depot"].charges) == (1, 1, 1)
    assert by["depot"].charged_kwh == 4.0 and by["depot"].lat_deg == HOME[0]
    # "gone" is a place she does not see: its arrival is counted outside, so the rows add up
    assert sum(r.arrivals for r in rows) == 3 and by[None].arrivals == 2
    assert (by[None].charges, by[None].charged_kwh) == (1, 1.5)


def test_places_refuse_a_window_over_a_month() -> None:
    with pytest.raises(InvalidInputError, match="at most 31 days"):
        service(Fakes()).places(OLGA, None, 0, 32 * 24 * H)


def test_a_polygon_place_is_centred_on_its_vertices() -> None:
    from microfleet.domain.places import Polygon

    square = Polygon(((31.0, 121.0), (31.0, 121.2), (31.2, 121.2), (31.2, 121.0)))
    f = Fakes(
        positions={"a": (31.1, 121.1)},
        places=[StoredPlace(Place("sq", "Square", PlaceKind.OTHER, square), None, None)],
    )
    (sq, outside) = service(f).places(OLGA, None, 0, H)
    assert (sq.lat_deg, sq.lon_deg) == pytest.approx((31.1, 121.1)) and sq.cars_now == ["a"]
    assert outside.cars_now == []
