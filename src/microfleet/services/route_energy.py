"""Energy-aware routing as a use case: a visible car's model from its drives, its routes on the city graph.

The road graph comes through a port, built once per process on first use (the OSM extract takes about a
second to parse). A car's trip-energy model is fitted on read from its derived drives of the last
:data:`LEARNING_WINDOW_DAYS` days (a few hundred drives fit in milliseconds) and kept while its drives are
unchanged; without a car, or with too few drives, the answer rests on the catalogue prior and says so.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np

from microfleet.domain.access import UserPrincipal, Vehicle
from microfleet.domain.catalogue import Catalogue
from microfleet.domain.drives import Drive
from microfleet.errors import RouteInputError
from microfleet.intelligence.energy_routing import RoadGraph, RoundTrip, Route, plan_route, there_and_back
from microfleet.intelligence.trip_energy import (
    DriveObservation,
    EnergyForecast,
    TripEnergyModel,
    TripQuery,
    prior_for_model,
)
from microfleet.services.accounts import AccountService

LEARNING_WINDOW_DAYS: Final = 84  # twelve weeks of drives: the same window as route learning
MAX_DRIVES: Final = 5_000
DAY_MS: Final = 86_400_000
DEFAULT_AMBIENT_C: Final = (
    20.0  # without a temperature or a recent drive's: a mild day (stated in the answer)
)
LOCAL_UTC_OFFSET_H: Final = 8.0  # the shipped city's local time (Shanghai, UTC+8) for the hour of day
OBJECTIVES: Final = ("energy", "time")


class DriveReads(Protocol):
    """A car's derived drives (``microfleet.store.history.HistoryStore``)."""

    def drives(self, vehicle_id: str, from_ms: int, to_ms: int, limit: int) -> list[Drive]:
        """Drives that started in ``[from_ms, to_ms)``, oldest first."""
        ...


class RoadGraphSource(Protocol):
    """The city's routing graph (built from the OSM extract by ``microfleet.sim.road_graph``)."""

    def __call__(self) -> RoadGraph:
        """The graph; raises :class:`~microfleet.errors.ConfigurationError` if there is none."""
        ...


@dataclass(frozen=True)
class RouteLeg:
    """One route as an answer: geometry, length, time, energy P10/P50/P90."""

    objective: str
    path: list[tuple[float, float]]  # (lat, lon) of each node
    distance_km: float
    duration_min: float
    energy_p10_kwh: float
    energy_p50_kwh: float
    energy_p90_kwh: float


@dataclass(frozen=True)
class RouteAnswer:
    """The chosen route, the other objective's route, the trade-off, the round trip and the model used."""

    objective: str
    vehicle_id: str | None
    drives_learned: int  # the car's drives the model was calibrated on
    route: RouteLeg
    alternative: RouteLeg
    kwh_saved_by_energy_route: float
    minutes_added_by_energy_route: float
    round_trip: RoundTrip | None
    model_basis: str
    model_version: str
    ambient_temp_c: float
    ambient_source: str
    hour_local: float


def observation(d: Drive) -> DriveObservation | None:
    """A derived drive as the energy model's observation (None without energy, distance or temperature)."""
    km = d.distance_odometer_km or d.distance_gps_km
    if d.energy_used_kwh is None or d.energy_used_kwh <= 0 or not km or d.ambient_temp_c is None:
        return None
    hour = ((d.start_ts_ms / 3.6e6) + LOCAL_UTC_OFFSET_H) % 24
    weekday = int((d.start_ts_ms / DAY_MS + LOCAL_UTC_OFFSET_H / 24 + 3) % 7)  # 1970-01-01 was a Thursday
    trip = TripQuery(km, d.duration_s, d.ambient_temp_c, hour, weekday >= 5)
    return DriveObservation(trip, d.energy_used_kwh, d.energy_resolution_kwh or 0.0, d.end_ts_ms)


class RouteEnergyService:
    """Fastest and energy-optimal routes for a visible car (or the generic prior), with its energy band."""

    def __init__(
        self,
        drives: DriveReads,
        graph: RoadGraphSource,
        catalogue: Callable[[], Catalogue],
        accounts: AccountService,
        clock: Callable[[], int],
    ) -> None:
        """Keep the ports; the graph is built on the first route asked for."""
        self._drives = drives
        self._graph_source = graph
        self._catalogue = catalogue
        self._accounts = accounts
        self._clock = clock
        self._graph: RoadGraph | None = None
        self._lock = threading.Lock()
        self._models: dict[str, tuple[tuple[int, int], TripEnergyModel, str]] = {}

    def graph(self) -> RoadGraph:
        """The city's graph, built once."""
        with self._lock:
            if self._graph is None:
                self._graph = self._graph_source()
            return self._graph

    def model_for(self, vehicle: Vehicle | None) -> tuple[TripEnergyModel, str, list[Drive]]:
        """The car's model fitted on its recent drives (cached until they change), its label and drives."""
        prior, label = prior_for_model(self._catalogue(), vehicle.model_id if vehicle else None)
        if vehicle is None:
            return TripEnergyModel(prior), label, []
        now = self._clock()
        drives = self._drives.drives(
            vehicle.vehicle_id, now - LEARNING_WINDOW_DAYS * DAY_MS, now + 1, MAX_DRIVES
        )
        key = (len(drives), drives[-1].end_ts_ms if drives else 0)
        cached = self._models.get(vehicle.vehicle_id)
        if cached is not None and cached[0] == key:
            return cached[1], cached[2], drives
        obs = [o for d in drives if (o := observation(d)) is not None]
        model = TripEnergyModel(prior).update(obs)
        self._models[vehicle.vehicle_id] = (key, model, label)
        return model, label, drives

    def route(
        self,
        user: UserPrincipal,
        origin: tuple[float, float],
        destination: tuple[float, float],
        *,
        objective: str = "energy",
        vehicle_id: str | None = None,
        soc_pct: float | None = None,
        ambient_temp_c: float | None = None,
        hour_local: float | None = None,
    ) -> RouteAnswer:
        """Both routes between two points for the car (404 if not visible), the chosen one first."""
        vehicle = self._accounts.vehicle_for(user, vehicle_id) if vehicle_id is not None else None
        return self.route_for(
            vehicle, origin, destination, objective=objective, soc_pct=soc_pct,
            ambient_temp_c=ambient_temp_c, hour_local=hour_local,
        )  # fmt: skip

    def route_for(
        self,
        vehicle: Vehicle | None,
        origin: tuple[float, float],
        destination: tuple[float, float],
        *,
        objective: str = "energy",
        soc_pct: float | None = None,
        ambient_temp_c: float | None = None,
        hour_local: float | None = None,
    ) -> RouteAnswer:
        """Both routes for a car already resolved (the CLI's administrator, or :meth:`route`)."""
        if objective not in OBJECTIVES:
            raise RouteInputError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
        if soc_pct is not None and vehicle is None:
            raise RouteInputError("soc_pct needs a vehicle_id: the round trip depends on the car's pack")
        graph = self.graph()
        o = graph.snap(*origin)
        d = graph.snap(*destination)
        model, label, drives = self.model_for(vehicle)
        hour = hour_local if hour_local is not None else ((self._clock() / 3.6e6) + LOCAL_UTC_OFFSET_H) % 24
        if ambient_temp_c is not None:
            ambient, source = ambient_temp_c, "given"
        else:
            recent = [x.ambient_temp_c for x in drives[-5:] if x.ambient_temp_c is not None]
            ambient, source = (
                (float(np.median(recent)), "the car's recent drives")
                if recent
                else (DEFAULT_AMBIENT_C, "default")
            )
        factor = _time_factor(drives, hour)
        plan = plan_route(graph, model, o, d, hour=hour, ambient_temp_c=ambient, time_factor=factor)
        chosen, other = (
            (plan.energy_optimal, plan.fastest)
            if objective == "energy"
            else (plan.fastest, plan.energy_optimal)
        )
        legs = [
            self._leg(graph, model, r, name, ambient, hour)
            for r, name in ((chosen, objective), (other, _other(objective)))
        ]
        round_trip = None
        if soc_pct is not None and vehicle is not None:
            back = plan_route(graph, model, d, o, hour=hour, ambient_temp_c=ambient, time_factor=factor)
            back_route = back.energy_optimal if objective == "energy" else back.fastest
            back_leg = self._leg(graph, model, back_route, objective, ambient, hour)
            usable = float(model.prior.params.usable_kwh[0])
            round_trip = there_and_back(
                graph, legs[0].energy_p90_kwh + back_leg.energy_p90_kwh, soc_pct, usable, chosen.nodes
            )
        forecast_version = (
            model.calibration.version if model.calibration and model.calibration.n_drives else "prior"
        )
        basis = model.predict(
            [TripQuery(max(chosen.length_m / 1000, 0.01), max(chosen.time_s, 1.0), ambient, hour)]
        ).basis
        return RouteAnswer(
            objective=objective,
            vehicle_id=vehicle.vehicle_id if vehicle else None,
            drives_learned=model.calibration.n_drives if model.calibration else 0,
            route=legs[0],
            alternative=legs[1],
            kwh_saved_by_energy_route=plan.kwh_saved,
            minutes_added_by_energy_route=plan.minutes_added,
            round_trip=round_trip,
            model_basis=f"{basis}; {label}"
            if basis != "car"
            else f"calibrated on this car's drives; {label}",
            model_version=forecast_version,
            ambient_temp_c=ambient,
            ambient_source=source,
            hour_local=hour,
        )

    @staticmethod
    def _leg(
        graph: RoadGraph, model: TripEnergyModel, route: Route, objective: str, ambient: float, hour: float
    ) -> RouteLeg:
        """A route as an answer: P50 its edge energy (what routing compared), P10/P90 the trip model's."""
        trip = TripQuery(max(route.length_m / 1000, 0.01), max(route.time_s, 1.0), ambient, hour)
        f: EnergyForecast = model.predict([trip])
        p50 = float(f.p50_kwh[0])
        path = [(float(graph.lat_deg[n]), float(graph.lon_deg[n])) for n in route.nodes]
        return RouteLeg(
            objective=objective,
            path=path,
            distance_km=route.length_m / 1000,
            duration_min=route.time_s / 60,
            energy_p10_kwh=route.energy_kwh * float(f.p10_kwh[0]) / p50,
            energy_p50_kwh=route.energy_kwh,
            energy_p90_kwh=route.energy_kwh * float(f.p90_kwh[0]) / p50,
        )


def _other(objective: str) -> str:
    return "time" if objective == "energy" else "energy"


def _time_factor(drives: list[Drive], hour: float) -> float:
    """How much slower than usual the car drives at this hour (its drives' speed, 1 with too few)."""
    speed = [
        (d.distance_odometer_km or d.distance_gps_km) / (d.duration_s / 3600)
        for d in drives
        if d.duration_s > 60
    ]
    at_hour = [
        (d.distance_odometer_km or d.distance_gps_km) / (d.duration_s / 3600)
        for d in drives
        if d.duration_s > 60 and int(((d.start_ts_ms / 3.6e6) + LOCAL_UTC_OFFSET_H) % 24) == int(hour)
    ]
    if len(speed) < 10 or len(at_hour) < 3:
        return 1.0
    return float(np.clip(np.median(speed) / max(np.median(at_hour), 1e-3), 0.5, 3.0))
