"""Small synthetic charge sessions and drives for the battery models' unit tests."""

from __future__ import annotations

from microfleet.domain.charges import ChargeSession
from microfleet.domain.drives import Drive

DAY_MS = 86_400_000
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00Z


def charge(
    day: float,
    soc_from: float,
    soc_to: float,
    kwh: float,
    *,
    kind: str = "AC",
    source: str = "counters",
    idle_s: float = 0.0,
) -> ChargeSession:
    """One charge session starting ``day`` days after T0."""
    start = T0_MS + int(day * DAY_MS)
    return ChargeSession(
        vehicle_id="car", start_ts_ms=start, power_end_ts_ms=start + 3_600_000,
        end_ts_ms=start + 3_600_000 + int(idle_s * 1000), end_reason="unplugged", lat_deg=None,
        lon_deg=None, place_id=None, soc_from_pct=soc_from, soc_to_pct=soc_to, energy_added_kwh=kwh,
        energy_grid_kwh=None, losses_kwh=None, peak_power_kw=None, mean_power_kw=None, current_kind=kind,
        cost=None, currency=None, tariff_id=None, idle_after_full_s=idle_s, record_count=10,
        energy_source=source,
    )  # fmt: skip


def drive(day: float, km: float, kwh: float, temp_c: float) -> Drive:
    """One drive starting ``day`` days after T0."""
    start = T0_MS + int(day * DAY_MS)
    return Drive(
        vehicle_id="car", start_ts_ms=start, end_ts_ms=start + 1_800_000, end_reason="parked",
        start_lat_deg=None, start_lon_deg=None, end_lat_deg=None, end_lon_deg=None, start_place_id=None,
        end_place_id=None, distance_odometer_km=km, distance_gps_km=km, duration_s=1800.0,
        energy_used_kwh=kwh, energy_soc_kwh=None, regen_kwh=None, efficiency_wh_per_km=None,
        max_speed_kmh=None, ascent_m=None, descent_m=None, ambient_temp_c=temp_c, soc_start_pct=None,
        soc_end_pct=None, data_gap_s=0.0, record_count=10, route=(),
    )  # fmt: skip
