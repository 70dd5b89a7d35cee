"""The twin's day loop: plan the people's and the fleet's legs, route and drive them, play each car's day."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from microfleet.sim.city import Places, RoadNetwork, choose_places, load_road_network
from microfleet.sim.drive import DriveTrace, drive_trace
from microfleet.sim.environment import Weather, congestion_factor, make_weather
from microfleet.sim.faults import Fault, schedule_faults
from microfleet.sim.fleet import TwinVehicle, make_fleet, shared_cars
from microfleet.sim.models import MODELS
from microfleet.sim.people import Leg, plan_owner_day
from microfleet.sim.reference import MobilityFigures, data_dir, load_climate, load_mobility
from microfleet.sim.routing import Router
from microfleet.sim.scenario import CITY_FILES, Scenario
from microfleet.sim.sensor_profiles import CarSensors
from microfleet.sim.sharing import Dispatcher
from microfleet.sim.timeline import LegDrive, Segments, Stop, run_vehicle
from microfleet.sim.vehicles import TwinPhysics

F64 = npt.NDArray[np.float64]
# Capacity lost per mV of extra sag of the weakest cell (assumed: 100 mV of sag on an LFP plateau cell
# ≈ 2% less charge it can hold before the BMS stops the string).
WEAK_CELL_SOH_PCT_PER_MV = 0.02
WEATHER_EXTENSION_DAYS = 7  # an open-ended twin draws its weather past the scenario a week at a time


@dataclass
class Traces:
    """Every drive simulated in a day, second by second, with its battery power and HVAC power."""

    drives: list[DriveTrace] = field(default_factory=list)
    power_kw: list[F64] = field(default_factory=list)
    hvac_kw: list[float] = field(default_factory=list)
    setpoint_c: list[float] = field(default_factory=list)


@dataclass
class DayResult:
    """One simulated day: its segments and drives, ready to be turned into telemetry and truth."""

    day: int
    segments: Segments
    traces: Traces


@dataclass
class World:
    """The static setting of a run: city, places, climate, traffic and cited figures."""

    net: RoadNetwork
    places: Places
    mobility: MobilityFigures
    weather: Weather
    router: Router


class Twin:
    """A running digital twin for one scenario; iterate :meth:`days` to simulate it day by day."""

    def __init__(self, scenario: Scenario, data: Path | None = None, *, open_ended: bool = False) -> None:
        """Load the city and the cited figures and draw the fleet, faults and weather from the seed.

        An ``open_ended`` twin goes on past the scenario's last day (a live run that keeps driving in real
        time): :meth:`days` then simulates one more day at a time for as long as the caller iterates.
        """
        self.scenario = scenario.validate(frozenset(MODELS))
        self.open_ended = open_ended
        root = data_dir(data)
        self.rng = np.random.default_rng(scenario.seed)
        city = scenario.city
        net = load_road_network(root / CITY_FILES[city] if city in CITY_FILES else Path(city))
        places = choose_places(net, np.random.default_rng([scenario.seed, 1]))
        self._climate = load_climate(root, scenario.climate_city)
        weather = make_weather(self._climate, self.start.timetuple().tm_yday - 1, scenario.days,
                               scenario.temp_offset_c, np.random.default_rng([scenario.seed, 2]))  # fmt: skip
        self.world = World(net, places, load_mobility(root), weather, Router(net))
        self.physics = TwinPhysics.load(scenario.models)
        self.fleet: list[TwinVehicle] = make_fleet(scenario, net, places, self.rng, self.physics.models)
        self.dispatcher = Dispatcher(shared_cars(self.fleet, places, self.rng))
        fault_rng = np.random.default_rng([scenario.seed, 5])  # own stream: faults never change the people
        self.faults: list[Fault] = schedule_faults(
            scenario.fault_rates, len(self.fleet), scenario.days, fault_rng
        )
        # own stream too: the sensor model never changes the people or the faults
        self.sensors = CarSensors.draw(
            self.fleet, scenario.sensor_model, np.random.default_rng([scenario.seed, 6])
        )
        self.stops = [Stop(0.0, v.person.home if v.person else -1) for v in self.fleet]
        for car in self.dispatcher.cars:
            self.stops[car.vehicle] = Stop(0.0, car.location)

    @property
    def start(self) -> dt.datetime:
        """Midnight (local time, treated as UTC+8 for Shanghai) of the first simulated day, as UTC."""
        local = dt.datetime.combine(
            self.scenario.start_date, dt.time(0), tzinfo=dt.timezone(dt.timedelta(hours=8))
        )
        return local.astimezone(dt.UTC)

    def days(self) -> Iterator[DayResult]:
        """Simulate the scenario one day at a time (an open-ended twin: then on, until the caller stops)."""
        for day in itertools.count() if self.open_ended else range(self.scenario.days):
            yield self.simulate_day(day)

    def simulate_day(self, day: int) -> DayResult:
        """Plan, route, drive and play one day for every vehicle."""
        self._weather_through(day + 1)
        w = self.world
        for fault in self.faults:  # a weak cell limits the series string: the pack's true capacity falls
            if fault.kind == "weak_cell" and fault.start_s < (day + 1) * 86400.0:
                active_days = min(1.0, ((day + 1) * 86400.0 - fault.start_s) / 86400.0)
                self.fleet[fault.vehicle].true_soh_pct -= (
                    WEAK_CELL_SOH_PCT_PER_MV * fault.rate_per_day * active_days
                )
        weekday = (self.scenario.start_date + dt.timedelta(days=day)).weekday()
        weekend = weekday >= 5
        legs: list[Leg] = []
        for v in self.fleet:
            if v.person is not None:
                legs += plan_owner_day(v.index, v.person, day, weekend, w.net, w.places, w.mobility, self.rng)
        for car in self.dispatcher.cars:
            car.est_soc_pct = self.fleet[car.vehicle].soc_pct
        legs += self.dispatcher.plan_day(day, weekend, w.net, w.places, w.mobility, self.rng)
        routes = w.router.routes(
            np.array([g.origin for g in legs], dtype=np.int64),
            np.array([g.destination for g in legs], dtype=np.int64),
        )
        congestion = congestion_factor(w.mobility, weekend)
        traces = Traces()
        by_vehicle: list[list[LegDrive]] = [[] for _ in self.fleet]
        for leg, route in zip(legs, routes, strict=True):
            if route.size:
                by_vehicle[leg.vehicle].append(self._simulate_leg(leg, route, congestion, traces))
        segs = Segments()
        end_s = (day + 1) * 86400.0

        def drive_now(v: TwinVehicle, origin: int, dest: int, depart: float) -> LegDrive:
            route = w.router.routes(np.array([origin]), np.array([dest]))[0]
            return self._simulate_leg(
                Leg(v.index, depart, origin, dest, "to_charger", False), route, congestion, traces
            )

        for v in self.fleet:
            drives = sorted(by_vehicle[v.index], key=lambda d: d.leg.depart_s)
            self.stops[v.index] = run_vehicle(
                v, self.stops[v.index], drives, end_s, w.net, w.places, drive_now, segs
            )
        return DayResult(day, segs, traces)

    def _weather_through(self, day: int) -> None:
        """Extend the hourly weather, a week at a time, so it covers ``day`` (days past the scenario's).

        The scenario's own days keep the weather drawn at the start; a later week is drawn from the same
        climate (its own seeded stream) and joined without a jump: the gap between the last known hour and
        the new week's first fades out over 24 hours. No new fault starts after the scenario's days.
        """
        hourly = self.world.weather.hourly_c
        known_days = hourly.size // 24  # the weather covers days 0 .. known_days - 1
        if day < known_days:
            return
        week = make_weather(
            self._climate,
            self.start.timetuple().tm_yday - 1 + known_days,
            WEATHER_EXTENSION_DAYS - 1,
            self.scenario.temp_offset_c,
            np.random.default_rng([self.scenario.seed, 2, known_days]),
        ).hourly_c
        fade = np.clip(1.0 - np.arange(week.size) / 24.0, 0.0, 1.0)
        week = week + (hourly[-1] - week[0]) * fade
        self.world.weather = Weather(hourly_c=np.concatenate([hourly, week]))
        self._weather_through(day)

    def _simulate_leg(
        self, leg: Leg, route: npt.NDArray[np.int64], congestion: F64, traces: Traces
    ) -> LegDrive:
        v = self.fleet[leg.vehicle]
        hour = int(leg.depart_s // 3600) % 24
        person = v.person
        aggr = person.aggressiveness if person else float(self.rng.beta(2.0, 3.0))
        setpoint = person.hvac_setpoint_c if person else 22.0
        tolerance = person.hvac_tolerance_k if person else float(self.rng.uniform(3.0, 10.0))
        trace = drive_trace(
            self.world.net, route, float(congestion[hour]), aggr, v.model.top_speed_kmh, self.rng
        )
        ambient = float(self.world.weather.at(np.array([leg.depart_s]))[0])
        hvac_on = abs(ambient - setpoint) > tolerance
        power, hvac = self.physics.drive_power(v.model.model_id, trace.speed_mps, ambient, setpoint, hvac_on)
        n = trace.duration_s
        traces.drives.append(trace)
        traces.power_kw.append(power)
        traces.hvac_kw.append(hvac)
        traces.setpoint_c.append(setpoint)
        return LegDrive(
            leg,
            len(traces.drives) - 1,
            float(n),
            float(trace.dist_m[-1] / 1000.0),
            float(power.sum() / 3600.0),
        )
