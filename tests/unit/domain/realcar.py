"""A real small EV's logs, built independently of the twin: the car issue 11 describes.

1 Hz while driving; 17 trips through a city with a red light or a queue every few hundred metres (stops of
20-90 s, queues creeping at walking pace); gear N/D/R (or not reported at all); no ignition flag; SoC in
0.01 % or 1 % steps; no pack current, voltage or counters; GPS with ~5 m of noise. Parked, the car
reports every 5 min. The truth (each trip's start, end and pack energy) comes out beside the records,
for the tests only.

Variants (each one thing a real car does that the twin does not):

* ``ignition="climate"``: an ignition flag, off when parked, but left on through some long parks with
  the climate running;
* ``p_at_lights=True``: the driver shifts to P at lights longer than 60 s;
* ``charge=True``: one charge (1 h at 1.5 kW) a night on a home charger reporting its power, whose plug
  flag reads 0 for the first 90 s of the charge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microfleet.domain.vehicle_state import GEAR_CODES, TelemetryColumns

T0_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC
USABLE_KWH = 12.0  # assumed: a small city EV's usable pack (Dacia Spring ~25 kWh, Wuling Mini EV 9-13)
LAT0, LON0 = 48.8566, 2.3522
M_PER_DEG = 111_320.0


@dataclass(frozen=True)
class Truth:
    """One trip or charge as it really was: times (ms) and pack energy (kWh, out of the pack > 0)."""

    start_ms: int
    end_ms: int
    kwh: float


@dataclass(frozen=True)
class RealCar:
    cols: TelemetryColumns
    trips: list[Truth]
    charges: list[Truth]


def _power_kw(speed_kmh: np.ndarray, accel: np.ndarray) -> np.ndarray:
    """A small EV's battery power: ~0.3 kW auxiliaries, rolling and air drag, inertia; regen 60 % back."""
    v = speed_kmh / 3.6
    traction = (800 * 9.81 * 0.012 * v + 0.5 * 1.2 * 0.7 * v**3 + 800 * accel * v) / 1000
    return 0.3 + np.where(traction > 0, traction / 0.85, traction * 0.6)


def generate(
    seed: int = 0,
    soc_step_pct: float = 0.01,
    gear: bool = True,
    ignition: str | None = None,
    p_at_lights: bool = False,
    charge: bool = False,
    trips: int = 17,
) -> RealCar:
    rng = np.random.default_rng(seed)
    ts: list[int] = []
    speed: list[float] = []
    gears: list[int] = []
    ign: list[float] = []
    plug: list[float] = []
    charger_kw: list[float] = []
    xy: list[tuple[float, float]] = []
    power: list[float] = []  # true battery power, kW
    out_trips: list[Truth] = []
    out_charges: list[Truth] = []
    t = 0.0
    x = y = 0.0
    heading = 0.0

    def emit(
        v: float, g: str | None, p_kw: float, on: float = np.nan, plugged: float = np.nan, ch: float = np.nan
    ) -> None:
        ts.append(T0_MS + int(t * 1000))
        speed.append(v)
        gears.append(GEAR_CODES[g] if g else -1)
        ign.append(on)
        plug.append(plugged)
        charger_kw.append(ch)
        xy.append((x, y))
        power.append(p_kw)

    def park(seconds: float, climate: bool = False, charging_kw: float = 0.0) -> None:
        nonlocal t
        end = t + seconds
        on = (1.0 if climate else 0.0) if ignition else np.nan
        g = "P" if gear and not p_at_lights else ("N" if gear else None)
        if charging_kw:
            start_ms = T0_MS + int(t * 1000)
            kwh = 0.0
            charge_end = t + 3600
            first = t
            while t < charge_end:
                flag = 0.0 if t - first < 90 else 1.0
                emit(0.0, g, -charging_kw * 0.9, on, flag, charging_kw)
                kwh += charging_kw * 0.9 * 60 / 3600
                t += 60
            out_charges.append(Truth(start_ms, T0_MS + int(t * 1000), kwh))
            while t < end:
                emit(0.0, g, 0.0, on, 1.0, 0.0)
                t += 300
            return
        while t < end:
            emit(0.0, g, 1.5 if climate else 0.0, on, 0.0 if charge else np.nan, 0.0 if charge else np.nan)
            t += 300 if not climate else 60

    def drive(trip_s: float) -> None:
        nonlocal t, x, y, heading
        start_ms = T0_MS + int(t * 1000)
        end = t + trip_s
        kwh = 0.0
        on = 1.0 if ignition else np.nan
        v = 0.0
        if gear and rng.random() < 0.3:  # reverse out of the space first
            for _ in range(8):
                emit(4.0, "R", 1.0, on)
                kwh += 1.0 / 3600
                y -= 4.0 / 3.6
                t += 1
        while True:  # until it stops where it parks (checked after each braking)
            # cruise to the next light or the queue's end
            target = float(rng.uniform(25, 50))
            for _ in range(int(rng.uniform(30, 120))):
                a = float(np.clip(target - v, -2.0, 1.5)) / 3.6 * 3.6
                v = max(0.0, v + a)
                p = float(_power_kw(np.array([v]), np.array([a / 3.6]))[0])
                heading += float(rng.normal(0, 0.02))
                x += v / 3.6 * np.cos(heading)
                y += v / 3.6 * np.sin(heading)
                emit(v, "D" if gear else None, p, on)
                kwh += p / 3600
                t += 1
            while v > 0:  # brake to a stop
                v = max(0.0, v - 7.0)
                p = float(_power_kw(np.array([v]), np.array([-7.0 / 3.6]))[0])
                emit(v, "D" if gear else None, p, on)
                kwh += p / 3600
                t += 1
            if t >= end:
                break  # stopped where it parks
            stop = float(rng.uniform(20, 90))
            queue = rng.random() < 0.3
            g_stop = "P" if p_at_lights and stop > 60 else ("N" if rng.random() < 0.5 else "D")
            for k in range(int(stop)):
                creep = queue and k % 15 in (5, 6, 7)  # a queue moves up a car length now and then
                vv = 4.0 if creep else 0.0
                if creep:
                    x += vv / 3.6 * np.cos(heading)
                emit(vv, (("D" if creep else g_stop) if gear else None), 0.4 if creep else 0.3, on)
                kwh += (0.4 if creep else 0.3) / 3600
                t += 1
        # the last record of the trip is the car standing where it parks
        emit(0.0, "D" if gear else None, 0.3, on)
        kwh += 0.3 / 3600
        out_trips.append(Truth(start_ms, T0_MS + int(t * 1000), kwh))
        t += 1

    park(7 * 3600.0)
    for k in range(trips):
        drive(float(rng.uniform(600, 1800)))
        last = k == trips - 1
        night = (k + 1) % 4 == 0
        climate = ignition == "climate" and k % 5 == 2
        if night or last:
            park(10 * 3600.0 if not last else 3600.0, charging_kw=1.5 if charge else 0.0)
        else:
            park(float(rng.uniform(1200, 5400)) if not climate else 1500.0, climate=climate)
    n = len(ts)
    tsa = np.array(ts, dtype=np.int64)
    energy = np.concatenate([[0.0], np.cumsum(np.array(power[:-1]) * np.diff(tsa) / 3.6e6)])
    soc_true = 90.0 - energy / USABLE_KWH * 100
    soc = np.floor(soc_true / soc_step_pct + 1e-9) * soc_step_pct  # a BMS reports its SoC rounded down
    pos = np.array(xy)
    noise = rng.normal(0, 5.0, size=(n, 2))  # ~5 m GPS noise
    lat = LAT0 + (pos[:, 1] + noise[:, 1]) / M_PER_DEG
    lon = LON0 + (pos[:, 0] + noise[:, 0]) / (M_PER_DEG * np.cos(np.radians(LAT0)))
    arrays = {
        "ts_ms": tsa,
        "lat_deg": lat,
        "lon_deg": lon,
        "speed_kmh": np.array(speed),
        "soc_pct": soc,
        "ignition_on": np.array(ign),
        "charger_connected": np.array(plug),
        "charger_power_kw": np.array(charger_kw),
        "gear_code": np.array(gears),
    }
    # the truth's energy over each span, from the same integral the SoC was drawn from
    trips_kwh = [
        Truth(tr.start_ms, tr.end_ms, float(_between(tsa, energy, tr.start_ms, tr.end_ms)))
        for tr in out_trips
    ]
    charges_kwh = [
        Truth(c.start_ms, c.end_ms, -float(_between(tsa, energy, c.start_ms, c.end_ms))) for c in out_charges
    ]
    return RealCar(TelemetryColumns.from_arrays("real-ev", arrays), trips_kwh, charges_kwh)


def _between(ts: np.ndarray, energy: np.ndarray, a_ms: int, b_ms: int) -> float:
    i, j = int(np.searchsorted(ts, a_ms)), min(int(np.searchsorted(ts, b_ms)), len(ts) - 1)
    return float(energy[j] - energy[i])
