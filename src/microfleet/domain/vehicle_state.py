"""The vehicle state machine: offline, asleep, parked, driving, charging, and the events between them.

Signals decide first (gear, ignition, speed, charger connection, sign of pack current); time and
distance thresholds are the fallback for records that carry no gear and no ignition (phone trackers,
OsmAnd). A stop is never parking on its own: standing still in N, or in P with the ignition on or not
reported, or with only speed reported (a red light, a queue) ends a drive only once it has lasted the
minimum parking time; the car's own word (ignition off, charging, asleep) ends it at once, back-dated to
where it stopped. The same rule runs two ways:

* :func:`transition` takes one record at a time (live, per vehicle);
* :func:`derive_events` takes a whole window as :class:`TelemetryColumns`, classifies every record
  at once with NumPy and steps over *runs* of records of one class. A run behaves exactly like its
  records fed one by one, which a unit test checks.
"""

from __future__ import annotations

import builtins
import enum
import math
from dataclasses import dataclass, replace
from typing import Annotated, Final, get_type_hints

import numpy as np
import numpy.typing as npt

from microfleet.domain.places import cumulative_path_m, haversine_m
from microfleet.domain.telemetry import TelemetryRecord

GEAR_CODES: Final = {"P": 0, "R": 1, "N": 2, "D": 3}  # -1 = not reported
FloatColumn = npt.NDArray[np.float64]
# A boolean signal held as 0.0/1.0 with NaN = not reported: one dtype with the floats, so NaN marks gaps.
BoolColumn = Annotated[npt.NDArray[np.float64], "bool"]


@dataclass(frozen=True, slots=True)
class TelemetryColumns:
    """A window of one vehicle's telemetry as NumPy columns, sorted by time; NaN = not reported.

    ``gear_code`` uses :data:`GEAR_CODES` (-1 = not reported); booleans are 0.0/1.0/NaN floats.
    """

    vehicle_id: str
    ts_ms: npt.NDArray[np.int64]
    lat_deg: FloatColumn
    lon_deg: FloatColumn
    speed_kmh: FloatColumn
    odometer_km: FloatColumn
    soc_pct: FloatColumn
    pack_voltage_v: FloatColumn
    pack_current_a: FloatColumn
    pack_temp_c: FloatColumn  # the current sensor's offset drifts with it (derivation._ZeroOffset)
    charger_power_kw: FloatColumn
    charger_ac_voltage_v: FloatColumn
    ambient_temp_c: FloatColumn
    altitude_m: FloatColumn
    energy_used_kwh: FloatColumn
    energy_recovered_kwh: FloatColumn
    ignition_on: BoolColumn
    charger_connected: BoolColumn
    gear_code: npt.NDArray[np.int8]

    def __len__(self) -> int:
        """Number of records in the window."""
        return int(self.ts_ms.shape[0])

    @classmethod
    def from_arrays(cls, vehicle_id: str, arrays: dict[str, npt.ArrayLike]) -> TelemetryColumns:
        """Build from named arrays (missing columns = not reported), sorted by time, first of a ts kept."""
        ts = np.asarray(arrays["ts_ms"], dtype=np.int64)
        order = np.argsort(ts, kind="stable")
        keep = order[np.r_[True, np.diff(ts[order]) != 0]] if ts.size else order
        n = ts.size
        cols: dict[str, npt.NDArray[np.generic]] = {"ts_ms": ts[keep]}
        for name in FLOAT_COLUMNS + BOOL_COLUMNS:
            raw = arrays.get(name)
            col = np.full(n, np.nan) if raw is None else np.asarray(raw, dtype=np.float64)
            cols[name] = col[keep]
        gear = arrays.get("gear_code")
        cols["gear_code"] = (np.full(n, -1) if gear is None else np.asarray(gear)).astype(np.int8)[keep]
        return cls(vehicle_id, **cols)  # type: ignore[arg-type]

    @classmethod
    def from_records(cls, records: list[TelemetryRecord]) -> TelemetryColumns:
        """Build from protocol records of one vehicle (any order, duplicates allowed)."""
        vid = records[0].vehicle_id if records else ""
        arrays: dict[str, npt.ArrayLike] = {"ts_ms": [r.ts_ms for r in records]}
        for name in FLOAT_COLUMNS + BOOL_COLUMNS:
            arrays[name] = [np.nan if (v := getattr(r, name)) is None else float(v) for r in records]
        arrays["gear_code"] = [-1 if r.gear is None else GEAR_CODES[r.gear] for r in records]
        return cls.from_arrays(vid, arrays)

    def slice(self, start: int, stop: int) -> TelemetryColumns:
        """Records ``start`` (inclusive) to ``stop`` (exclusive), as views."""
        return self.take(builtins.slice(start, stop))

    def take(self, index: npt.NDArray[np.bool_] | builtins.slice) -> TelemetryColumns:
        """The records a boolean mask or a slice selects."""
        return TelemetryColumns(self.vehicle_id, *(getattr(self, f)[index] for f in self.__slots__[1:]))


def _columns_typed(hint: object) -> tuple[str, ...]:
    return tuple(n for n, h in get_type_hints(TelemetryColumns, include_extras=True).items() if h == hint)


# The signals a window carries, by kind, read off TelemetryColumns' fields: the store selects exactly these.
FLOAT_COLUMNS: Final = _columns_typed(FloatColumn)
BOOL_COLUMNS: Final = _columns_typed(BoolColumn)


class VehicleStatus(enum.StrEnum):
    """What a vehicle is doing."""

    OFFLINE = "offline"
    ASLEEP = "asleep"
    PARKED = "parked"
    DRIVING = "driving"
    CHARGING = "charging"


class RecordClass(enum.IntEnum):
    """What one record says on its own, before thresholds (``MOVING``/``STILL``: no gear, no ignition)."""

    ASLEEP = 1
    PARKED = 2
    DRIVING = 3
    CHARGING = 4
    MOVING = 5
    STILL = 6  # standing, and nothing says parked: a light, a queue, or parking not yet proven by time
    OFF = 7  # the ignition is reported off: parked by the car's own word
    IN_GEAR = 8  # standing in D or R: a drive goes on, but if it ends here it ended where it stopped


@dataclass(frozen=True, slots=True)
class StateThresholds:
    """Signal thresholds and the time/distance fallback rules of the state machine."""

    # Traccar defaults (traccar/traccar src/main/java/org/traccar/config/Keys.java, REPORT_TRIP_*):
    min_trip_s: float = 300.0  # report.trip.minimalTripDuration
    min_trip_m: float = 500.0  # report.trip.minimalTripDistance
    min_parking_s: float = 300.0  # report.trip.minimalParkingDuration
    offline_gap_s: float = 3600.0  # report.trip.minimalNoDataDuration
    # A car that has said "ignition off" at a stop (VehicleState.park_signals) says so when it parks, so
    # a stop it does not call parking (climate on in P, a long queue in N) ends a drive only after this.
    # Assumed, band 600-1800 s: longer than a level crossing or a congested junction's queue (minutes),
    # short enough that sitting 15 min with the climate on and driving off is two drives.
    min_parking_signalled_s: float = 900.0
    # Per car (DerivationOptions.per_car_thresholds), from its own stop lengths: a stop ends a drive once it
    # lasts stop_margin x the car's running 95th percentile of stops it drove on from (VehicleState.stop_q_s;
    # it starts at half of min_parking_s, so an unlearned car gets Traccar's 300 s), never under
    # min_stop_parking_s nor over the car's cap (min_parking_s, or min_parking_signalled_s if it reports its
    # ignition off). All assumed: margin band 1.5-3; the floor is a long signal cycle (cycles of 60-120 s
    # are common, FHWA Signal Timing Manual 2nd ed., 2015, ch. 6); the tracker's step moves log q by
    # 0.2 x (1 - 0.95) down per shorter stop and 0.2 x 0.95 up per longer one. stop_margin 0 turns it off.
    stop_margin: float = 2.0
    min_stop_parking_s: float = 120.0
    stop_quantile: float = 0.95
    stop_learning_rate: float = 0.2
    # Microfleet's per-car adaptation (DerivationOptions.per_car_thresholds) uses it; off, min_parking_s.
    # Below these a reading is sensor noise at standstill (GPS speed jitter ~0.5 km/h). Asleep, the pack's
    # contactors are open and only the current sensor's zero offset shows (Hall sensors: ~0.3 A 1 sigma,
    # ~0.5 % of a 60 A range: ~30 W at 100 V); awake, a small EV's DC/DC, BMS and modem draw >= 200 W.
    # Microfleet's own choices, checked on the twin.
    moving_speed_kmh: float = 2.0
    charging_power_kw: float = 0.05
    charging_current_a: float = 1.5
    sleep_power_w: float = 120.0
    sleep_current_a: float = 1.0  # when the pack voltage is not reported


DEFAULT_THRESHOLDS: Final = StateThresholds()


@dataclass(frozen=True, slots=True)
class _Event:
    vehicle_id: str
    ts_ms: int


@dataclass(frozen=True, slots=True)
class DriveStarted(_Event):
    """A drive began at ``ts_ms``."""


@dataclass(frozen=True, slots=True)
class DriveEnded(_Event):
    """A drive ended at ``ts_ms``; ``reason`` is ``stopped`` or ``data_gap``."""

    reason: str = "stopped"


@dataclass(frozen=True, slots=True)
class ChargeStarted(_Event):
    """Energy started flowing into the pack at ``ts_ms``."""


@dataclass(frozen=True, slots=True)
class ChargeEnded(_Event):
    """Energy stopped flowing into the pack at ``ts_ms``; ``reason`` is ``stopped`` or ``data_gap``."""

    reason: str = "stopped"


@dataclass(frozen=True, slots=True)
class WentAsleep(_Event):
    """The vehicle went to sleep at ``ts_ms``."""


@dataclass(frozen=True, slots=True)
class WokeUp(_Event):
    """The vehicle woke from sleep or came back online at ``ts_ms``."""


@dataclass(frozen=True, slots=True)
class WentOffline(_Event):
    """Nothing was heard from the vehicle after ``ts_ms`` for longer than the offline gap."""


VehicleEvent = DriveStarted | DriveEnded | ChargeStarted | ChargeEnded | WentAsleep | WokeUp | WentOffline


@dataclass(frozen=True, slots=True)
class VehicleState:
    """The state of one vehicle between two records (immutable; ``transition`` returns a new one)."""

    status: VehicleStatus = VehicleStatus.OFFLINE
    since_ts_ms: int | None = None
    last_ts_ms: int | None = None
    last_lat_deg: float | None = None
    last_lon_deg: float | None = None
    # Fallback rules: a block of movement not yet long enough to be a drive, and a still spell.
    pending_since_ts_ms: int | None = None
    pending_m: float = 0.0
    still_since_ts_ms: int | None = None
    # Learned from the car's own history: it has reported its ignition off (RecordClass.OFF), and the
    # running 95th percentile of the stops it drove on from (None: none yet).
    park_signals: bool = False
    stop_q_s: float | None = None
    # Learned by derivation (derivation._ZeroOffset), carried so a window resumed here learns what a
    # derivation from scratch has: sums over every asleep record so far of 1, pack temperature T (°C),
    # pack current I (A), T², T x I and I², for the current sensor's offset drift with temperature.
    asleep_n: float = 0.0
    asleep_t: float = 0.0
    asleep_i: float = 0.0
    asleep_tt: float = 0.0
    asleep_ti: float = 0.0
    asleep_ii: float = 0.0


@dataclass(frozen=True, slots=True)
class Run:
    """Consecutive records of one class with no offline gap: what the state machine steps over."""

    record_class: RecordClass
    first_ts_ms: int
    last_ts_ms: int
    hop_in_m: float  # path length from the previous record to this run's first record
    path_m: float  # path length from this run's first record to its last


def classify(record: TelemetryRecord, th: StateThresholds = DEFAULT_THRESHOLDS) -> RecordClass:
    """Classify one record by its own signals (see :func:`classify_columns`)."""
    return RecordClass(int(classify_columns(TelemetryColumns.from_records([record]), th)[0]))


def classify_columns(
    cols: TelemetryColumns, th: StateThresholds = DEFAULT_THRESHOLDS
) -> npt.NDArray[np.int8]:
    """Classify every record of a window at once by its own signals; returns :class:`RecordClass` codes."""
    gear = cols.gear_code
    ign = cols.ignition_on
    speed = np.nan_to_num(cols.speed_kmh, nan=0.0)
    current = cols.pack_current_a
    moving = speed >= th.moving_speed_kmh
    gear_known = gear >= 0
    ign_known = ~np.isnan(ign)
    drive_gear = (gear == GEAR_CODES["D"]) | (gear == GEAR_CODES["R"])
    # Moving with the ignition not off is driving whatever the gear says: a gear flag trails the car by a
    # sample or more (still P as it pulls away from a light where the driver shifted to P).
    driving = (
        drive_gear | ((gear == GEAR_CODES["N"]) & moving) | ((gear_known | ign_known) & moving & (ign != 0.0))
    )
    power_in = (np.nan_to_num(cols.charger_power_kw, nan=0.0) > th.charging_power_kw) | (
        np.nan_to_num(current, nan=0.0) < -th.charging_current_a
    )
    plug = cols.charger_connected
    # Power flowing in at a standstill is charging even while the plug flag still says 0: cars raise the
    # flag late (seen after the first minute of power), and only a charger puts energy in a still pack.
    charging = ~driving & ~moving & power_in
    amps = np.abs(np.nan_to_num(current))
    watts = np.abs(np.nan_to_num(current) * cols.pack_voltage_v)  # NaN where the voltage is unknown
    quiet = ~np.isnan(current) & np.where(
        np.isnan(watts), amps <= th.sleep_current_a, watts <= th.sleep_power_w
    )
    asleep = ~driving & ~charging & (ign != 1.0) & quiet
    signal = gear_known | ign_known
    out = np.full(len(cols), RecordClass.PARKED, dtype=np.int8)
    out[~signal & moving] = RecordClass.MOVING
    # Standing with nothing that says parked (N, P with the ignition on or unreported, no signal at all)
    # is a stop; a cable plugged in is parking (it cannot be driven away).
    out[~moving & (ign != 0.0) & (plug != 1.0)] = RecordClass.STILL
    out[ign == 0.0] = RecordClass.OFF
    out[asleep] = RecordClass.ASLEEP
    out[driving] = RecordClass.DRIVING
    out[drive_gear & ~moving] = RecordClass.IN_GEAR
    out[charging] = RecordClass.CHARGING
    return out


_SETTLED: Final = {
    RecordClass.ASLEEP: VehicleStatus.ASLEEP,
    RecordClass.PARKED: VehicleStatus.PARKED,
    RecordClass.OFF: VehicleStatus.PARKED,
    RecordClass.CHARGING: VehicleStatus.CHARGING,
}


def _leave(state: VehicleState, vid: str, ts: int, reason: str = "stopped") -> list[VehicleEvent]:
    if state.status is VehicleStatus.DRIVING:
        return [DriveEnded(vid, ts, reason)]
    if state.status is VehicleStatus.CHARGING:
        return [ChargeEnded(vid, ts, reason)]
    return []


def _enter(
    state: VehicleState, vid: str, status: VehicleStatus, ts: int
) -> tuple[VehicleState, list[VehicleEvent]]:
    """Move to ``status`` at ``ts``, with the events of leaving the old status and entering the new."""
    if status is state.status:
        return state, []
    events = _leave(state, vid, ts)
    if state.status in (VehicleStatus.ASLEEP, VehicleStatus.OFFLINE) and status is not VehicleStatus.OFFLINE:
        events.append(WokeUp(vid, ts))
    if status is VehicleStatus.DRIVING:
        events.append(DriveStarted(vid, ts))
    elif status is VehicleStatus.CHARGING:
        events.append(ChargeStarted(vid, ts))
    elif status is VehicleStatus.ASLEEP:
        events.append(WentAsleep(vid, ts))
    new = replace(state, status=status, since_ts_ms=ts, pending_since_ts_ms=None, pending_m=0.0)
    return replace(new, still_since_ts_ms=None), events


def step(
    state: VehicleState, vid: str, run: Run, th: StateThresholds = DEFAULT_THRESHOLDS
) -> tuple[VehicleState, list[VehicleEvent]]:
    """Advance the machine over one run of same-class records (the rule shared by both entry points)."""
    events: list[VehicleEvent] = []
    if state.last_ts_ms is not None and run.first_ts_ms - state.last_ts_ms >= th.offline_gap_s * 1000:
        events += _leave(state, vid, state.last_ts_ms, "data_gap")
        if state.status is not VehicleStatus.OFFLINE:
            events.append(WentOffline(vid, state.last_ts_ms))
        state = replace(state, status=VehicleStatus.OFFLINE, since_ts_ms=state.last_ts_ms)
        state = replace(state, pending_since_ts_ms=None, pending_m=0.0, still_since_ts_ms=None)
        run = replace(run, hop_in_m=0.0)
    cls = run.record_class
    if cls is RecordClass.OFF:
        state = replace(state, park_signals=True)
    if (
        cls in (RecordClass.DRIVING, RecordClass.MOVING)
        and state.status is VehicleStatus.DRIVING
        and state.still_since_ts_ms is not None
    ):
        state = _learn_stop(state, (run.first_ts_ms - state.still_since_ts_ms) / 1000, th)
    if cls in (RecordClass.DRIVING, RecordClass.IN_GEAR):
        start = run.first_ts_ms if state.pending_since_ts_ms is None else state.pending_since_ts_ms
        was_driving = state.status is VehicleStatus.DRIVING
        state, ev = _enter(state, vid, VehicleStatus.DRIVING, start)
        events += ev
        if cls is RecordClass.DRIVING:
            state = replace(state, still_since_ts_ms=None)
        elif state.still_since_ts_ms is None or not was_driving:
            # flags trail the car (a gear still D for a few samples after it parked): a drive that ends
            # after standing in gear ended where it stopped
            state = replace(state, still_since_ts_ms=run.first_ts_ms)
    elif cls in _SETTLED:
        if state.status is VehicleStatus.DRIVING and state.still_since_ts_ms is not None:
            # a drive that stood still before the car said "parked" ended where it stopped
            state, ev = _enter(state, vid, VehicleStatus.PARKED, state.still_since_ts_ms)
            events += ev
        state, ev = _enter(state, vid, _SETTLED[cls], run.first_ts_ms)
        events += ev
    elif cls is RecordClass.MOVING:
        if state.status in (VehicleStatus.OFFLINE, VehicleStatus.ASLEEP):
            state, ev = _enter(state, vid, VehicleStatus.PARKED, run.first_ts_ms)
            events += ev
        state = replace(state, still_since_ts_ms=None)
        if state.status is not VehicleStatus.DRIVING:
            if state.pending_since_ts_ms is None:
                state = replace(state, pending_since_ts_ms=run.first_ts_ms, pending_m=run.path_m)
            else:
                state = replace(state, pending_m=state.pending_m + run.hop_in_m + run.path_m)
            long_enough = run.last_ts_ms - (state.pending_since_ts_ms or 0) >= th.min_trip_s * 1000
            if long_enough or state.pending_m >= th.min_trip_m:
                state, ev = _enter(state, vid, VehicleStatus.DRIVING, state.pending_since_ts_ms or 0)
                events += ev
    else:  # STILL
        still_since = run.first_ts_ms if state.still_since_ts_ms is None else state.still_since_ts_ms
        state = replace(state, still_since_ts_ms=still_since)
        if state.pending_since_ts_ms is not None:
            state = replace(state, pending_m=state.pending_m + run.hop_in_m + run.path_m)
        if run.last_ts_ms - still_since >= min_parking_s(state, th) * 1000:
            if state.status is VehicleStatus.DRIVING:
                state, ev = _enter(state, vid, VehicleStatus.PARKED, still_since)
                events += ev
            state = replace(state, pending_since_ts_ms=None, pending_m=0.0)
        if state.status in (VehicleStatus.OFFLINE, VehicleStatus.ASLEEP):
            state, ev = _enter(state, vid, VehicleStatus.PARKED, run.first_ts_ms)
            events += ev
            state = replace(state, still_since_ts_ms=still_since)
    return replace(state, last_ts_ms=run.last_ts_ms), events


def min_parking_s(state: VehicleState, th: StateThresholds = DEFAULT_THRESHOLDS) -> float:
    """How long this car must stand, with nothing that says parked, before its drive has ended."""
    cap = th.min_parking_signalled_s if state.park_signals else th.min_parking_s
    if th.stop_margin <= 0:
        return cap
    q = state.stop_q_s if state.stop_q_s is not None else th.min_parking_s / th.stop_margin
    return min(cap, max(th.min_stop_parking_s, th.stop_margin * q))


def _learn_stop(state: VehicleState, stop_s: float, th: StateThresholds) -> VehicleState:
    """Move the car's running stop quantile towards a stop it drove on from (a quantile tracker in log s)."""
    if th.stop_margin <= 0:
        return state
    q = state.stop_q_s if state.stop_q_s is not None else th.min_parking_s / th.stop_margin
    above = 1.0 if stop_s > q else 0.0
    q *= math.exp(th.stop_learning_rate * (above - (1.0 - th.stop_quantile)))
    return replace(state, stop_q_s=q)


def transition(
    state: VehicleState, record: TelemetryRecord, th: StateThresholds = DEFAULT_THRESHOLDS
) -> tuple[VehicleState, tuple[VehicleEvent, ...]]:
    """Advance the machine by one record; a record not newer than the last one changes nothing.

    Late records are not merged here: the derivation service recomputes their window in batch.
    """
    if state.last_ts_ms is not None and record.ts_ms <= state.last_ts_ms:
        return state, ()
    hop = 0.0
    if (
        record.lat_deg is not None
        and record.lon_deg is not None
        and state.last_lat_deg is not None
        and state.last_lon_deg is not None
    ):
        hop = haversine_m(state.last_lat_deg, state.last_lon_deg, record.lat_deg, record.lon_deg)
    run = Run(classify(record, th), record.ts_ms, record.ts_ms, hop, 0.0)
    new, events = step(state, record.vehicle_id, run, th)
    if record.lat_deg is not None and record.lon_deg is not None:
        new = replace(new, last_lat_deg=record.lat_deg, last_lon_deg=record.lon_deg)
    return new, tuple(events)


def runs_of(cols: TelemetryColumns, classes: npt.NDArray[np.int8], th: StateThresholds) -> list[Run]:
    """Cut a window into runs: a new run at every change of class and after every offline gap."""
    n = len(cols)
    if n == 0:
        return []
    ts = cols.ts_ms
    cum = cumulative_path_m(cols.lat_deg, cols.lon_deg)
    cut = np.zeros(n, dtype=bool)
    cut[0] = True
    cut[1:] = (classes[1:] != classes[:-1]) | (np.diff(ts) >= th.offline_gap_s * 1000)
    starts = np.flatnonzero(cut)
    ends = np.append(starts[1:] - 1, n - 1)
    runs = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        hop = float(cum[s] - cum[s - 1]) if s > 0 else 0.0
        runs.append(Run(RecordClass(int(classes[s])), int(ts[s]), int(ts[e]), hop, float(cum[e] - cum[s])))
    return runs


def derive_events(
    cols: TelemetryColumns, state: VehicleState | None = None, th: StateThresholds = DEFAULT_THRESHOLDS
) -> tuple[VehicleState, list[VehicleEvent]]:
    """Run the machine over a whole window (sorted, de-duplicated) and return the end state and events."""
    end, events, _ = derive_events_learning(cols, state, th)
    return end, events


def derive_events_learning(
    cols: TelemetryColumns, state: VehicleState | None = None, th: StateThresholds = DEFAULT_THRESHOLDS
) -> tuple[VehicleState, list[VehicleEvent], list[tuple[int, VehicleState]]]:
    """:func:`derive_events`, and where the machine learned something of the car.

    The third value is (first record of a run, state after it) for every run that changed
    ``park_signals`` or ``stop_q_s``, so a resume point can carry what was learned before it.
    """
    state = state or VehicleState()
    events: list[VehicleEvent] = []
    learned: list[tuple[int, VehicleState]] = []
    for run in runs_of(cols, classify_columns(cols, th), th):
        before = state
        state, ev = step(state, cols.vehicle_id, run, th)
        events += ev
        if state.park_signals != before.park_signals or state.stop_q_s != before.stop_q_s:
            learned.append((run.first_ts_ms, state))
    if len(cols):
        i = len(cols) - 1
        lat, lon = float(cols.lat_deg[i]), float(cols.lon_deg[i])
        if not (math.isnan(lat) or math.isnan(lon)):
            state = replace(state, last_lat_deg=lat, last_lon_deg=lon)
    return state, events, learned
