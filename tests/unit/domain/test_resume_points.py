"""Deriving from any resume point gives what a derivation from scratch gives from there on.

A car whose fixes jump, often right where it falls asleep (where resume points are): the GPS-jump walk's
reference is carried in each resume point, and no resume point sits where jumped fixes still wait to
agree, so a window derived from a resume point excludes the same fixes and finds the same drives, charges
and states as the whole history does after that point.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from microfleet.domain.derivation import DerivedHistory, ResumePoint, derive_history
from microfleet.domain.drives import GpsFix, screen_window
from microfleet.domain.vehicle_state import GEAR_CODES, TelemetryColumns

T0_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC
HOME = (48.8566, 2.3522)


def car(seed: int, days: int = 3, jump_share: float = 0.1) -> TelemetryColumns:
    """Days of: asleep at home (every 5 min), 20 min drive, asleep at work, drive home, asleep; fixes jump
    ~30 km at random (``jump_share`` of them) and always at the first asleep record after a drive."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[int, float, float, int, float, float, float, bool]] = []  # ts, lat, lon, gear, ...
    lat, lon = HOME
    asleep_first: list[int] = []

    def asleep(t_s: int, dur_s: int) -> None:
        asleep_first.append(len(rows))
        for t in range(t_s, t_s + dur_s, 300):
            rows.append((T0_MS + t * 1000, lat, lon, GEAR_CODES["P"], 0.0, 0.0, 0.0, False))

    def drive(t_s: int, north: float) -> None:
        nonlocal lat
        for t in range(t_s, t_s + 1200, 5):
            lat += north * 50 / 111_195
            rows.append((T0_MS + t * 1000, lat, lon, GEAR_CODES["D"], 36.0, 44.0, 1.0, True))

    for d in range(days):
        day = d * 86_400
        asleep(day, 8 * 3600)
        drive(day + 8 * 3600, 1.0)
        asleep(day + 8 * 3600 + 1200, 9 * 3600)
        drive(day + 17 * 3600 + 1200, -1.0)
        asleep(day + 17 * 3600 + 2400, 6 * 3600)
    ts, lats, lons, gear, speed, current, _, ign = (np.array(c) for c in zip(*rows, strict=True))
    jumped = rng.random(len(rows)) < jump_share
    jumped[asleep_first[1:]] = True
    lats = np.where(jumped, lats + rng.normal(0.0, 0.3, len(rows)), lats)
    arrays: dict[str, npt.ArrayLike] = {
        "ts_ms": ts.astype(np.int64),
        "lat_deg": np.round(lats, 6),
        "lon_deg": lons,
        "gear_code": gear,
        "speed_kmh": speed,
        "pack_current_a": current,
        "pack_voltage_v": np.full(len(rows), 340.0),
        "ignition_on": ign.astype(np.float64),
    }
    return TelemetryColumns.from_arrays("car", arrays)


def _from(history: DerivedHistory, from_ms: int) -> tuple[list[object], ...]:
    return (
        [s for s in history.spans if s.start_ts_ms >= from_ms],
        [d for d in history.drives if d.start_ts_ms >= from_ms],
        [c for c in history.charges if c.start_ts_ms >= from_ms],
        [q for q in history.excluded if q.ts_ms >= from_ms],
    )


def _window(cols: TelemetryColumns, point: ResumePoint, gps_ref: GpsFix | None) -> DerivedHistory:
    start = int(np.searchsorted(cols.ts_ms, point.from_ms))
    return derive_history(cols.slice(start, len(cols)), point.state, gps_ref=gps_ref)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_window_from_any_resume_point_derives_what_the_whole_history_derives_there(seed: int) -> None:
    cols = car(seed)
    whole = derive_history(cols)
    points = [s.resume for s in whole.spans[1:] if s.resume is not None]
    assert len(points) >= 4
    assert any(p.gps_ref is not None for p in points)
    for point in points:
        assert _from(_window(cols, point, point.gps_ref), point.from_ms) == _from(whole, point.from_ms)


def test_a_window_that_forgot_the_reference_judges_a_jump_at_its_start_differently() -> None:
    """What the resume point's reference is for: the first asleep fix after a drive jumped away; judged
    from itself (no reference) it is the walk's first fix and stays, and the good fixes after it go."""
    cols = car(1, jump_share=0.0)
    whole = derive_history(cols)
    points = [s.resume for s in whole.spans[1:] if s.resume is not None]
    assert whole.excluded
    differs = [p for p in points if _from(_window(cols, p, None), p.from_ms)[3] != _from(whole, p.from_ms)[3]]
    assert differs


def test_no_resume_point_where_jumped_fixes_still_wait_to_agree() -> None:
    """Two fixes jumped to the same place, then the window could resume: a third agreeing fix after it
    would clear them, which a window starting after them cannot do; the walk says it is not settled."""
    lat = np.array([48.0, 48.0001, 48.3, 48.3001, 48.3002, 48.3003])
    ts = T0_MS + np.arange(6, dtype=np.int64) * 10_000
    cols = TelemetryColumns.from_arrays("car", {"ts_ms": ts, "lat_deg": lat, "lon_deg": np.full(6, 2.0)})
    screened = screen_window(cols)
    assert screened.excluded == []  # three agreeing jumps: the car is there
    assert screened.reference_before(int(ts[2])) == (True, GpsFix(int(ts[1]), 48.0001, 2.0))
    assert screened.reference_before(int(ts[3]))[0] is False
    assert screened.reference_before(int(ts[4]))[0] is False
    assert screened.reference_before(int(ts[5])) == (True, GpsFix(int(ts[4]), 48.3002, 2.0))
    # from a carried reference the walk judges the window's first fix against it
    window = screen_window(cols.slice(2, 6), GpsFix(int(ts[1]), 48.0001, 2.0))
    assert window.excluded == []
    alone = screen_window(cols.slice(2, 3), GpsFix(int(ts[1]), 48.0001, 2.0))
    assert [q.ts_ms for q in alone.excluded] == [int(ts[2])]


def learning_car() -> TelemetryColumns:
    """Six times: ignition off, then asleep; a drive with a 200 s stop in N, then 39 stops of 30 s. The
    car teaches the machine its stops (its minimum parking time falls below 200 s) and its ignition flag."""
    rows: list[tuple[int, float, int, float, float, float]] = []  # ts, lat, gear, speed, current, ignition
    lat, t = 48.0, 0

    def add(gear: str, speed_kmh: float, current_a: float, ignition: float, step_s: int) -> None:
        nonlocal t
        rows.append((T0_MS + t * 1000, lat, GEAR_CODES[gear], speed_kmh, current_a, ignition))
        t += step_s

    for k in range(6):
        for _ in range(6):
            add("P", 0.0, 5.0, 0.0, 60)  # ignition off, still awake
        for _ in range(6 * 12):
            add("P", 0.0, 0.0, 0.0, 300)  # asleep
        for leg in range(40):
            for _ in range(24):
                lat += (1 if k % 2 == 0 else -1) * 50 / 111_195
                add("D", 36.0, 44.0, 1.0, 5)
            for _ in range((200 if leg == 0 else 30) // 5):
                add("N", 0.0, 5.0, 1.0, 5)
    ts, lats, gear, speed, current, ign = (np.array(c) for c in zip(*rows, strict=True))
    arrays: dict[str, npt.ArrayLike] = {
        "ts_ms": ts.astype(np.int64),
        "lat_deg": lats,
        "lon_deg": np.full(len(rows), 2.0),
        "gear_code": gear,
        "speed_kmh": speed,
        "pack_current_a": current,
        "pack_voltage_v": np.full(len(rows), 340.0),
        "ignition_on": ign,
    }
    return TelemetryColumns.from_arrays("car", arrays)


def test_resume_points_carry_what_the_car_taught_the_machine() -> None:
    """The learned minimum parking time and that the car reports ignition off: a window from a resume
    point ends the same drives at the 200 s stop as the whole history does (it forgot them before)."""
    cols = learning_car()
    whole = derive_history(cols)
    points = [s.resume for s in whole.spans[1:] if s.resume is not None]
    assert len(points) >= 5
    assert all(p.state.park_signals for p in points)
    assert points[-1].state.stop_q_s is not None and points[-1].state.stop_q_s < 100
    for point in points:
        assert _from(_window(cols, point, point.gps_ref), point.from_ms) == _from(whole, point.from_ms)
    assert len(whole.drives) > 6  # some 200 s stops did end a drive
