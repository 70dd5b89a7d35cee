"""The fair baseline finds trips by Traccar's rules and charges by the charger's attributes, as documented."""

from __future__ import annotations

import numpy as np
import pytest

import threshold_baseline as tb
from microfleet.domain.vehicle_state import TelemetryColumns

CAPACITY_KWH = 10.0
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MIN = 60_000


def _columns(**arrays: list[float]) -> TelemetryColumns:
    n = len(next(iter(arrays.values())))
    return TelemetryColumns.from_arrays("car", {"ts_ms": T0 + MIN * np.arange(n), **arrays})


def _plugged(
    minutes: int, power_kw: float, soc_from: float, soc_to: float, *, idle: int = 5
) -> dict[str, list[float]]:
    """``idle`` min parked unplugged, then ``minutes`` of charging at ``power_kw``, then ``idle`` plugged."""
    n = idle + minutes + idle
    power = [np.nan] * idle + [power_kw] * minutes + [0.0] * idle
    plug = [0.0] * idle + [1.0] * (minutes + idle)
    soc = np.r_[[soc_from] * idle, np.linspace(soc_from, soc_to, minutes), [soc_to] * idle]
    return {
        "charger_power_kw": power,
        "charger_connected": plug,
        "soc_pct": list(soc),
        "speed_kmh": [0.0] * n,
    }


def test_a_charge_runs_from_the_first_to_the_last_powered_record_with_soc_energy() -> None:
    cols = _columns(**_plugged(60, 3.0, 20.0, 40.0))
    [charge] = tb.threshold_charges(cols, CAPACITY_KWH)
    assert (charge.start_ts_ms, charge.end_ts_ms) == (T0 + 5 * MIN, T0 + 64 * MIN)
    assert charge.energy_kwh == pytest.approx(0.20 * CAPACITY_KWH)
    assert (charge.first, charge.stop) == (5, 65)


def test_power_energy_is_integrated_charger_power_times_the_cited_efficiency() -> None:
    cols = _columns(**_plugged(60, 3.0, 20.0, 40.0))
    [charge] = tb.threshold_charges(cols, CAPACITY_KWH, energy="power")
    # 3 kW held from the first powered record to the record after the last one (60 min), falling to 0 over it
    assert charge.energy_kwh == pytest.approx((3.0 * 59 / 60 + 1.5 / 60) * tb.CHARGER_EFFICIENCY)


def test_the_plug_flag_stands_in_where_the_device_sends_no_power() -> None:
    arrays = _plugged(30, 3.0, 50.0, 60.0, idle=0)
    arrays["charger_power_kw"] = [np.nan] * 30
    [charge] = tb.threshold_charges(_columns(**arrays), CAPACITY_KWH)
    assert (charge.start_ts_ms, charge.end_ts_ms) == (T0, T0 + 29 * MIN)


def test_a_data_gap_of_an_hour_ends_a_charge() -> None:
    arrays = _plugged(120, 3.0, 20.0, 60.0, idle=0)
    ts = T0 + MIN * np.arange(120)
    ts[60:] += 3600_000  # an hour without records in the middle
    cols = TelemetryColumns.from_arrays("car", {"ts_ms": ts, **arrays})
    assert [(c.first, c.stop) for c in tb.threshold_charges(cols, CAPACITY_KWH)] == [(0, 60), (60, 120)]


def test_no_capacity_no_energy() -> None:
    [charge] = tb.threshold_charges(_columns(**_plugged(60, 3.0, 20.0, 40.0)), None)
    assert charge.energy_kwh is None


def test_a_trip_by_traccar_rules_ends_on_its_first_still_record_with_soc_energy() -> None:
    # 5 min still, 10 min at 30 km/h (5 km) losing 3 % SoC, then 10 min still
    speed = [0.0] * 5 + [30.0] * 10 + [0.0] * 10
    soc = [80.0] * 5 + list(np.linspace(80.0, 77.0, 10)) + [77.0] * 10
    lat = list(np.r_[[45.0] * 5, 45.0 + np.arange(1, 11) * 0.0045, [45.045] * 10])
    cols = _columns(speed_kmh=speed, soc_pct=soc, lat_deg=lat, lon_deg=[7.0] * 25)
    [trip] = tb.threshold_trips(cols, CAPACITY_KWH)
    assert (trip.start_ts_ms, trip.end_ts_ms) == (T0 + 5 * MIN, T0 + 15 * MIN)
    assert (trip.first, trip.stop) == (5, 15)
    assert trip.energy_kwh == pytest.approx(0.03 * CAPACITY_KWH)


def test_a_short_crawl_is_no_trip() -> None:
    # 2 min at 6 km/h: under Traccar's 300 s and 500 m minimums
    speed = [0.0] * 5 + [6.0] * 2 + [0.0] * 10
    cols = _columns(speed_kmh=speed, lat_deg=[45.0] * 17, lon_deg=[7.0] * 17)
    assert tb.threshold_trips(cols, CAPACITY_KWH) == []


def test_a_lagging_charger_flag_does_not_make_a_drive_a_charge() -> None:
    # charging 30 min, then driving off 10 min at 30 km/h with the power reading stuck on
    speed = [0.0] * 30 + [30.0] * 10 + [0.0] * 10
    lat = list(np.r_[[45.0] * 30, 45.0 + np.arange(1, 11) * 0.0045, [45.045] * 10])
    power = [3.0] * 40 + [0.0] * 10
    cols = _columns(speed_kmh=speed, lat_deg=lat, lon_deg=[7.0] * 50, charger_power_kw=power)
    trips = tb.threshold_trips(cols, CAPACITY_KWH)
    [charge] = tb.threshold_charges(cols, CAPACITY_KWH, trips=trips)
    assert [(t.first, t.stop) for t in trips] == [(30, 40)]
    assert (charge.first, charge.stop) == (0, 30)


def test_a_plug_flag_lagging_after_unplug_is_no_charge_for_a_car_that_sends_power() -> None:
    arrays = _plugged(30, 3.0, 50.0, 60.0, idle=0)
    arrays["charger_power_kw"] = [3.0] * 30 + [np.nan] * 10  # no power reading once unplugged
    arrays["charger_connected"] = [1.0] * 33 + [0.0] * 7  # the flag trails by three records
    arrays["soc_pct"] += [60.0] * 10
    arrays["speed_kmh"] += [0.0] * 10
    [charge] = tb.threshold_charges(_columns(**arrays), CAPACITY_KWH)
    assert (charge.first, charge.stop) == (0, 30)
