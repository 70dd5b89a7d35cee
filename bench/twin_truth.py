"""What the realism bench reads from the twin's truth, and the cited figures it computes from shared data.

Charging sessions, public-post occupancy and energy per km by temperature are derived here from the truth a
twin run writes (true samples and trips), so the twin itself exposes nothing new. The Dundee figures are
computed from the real sessions in shared/data/charging_sessions/dundee (Open Government Licence v3.0,
"Electric Vehicle Charging Sessions Dundee", Dundee City Council).
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import itertools
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from microfleet.sim.engine import Twin
from microfleet.sim.output import trips_table
from microfleet.sim.scenario import Scenario

WEEK_S = 7 * 86400
TEMPERATURE_BANDS_C = (-50.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 60.0)
SEASON_STARTS = (dt.date(2026, 1, 5), dt.date(2026, 4, 6), dt.date(2026, 7, 6), dt.date(2026, 10, 5))


def is_weekday(start: dt.date, ts_ms: float, start_ms: float) -> bool:
    """Whether a time (ms since the epoch) falls on a weekday of the run (local days from ``start``)."""
    return (start + dt.timedelta(days=int((ts_ms - start_ms) // 86_400_000))).weekday() < 5


def rental_minutes(rentals: pa.Table) -> float:
    per_booking = rentals.group_by("booking_id").aggregate([("depart_ts_ms", "min"), ("arrive_ts_ms", "max")])
    span_ms = per_booking["arrive_ts_ms_max"].to_numpy() - per_booking["depart_ts_ms_min"].to_numpy()
    return float(np.mean(span_ms) / 60_000)


# ---- part 2: emergent figures from the truth ------------------------------------------------------


def charging_sessions(samples: pa.Table, twin: Twin) -> dict[str, np.ndarray]:
    """Owners' charging sessions: runs of consecutive true 'charge' samples of one car (midnight joined)."""
    own = samples.filter(pc.starts_with(samples["vehicle_id"], "twin-own"))
    own = own.sort_by([("vehicle_id", "ascending"), ("ts_ms", "ascending")])
    vid = own["vehicle_id"].to_numpy(zero_copy_only=False)
    ts = own["ts_ms"].to_numpy()
    state = own["state"].to_numpy(zero_copy_only=False)
    charge = state == "charge"
    new_car = np.r_[True, vid[1:] != vid[:-1]]
    start = charge & (new_car | ~np.r_[False, charge[:-1]])
    idx = np.flatnonzero(start)
    # The post stays occupied until the car drives off (a full car stays plugged in until then).
    drive_idx = np.flatnonzero(state == "drive")
    nxt = np.searchsorted(drive_idx, idx)
    leave = np.where(nxt < drive_idx.size, drive_idx[np.minimum(nxt, drive_idx.size - 1)], ts.size - 1)
    leave = np.where(vid[leave] == vid[idx], leave, idx)  # no later drive of this car: its last sample
    net = twin.world.net
    node_at = {(float(net.lat_deg[n]), float(net.lon_deg[n])): int(n) for n in twin.world.places.charger_ac}
    node_at.update({(float(net.lat_deg[n]), float(net.lon_deg[n])): -2 for n in twin.world.places.charger_dc})
    lat = own["true_lat_deg"].to_numpy()[idx]
    lon = own["true_lon_deg"].to_numpy()[idx]
    home = {v.vehicle_id: v.person.home for v in twin.fleet if v.person is not None}
    at_home = np.array([
        (float(a), float(b)) == (float(net.lat_deg[home[v]]), float(net.lon_deg[home[v]]))
        for v, a, b in zip(vid[idx], lat, lon, strict=True)
    ], dtype=bool)  # fmt: skip
    post = np.array([node_at.get((float(a), float(b)), -1) for a, b in zip(lat, lon, strict=True)])
    soc = own["true_soc_pct"].to_numpy()
    boundary = np.r_[np.flatnonzero(~charge | new_car), ts.size]
    last = boundary[np.searchsorted(boundary, idx, side="right")] - 1  # the run's last charge sample
    capacity = {v.vehicle_id: v.capacity_kwh for v in twin.fleet}
    kwh = (soc[last] - soc[idx]) / 100 * np.array([capacity[v] for v in vid[idx]])
    return {
        "vehicle": vid[idx], "start_ms": ts[idx], "leave_ms": ts[leave], "soc_pct": soc[idx],
        "battery_kwh": kwh, "at_home": at_home & (post == -1), "ac_post": post,
    }  # fmt: skip


def median_gap_h(sessions: dict[str, np.ndarray], cars: set[str]) -> float | None:
    """Median time between the starts of one car's consecutive charging sessions, h."""
    gaps = []
    for car in cars:
        t = np.sort(sessions["start_ms"][sessions["vehicle"] == car])
        gaps.extend(np.diff(t) / 3.6e6)
    return float(np.median(gaps)) if gaps else None


def public_post_figures(s: dict[str, np.ndarray], n_posts: int, span_s: float) -> dict[str, float | None]:
    """Occupancy of the twin's public AC posts and the share of arrivals that found a car already there."""
    ac = s["ac_post"] >= 0
    post, t0, t1 = s["ac_post"][ac], s["start_ms"][ac], s["leave_ms"][ac]
    busy = [bool(np.any((post == post[i]) & (t0 < t0[i]) & (t1 > t0[i]))) for i in range(post.size)]
    occupied_s = float(np.sum(t1 - t0) / 1000)
    return {
        "sessions": float(post.size),
        "found busy share": float(np.mean(busy)) if busy else None,
        "occupancy share": occupied_s / (n_posts * span_s),
    }


def energy_by_band(trips: pa.Table, twin: Twin, sums: dict[str, np.ndarray]) -> None:
    """Add owners' battery energy (HVAC included), km and trips by ambient temperature at departure."""
    own = trips.filter(pc.starts_with(trips["vehicle_id"], "twin-own"))
    ambient = twin.world.weather.at((own["depart_ts_ms"].to_numpy() - twin.start.timestamp() * 1000) / 1000)
    kwh, km = own["energy_kwh"].to_numpy(), own["distance_km"].to_numpy()
    for lo, hi in itertools.pairwise(TEMPERATURE_BANDS_C):
        sel = (ambient >= lo) & (ambient < hi)
        label = (
            f"below {hi:.0f} °C"
            if lo < -40
            else f"{lo:.0f} °C and above"
            if hi > 50
            else f"{lo:.0f}-{hi:.0f} °C"
        )
        sums.setdefault(label, np.zeros(3))
        sums[label] += (kwh[sel].sum(), km[sel].sum(), sel.sum())


def seasonal_energy(seed: int, vehicles: int, days: int) -> dict[str, np.ndarray]:
    """Energy per km by temperature from short runs started in January, April, July and October."""
    sums: dict[str, np.ndarray] = {}
    for i, start in enumerate(SEASON_STARTS):
        twin = Twin(Scenario(vehicles=vehicles, days=days, seed=seed * 100 + i, start_date=start))
        origin_ms = int(twin.start.timestamp() * 1000)
        energy_by_band(pa.concat_tables(trips_table(twin, r, origin_ms) for r in twin.days()), twin, sums)
    return sums


# ---- cited figures from the shared real sessions (Dundee) -----------------------------------------


def dundee_figures(root: Path) -> dict[str, float]:
    """Dundee's public chargers, Jun-Sep 2018 (the file with user ids): 7 kW sessions and per-user rates."""
    path = root / "charging_sessions" / "dundee" / "charge-sessions-june-sept.csv.gz"
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["End Date"] and r["Total kWh"]]  # incomplete rows left out

    def ts(d: str, t: str) -> float:
        return dt.datetime.strptime(f"{d} {t}", "%d/%m/%Y %H:%M").replace(tzinfo=dt.UTC).timestamp()

    start = np.array([ts(r["Start Date"], r["Start Time"]) for r in rows])
    end = np.array([ts(r["End Date"], r["End Time"]) for r in rows])
    slow = np.array(["7kW" in r["Model"] for r in rows])
    kwh = np.array([float(r["Total kWh"]) for r in rows])
    span_s = start.max() - start.min()
    outlets = {(r["CP ID"], r["Connector"]) for r, s in zip(rows, slow, strict=True) if s}
    ok = end >= start
    return {
        "7 kW session kWh median": float(np.median(kwh[slow & (kwh > 0)])),
        "7 kW outlet occupancy share": float(np.sum((end - start)[slow & ok]) / (len(outlets) * span_s)),
        "sessions per user-week": len(rows) / len({r["User ID"] for r in rows}) / (span_s / WEEK_S),
        "span days": span_s / 86400,
    }
