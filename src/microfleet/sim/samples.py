"""Turn a day's segments into samples at OVMS v3 cadence, with the true value of every signal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from microfleet.sim.engine import DayResult, Twin
from microfleet.sim.timeline import CHARGE, DRIVE, PARK
from microfleet.sim.vehicles import pack_state

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

# OVMS v3 reporting intervals (OVMS v3 user guide, server v3 "updatetime.*" defaults): 5 s driving,
# 10 s charging, 60 s awake, 600 s parked and asleep.
CADENCE_DRIVING_S: Final = 5
CADENCE_CHARGING_S: Final = 10
CADENCE_AWAKE_S: Final = 60
CADENCE_ASLEEP_S: Final = 600
AWAKE_AFTER_STOP_S: Final = 600  # the module stays awake 10 minutes after the car is switched off (assumed)
PARKED_AWAKE_KW: Final = 0.25  # 12 V DC-DC, BMS and modem while awake (assumed)
PACK_WARMING_K: Final = {DRIVE: 3.0, CHARGE: 5.0, PARK: 0.0}  # pack above ambient in use (assumed)


@dataclass
class TrueSamples:
    """Every sample of a day (in time order per vehicle) with true values; index = sample."""

    vehicle: I64
    t_s: F64
    kind: I64
    segment: I64  # index of the sample's segment in the day's Segments
    since_start_s: F64  # seconds since that segment began
    lat_deg: F64
    lon_deg: F64
    heading_deg: F64
    speed_kmh: F64
    odometer_km: F64
    soc_pct: F64
    capacity_kwh: F64
    power_kw: F64
    pack_voltage_v: F64
    pack_current_a: F64
    cell_v: F64
    pack_temp_c: F64
    ambient_c: F64
    cabin_c: F64
    hvac_kw: F64
    plugged: npt.NDArray[np.bool_]
    charger_kw: F64
    dc: npt.NDArray[np.bool_]
    awake: npt.NDArray[np.bool_]


def _offsets(seg_kind: I64, dur: F64) -> tuple[I64, F64]:
    """Sample times within each segment; returns (segment index, seconds after the segment start)."""
    seg_idx: list[I64] = []
    rel: list[F64] = []
    for i, (kind, d) in enumerate(zip(seg_kind.tolist(), dur.tolist(), strict=True)):
        if kind == DRIVE:
            t = np.arange(0.0, d, CADENCE_DRIVING_S)
        elif kind == CHARGE:
            t = np.arange(0.0, d, CADENCE_CHARGING_S)
        else:
            awake = np.arange(0.0, min(d, AWAKE_AFTER_STOP_S), CADENCE_AWAKE_S)
            t = np.concatenate([awake, np.arange(AWAKE_AFTER_STOP_S, d, CADENCE_ASLEEP_S)])
        rel.append(t)
        seg_idx.append(np.full(t.size, i, dtype=np.int64))
    return np.concatenate(seg_idx), np.concatenate(rel)


def day_samples(twin: Twin, result: DayResult) -> TrueSamples:
    """All samples of one simulated day, true values only (sensors and faults act later)."""
    s, tr, w = result.segments, result.traces, twin.world
    kind = np.array(s.kind, dtype=np.int64)
    start = np.array(s.start_s)
    seg, rel = _offsets(kind, np.array(s.end_s) - start)
    order = np.lexsort((start[seg] + rel, np.array(s.vehicle)[seg]))
    seg, rel = seg[order], rel[order]
    # A segment ends at the instant the next begins: keep one sample per (vehicle, millisecond).
    t_ms = np.round((start[seg] + rel) * 1000.0).astype(np.int64)
    veh = np.array(s.vehicle, dtype=np.int64)[seg]
    keep = np.ones(seg.size, dtype=bool)
    keep[1:] = (t_ms[1:] != t_ms[:-1]) | (veh[1:] != veh[:-1])
    seg, rel = seg[keep], rel[keep]
    k = kind[seg]
    t = start[seg] + rel
    n = t.size
    node = np.array(s.node, dtype=np.int64)[seg]
    lat = w.net.lat_deg[np.maximum(node, 0)].copy()
    lon = w.net.lon_deg[np.maximum(node, 0)].copy()
    speed = np.zeros(n)
    dist = np.zeros(n)
    power = np.where(rel < AWAKE_AFTER_STOP_S, PARKED_AWAKE_KW, 0.0)
    hvac = np.zeros(n)
    cabin_set = np.full(n, np.nan)
    drive = np.flatnonzero(k == DRIVE)
    if drive.size:
        trace_id = np.array(s.trace, dtype=np.int64)[seg[drive]]
        lengths = np.array([d.duration_s for d in tr.drives], dtype=np.int64)
        base = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        flat = base[trace_id] + np.minimum(rel[drive].astype(np.int64), lengths[trace_id] - 1)
        lat[drive] = np.concatenate([d.lat_deg for d in tr.drives])[flat]
        lon[drive] = np.concatenate([d.lon_deg for d in tr.drives])[flat]
        speed[drive] = np.concatenate([d.speed_mps for d in tr.drives])[flat] * 3.6
        dist[drive] = np.concatenate([d.dist_m for d in tr.drives])[flat]
        all_power = np.concatenate(tr.power_kw)
        power[drive] = all_power[flat]
        cum_kwh = np.cumsum(all_power) / 3600.0
        energy_before = cum_kwh[flat] - cum_kwh[base[trace_id]]
        hvac[drive] = np.array(tr.hvac_kw)[trace_id]
        cabin_set[drive] = np.array(tr.setpoint_c)[trace_id]
    soc0 = np.array(s.soc0_pct)[seg]
    soc1 = np.array(s.soc1_pct)[seg]
    cap = np.array(s.capacity_kwh)[seg]
    dur = np.maximum(np.array(s.end_s)[seg] - start[seg], 1e-9)
    soc = np.where(k == CHARGE, soc0 + (soc1 - soc0) * rel / dur, soc0)
    if drive.size:
        soc[drive] = np.maximum(soc0[drive] - energy_before / cap[drive] * 100.0, 1.0)
    charge_kw = np.where(k == CHARGE, np.array(s.power_kw)[seg], 0.0)
    power = np.where(k == CHARGE, -charge_kw, power)
    vehicle = np.array(s.vehicle, dtype=np.int64)[seg]
    cells = np.array([v.model.cells_series for v in twin.fleet], dtype=np.float64)[vehicle]
    lfp = np.array([v.model.chemistry == "LFP" for v in twin.fleet])[vehicle]
    volt, current, cell_v = pack_state(soc, power, cells, lfp)
    ambient = w.weather.at(t)
    heading = _heading(vehicle, lat, lon, k == DRIVE)
    return TrueSamples(
        vehicle=vehicle, t_s=t, kind=k, segment=seg, since_start_s=rel, lat_deg=lat, lon_deg=lon,
        heading_deg=heading, speed_kmh=speed,
        odometer_km=np.array(s.odo0_km)[seg] + dist / 1000.0, soc_pct=soc, capacity_kwh=cap, power_kw=power,
        pack_voltage_v=volt, pack_current_a=current, cell_v=cell_v,
        pack_temp_c=ambient + np.vectorize(PACK_WARMING_K.__getitem__, otypes=[float])(k) if n else ambient,
        ambient_c=ambient, cabin_c=np.where(np.isnan(cabin_set) | (hvac == 0), ambient + 1.5, cabin_set),
        hvac_kw=hvac, plugged=np.array(s.plugged)[seg] | (k == CHARGE), charger_kw=charge_kw,
        dc=np.array(s.dc)[seg] & (k == CHARGE), awake=(k != PARK) | (rel < AWAKE_AFTER_STOP_S),
    )  # fmt: skip


def _heading(vehicle: I64, lat: F64, lon: F64, moving: npt.NDArray[np.bool_]) -> F64:
    """Course over ground from consecutive positions of the same vehicle; NaN when not moving."""
    dlat = np.diff(lat, append=lat[-1:] if lat.size else lat)
    dlon = np.diff(lon, append=lon[-1:] if lon.size else lon) * np.cos(np.radians(lat))
    same = np.concatenate([vehicle[1:] == vehicle[:-1], [False]]) if vehicle.size else vehicle.astype(bool)
    heading = np.degrees(np.arctan2(dlon, dlat)) % 360.0
    return np.where(moving & same & ((dlat != 0) | (dlon != 0)), heading, np.nan)
