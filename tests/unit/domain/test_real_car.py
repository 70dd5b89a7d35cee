"""Derivation on a real small EV's logs (issue 11), not the twin's: stops never split a drive, and a car
that sends only SoC still gets every drive's and charge's energy, marked with its lower precision.

The car is ``realcar.generate``: 17 trips with a light or a queue every few hundred metres. Before issue 11
derivation split them into 187 drives with no energy at all.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from microfleet.domain.derivation import DerivationOptions, VehicleContext, derive_history
from microfleet.domain.vehicle_state import GEAR_CODES, TelemetryColumns
from tests.unit.domain import realcar

BOUNDARY_S = 60.0  # the accuracy bench's boundary tolerance
CTX = VehicleContext(usable_kwh=realcar.USABLE_KWH)

VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("gear N/D/R, SoC 0.01 %", {}),
    ("SoC in 1 % steps", {"soc_step_pct": 1.0}),
    ("no gear, only speed", {"gear": False}),
    ("ignition on while parked with the climate on", {"ignition": "climate"}),
    ("gear P at long lights", {"p_at_lights": True}),
    ("charger flag late", {"charge": True}),
    ("no gear, climate, charger", {"gear": False, "ignition": "climate", "charge": True}),
]


@pytest.mark.parametrize(("name", "kw"), VARIANTS, ids=[v[0] for v in VARIANTS])
@pytest.mark.parametrize("seed", [1])
def test_every_trip_is_one_drive_with_energy_from_soc(name: str, kw: dict[str, Any], seed: int) -> None:
    car = realcar.generate(seed=seed, **kw)
    history = derive_history(car.cols, None, CTX)
    assert len(history.drives) == len(car.trips) == 17
    for drive, trip in zip(history.drives, car.trips, strict=True):
        assert abs(drive.start_ts_ms - trip.start_ms) / 1000 <= BOUNDARY_S
        assert abs(drive.end_ts_ms - trip.end_ms) / 1000 <= BOUNDARY_S
        assert drive.energy_source == "soc"
        assert drive.energy_used_kwh is not None and drive.energy_resolution_kwh is not None
        step = kw.get("soc_step_pct", 0.01)
        assert drive.energy_resolution_kwh == pytest.approx(step / 100 * realcar.USABLE_KWH)
        # SoC readings are floored: the change is good to one step of capacity, plus what the car drew
        # (standing: 0.3 kW) in the seconds a boundary is off the truth's
        off_s = abs(drive.start_ts_ms - trip.start_ms) / 1000 + abs(drive.end_ts_ms - trip.end_ms) / 1000
        assert abs(drive.energy_used_kwh - trip.kwh) <= drive.energy_resolution_kwh + 0.3 * off_s / 3600


@pytest.mark.parametrize("seed", [1, 2])
def test_charges_start_with_power_though_the_plug_flag_is_late(seed: int) -> None:
    car = realcar.generate(seed=seed, charge=True)
    charges = derive_history(car.cols, None, CTX).charges
    assert len(charges) == len(car.charges) == 5
    for c, truth in zip(charges, car.charges, strict=True):
        assert abs(c.start_ts_ms - truth.start_ms) / 1000 <= BOUNDARY_S
        assert abs(c.power_end_ts_ms - truth.end_ms) / 1000 <= BOUNDARY_S
        assert c.energy_source == "soc" and c.energy_resolution_kwh is not None
        assert c.energy_added_kwh is not None
        assert abs(c.energy_added_kwh - truth.kwh) <= c.energy_resolution_kwh + 1e-9


def test_without_a_usable_capacity_soc_gives_no_energy_rather_than_a_guess() -> None:
    car = realcar.generate(seed=1)
    drives = derive_history(car.cols, None, VehicleContext()).drives
    assert len(drives) == 17
    assert all(d.energy_used_kwh is None and d.energy_source is None for d in drives)


def _car(stops_s: list[int], ignition: bool = True) -> TelemetryColumns:
    """One drive per entry of ``stops_s`` lists: 60 s at 30 km/h before each stop (in N, ignition on when
    reported), and a last 60 s of driving; parked (P, ignition off when reported) 10 min before and after."""
    ts: list[int] = []
    speed: list[float] = []
    gear: list[int] = []
    ign: list[float] = []

    def add(seconds: int, v: float, g: str, on: float, every: int = 1) -> None:
        start = ts[-1] + every if ts else 0
        for k in range(0, seconds, every):
            ts.append(start + k)
            speed.append(v)
            gear.append(GEAR_CODES[g])
            ign.append(on if ignition else np.nan)

    add(600, 0.0, "P", 0.0, 60)
    for stop in stops_s:
        add(60, 30.0, "D", 1.0)
        add(stop, 0.0, "N", 1.0)
    add(60, 30.0, "D", 1.0)
    add(600, 0.0, "P", 0.0, 60)
    arrays = {"ts_ms": np.array(ts, dtype=np.int64) * 1000, "speed_kmh": speed, "gear_code": gear}
    return TelemetryColumns.from_arrays("stops", {**arrays, "ignition_on": ign})


def test_a_stop_that_is_long_for_this_car_ends_its_drive_once_learned() -> None:
    # a car whose lights hold it 20-60 s: after 100 such stops a 250 s stand is parking (its threshold is
    # twice its 95th percentile, floored at 120 s); a new car still waits Traccar's 300 s
    lights = [20 + (k * 7) % 41 for k in range(100)]
    assert len(derive_history(_car([*lights, 250])).drives) == 2
    assert len(derive_history(_car([250])).drives) == 1
    off = DerivationOptions(per_car_thresholds=False)
    assert len(derive_history(_car([*lights, 250]), options=off).drives) == 1


def test_a_car_in_long_queues_learns_to_keep_them_in_its_drive() -> None:
    # a car that reports its ignition off when it parks, in a city of 150-250 s queues: after 60 of them
    # a 400 s wait at a level crossing stays in the drive; a new car parks at 300 s
    queues = [150 + (k * 37) % 101 for k in range(60)]
    assert len(derive_history(_car([*queues, 400])).drives) == 1
    assert len(derive_history(_car([400])).drives) == 2
    # a car that never says "parked" is capped at Traccar's 300 s whatever it learned
    assert len(derive_history(_car([*queues, 400], ignition=False)).drives) == 2
