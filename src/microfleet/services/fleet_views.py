"""The fleet page's views, built from what Microfleet already derives (docs/web.md).

* utilisation and availability by hour, from the derived history's state spans;
* the charging plan per charger, with each site's power limit and the plan's peak there;
* places and zones: the places the user sees, the cars there now and the visits in a window.

Each reads only vehicles the user may see (:meth:`AccountService.fleet_vehicle_ids`); the plan per charger
is the fleet operator's or an admin's, like the plan itself.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from microfleet.domain.access import UserPrincipal
from microfleet.domain.charge_points import ChargePoint, ChargingSite, StoredPlan
from microfleet.domain.places import Circle, StoredPlace
from microfleet.domain.utilisation import UtilisationBucket, utilisation_by_bucket
from microfleet.errors import InvalidInputError
from microfleet.services.accounts import AccountService

MAX_BUCKETS = 2_000  # 83 days of hours: a chart, not an export
MAX_WINDOW_MS = 31 * 86_400_000  # places' visits: a month at most


class StateSpans(Protocol):
    """The derived state spans (``microfleet.store.history.HistoryStore``)."""

    def state_spans_overlapping(
        self, vehicle_ids: Sequence[str], from_ms: int, to_ms: int
    ) -> dict[str, list[dict[str, Any]]]:
        """Each vehicle's state spans that overlap ``[from_ms, to_ms)``, oldest first."""
        ...


class PlaceVisits(Protocol):
    """Visits counted per place (``microfleet.store.history.HistoryStore``)."""

    def place_visits(
        self, vehicle_ids: Sequence[str], from_ms: int, to_ms: int
    ) -> dict[str | None, dict[str, float]]:
        """Per place id (None: none): arrivals, departures, charges and kWh of those in the window."""
        ...


class LatestStates(Protocol):
    """Each car's latest signals (``VehicleService``)."""

    def latest_states(
        self, vehicle_ids: Sequence[str], signals: Collection[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        """The latest state of these vehicles, keeping only ``signals``."""
        ...


class VisiblePlaces(Protocol):
    """Places a user sees (``PlaceService``)."""

    def visible_to(self, user: UserPrincipal) -> list[StoredPlace]:
        """Global places, the user's fleet's, and those of the vehicles they see."""
        ...


class FleetPlans(Protocol):
    """The fleet's charging plan (``ChargingService``)."""

    def plan_for(self, user: UserPrincipal, fleet_id: str) -> StoredPlan:
        """The current plan; only the fleet's operator or an admin."""
        ...


class FleetChargers(Protocol):
    """The fleet's sites and chargers (``ChargePointService``)."""

    def sites_for(self, user: UserPrincipal, fleet_id: str) -> list[ChargingSite]:
        """The fleet's sites; only the fleet's operator or an admin."""
        ...

    def charge_points_for(self, user: UserPrincipal, fleet_id: str) -> list[ChargePoint]:
        """The fleet's chargers; only the fleet's operator or an admin."""
        ...


@dataclass(frozen=True, slots=True)
class ConnectorPlan:
    """One charger connector's planned grid kW per slot and the car plugged into it (None: free)."""

    charge_point_id: str
    connector_id: int
    max_kw: float
    vehicle_id: str | None
    power_kw: list[float]


@dataclass(frozen=True, slots=True)
class SitePlan:
    """A site's connectors, its limit, the plan's peak there and the planned kW summed per slot."""

    site_id: str
    name: str
    power_limit_kw: float
    planned_peak_kw: float
    total_kw: list[float]
    connectors: list[ConnectorPlan]


@dataclass(frozen=True, slots=True)
class ChargerTimeline:
    """The current plan per charger: slots of ``slot_s`` from ``start_ms``; cars on no charger apart."""

    plan_id: int
    created_at_ms: int
    start_ms: int
    slot_s: int
    sites: list[SitePlan]
    unplaced: dict[str, list[float]]


@dataclass(frozen=True, slots=True)
class PlaceActivity:
    """A place, the user's cars whose last position is inside it, and what happened there in a window."""

    place_id: str | None
    name: str
    kind: str
    scope: str
    lat_deg: float | None
    lon_deg: float | None
    cars_now: list[str]
    arrivals: int
    departures: int
    charges: int
    charged_kwh: float


class FleetViewService:
    """Utilisation by hour, the plan per charger, and places with their cars, for the fleet page."""

    def __init__(
        self,
        accounts: AccountService,
        spans: StateSpans,
        visits: PlaceVisits,
        latest: LatestStates,
        places: VisiblePlaces,
        plans: FleetPlans,
        chargers: FleetChargers,
        clock: Callable[[], int],
    ) -> None:
        self._accounts = accounts
        self._spans = spans
        self._visits = visits
        self._latest = latest
        self._places = places
        self._plans = plans
        self._chargers = chargers
        self._clock = clock

    def utilisation(
        self, user: UserPrincipal, fleet_id: str | None, from_ms: int, to_ms: int, bucket_s: int
    ) -> list[UtilisationBucket]:
        """Per bucket of ``bucket_s``, the share of the user's cars' time driving, charging, parked, ..."""
        if to_ms <= from_ms:
            raise InvalidInputError(f"to_ms ({to_ms}) must be after from_ms ({from_ms})")
        if (to_ms - from_ms) / (bucket_s * 1000) > MAX_BUCKETS:
            raise InvalidInputError(f"at most {MAX_BUCKETS} buckets: widen bucket_s or narrow the window")
        now_ms = self._clock()
        ids = self._accounts.fleet_vehicle_ids(user, fleet_id)
        end_ms = min(to_ms, now_ms)
        if end_ms <= from_ms:
            return []
        spans = self._spans.state_spans_overlapping(ids, from_ms, end_ms)
        return utilisation_by_bucket(spans, from_ms, to_ms, bucket_s * 1000, now_ms)

    def charger_timeline(self, user: UserPrincipal, fleet_id: str) -> ChargerTimeline:
        """The fleet's current plan as planned kW per charger connector, grouped by site with its limit."""
        sites = self._chargers.sites_for(user, fleet_id)  # refuses anyone but the operator or an admin
        points = self._chargers.charge_points_for(user, fleet_id)
        plan = self._plans.plan_for(user, fleet_id)
        body = plan.plan
        slots = len(body["cars"][0]["power_kw"]) if body["cars"] else 0
        kw_by_car: dict[str, list[float]] = {c["vehicle_id"]: list(c["power_kw"]) for c in body["cars"]}
        on: dict[tuple[str, int], str] = {
            (t["charge_point_id"], int(t["connector_id"])): t["vehicle_id"] for t in body.get("targets", [])
        }
        placed: set[str] = set()
        out_sites = []
        for site in sites:
            connectors = []
            for p in sorted(
                (p for p in points if p.site_id == site.site_id), key=lambda p: p.charge_point_id
            ):
                for c in range(1, p.connectors + 1):
                    car = on.get((p.charge_point_id, c))
                    kw = kw_by_car.get(car, [0.0] * slots) if car is not None else [0.0] * slots
                    if car is not None:
                        placed.add(car)
                    connectors.append(ConnectorPlan(p.charge_point_id, c, p.max_kw, car, kw))
            total = [round(sum(c.power_kw[i] for c in connectors), 3) for i in range(slots)]
            out_sites.append(
                SitePlan(
                    site.site_id,
                    site.name,
                    site.power_limit_kw,
                    float(body["peak_kw_by_site"].get(site.site_id, max(total, default=0.0))),
                    total,
                    connectors,
                )
            )
        unplaced = {v: kw for v, kw in kw_by_car.items() if v not in placed and any(x > 0 for x in kw)}
        return ChargerTimeline(
            plan.plan_id, plan.created_at_ms, body["start_ms"], body["slot_s"], out_sites, unplaced
        )

    def places(
        self, user: UserPrincipal, fleet_id: str | None, from_ms: int, to_ms: int
    ) -> list[PlaceActivity]:
        """Each place the user sees with their cars there now (by last position) and the window's visits.

        With ``fleet_id``, only that fleet's cars and places (global ones, the fleet's, its cars' own).

        Arrivals are drives that ended there, departures drives that started there, charges those whose
        place it is; the last row (``place_id`` None) is everything outside every place. A car in two
        overlapping places is in both; a visit counts at the place the derivation named (the smallest).
        """
        if to_ms <= from_ms:
            raise InvalidInputError(f"to_ms ({to_ms}) must be after from_ms ({from_ms})")
        if to_ms - from_ms > MAX_WINDOW_MS:
            raise InvalidInputError("the places' window is at most 31 days")
        ids = self._accounts.fleet_vehicle_ids(user, fleet_id)
        seen = self._places.visible_to(user)
        if fleet_id is not None:  # the fleet's places: global ones, the fleet's own, its cars' own
            seen = [p for p in seen if p.scope == "global" or p.fleet_id == fleet_id or p.vehicle_id in ids]
        latest = self._latest.latest_states(ids, ["lat_deg", "lon_deg"])
        positions: dict[str, tuple[float, float]] = {}
        for vid, state in latest.items():
            signals = state.get("signals", {})
            lat, lon = signals.get("lat_deg"), signals.get("lon_deg")
            if lat is not None and lon is not None:
                positions[vid] = (float(lat["value"]), float(lon["value"]))
        counts = self._visits.place_visits(ids, from_ms, to_ms)
        out = []
        known: set[str] = set()
        for sp in sorted(seen, key=lambda p: p.place.name.lower()):
            place = sp.place
            known.add(place.place_id)
            g = place.geometry
            lat, lon = (g.lat_deg, g.lon_deg) if isinstance(g, Circle) else _centroid(g.vertices)
            here = sorted(v for v, (a, b) in positions.items() if g.contains(a, b))
            out.append(
                _activity(place.place_id, place.name, place.kind.value, sp.scope, lat, lon, here, counts)
            )
        inside = {v for row in out for v in row.cars_now}
        outside_now = sorted(v for v in positions if v not in inside)
        # visits at places the user does not see (another fleet's, deleted since) count as outside
        outside = counts.setdefault(None, {})
        for pid in [p for p in counts if p is not None and p not in known]:
            for key, value in counts.pop(pid).items():
                outside[key] = outside.get(key, 0.0) + value
        out.append(_activity(None, "outside every place", "", "", None, None, outside_now, counts))
        return out


def _centroid(vertices: Sequence[tuple[float, float]]) -> tuple[float, float]:
    return sum(v[0] for v in vertices) / len(vertices), sum(v[1] for v in vertices) / len(vertices)


def _activity(
    place_id: str | None,
    name: str,
    kind: str,
    scope: str,
    lat: float | None,
    lon: float | None,
    cars: list[str],
    counts: dict[str | None, dict[str, float]],
) -> PlaceActivity:
    row = counts.get(place_id, {})
    return PlaceActivity(
        place_id,
        name,
        kind,
        scope,
        lat,
        lon,
        cars,
        int(row.get("arrivals", 0)),
        int(row.get("departures", 0)),
        int(row.get("charges", 0)),
        round(row.get("kwh", 0.0), 3),
    )
