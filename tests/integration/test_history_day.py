"""A synthetic day of one small EV for history tests: night parked, drive out, charge, drive home."""

from __future__ import annotations

from typing import Any

import msgspec

from microfleet.domain.telemetry import TelemetryRecord

DAY0_MS = 1_763_942_400_000  # 2025-11-24T00:00:00Z
HOME = (31.2304, 121.4737)


def day_records(vehicle_id: str, day0_ms: int = DAY0_MS, offset_a: float = 0.0) -> list[TelemetryRecord]:
    """About 780 records: quiet night, a 20 min drive, 60 min AC charge + 20 min idle, a nap, drive home.

    ``offset_a`` is added to every pack current, as a current sensor's zero offset would.
    """
    out: list[TelemetryRecord] = []
    lat, lon = HOME
    odo, soc = 1200.0, 70.0

    def add(t_s: float, **kw: Any) -> None:
        kw["pack_current_a"] = round(kw["pack_current_a"] + offset_a, 3)
        out.append(TelemetryRecord(vehicle_id=vehicle_id, ts_ms=day0_ms + int(t_s * 1000), **kw))

    base = {"pack_voltage_v": 340.0, "ambient_temp_c": 12.0}
    for t in range(0, 8 * 3600, 300):  # asleep, every 5 min
        add(
            t,
            gear="P",
            ignition_on=False,
            speed_kmh=0.0,
            pack_current_a=0.0,
            soc_pct=soc,
            lat_deg=lat,
            lon_deg=lon,
            **base,
        )
    t0 = 8 * 3600
    for k, t in enumerate(range(t0, t0 + 1200, 5)):  # 20 min north at 36 km/h, 15 kW
        lat += 50 / 111_195
        odo += 0.05
        soc -= 0.015
        add(
            t,
            gear="D",
            ignition_on=True,
            speed_kmh=36.0,
            odometer_km=round(odo, 2),
            soc_pct=round(soc, 2),
            pack_current_a=15_000 / 340,
            lat_deg=lat,
            lon_deg=lon,
            altitude_m=10 + k % 7,
            **base,
        )
    t1 = t0 + 1200
    for t in range(t1, t1 + 600, 30):  # parked awake
        add(
            t,
            gear="P",
            ignition_on=False,
            speed_kmh=0.0,
            pack_current_a=1.0,
            soc_pct=round(soc, 2),
            lat_deg=lat,
            lon_deg=lon,
            **base,
        )
    t2 = t1 + 600
    for t in range(t2, t2 + 3600, 30):  # 3.3 kW AC for an hour, pack gets 90 %
        soc += 0.2
        add(
            t,
            gear="P",
            ignition_on=False,
            speed_kmh=0.0,
            charger_connected=True,
            charger_power_kw=3.3,
            charger_ac_voltage_v=220.0,
            pack_current_a=-0.9 * 3300 / 340,
            soc_pct=round(soc, 2),
            lat_deg=lat,
            lon_deg=lon,
            **base,
        )
    t3 = t2 + 3600
    for t in range(t3, t3 + 1200, 30):  # full, still plugged
        add(
            t,
            gear="P",
            ignition_on=False,
            speed_kmh=0.0,
            charger_connected=True,
            charger_power_kw=0.0,
            pack_current_a=0.0,
            soc_pct=round(soc, 2),
            lat_deg=lat,
            lon_deg=lon,
            **base,
        )
    t4 = t3 + 1200
    add(
        t4,
        gear="P",
        ignition_on=False,
        speed_kmh=0.0,
        charger_connected=False,
        pack_current_a=1.0,
        soc_pct=round(soc, 2),
        lat_deg=lat,
        lon_deg=lon,
        **base,
    )
    for t in range(t4 + 600, t4 + 1800, 300):  # a nap before driving home
        add(
            t,
            gear="P",
            ignition_on=False,
            speed_kmh=0.0,
            charger_connected=False,
            pack_current_a=0.0,
            soc_pct=round(soc, 2),
            lat_deg=lat,
            lon_deg=lon,
            **base,
        )
    t4 += 1800
    for t in range(t4 + 60, t4 + 60 + 1200, 5):  # home again
        lat -= 50 / 111_195
        odo += 0.05
        soc -= 0.015
        add(
            t,
            gear="D",
            ignition_on=True,
            speed_kmh=36.0,
            odometer_km=round(odo, 2),
            soc_pct=round(soc, 2),
            pack_current_a=15_000 / 340,
            lat_deg=lat,
            lon_deg=lon,
            **base,
        )
    t5 = t4 + 60 + 1200
    for t in range(t5, t5 + 3600, 300):
        add(
            t,
            gear="P",
            ignition_on=False,
            speed_kmh=0.0,
            pack_current_a=0.0,
            soc_pct=round(soc, 2),
            lat_deg=lat,
            lon_deg=lon,
            **base,
        )
    return out


def body(records: list[TelemetryRecord]) -> bytes:
    return msgspec.json.encode(records)


def test_the_day_is_in_time_order_without_duplicates() -> None:
    ts = [r.ts_ms for r in day_records("car-x")]
    assert ts == sorted(set(ts))
