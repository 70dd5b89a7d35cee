"""Charge sessions: from plug-in power to unplug, energy into the pack and from the grid, and cost.

A session opens when energy starts flowing into the pack (``ChargeStarted``) and closes when the cable
is pulled, the car drives off, or data stops. Pauses while still plugged in (a scheduled start, a
top-up after full) stay in one session; the time plugged in after the last energy is "idle after full".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from microfleet.domain.drives import integrate_kwh, pack_power_kw
from microfleet.domain.places import Place, locate
from microfleet.domain.tariffs import Tariff, charge_cost
from microfleet.domain.vehicle_state import TelemetryColumns

# IEC 62196-2 Type 2 AC tops out at 22 kW (3 x 32 A x 230 V); above it only DC is possible.
AC_MAX_POWER_KW: Final = 22.0
AC_VOLTAGE_MIN_V: Final = 50.0  # an on-board charger reporting mains voltage is charging on AC


@dataclass(frozen=True, slots=True)
class ChargeWindow:
    """Record indexes of one session: first power, last power, and the record that ends it."""

    start: int
    power_end: int
    end: int


@dataclass(frozen=True, slots=True)
class ChargeSession:
    """One charging session with energy, power, AC/DC, place, cost and idle time after full."""

    vehicle_id: str
    start_ts_ms: int
    power_end_ts_ms: int
    end_ts_ms: int
    end_reason: str
    lat_deg: float | None
    lon_deg: float | None
    place_id: str | None
    soc_from_pct: float | None
    soc_to_pct: float | None
    energy_added_kwh: float | None
    energy_grid_kwh: float | None
    losses_kwh: float | None
    peak_power_kw: float | None
    mean_power_kw: float | None
    current_kind: str | None  # "AC", "DC" or None when the car does not say
    cost: float | None
    currency: str | None
    tariff_id: str | None
    idle_after_full_s: float
    record_count: int


def charge_windows(
    cols: TelemetryColumns, spans: Sequence[tuple[int, int]], drive_starts_ms: npt.NDArray[np.int64]
) -> list[tuple[ChargeWindow, str]]:
    """Merge the charging spans of one plug-in into sessions and find where each session ends.

    ``spans`` are record index pairs (first charging record, first record after charging; ``len`` if
    still charging); ``drive_starts_ms`` are DriveStarted times, ascending. A session ends at the first
    record unplugged or the first record of a drive; without a plug signal, when energy stops. The
    reason is ``unplugged``, ``drove_off``, ``stopped`` or ``open`` (still plugged at the window's end).
    """
    n = len(cols)
    unplugged = np.flatnonzero(cols.charger_connected == 0.0)
    sessions: list[tuple[ChargeWindow, str]] = []
    for s, e in spans:
        power_end = min(e, n) - 1
        if np.isnan(cols.charger_connected[s]):
            end, reason = min(e, n - 1), "stopped" if e < n else "open"
        else:
            u = int(np.searchsorted(unplugged, s))
            nxt_unplug = int(unplugged[u]) if u < unplugged.size else n
            d = int(np.searchsorted(drive_starts_ms, cols.ts_ms[s], side="right"))
            nxt_drive = (
                int(np.searchsorted(cols.ts_ms, drive_starts_ms[d])) if d < drive_starts_ms.size else n
            )
            end = min(nxt_unplug, nxt_drive)
            reason = "open" if end >= n else "unplugged" if end == nxt_unplug else "drove_off"
            end = min(end, n - 1)
        if sessions and sessions[-1][0].end > s and sessions[-1][1] != "stopped":
            first = sessions.pop()[0].start  # still the same plug-in: one session
            sessions.append((ChargeWindow(first, power_end, end), reason))
        else:
            sessions.append((ChargeWindow(s, power_end, end), reason))
    return sessions


def summarise_charge(
    cols: TelemetryColumns,
    window: ChargeWindow,
    end_reason: str,
    places: Sequence[Place] = (),
    tariffs: Mapping[str, Tariff] | None = None,
) -> ChargeSession:
    """Compute a :class:`ChargeSession` from the records of its window."""
    w = cols.slice(window.start, window.end + 1)
    ts = w.ts_ms
    power = pack_power_kw(w)
    has_pack = bool(np.any(~np.isnan(power)))
    added = -integrate_kwh(ts, np.minimum(power, 0.0)) if has_pack else None
    grid_kw = w.charger_power_kw
    has_grid = bool(np.any(~np.isnan(grid_kw)))
    grid = integrate_kwh(ts, grid_kw) if has_grid else None
    flow_kw = grid_kw if has_grid else np.maximum(-power, 0.0)
    flowing = np.nan_to_num(flow_kw, nan=0.0)
    peak = float(flowing.max()) if (has_grid or has_pack) else None
    k = window.power_end - window.start
    span_h = (int(ts[k]) - int(ts[0])) / 3_600_000
    energy = grid if grid is not None else added
    mean = energy / span_h if energy is not None and span_h > 0 else None
    ac = w.charger_ac_voltage_v
    if bool(np.any(np.nan_to_num(ac, nan=0.0) > AC_VOLTAGE_MIN_V)):
        kind: str | None = "AC"
    elif peak is not None and peak > AC_MAX_POWER_KW:
        kind = "DC"
    else:
        kind = None
    soc = w.soc_pct[~np.isnan(w.soc_pct)]
    fix = np.flatnonzero(~(np.isnan(w.lat_deg) | np.isnan(w.lon_deg)))
    lat = float(w.lat_deg[fix[0]]) if fix.size else None
    lon = float(w.lon_deg[fix[0]]) if fix.size else None
    place = locate(places, lat, lon) if lat is not None and lon is not None else None
    tariff = (tariffs or {}).get(place.tariff_id) if place and place.tariff_id else None
    cost = charge_cost(tariff, ts, np.nan_to_num(flow_kw, nan=0.0)) if tariff is not None else None
    return ChargeSession(
        vehicle_id=cols.vehicle_id,
        start_ts_ms=int(ts[0]),
        power_end_ts_ms=int(ts[k]),
        end_ts_ms=int(ts[-1]),
        end_reason=end_reason,
        lat_deg=lat,
        lon_deg=lon,
        place_id=place.place_id if place else None,
        soc_from_pct=float(soc[0]) if soc.size else None,
        soc_to_pct=float(soc[-1]) if soc.size else None,
        energy_added_kwh=added,
        energy_grid_kwh=grid,
        losses_kwh=grid - added if grid is not None and added is not None else None,
        peak_power_kw=peak,
        mean_power_kw=None if mean is None or math.isnan(mean) else mean,
        current_kind=kind,
        cost=cost,
        currency=tariff.currency if tariff is not None else None,
        tariff_id=tariff.tariff_id if tariff is not None else None,
        idle_after_full_s=(int(ts[-1]) - int(ts[k])) / 1000,
        record_count=len(w),
    )
