"""Summaries per vehicle and per fleet over a day, week or month, and parked drain.

CO2 avoided compares the electricity a drive used with a petrol small car driving the same distance.
"""

from __future__ import annotations

import datetime as dt
import enum
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from microfleet.domain.charges import ChargeSession
from microfleet.domain.drives import Drive

# Toyota Aygo X 1.0 petrol, WLTP, manual: 109-110 gCO2/km (Auto Express,
# https://autoexpress.co.uk/toyota/aygo-x/mpg; shared/data/emissions/emissions.csv). The low end is used.
PETROL_CITY_CAR_G_PER_KM: Final = 109.0
# Shanghai provincial average electricity CO2 emission factor 2023: 573.7 gCO2/kWh (MEE/NBS Announcement
# 2025 No. 47, Table 3; shared/data/emissions/emissions.csv row grid_ef_cn-sh_mee2023).
GRID_G_PER_KWH: Final = 573.7
# An asleep small EV should draw tens of watts at most (BMS + telematics); awake, a few hundred (DC/DC,
# infotainment). Flag a parked spell drawing 3x the car's own median, and never below these floors.
DRAIN_FLOOR_ASLEEP_W: Final = 50.0
DRAIN_FLOOR_AWAKE_W: Final = 400.0
DRAIN_OUTLIER_RATIO: Final = 3.0


class Period(enum.StrEnum):
    """Length of one summary bucket."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def period_start(ts_ms: int, period: Period, tz: dt.tzinfo = dt.UTC) -> dt.date:
    """First day of the bucket holding ``ts_ms`` (weeks start on Monday, ISO 8601)."""
    d = dt.datetime.fromtimestamp(ts_ms / 1000, tz=tz).date()
    if period is Period.WEEK:
        return d - dt.timedelta(days=d.weekday())
    if period is Period.MONTH:
        return d.replace(day=1)
    return d


def period_seconds(start: dt.date, period: Period) -> float:
    """Length of the bucket that starts on ``start``, in seconds."""
    if period is Period.DAY:
        return 86_400.0
    if period is Period.WEEK:
        return 7 * 86_400.0
    nxt = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return (nxt - start).days * 86_400.0


@dataclass(frozen=True, slots=True)
class Summary:
    """What one vehicle (or a fleet) did in one bucket."""

    period_start: dt.date
    vehicle_count: int
    drive_count: int
    distance_km: float
    drive_time_s: float
    drive_energy_kwh: float
    charge_count: int
    charge_energy_kwh: float
    cost: float
    currency: str | None
    efficiency_wh_per_km: float | None
    utilisation_share: float
    co2_avoided_kg: float


def drive_distance_km(d: Drive) -> float:
    """Odometer distance when trustworthy, else GPS distance."""
    return d.distance_odometer_km if d.distance_odometer_km is not None else d.distance_gps_km


def drive_energy_kwh(d: Drive) -> float:
    """Integrated pack energy when the car reports current, else SoC x usable capacity, else 0."""
    if d.energy_used_kwh is not None:
        return d.energy_used_kwh
    return d.energy_soc_kwh or 0.0


def summarise(
    drives: Iterable[Drive],
    charges: Iterable[ChargeSession],
    period: Period,
    vehicle_count: int = 1,
    tz: dt.tzinfo = dt.UTC,
) -> list[Summary]:
    """Bucket drives and charges by period start; a drive or charge counts in the bucket it started in."""
    buckets: dict[dt.date, dict[str, float]] = {}
    currencies: dict[dt.date, set[str]] = {}

    def bucket(ts_ms: int) -> dict[str, float]:
        key = period_start(ts_ms, period, tz)
        return buckets.setdefault(key, dict.fromkeys(("n", "km", "s", "kwh", "cn", "ckwh", "cost"), 0.0))

    for d in drives:
        b = bucket(d.start_ts_ms)
        b["n"] += 1
        b["km"] += drive_distance_km(d)
        b["s"] += d.duration_s
        b["kwh"] += drive_energy_kwh(d)
    for c in charges:
        b = bucket(c.start_ts_ms)
        b["cn"] += 1
        b["ckwh"] += c.energy_grid_kwh if c.energy_grid_kwh is not None else (c.energy_added_kwh or 0.0)
        b["cost"] += c.cost or 0.0
        if c.currency:
            currencies.setdefault(period_start(c.start_ts_ms, period, tz), set()).add(c.currency)
    out = []
    for start in sorted(buckets):
        b = buckets[start]
        cur = currencies.get(start, set())
        co2_g = b["km"] * PETROL_CITY_CAR_G_PER_KM - b["kwh"] * GRID_G_PER_KWH
        out.append(
            Summary(
                period_start=start,
                vehicle_count=vehicle_count,
                drive_count=int(b["n"]),
                distance_km=b["km"],
                drive_time_s=b["s"],
                drive_energy_kwh=b["kwh"],
                charge_count=int(b["cn"]),
                charge_energy_kwh=b["ckwh"],
                cost=b["cost"],
                currency=next(iter(cur)) if len(cur) == 1 else ("mixed" if cur else None),
                efficiency_wh_per_km=b["kwh"] * 1000 / b["km"] if b["km"] > 0.1 else None,
                utilisation_share=b["s"] / (period_seconds(start, period) * vehicle_count),
                co2_avoided_kg=co2_g / 1000,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class ZoneSummary:
    """What a fleet did in one period in one zone (None: outside every place)."""

    zone_place_id: str | None
    summary: Summary


def summarise_by_zone(
    drives: Iterable[Drive],
    charges: Iterable[ChargeSession],
    period: Period,
    vehicle_count: int = 1,
    tz: dt.tzinfo = dt.UTC,
) -> list[ZoneSummary]:
    """Per-period summaries per zone: a drive counts in the place it started in, a charge where it charged.

    Zones partition the fleet's figures, so the zones of one period sum to :func:`summarise`'s; drives
    and charges outside every place fall in the ``None`` ("unzoned") zone, listed last in each period.
    """
    drives_by: dict[str | None, list[Drive]] = {}
    charges_by: dict[str | None, list[ChargeSession]] = {}
    for d in drives:
        drives_by.setdefault(d.start_place_id, []).append(d)
    for c in charges:
        charges_by.setdefault(c.place_id, []).append(c)
    out = []
    for zone in set(drives_by) | set(charges_by):
        for s in summarise(drives_by.get(zone, []), charges_by.get(zone, []), period, vehicle_count, tz):
            out.append(ZoneSummary(zone, s))
    return sorted(out, key=lambda z: (z.summary.period_start, z.zone_place_id is None, z.zone_place_id or ""))


@dataclass(frozen=True, slots=True)
class ParkedDrain:
    """Energy lost in one parked spell, asleep or awake, and whether it is out of line."""

    vehicle_id: str
    start_ts_ms: int
    end_ts_ms: int
    asleep: bool
    energy_kwh: float
    drain_w: float
    flagged: bool


def flag_drain(spells: Sequence[ParkedDrain]) -> list[ParkedDrain]:
    """Flag spells drawing over 3x the vehicle's median for the same sleep state (and over the floor)."""
    out = []
    for asleep in (True, False):
        group = [s for s in spells if s.asleep is asleep]
        if not group:
            continue
        median = statistics.median(s.drain_w for s in group)
        floor = DRAIN_FLOOR_ASLEEP_W if asleep else DRAIN_FLOOR_AWAKE_W
        limit = max(floor, DRAIN_OUTLIER_RATIO * median)
        out += [
            ParkedDrain(
                s.vehicle_id, s.start_ts_ms, s.end_ts_ms, s.asleep, s.energy_kwh, s.drain_w, s.drain_w > limit
            )
            for s in group
        ]
    return sorted(out, key=lambda s: s.start_ts_ms)
