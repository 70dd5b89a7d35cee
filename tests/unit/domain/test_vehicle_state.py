"""The vehicle state machine: one row per transition, and the batch path agreeing with the live path."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from microfleet.domain.telemetry import TelemetryRecord
from microfleet.domain.vehicle_state import (
    ChargeEnded,
    ChargeStarted,
    DriveEnded,
    DriveStarted,
    TelemetryColumns,
    VehicleState,
    VehicleStatus,
    WentAsleep,
    WentOffline,
    WokeUp,
    derive_events,
    transition,
)

T0 = 1_700_000_000_000
LAT, LON = 31.2304, 121.4737
ST = VehicleStatus


def rec(dt_s: float = 0, **signals: Any) -> TelemetryRecord:
    return TelemetryRecord(vehicle_id="car-1", ts_ms=T0 + int(dt_s * 1000), **signals)


PARKED_AWAKE = {"gear": "P", "ignition_on": False, "pack_current_a": 2.0, "speed_kmh": 0.0}
IN_DRIVE = {"gear": "D", "ignition_on": True, "pack_current_a": 40.0, "speed_kmh": 30.0}
PLUGGED_POWER = {**PARKED_AWAKE, "charger_connected": True, "charger_power_kw": 3.3, "pack_current_a": -9.0}
PLUGGED_IDLE = {**PARKED_AWAKE, "charger_connected": True, "charger_power_kw": 0.0}
QUIET = {"gear": "P", "ignition_on": False, "pack_current_a": 0.1, "speed_kmh": 0.0}


def at(status: VehicleStatus, last_dt_s: float = -5, **kw: Any) -> VehicleState:
    return VehicleState(status=status, since_ts_ms=T0 - 600_000, last_ts_ms=T0 + int(last_dt_s * 1000), **kw)


# One row per transition: (name, state before, record, status after, events as (type, ts offset s)).
TRANSITIONS = [
    ("first record wakes", VehicleState(), rec(**PARKED_AWAKE), ST.PARKED, [(WokeUp, 0)]),
    ("parked stays parked", at(ST.PARKED), rec(**PARKED_AWAKE), ST.PARKED, []),
    ("gear D starts a drive", at(ST.PARKED), rec(**IN_DRIVE), ST.DRIVING, [(DriveStarted, 0)]),
    (
        "gear D at a red light keeps driving",
        at(ST.DRIVING),
        rec(**{**IN_DRIVE, "speed_kmh": 0.0}),
        ST.DRIVING,
        [],
    ),
    ("gear P ends a drive", at(ST.DRIVING), rec(**PARKED_AWAKE), ST.PARKED, [(DriveEnded, 0)]),
    # issue 11: a stop at a light or in a queue never ends a drive on its own
    (
        "gear N at a red light keeps driving",
        at(ST.DRIVING, still_since_ts_ms=T0 - 90_000),
        rec(gear="N", speed_kmh=0.0),
        ST.DRIVING,
        [],
    ),
    (
        "ignition on, no gear, standing keeps driving",
        at(ST.DRIVING, still_since_ts_ms=T0 - 120_000),
        rec(ignition_on=True, speed_kmh=0.0),
        ST.DRIVING,
        [],
    ),
    (
        "gear P with the ignition on at a long light keeps driving",
        at(ST.DRIVING, still_since_ts_ms=T0 - 120_000),
        rec(gear="P", ignition_on=True, speed_kmh=0.0),
        ST.DRIVING,
        [],
    ),
    (
        "gear N standing 300 s ends the drive where it stopped",
        at(ST.DRIVING, still_since_ts_ms=T0 - 300_000),
        rec(gear="N", speed_kmh=0.0),
        ST.PARKED,
        [(DriveEnded, -300)],
    ),
    (
        "ignition off after standing ends the drive where it stopped",
        at(ST.DRIVING, still_since_ts_ms=T0 - 60_000),
        rec(gear="P", ignition_on=False, speed_kmh=0.0),
        ST.PARKED,
        [(DriveEnded, -60)],
    ),
    (
        "a car that says ignition off and has learned long stops keeps driving through 600 s in N",
        at(ST.DRIVING, still_since_ts_ms=T0 - 600_000, park_signals=True, stop_q_s=400.0),
        rec(gear="N", ignition_on=True, speed_kmh=0.0),
        ST.DRIVING,
        [],
    ),
    (
        "... and parks after 900 s whatever it learned",
        at(ST.DRIVING, still_since_ts_ms=T0 - 900_000, park_signals=True, stop_q_s=600.0),
        rec(gear="N", ignition_on=True, speed_kmh=0.0),
        ST.PARKED,
        [(DriveEnded, -900)],
    ),
    (
        "a car whose stops are short parks after twice its 95th percentile (60 s: 120 s)",
        at(ST.DRIVING, still_since_ts_ms=T0 - 120_000, stop_q_s=60.0),
        rec(gear="N", speed_kmh=0.0),
        ST.PARKED,
        [(DriveEnded, -120)],
    ),
    (
        "a gear flag still P as the car pulls away with the ignition on is driving",
        at(ST.DRIVING, still_since_ts_ms=T0 - 50_000),
        rec(gear="P", ignition_on=True, speed_kmh=15.0),
        ST.DRIVING,
        [],
    ),
    (
        "ignition off after standing in D ends the drive where it stopped (the gear trailed)",
        at(ST.DRIVING, still_since_ts_ms=T0 - 40_000),
        rec(gear="P", ignition_on=False, speed_kmh=0.0),
        ST.PARKED,
        [(DriveEnded, -40)],
    ),
    (
        "a cable plugged in is parking",
        at(ST.DRIVING),
        rec(charger_connected=True, speed_kmh=0.0),
        ST.PARKED,
        [(DriveEnded, 0)],
    ),
    (
        "regen in D is not charging",
        at(ST.DRIVING),
        rec(**{**IN_DRIVE, "pack_current_a": -30.0}),
        ST.DRIVING,
        [],
    ),
    ("power in starts a charge", at(ST.PARKED), rec(**PLUGGED_POWER), ST.CHARGING, [(ChargeStarted, 0)]),
    ("plugged, no power ends charging", at(ST.CHARGING), rec(**PLUGGED_IDLE), ST.PARKED, [(ChargeEnded, 0)]),
    (
        "negative current without a plug signal is charging",
        at(ST.PARKED),
        rec(gear="P", ignition_on=False, pack_current_a=-20.0),
        ST.CHARGING,
        [(ChargeStarted, 0)],
    ),
    ("quiet pack falls asleep", at(ST.PARKED), rec(**QUIET), ST.ASLEEP, [(WentAsleep, 0)]),
    (
        "quiet pack under the sensor offset falls asleep (100 V pack, 0.6 A = 60 W)",
        at(ST.PARKED),
        rec(**{**QUIET, "pack_current_a": 0.6, "pack_voltage_v": 100.0}),
        ST.ASLEEP,
        [(WentAsleep, 0)],
    ),
    (
        "awake draw of a 340 V pack is not sleep (1 A = 340 W)",
        at(ST.PARKED),
        rec(**{**QUIET, "pack_current_a": 1.0, "pack_voltage_v": 340.0}),
        ST.PARKED,
        [],
    ),
    (
        "full and quiet while plugged falls asleep",
        at(ST.CHARGING),
        rec(**{**PLUGGED_IDLE, "pack_current_a": 0.1}),
        ST.ASLEEP,
        [(ChargeEnded, 0), (WentAsleep, 0)],
    ),
    (
        "drive from sleep wakes first",
        at(ST.ASLEEP),
        rec(**IN_DRIVE),
        ST.DRIVING,
        [(WokeUp, 0), (DriveStarted, 0)],
    ),
    (
        "drive off the charger ends the charge",
        at(ST.CHARGING),
        rec(**IN_DRIVE),
        ST.DRIVING,
        [(ChargeEnded, 0), (DriveStarted, 0)],
    ),
    (
        "an hour of silence ends a drive at the last record",
        at(ST.DRIVING, last_dt_s=-3700),
        rec(**PARKED_AWAKE),
        ST.PARKED,
        [(DriveEnded, -3700), (WentOffline, -3700), (WokeUp, 0)],
    ),
    (
        "an hour of silence ends a charge",
        at(ST.CHARGING, last_dt_s=-3600),
        rec(**PLUGGED_IDLE),
        ST.PARKED,
        [(ChargeEnded, -3600), (WentOffline, -3600), (WokeUp, 0)],
    ),
    (
        "silence under an hour is not offline",
        at(ST.PARKED, last_dt_s=-3599),
        rec(**PARKED_AWAKE),
        ST.PARKED,
        [],
    ),
    (
        "fallback: short movement is not yet a drive",
        at(ST.PARKED, last_lat_deg=LAT, last_lon_deg=LON),
        rec(speed_kmh=20.0, lat_deg=LAT + 0.0005, lon_deg=LON),
        ST.PARKED,
        [],
    ),
    (
        "fallback: movement for 300 s starts a drive where it began",
        at(ST.PARKED, pending_since_ts_ms=T0 - 300_000, last_lat_deg=LAT, last_lon_deg=LON),
        rec(speed_kmh=20.0, lat_deg=LAT, lon_deg=LON),
        ST.DRIVING,
        [(DriveStarted, -300)],
    ),
    (
        "fallback: movement over 500 m starts a drive",
        at(ST.PARKED, pending_since_ts_ms=T0 - 60_000, pending_m=450.0, last_lat_deg=LAT, last_lon_deg=LON),
        rec(speed_kmh=40.0, lat_deg=LAT + 0.0006, lon_deg=LON),
        ST.DRIVING,
        [(DriveStarted, -60)],
    ),
    (
        "fallback: 300 s still ends the drive when it stopped",
        at(ST.DRIVING, still_since_ts_ms=T0 - 300_000),
        rec(speed_kmh=0.0),
        ST.PARKED,
        [(DriveEnded, -300)],
    ),
    (
        "fallback: a short stop keeps driving",
        at(ST.DRIVING, still_since_ts_ms=T0 - 120_000),
        rec(speed_kmh=0.0),
        ST.DRIVING,
        [],
    ),
    (
        "fallback: moving from offline parks first",
        VehicleState(),
        rec(speed_kmh=20.0),
        ST.PARKED,
        [(WokeUp, 0)],
    ),
]


@pytest.mark.parametrize(
    ("name", "before", "record", "after", "expected"), TRANSITIONS, ids=[t[0] for t in TRANSITIONS]
)
def test_transition(
    name: str, before: VehicleState, record: TelemetryRecord, after: VehicleStatus, expected: list[Any]
) -> None:
    state, events = transition(before, record)
    assert state.status is after
    assert [(type(e), (e.ts_ms - T0) / 1000) for e in events] == expected
    assert state.last_ts_ms == record.ts_ms


def test_a_record_not_newer_than_the_last_changes_nothing() -> None:
    before = at(ST.DRIVING, last_dt_s=10)
    assert transition(before, rec(**PARKED_AWAKE)) == (before, ())


def test_standing_in_d_marks_where_a_drive_stopped() -> None:
    state = at(ST.DRIVING)
    for dt, speed in ((0, 30.0), (1, 0.0), (2, 0.0), (60, 0.0)):
        state, _ = transition(state, rec(dt, gear="D", ignition_on=True, speed_kmh=speed))
    assert state.status is ST.DRIVING and state.still_since_ts_ms == T0 + 1000
    state, events = transition(state, rec(120, gear="P", ignition_on=False, speed_kmh=0.0))
    assert events == (DriveEnded("car-1", T0 + 1000),)


def test_drive_end_reason_says_data_gap() -> None:
    _, events = transition(at(ST.DRIVING, last_dt_s=-4000), rec(**PARKED_AWAKE))
    assert isinstance(events[0], DriveEnded)
    assert events[0].reason == "data_gap"


def _random_trace(seed: int) -> list[TelemetryRecord]:
    """Segments of every kind, some with signals and some without, some gaps; 5 s cadence."""
    rng = np.random.default_rng(seed)
    kinds = [PARKED_AWAKE, IN_DRIVE, PLUGGED_POWER, PLUGGED_IDLE, QUIET, "moving", "still"]
    out: list[TelemetryRecord] = []
    t = 0.0
    lat = LAT
    for _ in range(60):
        kind = kinds[int(rng.integers(len(kinds)))]
        for _ in range(int(rng.integers(1, 120))):
            t += 5 if rng.random() > 0.01 else float(rng.choice([400.0, 4000.0]))
            if kind == "moving":
                lat += 0.0002
                out.append(rec(t, speed_kmh=float(rng.uniform(5, 50)), lat_deg=lat, lon_deg=LON))
            elif kind == "still":
                out.append(rec(t, speed_kmh=0.0, lat_deg=lat, lon_deg=LON))
            else:
                assert isinstance(kind, dict)
                out.append(rec(t, **kind, lat_deg=lat, lon_deg=LON))
    return out


@pytest.mark.parametrize("seed", range(8))
def test_batch_derivation_equals_the_live_machine(seed: int) -> None:
    records = _random_trace(seed)
    state = VehicleState()
    live = []
    for r in records:
        state, events = transition(state, r)
        live += events
    shuffled = [records[i] for i in np.random.default_rng(seed).permutation(len(records))]
    batch_state, batch = derive_events(TelemetryColumns.from_records(shuffled + records[:50]))
    assert batch == live
    # path lengths are summed per run in batch and per hop live: equal up to float rounding
    assert batch_state.pending_m == pytest.approx(state.pending_m, rel=1e-9)
    assert replace(batch_state, last_lat_deg=None, last_lon_deg=None, pending_m=0.0) == replace(
        state, last_lat_deg=None, last_lon_deg=None, pending_m=0.0
    )


def test_derivation_is_idempotent_over_a_window() -> None:
    cols = TelemetryColumns.from_records(_random_trace(99))
    assert derive_events(cols) == derive_events(cols)
