"""Route learning as a use case: a car's routine trips and insights, and its forecast for the next trips.

Learned on read from the car's derived drives of the last :data:`LEARNING_WINDOW_DAYS` days and the places
that apply to it (nothing is stored: a refit costs milliseconds for a few hundred drives). The entry
point resolves the vehicle with :meth:`AccountService.vehicle_for` first, so every read here is of a car
the caller may see.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import Final, Protocol

from microfleet.domain.access import Vehicle
from microfleet.domain.drives import Drive
from microfleet.domain.places import Place
from microfleet.domain.time_zones import iana_zone
from microfleet.errors import ConfigurationError, InvalidInputError, NotFoundError
from microfleet.intelligence.trip_energy import TripEnergyModel, TripQuery
from microfleet.intelligence.trip_forecast import (
    Forecast,
    RouteBook,
    TripEnergy,
    TripEnergyFn,
    forecast,
    learn_routes,
)

# Twelve weeks: enough for a weekday's routine to repeat a dozen times, short enough that a new job or
# home shows within weeks (Microfleet's choice).
LEARNING_WINDOW_DAYS: Final = 84
MAX_DRIVES: Final = 5_000  # ~60 drives a day for 12 weeks: beyond any owner's car
DAY_MS: Final = 86_400_000


class DriveReads(Protocol):
    """A car's derived drives (``microfleet.store.history.HistoryStore``)."""

    def drives(self, vehicle_id: str, from_ms: int, to_ms: int, limit: int) -> list[Drive]:
        """Drives that started in ``[from_ms, to_ms)``, oldest first."""
        ...


class CarPlaces(Protocol):
    """The places that apply to a car (``microfleet.store.places_store.PlaceStore``)."""

    def applying_to(self, vehicle_id: str) -> list[Place]:
        """The car's own places, its fleet's and the global ones."""
        ...


class CarEnergyModels(Protocol):
    """A car's trip energy model, fitted on its drives (``microfleet.services.route_energy``)."""

    def model_for(self, vehicle: Vehicle | None) -> tuple[TripEnergyModel, str, list[Drive]]:
        """The car's model, its label and the drives it was fitted on."""
        ...


AMBIENT_DRIVES: Final = 20  # the forecast's ambient temperature: the median of the car's last 20 drives'


def energy_function(model: TripEnergyModel, label: str, drives: list[Drive]) -> TripEnergyFn | None:
    """The car's model as route learning asks it, at the ambient temperature of its latest drives."""
    temps = [t for d in drives[-AMBIENT_DRIVES:] if (t := d.ambient_temp_c) is not None and math.isfinite(t)]
    if not temps:
        return None
    ambient = statistics.median(temps)

    def energy(km: float, duration_s: float, hour: float, weekend: bool) -> TripEnergy | None:
        if not (km > 0 and duration_s > 0):
            return None
        f = model.predict([TripQuery(km, duration_s, ambient, hour, weekend)])
        basis = f"per-car trip energy model ({f.version}; {f.basis}; {label}; at {ambient:.0f} °C)"
        return TripEnergy(float(f.p10_kwh[0]), float(f.p50_kwh[0]), float(f.p90_kwh[0]), basis)

    return energy


class RouteService:
    """Routine trips, energy per trip, insights and the next-trip forecast of one visible car."""

    def __init__(
        self,
        drives: DriveReads,
        places: CarPlaces,
        usable_kwh_of_model: Callable[[str], float | None],
        clock: Callable[[], int],
        energy: CarEnergyModels | None = None,
    ) -> None:
        self._drives = drives
        self._places = places
        self._usable = usable_kwh_of_model
        self._clock = clock
        self._energy = energy

    def _energy_of(self, vehicle: Vehicle) -> TripEnergyFn | None:
        if self._energy is None:
            return None
        try:
            model, label, drives = self._energy.model_for(vehicle)
        except (NotFoundError, ConfigurationError, InvalidInputError):
            return None  # no catalogue installed, or no prior for this car: the trips' own figures serve
        return energy_function(model, label, drives)

    def _recent(self, vehicle_id: str, now_ms: int) -> list[Drive]:
        since = max(0, now_ms - LEARNING_WINDOW_DAYS * DAY_MS)
        return self._drives.drives(vehicle_id, since, now_ms + 1, MAX_DRIVES)

    def routes(self, vehicle: Vehicle, tz: str) -> RouteBook:
        """The car's places, routine trips (counts, usual departure, energy P10/P50/P90) and insights."""
        zone = iana_zone(tz)
        drives = self._recent(vehicle.vehicle_id, self._clock())
        places = self._places.applying_to(vehicle.vehicle_id)
        return learn_routes(drives, places, zone, self._energy_of(vehicle))

    def forecast(self, vehicle: Vehicle, tz: str, at_ms: int | None = None) -> Forecast:
        """The car's next trips from ``at_ms`` (now), their energy and the SoC needed by departure."""
        zone = iana_zone(tz)
        now = self._clock() if at_ms is None else at_ms
        drives = self._recent(vehicle.vehicle_id, now)
        usable = self._usable(vehicle.model_id) if vehicle.model_id else None
        places = self._places.applying_to(vehicle.vehicle_id)
        return forecast(drives, places, zone, now, usable, self._energy_of(vehicle))
