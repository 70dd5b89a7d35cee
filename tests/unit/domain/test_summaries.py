"""Summaries per period and the parked-drain flag."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from microfleet.domain.charges import ChargeSession
from microfleet.domain.drives import Drive
from microfleet.domain.summaries import (
    GRID_G_PER_KWH,
    PETROL_CITY_CAR_G_PER_KM,
    ParkedDrain,
    Period,
    flag_drain,
    period_start,
    summarise,
    summarise_by_zone,
)

MON = int(dt.datetime(2025, 3, 3, 8, tzinfo=dt.UTC).timestamp() * 1000)  # a Monday


def drive(start_ms: int, km: float, kwh: float, s: float = 1800) -> Drive:
    return Drive(
        "car-1", start_ms, start_ms + int(s * 1000), "stopped", None, None, None, None, None, None,
        km, km, s, kwh, None, 0.0, None, None, None, None, None, None, None, 0.0, 10, (),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        (Period.DAY, dt.date(2025, 3, 5)),
        (Period.WEEK, dt.date(2025, 3, 3)),
        (Period.MONTH, dt.date(2025, 3, 1)),
    ],
)
def test_period_start(period: Period, expected: dt.date) -> None:
    assert period_start(MON + 2 * 86_400_000, period) == expected


def test_daily_and_weekly_sums() -> None:
    drives = [drive(MON, 10, 1.0), drive(MON + 3_600_000, 5, 0.5), drive(MON + 86_400_000, 20, 2.0)]
    days = summarise(drives, [], Period.DAY)
    assert [(s.drive_count, s.distance_km) for s in days] == [(2, 15), (1, 20)]
    assert days[0].utilisation_share == pytest.approx(3600 / 86_400)
    assert days[0].efficiency_wh_per_km == pytest.approx(100)
    (week,) = summarise(drives, [], Period.WEEK, vehicle_count=2)
    assert week.distance_km == 35
    assert week.utilisation_share == pytest.approx(3 * 1800 / (7 * 86_400 * 2))
    assert week.co2_avoided_kg == pytest.approx((35 * PETROL_CITY_CAR_G_PER_KM - 3.5 * GRID_G_PER_KWH) / 1000)


def test_drain_out_of_line_is_flagged() -> None:
    spells = [ParkedDrain("car-1", i, i + 1, True, 0.1, w, False) for i, w in enumerate([10, 12, 11, 80])]
    spells.append(ParkedDrain("car-1", 9, 10, False, 0.1, 300, False))
    flagged = {s.drain_w: s.flagged for s in flag_drain(spells)}
    assert flagged == {10: False, 12: False, 11: False, 80: True, 300: False}


def test_zones_split_the_fleet_summary() -> None:
    drives = [
        dataclasses.replace(drive(MON, 10, 1.0), start_place_id="depot"),
        dataclasses.replace(drive(MON + 3_600_000, 5, 0.5), start_place_id="depot"),
        drive(MON + 7_200_000, 20, 2.0),
        dataclasses.replace(drive(MON + 86_400_000, 4, 0.4), start_place_id="station"),
    ]
    charge = ChargeSession(
        "car-1", MON + 10_000_000, MON + 11_000_000, MON + 11_000_000, "unplugged", None, None, "station",
        20.0, 80.0, 7.0, 7.7, 0.7, 3.3, 3.3, "AC", 4.2, "CNY", "cn_sh_residential_tou", 0.0, 10, None,
    )  # fmt: skip
    zones = summarise_by_zone(drives, [charge], Period.DAY, vehicle_count=3)
    assert [(z.summary.period_start.day, z.zone_place_id) for z in zones] == [
        (3, "depot"), (3, "station"), (3, None), (4, "station")
    ]  # fmt: skip
    depot, station, unzoned, _ = zones
    assert (depot.summary.drive_count, depot.summary.distance_km) == (2, 15)
    assert (station.summary.drive_count, station.summary.charge_count, station.summary.cost) == (0, 1, 4.2)
    assert unzoned.summary.distance_km == 20
    (whole, _) = summarise(drives, [charge], Period.DAY, vehicle_count=3)
    monday = zones[:3]
    assert sum(z.summary.distance_km for z in monday) == whole.distance_km
    assert sum(z.summary.utilisation_share for z in monday) == pytest.approx(whole.utilisation_share)
    assert sum(z.summary.cost for z in monday) == whole.cost
