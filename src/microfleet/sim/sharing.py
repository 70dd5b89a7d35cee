"""The car-sharing fleet: bookings arriving by zone and hour, served by the nearest free car."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np

from microfleet.sim.city import Places, RoadNetwork
from microfleet.sim.people import MIN_DWELL_S, Leg, draw_trip_km, place_at_distance
from microfleet.sim.reference import CITED_SHARING_BOOKINGS_PER_CAR_DAY, MobilityFigures

ZONE_SIZE_M: Final = 1000.0  # bookings are counted in 1 km × 1 km zones
WALK_RADIUS_M: Final = 1500.0  # a customer takes a car parked within 1.5 km (assumed, free-floating norm)
# A stop inside a rental: the cited ~30 min rentals (ERTICO/TRIMS; Share Now 2019 ≈ 32.5 min) against
# ~18 min of driving here leave ~12 min per rental besides driving: 45% of rentals stop on the way, median
# 12 min, at least the 10 min every stop lasts (assumed; calibrated by bench/twin_realism.py).
STOP_SHARE: Final = 0.45
STOP_MEDIAN_S: Final = 720.0
MEAN_SPEED_KMH: Final = 20.0  # for planning only; the real drive time comes from the route and traffic
PLAN_WH_PER_KM: Final = 120.0  # planning estimate of consumption (assumed, between cited 110-146 Wh/km)
RELOCATE_BELOW_PCT: Final = 25.0  # the operator takes a car to a depot to charge below this (assumed)
DEPOT_CHARGE_TO_PCT: Final = 90.0


@dataclass
class SharedCar:
    """One fleet car as the operator's dispatcher sees it."""

    vehicle: int
    location: int
    usable_kwh: float
    charge_kw: float
    est_soc_pct: float = 90.0
    free_at_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Booking:
    """One booking request and how it was served (truth)."""

    booking: int
    request_s: float
    zone: int
    vehicle: int  # -1 = no free car nearby (unserved demand)
    pickup: int
    dropoff: int


@dataclass
class Dispatcher:
    """Plans each day's rentals for the fleet; keeps the bookings as truth."""

    cars: list[SharedCar]
    bookings: list[Booking] = field(default_factory=list)

    def zone_of(self, net: RoadNetwork, node: int) -> int:
        """The 1 km grid zone of a node (row-major from the south-west corner of the extract)."""
        lat0, lon0 = float(net.lat_deg.min()), float(net.lon_deg.min())
        y = (net.lat_deg[node] - lat0) * 111_195.0
        x = (net.lon_deg[node] - lon0) * 111_195.0 * np.cos(np.radians(lat0))
        return int(y // ZONE_SIZE_M) * 100 + int(x // ZONE_SIZE_M)

    def plan_day(
        self,
        day: int,
        weekend: bool,
        net: RoadNetwork,
        places: Places,
        mob: MobilityFigures,
        rng: np.random.Generator,
    ) -> list[Leg]:
        """Draw the day's bookings (Poisson by hour) and turn the served ones into legs."""
        if not self.cars:
            return []
        # Demand is drawn a little above the cited 7 uses/car/day because some requests find no car nearby.
        rate = CITED_SHARING_BOOKINGS_PER_CAR_DAY * len(self.cars) * 1.15
        per_hour = rng.poisson(rate * mob.departure_hour_share[1 if weekend else 0])
        times = np.sort(np.concatenate([(h + rng.random(k)) * 3600.0 for h, k in enumerate(per_hour)]))
        legs: list[Leg] = []
        for car in self.cars:  # cars left low by yesterday's rentals go to a depot first thing
            if car.est_soc_pct < RELOCATE_BELOW_PCT:
                legs += self._relocate(car, max(car.free_at_s, day * 86400.0), net, places)
        locations = np.array([c.location for c in self.cars])
        for t_day in times:
            t = day * 86400.0 + float(t_day)
            # Customers book through the app where cars are: near a random fleet car's parking place.
            near = int(rng.choice(locations))
            pickup = place_at_distance(
                net, places.other, near, float(rng.uniform(0.0, WALK_RADIUS_M / 1000.0)), rng
            )
            km = draw_trip_km(mob, rng)
            # The app offers only cars with range for the trip and the drive to a depot after it (10% margin).
            free = np.array(
                [c.free_at_s <= t and c.est_soc_pct - _trip_pct(c, km * 1.5) > 10.0 for c in self.cars]
            )
            dist = net.distance_m(pickup, locations)
            dist[~free] = np.inf
            booking = len(self.bookings)
            best = int(np.argmin(dist))
            if not np.isfinite(dist[best]) or dist[best] > WALK_RADIUS_M:
                self.bookings.append(Booking(booking, t, self.zone_of(net, pickup), -1, pickup, -1))
                continue
            car = self.cars[best]
            dropoff = place_at_distance(net, places.other, car.location, km, rng)
            self.bookings.append(
                Booking(booking, t, self.zone_of(net, pickup), car.vehicle, car.location, dropoff)
            )
            depart = t + dist[best] / 1.3  # the customer walks to the car at ~1.3 m/s
            drive_s = km / MEAN_SPEED_KMH * 3600.0
            if rng.random() < STOP_SHARE:  # an errand on the way: two legs, the car waits in between
                errand = place_at_distance(net, places.other, car.location, km / 2, rng)
                stop = max(float(rng.lognormal(np.log(STOP_MEDIAN_S), 0.6)), MIN_DWELL_S)
                legs.append(Leg(car.vehicle, depart, car.location, errand, "rental", False, booking))
                legs.append(
                    Leg(car.vehicle, depart + drive_s / 2 + stop, errand, dropoff, "rental", False, booking)
                )
                car.free_at_s = depart + drive_s + stop
            else:
                legs.append(Leg(car.vehicle, depart, car.location, dropoff, "rental", False, booking))
                car.free_at_s = depart + drive_s
            car.est_soc_pct -= _trip_pct(car, km)
            car.location = dropoff
            if car.est_soc_pct < RELOCATE_BELOW_PCT:
                legs += self._relocate(car, car.free_at_s, net, places)
            locations[best] = car.location
        return legs

    @staticmethod
    def _relocate(car: SharedCar, t: float, net: RoadNetwork, places: Places) -> list[Leg]:
        """Send a low car to the nearest depot to charge; it is out of service until charged."""
        depot = int(places.depot[int(np.argmin(net.distance_m(car.location, places.depot)))])
        if depot == car.location:
            return []
        leg = Leg(car.vehicle, t, car.location, depot, "relocate_charge", False)
        charge_h = (DEPOT_CHARGE_TO_PCT - car.est_soc_pct) / 100.0 * car.usable_kwh / car.charge_kw
        car.free_at_s = t + 1800.0 + charge_h * 3600.0
        car.est_soc_pct = DEPOT_CHARGE_TO_PCT
        car.location = depot
        return [leg]


def _trip_pct(car: SharedCar, km: float) -> float:
    """Planned state-of-charge use of a trip of ``km`` (percentage points)."""
    return km * PLAN_WH_PER_KM / 10.0 / car.usable_kwh
