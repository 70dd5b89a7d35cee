"""Trouble codes, motor/inverter heat, brakes, and faults of the sensors themselves (GPS, TPMS).

* Codes: every code the car reported in the last day, decoded from :mod:`microfleet.domain.dtc`.
* Motor/inverter heat: protocol v1 carries no motor or inverter temperature, so there is no temperature
  trend to follow; the detector reports overheating codes and the derating they cause, and says so.
* Brakes: braking energy not returned by regeneration goes into the pads. Per day, the kinetic energy shed
  in decelerations (½ m Δv²) against what the pack's recovered-energy counter rose while driving; a friction
  share well above the car's own usual means the pads work harder (regeneration limited, a sticking caliper).
* GPS: a fix with a poor HDOP that jumps faster than a car can drive, or away and back, is a glitch; a few a
  month are ordinary
  (tunnels, multipath), :data:`GPS_EPISODES` in 30 days point at the receiver or its antenna.
* TPMS: one wheel silent while the others report is a sensor (battery) fault, not a pressure.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from microfleet.domain.dtc import decode
from microfleet.intelligence.maintenance.findings import DetectorResult, Verdict, learning, no_signal
from microfleet.intelligence.maintenance.series import DAY_MS, CarSeries

THERMAL_CODES: Final = frozenset({"P0A2F", "P0A93", "P0C73", "P0A78"})
MAX_CAR_KMH: Final = 250.0  # protocol v1's speed range: a jump implying more is not driving
GLITCH_HDOP: Final = 5.0  # HDOP above 5 is a "moderate" fix at best (Langley 1999, "Dilution of precision")
GPS_EPISODES: Final = 3
SPIKE_M: Final = 250.0  # the twin's glitches jump 300-3,000 m; urban multipath stays within tens of metres
EPISODE_GAP_MS: Final = 30 * 60_000
TPMS_SILENT_SHARE: Final = 0.5
CAR_MASS_KG: Final = 1_000.0  # small city EV with driver (Wuling Hongguang Mini EV kerb 665-700 kg + load)
BRAKE_RISE: Final = 0.25  # friction share 25 points over the car's usual (assumed)
BRAKE_LEARN_DAYS: Final = 14.0


def codes(series: CarSeries) -> list[DetectorResult]:
    """One result per trouble code the car reported in its last day."""
    if not series.dtc_codes and series.ts_ms.size == 0:
        return []
    since = series.ts_ms[-1] - DAY_MS
    seen: dict[str, int] = {}
    for i, cs in series.dtc_codes.items():
        if series.ts_ms[i] >= since:
            for c in cs:
                seen[c] = seen.get(c, 0) + 1
    out = []
    for c, n in sorted(seen.items()):
        d = decode(c)
        out.append(DetectorResult(
            "dtc", Verdict.SUSPECTED, f"{c}: {d.title} ({d.system}; reported in {n} samples today)",
            condition=f"code:{c}", severity=d.severity, action=d.action, score=float(n),
            evidence={"code": c, "title": d.title, "source": d.source, "samples": n},
        ))  # fmt: skip
    return out


def thermal(series: CarSeries) -> list[DetectorResult]:
    """Motor/inverter heat: overheating codes in the last week and the top speed while they were on."""
    since = series.ts_ms[-1] - 7 * DAY_MS if series.ts_ms.size else 0
    hot = [i for i, cs in series.dtc_codes.items() if series.ts_ms[i] >= since and THERMAL_CODES & set(cs)]
    if not hot:
        return [DetectorResult("motor_thermal", Verdict.OK,
                               "no overheating codes this week (the car sends no motor or inverter "
                               "temperature, so Microfleet cannot follow a drift before the first "
                               "code)")]  # fmt: skip
    top = (
        float(np.nanmax(series.speed_kmh[hot])) if np.isfinite(series.speed_kmh[hot]).any() else float("nan")
    )
    return [DetectorResult(
        "motor_thermal", Verdict.SUSPECTED,
        f"motor or inverter overheated in {len(hot)} samples this week; top speed while hot {top:.0f} km/h "
        "(derating)", condition="thermal", severity="warning",
        action="check the motor and inverter coolant level, pump and radiator", score=float(len(hot)),
        evidence={"hot_samples": len(hot), "top_speed_hot_kmh": round(top, 1)},
    )]  # fmt: skip


def brakes(series: CarSeries, mass_kg: float = CAR_MASS_KG) -> list[DetectorResult]:
    """Friction-brake share of braking energy per day against the car's own usual."""
    if not series.sends(series.energy_recovered_kwh):
        return [no_signal("brakes", "regenerated-energy counter")]
    if series.days < BRAKE_LEARN_DAYS:
        return [
            learning("brakes", series.days, BRAKE_LEARN_DAYS, "how much of its braking the car regenerates")
        ]
    v = series.speed_kmh / 3.6
    dv2 = np.diff(v**2)
    dt_s = np.diff(series.ts_ms) / 1000.0
    moving = (dv2 < 0) & (dt_s <= 10.0) & np.isfinite(dv2)  # consecutive driving samples only
    kinetic_kwh = np.where(moving, -0.5 * mass_kg * np.nan_to_num(dv2), 0.0) / 3.6e6
    rec = np.diff(series.energy_recovered_kwh)
    regen_kwh = np.where((series.ignition_on[1:] == 1.0) & (rec >= 0) & (rec < 0.5), np.nan_to_num(rec), 0.0)
    day = ((series.ts_ms[1:] - series.ts_ms[0]) // DAY_MS).astype(np.int64)
    kin = np.bincount(day, kinetic_kwh)
    reg = np.bincount(day, regen_kwh)
    used = kin > 0.05  # days with at least 50 Wh of braking
    if used.sum() < 7:
        return [learning("brakes", float(used.sum()), 7.0, "days with braking")]
    share = np.clip(1.0 - reg[used] / kin[used], 0.0, 1.0)
    usual, now = float(np.median(share[:-3])), float(np.median(share[-3:]))
    ev: dict[str, float | str] = {
        "friction_share_now": round(now, 2),
        "friction_share_usual": round(usual, 2),
    }
    if now - usual >= BRAKE_RISE:
        return [DetectorResult(
            "brakes", Verdict.SUSPECTED,
            f"friction brakes take {now:.0%} of braking energy, usually {usual:.0%}: regeneration is limited "
            "or a brake drags, and the pads wear faster", condition="brakes", severity="warning",
            action="inspect pads, discs and calipers; check why regeneration is limited", score=now - usual,
            evidence=ev,
        )]  # fmt: skip
    usual_text = f"friction brakes take {now:.0%} of braking energy, as usual"
    return [DetectorResult("brakes", Verdict.OK, usual_text,
                           score=now - usual, evidence=ev)]  # fmt: skip


def gps(series: CarSeries) -> list[DetectorResult]:
    """GPS glitch episodes in the last 30 days: fixes that jump impossibly fast with a poor HDOP."""
    ok = np.isfinite(series.lat_deg) & np.isfinite(series.lon_deg)
    if not ok.any():
        return [no_signal("gps", "GPS position")]
    i = np.flatnonzero(ok)
    t, lat, lon, hdop = series.ts_ms[i], series.lat_deg[i], series.lon_deg[i], series.gps_hdop[i]
    d_m = _metres(lat[:-1], lon[:-1], lat[1:], lon[1:])
    kmh = d_m / np.maximum(np.diff(t) / 1000.0, 1.0) * 3.6
    poor = np.nan_to_num(hdop[1:], nan=0.0) >= GLITCH_HDOP
    # a fix away from both neighbours that agree with each other (jumped and came back), however slow the
    # cadence: a parked car's fixes are 10 min apart, where no implied speed looks impossible
    spike = np.zeros(d_m.size, dtype=bool)
    if d_m.size >= 2:
        back = _metres(lat[:-2], lon[:-2], lat[2:], lon[2:])
        spike[:-1] = (d_m[:-1] > SPIKE_M) & (d_m[1:] > SPIKE_M) & (back < SPIKE_M / 2)
    bad = ((kmh > MAX_CAR_KMH) | spike) & poor
    when = t[1:][bad & (t[1:] >= t[-1] - 30 * DAY_MS)]
    episodes = int((np.diff(when, prepend=-(10**15)) > EPISODE_GAP_MS).sum()) if when.size else 0
    ev: dict[str, float | str] = {"glitch_episodes_30d": episodes}
    if episodes >= GPS_EPISODES:
        return [DetectorResult(
            "gps", Verdict.SUSPECTED, f"{episodes} GPS glitch episodes in 30 days (positions jumping over "
            f"{MAX_CAR_KMH:.0f} km/h with HDOP ≥ {GLITCH_HDOP:g})", condition="gps", severity="info",
            action="check the GPS antenna's connection and placement", score=float(episodes), evidence=ev,
        )]  # fmt: skip
    return [DetectorResult("gps", Verdict.OK, f"{episodes} GPS glitch episodes in 30 days",
                           score=float(episodes), evidence=ev)]  # fmt: skip


def _metres(lat0: np.ndarray, lon0: np.ndarray, lat1: np.ndarray, lon1: np.ndarray) -> np.ndarray:
    """Equirectangular distance (m): exact enough for fixes a few km apart."""
    east = (lon1 - lon0) * 111_195.0 * np.cos(np.radians(lat1))
    return np.asarray(np.hypot((lat1 - lat0) * 111_195.0, east))


def tpms_sensors(series: CarSeries) -> list[DetectorResult]:
    """A wheel whose TPMS sensor stays silent in the last day while the other wheels report."""
    p = series.tyre_pressure_kpa
    if not series.sends(p.ravel()):
        return []
    recent = series.ts_ms >= series.ts_ms[-1] - DAY_MS
    some = np.isfinite(p[recent]).any(axis=1)
    if not some.any():
        return []
    silent = (~np.isfinite(p[recent][some])).mean(axis=0)
    out = []
    for w in np.flatnonzero(silent >= TPMS_SILENT_SHARE).tolist():
        key = ("fl", "fr", "rl", "rr")[w]
        out.append(DetectorResult(
            "tpms_sensor", Verdict.SUSPECTED,
            f"the {key} TPMS sensor was silent in {silent[w]:.0%} of today's readings while the others "
            "reported",
            condition=f"tpms:{key}", severity="info", action=f"replace the {key} TPMS sensor's battery",
            score=float(silent[w]), evidence={"silent_share": round(float(silent[w]), 2)},
        ))  # fmt: skip
    return out
