"""Summaries per period and the parked-drain flag."""

from __future__ import annotations

import datetime as dt

import pytest

from microfleet.domain.drives import Drive
from microfleet.domain.summaries import (
    GRID_G_PER_KWH,
    PETROL_CITY_CAR_G_PER_KM,
    ParkedDrain,
    Period,
    flag_drain,
    period_start,
    summarise,
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
