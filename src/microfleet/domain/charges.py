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

from microfleet.domain.drives import soc_energy_kwh
from microfleet.domain.pack_energy import counter_energy, integrate_kwh, pack_power_kw
from microfleet.domain.places import Place, locate
from microfleet.domain.tariffs import Tariff, charge_cost
from microfleet.domain.vehicle_state import TelemetryColumns

# IEC 62196-2 Type 2 AC tops out at 22 kW (3 x 32 A x 230 V); above it only DC is possible.
AC_MAX_POWER_KW: Final = 22.0
AC_VOLTAGE_MIN_V: Final = 50.0  # an on-board charger reporting mains voltage is charging on AC
MIN_CALIBRATION_PCT: Final = 10.0  # a session calibrates energy per SoC % only over 10 % or more
# Flows of energy this close on one plug-in are one session (a BMS balancing pause, a brief power cut).
PAUSE_MERGE_S: Final = 600.0


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
    kwh_per_soc_pct: float | None = None  # pack energy per SoC percent seen in this session
    # where energy_added_kwh came from (drives.ENERGY_SOURCES) and, for "soc", its +- resolution in kWh
    energy_source: str | None = None
    energy_resolution_kwh: float | None = None


def _kwh_per_soc_pct(w: TelemetryColumns, power_kw: npt.NDArray[np.float64]) -> float | None:
    """Pack energy between the first and last SoC step of a charge over the percent between them."""
    idx = np.flatnonzero(~np.isnan(w.soc_pct))
    soc = w.soc_pct[idx]
    changes = np.flatnonzero(np.diff(soc) != 0)
    if changes.size < 2 or np.any(np.isnan(power_kw)):
        return None
    j1, j2 = int(changes[0]), int(changes[-1])
    levels = float(max(soc[j2], soc[j2 + 1]) - max(soc[j1], soc[j1 + 1]))
    if levels < MIN_CALIBRATION_PCT:
        return None
    ts = w.ts_ms
    a1, b1, a2, b2 = int(idx[j1]), int(idx[j1 + 1]), int(idx[j2]), int(idx[j2 + 1])
    m1, m2 = (ts[a1] + ts[b1]) // 2, (ts[a2] + ts[b2]) // 2
    inner = np.r_[m1, ts[b1 : a2 + 1], m2]
    p = np.r_[(power_kw[a1] + power_kw[b1]) / 2, power_kw[b1 : a2 + 1], (power_kw[a2] + power_kw[b2]) / 2]
    return -integrate_kwh(inner.astype(np.int64), p) / levels


def charge_windows(
    cols: TelemetryColumns, spans: Sequence[tuple[int, int]], drive_starts_ms: npt.NDArray[np.int64]
) -> list[tuple[ChargeWindow, str]]:
    """Turn charging spans into sessions and find where each session ends.

    ``spans`` are record index pairs (first charging record, first record after charging; ``len`` if
    still charging); ``drive_starts_ms`` are DriveStarted times, ascending. Like TeslaMate's charging
    processes, each flow of energy is one session; flows less than :data:`PAUSE_MERGE_S` apart on the
    same plug-in are one. A session ends at the next session, the first record unplugged, the first
    record of a drive or, without a plug signal, when energy stops. The reason is ``unplugged``,
    ``drove_off``, ``next_charge``, ``stopped`` or ``open`` (still plugged at the window's end).
    """
    n = len(cols)
    ts = cols.ts_ms
    unplugged = np.flatnonzero(cols.charger_connected == 0.0)
    plugged = np.flatnonzero(cols.charger_connected == 1.0)
    merged: list[list[int]] = []
    for s, e in spans:
        if merged and not np.isnan(cols.charger_connected[s]):
            prev_end = merged[-1][1]
            u = int(np.searchsorted(unplugged, prev_end))
            same_plug = u >= unplugged.size or int(unplugged[u]) >= s
            d = int(np.searchsorted(drive_starts_ms, ts[prev_end - 1], side="right"))
            no_drive = d >= drive_starts_ms.size or int(drive_starts_ms[d]) > int(ts[s])
            if same_plug and no_drive and (int(ts[s]) - int(ts[prev_end - 1])) <= PAUSE_MERGE_S * 1000:
                merged[-1][1] = e
                continue
        merged.append([s, e])
    sessions: list[tuple[ChargeWindow, str]] = []
    for k, (s, e) in enumerate(merged):
        power_end = min(e, n) - 1
        if np.isnan(cols.charger_connected[s]):
            sessions.append((ChargeWindow(s, power_end, min(e, n - 1)), "stopped" if e < n else "open"))
            continue
        # a plug flag raised late reads 0 at the session's start: unplugging counts once it has read 1
        p = int(np.searchsorted(plugged, s))
        first_plug = int(plugged[p]) if p < plugged.size else s
        u = int(np.searchsorted(unplugged, first_plug))
        ends = {"unplugged": int(unplugged[u]) if u < unplugged.size else n}
        d = int(np.searchsorted(drive_starts_ms, ts[s], side="right"))
        ends["drove_off"] = int(np.searchsorted(ts, drive_starts_ms[d])) if d < drive_starts_ms.size else n
        ends["next_charge"] = merged[k + 1][0] if k + 1 < len(merged) else n
        reason = min(ends, key=lambda r: ends[r])
        # A plug flag that reads 0 while the charger still delivers (flags lag or go missing on real cars and
        # the twin's realistic sensors) does not end the session before its power does.
        end = max(ends[reason], power_end + 1)
        sessions.append((ChargeWindow(s, power_end, min(end, n - 1)), reason if end < n else "open"))
    return sessions


def summarise_charge(
    cols: TelemetryColumns,
    window: ChargeWindow,
    end_reason: str,
    places: Sequence[Place] = (),
    tariffs: Mapping[str, Tariff] | None = None,
    current_offset_a: float | npt.NDArray[np.float64] = 0.0,
    usable_kwh: float | None = None,
    sub_step: bool = True,
) -> ChargeSession:
    """Compute a :class:`ChargeSession` from the records of its window.

    Energy into the pack is the rise of the BMS's recovered-energy counter over the flow when the car
    reports it (plus what the current sensor's zero offset ``current_offset_a``, already taken off
    ``cols``' current, kept it from counting), else the integral of sampled charging power, else (a car
    that reports only SoC) the SoC rise x ``usable_kwh``, marked ``energy_source="soc"``. An offset given
    per record (it drifts with the pack's temperature) is one per record of ``cols``. ``sub_step``: read
    a stepping counter below its step (:func:`~microfleet.domain.pack_energy.counter_energy`).
    """
    w = cols.slice(window.start, window.end + 1)
    ts = w.ts_ms
    k = window.power_end - window.start
    # Energy is integrated while it flows (up to the first record after the last charging one): an idle
    # plugged car's sensor offset must not add up over hours.
    flow = slice(0, min(k + 2, len(w)))
    power = pack_power_kw(w)
    has_pack = bool(np.any(~np.isnan(power)))
    off = current_offset_a
    if isinstance(off, np.ndarray):
        off = off[window.start : window.start + flow.stop]
    counted = counter_energy(w.slice(0, flow.stop), off, sub_step)
    resolution = None
    if counted is not None:
        added: float | None = counted.recovered_kwh + counted.offset_kwh
        source: str | None = "counters"
    elif has_pack:
        added, source = -integrate_kwh(ts[flow], np.minimum(power[flow], 0.0)), "pack_power"
    elif (from_soc := soc_energy_kwh(w.soc_pct[flow], usable_kwh)) is not None:
        added, resolution, source = -from_soc[0], from_soc[1], "soc"
    else:
        added, source = None, None
    grid_kw = w.charger_power_kw
    has_grid = bool(np.any(~np.isnan(grid_kw)))
    grid = integrate_kwh(ts[flow], grid_kw[flow]) if has_grid else None
    flow_kw = grid_kw if has_grid else np.maximum(-power, 0.0)
    flowing = np.nan_to_num(flow_kw, nan=0.0)
    peak = float(flowing.max()) if (has_grid or has_pack) else None
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
        kwh_per_soc_pct=_kwh_per_soc_pct(w.slice(0, flow.stop), power[flow]) if has_pack else None,
        energy_source=source,
        energy_resolution_kwh=resolution,
    )
