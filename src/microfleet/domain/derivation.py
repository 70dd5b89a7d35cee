"""Deriving history from telemetry: states, drives, charges, parked drain, excluded records.

:func:`derive_history` is pure: a window of records and where the machine stood before it go in, the
history of that window comes out, with the *resume points* inside it - a state entered on a record's own
signals, or the first record after an offline gap, where the machine carries no memory of earlier
records. :class:`microfleet.services.derivation.HistoryDeriver` re-derives from such a point when late
records land.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

import numpy as np
import numpy.typing as npt

from microfleet.domain.charges import ChargeSession, charge_windows, summarise_charge
from microfleet.domain.drives import (
    Drive,
    GpsFix,
    QuarantinedRecord,
    Screening,
    screen_window,
    summarise_drive,
)
from microfleet.domain.pack_energy import integrate_kwh, pack_power_kw
from microfleet.domain.places import Place
from microfleet.domain.summaries import ParkedDrain, flag_drain
from microfleet.domain.tariffs import Tariff
from microfleet.domain.vehicle_state import (
    DEFAULT_THRESHOLDS,
    ChargeEnded,
    ChargeStarted,
    DriveEnded,
    DriveStarted,
    RecordClass,
    StateThresholds,
    TelemetryColumns,
    VehicleEvent,
    VehicleState,
    VehicleStatus,
    WentAsleep,
    WentOffline,
    WokeUp,
    classify_columns,
    derive_events_learning,
)

# A stale mark from this time: the car's context (places, tariffs) changed, not its records, so its whole
# history is derived again (a window would meet the stored history at once and keep the old names and costs).
CONTEXT_CHANGED_MS = -1
CALIBRATION_SESSIONS = 20  # energy per SoC % is the median of the car's last 20 calibrating charges
MIN_DRAIN_SPAN_S = 900.0  # parked spells shorter than 15 min say little about drain (TeslaMate's idle wait)


@dataclass(frozen=True, slots=True)
class DerivationOptions:
    """Which of derivation's self-calibrating methods run: all by default; the ablation switches each off.

    * ``counters``: read drive and charge energy from the BMS's cumulative energy counters when the car
      reports them; off, energy comes from pack V x I (or SoC) as for a car without counters.
    * ``counter_correction``: take the current sensor's zero offset (read asleep) off measured energy;
      off, counters and V x I are used as measured.
    * ``soc_anchoring``: reconcile measured energy with the BMS's SoC steps (energy per SoC % from the
      car's own charges); off, measured energy stands alone. A car reporting only SoC gets
      ΔSoC x usable capacity either way: it has nothing else.
    * ``per_car_thresholds``: the minimum parking time learned from the car's own stops (twice its
      95th-percentile stop, capped at 300 s, or 900 s for a car that reports its ignition off; see
      :func:`~microfleet.domain.vehicle_state.min_parking_s`); off, Traccar's 300 s for every car.

    * ``offset_drift``: the zero offset drifts with pack temperature (a Hall sensor's thermal offset
      drift); a line fitted over the asleep spell is read at each record's temperature
      (:func:`fit_offset`); off, the spell's median stands for every temperature. Needs
      ``counter_correction``.
    * ``counter_sub_step``: read a counter whose step is a sizeable part of a drive's or charge's energy
      below its step, from its readings at each end and sampled V x I between them
      (:func:`~microfleet.domain.pack_energy.counter_energy`); off, the difference of its end readings.

    Status (issue 11): ``counters``, ``soc_anchoring`` and ``per_car_thresholds`` switch real methods
    (the last one threshold so far: the minimum parking time);
    ``counter_correction`` switches the zero offset only: no gain calibration is built.
    """

    counters: bool = True
    counter_correction: bool = True
    soc_anchoring: bool = True
    per_car_thresholds: bool = True
    offset_drift: bool = True
    counter_sub_step: bool = True


DEFAULT_OPTIONS: Final = DerivationOptions()


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where derivation may restart: the first record's time and the machine's state just before it.

    ``records`` is how many records lie from this point to the next resume point (or to the newest
    record), as derived; None when unknown. The deriver sums them to tell whether a stretch of stored
    history still covers every stored record. ``gps_ref`` is the GPS-jump walk's reference there (the
    last plausible fix before it; None: no fix before it, or a point stored before it was kept), so a
    window derived from here judges its first fixes as a derivation from scratch does. ``raw_dropped``:
    raw records of the stretch from here to the next resume point were dropped (retention, docs/postgres.md),
    so its derived rows are kept as they were and never derived again; ``records`` then counts what is stored.
    """

    from_ms: int
    state: VehicleState
    records: int | None = None
    gps_ref: GpsFix | None = None
    raw_dropped: bool = False


@dataclass(frozen=True, slots=True)
class StateSpan:
    """One stretch of one status; ``end_ts_ms`` is the next span's start, or the last record if open."""

    vehicle_id: str
    status: VehicleStatus
    start_ts_ms: int
    end_ts_ms: int
    is_open: bool
    resume: ResumePoint | None


@dataclass(frozen=True, slots=True)
class VehicleContext:
    """What derivation needs to know about a vehicle besides its telemetry."""

    usable_kwh: float | None = None
    # energy per SoC % measured by the last charge sessions before the window, oldest first
    kwh_per_soc_pct_samples: tuple[float, ...] = ()
    places: Sequence[Place] = ()
    tariffs: Mapping[str, Tariff] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DerivedHistory:
    """Everything derived from one window of records."""

    spans: list[StateSpan]
    drives: list[Drive]
    charges: list[ChargeSession]
    drains: list[ParkedDrain]
    excluded: list[QuarantinedRecord]
    events: list[VehicleEvent]


_STATUS_AFTER: dict[type, VehicleStatus] = {
    DriveStarted: VehicleStatus.DRIVING,
    DriveEnded: VehicleStatus.PARKED,
    ChargeStarted: VehicleStatus.CHARGING,
    ChargeEnded: VehicleStatus.PARKED,
    WentAsleep: VehicleStatus.ASLEEP,
    WokeUp: VehicleStatus.PARKED,
    WentOffline: VehicleStatus.OFFLINE,
}


def derive_history(
    cols: TelemetryColumns,
    start: VehicleState | None = None,
    ctx: VehicleContext | None = None,
    th: StateThresholds = DEFAULT_THRESHOLDS,
    options: DerivationOptions = DEFAULT_OPTIONS,
    gps_ref: GpsFix | None = None,
) -> DerivedHistory:
    """Derive the history of a window of records (sorted, de-duplicated), starting from ``start``.

    ``gps_ref`` is the resume point's GPS-jump reference (:attr:`ResumePoint.gps_ref`) when the window
    starts at one.
    """
    ctx = ctx or VehicleContext()
    if not options.per_car_thresholds:
        th = replace(th, min_parking_signalled_s=th.min_parking_s, stop_margin=0.0)
    screened = screen_window(cols, gps_ref)
    w, excluded = screened.cols, screened.excluded
    if not options.counters:
        w = replace(w, energy_used_kwh=np.full(len(w), np.nan), energy_recovered_kwh=np.full(len(w), np.nan))
    end_state, events, learned = derive_events_learning(w, start, th)
    ts = w.ts_ms
    n = len(w)
    drive_windows: list[tuple[int, int, str]] = []  # first record, stop (exclusive), end reason
    charge_spans: list[tuple[int, int]] = []
    open_drive: int | None = None
    open_charge: int | None = None
    for ev in events:
        i = int(np.searchsorted(ts, ev.ts_ms))
        if isinstance(ev, DriveStarted):
            open_drive = i
        elif isinstance(ev, DriveEnded) and open_drive is not None:
            drive_windows.append((open_drive, i + 1, ev.reason))
            open_drive = None
        elif isinstance(ev, ChargeStarted):
            open_charge = i
        elif isinstance(ev, ChargeEnded) and open_charge is not None:
            charge_spans.append((open_charge, i + 1 if ev.reason == "data_gap" else i))
            open_charge = None
    if open_drive is not None and n:
        drive_windows.append((open_drive, n, "open"))
    if open_charge is not None:
        charge_spans.append((open_charge, n))
    offset = _ZeroOffset(w, events if options.counter_correction else [], options.offset_drift, start)
    drive_starts = np.array([int(ts[a]) for a, _, _ in drive_windows], dtype=np.int64)
    charges = []
    for cw, reason in charge_windows(w, charge_spans, drive_starts):
        off = offset.at(int(ts[cw.start])).per_record(w)
        corrected = offset.corrected(w, off)
        charges.append(
            summarise_charge(
                corrected, cw, reason, ctx.places, ctx.tariffs, off, ctx.usable_kwh, options.counter_sub_step
            )
        )
    drives = []
    taken = 0  # records before this belong to an earlier drive
    for a, b, reason in drive_windows:
        lead = _departure(w, a, b, taken, th.moving_speed_kmh)
        taken = b
        # energy per SoC % from the charges that started before this drive (stored ones, then these)
        before = [c.kwh_per_soc_pct for c in charges if c.start_ts_ms < ts[a] and c.kwh_per_soc_pct]
        samples = sorted([*ctx.kwh_per_soc_pct_samples, *before][-CALIBRATION_SESSIONS:])
        per_pct = samples[len(samples) // 2] if samples and options.soc_anchoring else None
        sensor = offset.at(int(ts[a]))
        drive_w = offset.corrected(w.slice(a, b), sensor.per_record(w.slice(a, b)))
        energy_w = (
            offset.corrected(w.slice(lead, b), sensor.per_record(w.slice(lead, b))) if lead < a else None
        )
        off = sensor.per_record(w.slice(lead, b) if lead < a else w.slice(a, b))  # for the energy's window
        drives.append(
            summarise_drive(
                drive_w, reason, ctx.usable_kwh, ctx.places, per_pct, off, energy_w, options.counter_sub_step
            )
        )
    # An open session may go on with the next records: nothing after its start may be a resume point.
    plugged = [(c.start_ts_ms, c.end_ts_ms if c.end_reason != "open" else 2**62) for c in charges]
    spans = _count_segments(ts, _spans(w, events, start, end_state, plugged, screened, learned, offset))
    return DerivedHistory(spans, drives, charges, _drains(w, spans, ctx.usable_kwh), excluded, events)


def _departure(w: TelemetryColumns, a: int, b: int, taken: int, moving_kmh: float) -> int:
    """Where a drive's energy starts: back over records already moving, then one more, when that close.

    A drive starts on its flags (which may lag a few records) or its first moving record, but the car
    left between the last standing record and the first moving one: the first seconds' acceleration
    (5-10 % of a 0.3 kWh hop) would be missing. The energy window reaches back over records the car was
    already moving at, then takes the standing one before them as the departure, each only when it lies
    no farther before the next than 1.5 x the drive's own median record spacing (the departure, not a
    parked record a minute earlier) and belongs to no earlier drive.
    """
    if b - a < 2:
        return a
    ts = w.ts_ms
    spacing = 1.5 * float(np.median(np.diff(ts[a:b])))  # half a spacing more: clock jitter, late sends
    k = a
    while k > taken and float(ts[k] - ts[k - 1]) <= spacing:
        k -= 1
        if not w.speed_kmh[k] >= moving_kmh:  # NaN: not known to move; this is the departure record
            break
    return k


def _count_segments(ts: np.ndarray, spans: list[StateSpan]) -> list[StateSpan]:
    """Note on each resume point how many of the window's records lie before the next one."""
    starts = [s.start_ts_ms for s in spans if s.resume is not None]
    bounds = [*np.searchsorted(ts, np.array(starts, dtype=np.int64)).tolist(), len(ts)]
    counts = iter(np.diff(bounds).tolist())
    return [
        replace(s, resume=replace(s.resume, records=int(next(counts)))) if s.resume is not None else s
        for s in spans
    ]


def cut_history(history: DerivedHistory, to_ms: int) -> DerivedHistory:
    """The rows of ``history`` that start before ``to_ms`` (records: excluded before it).

    Used when a window was derived past a resume point at ``to_ms`` only to settle what comes before it.
    """
    return DerivedHistory(
        [s for s in history.spans if s.start_ts_ms < to_ms],
        [d for d in history.drives if d.start_ts_ms < to_ms],
        [c for c in history.charges if c.start_ts_ms < to_ms],
        [d for d in history.drains if d.start_ts_ms < to_ms],
        [q for q in history.excluded if q.ts_ms < to_ms],
        [e for e in history.events if e.ts_ms < to_ms],
    )


# The offset's drift with temperature is a least-squares slope of the asleep current on pack temperature
# over every asleep record the car has sent so far (carried in resume points), used only once those records
# span at least 3 K (the BMS reports whole degrees: fewer distinct readings say little of a slope) and the
# slope stands out of its own noise by two standard errors (a conventional 95 % test); else the latest
# spell's median stands for every temperature, as without the switch. Microfleet's choices, not tuned.
DRIFT_MIN_RANGE_K: Final = 3.0
DRIFT_MIN_T_SCORE: Final = 2.0
ASLEEP_SUMS: Final = ("asleep_n", "asleep_t", "asleep_i", "asleep_tt", "asleep_ti", "asleep_ii")


@dataclass(frozen=True, slots=True)
class SensorOffset:
    """The pack current sensor's zero offset.

    ``a_at_ref`` amperes at ``ref_c`` °C, changing by ``a_per_k`` per kelvin of pack temperature (0: not
    measurable or switched off).
    """

    a_at_ref: float = 0.0
    a_per_k: float = 0.0
    ref_c: float = 25.0

    def per_record(self, w: TelemetryColumns) -> float | npt.NDArray[np.float64]:
        """The offset at each of ``w``'s records (one number when it does not drift).

        A record without a pack temperature gets the offset at the reference temperature.
        """
        if self.a_per_k == 0.0:
            return self.a_at_ref
        dt = np.nan_to_num(w.pack_temp_c - self.ref_c, nan=0.0)
        return self.a_at_ref + self.a_per_k * dt


def asleep_sums(
    current_a: npt.NDArray[np.float64], temp_c: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """The sums :data:`ASLEEP_SUMS` over asleep readings that have both a current and a temperature."""
    ok = ~(np.isnan(current_a) | np.isnan(temp_c))
    i, t = current_a[ok], temp_c[ok]
    return np.array([i.size, t.sum(), i.sum(), (t * t).sum(), (t * i).sum(), (i * i).sum()], dtype=np.float64)


def drift_slope(sums: npt.NDArray[np.float64]) -> float:
    """The offset's drift (A/K) from :func:`asleep_sums` pooled over asleep spells; 0 when not measurable.

    A least-squares line of current on temperature (asleep the true current is ~0, so the sensor's offset
    is all it reads; a Hall sensor's offset drifts about linearly with temperature: LEM DHAB S/24
    datasheet, "thermal offset drift"), kept where the readings' temperatures spread enough
    (:data:`DRIFT_MIN_RANGE_K`, as a standard deviation of a third of it) and the slope passes
    :data:`DRIFT_MIN_T_SCORE`.
    """
    n, st, si, stt, sti, sii = (float(x) for x in sums)
    if n < 4:
        return 0.0
    sxx = stt - st * st / n
    if sxx <= 0 or sxx / n < (DRIFT_MIN_RANGE_K / 3) ** 2:
        return 0.0
    sxy = sti - st * si / n
    syy = sii - si * si / n
    slope = sxy / sxx
    resid = max(syy - slope * sxy, 0.0)
    se = math.sqrt(resid / (n - 2) / sxx)
    return slope if abs(slope) >= DRIFT_MIN_T_SCORE * se else 0.0


class _ZeroOffset:
    """The pack current sensor's zero offset, read where the true current is zero: asleep.

    Asleep, the contactors are open, so the current of the latest asleep spell before a drive or charge
    (not across an offline gap) is the sensor's offset, and is taken off before integrating: that spell's
    median current, or, with ``drift``, its level at its median temperature plus the drift slope learned
    from every asleep record so far (:func:`drift_slope`: the state's sums at the window's start, then this
    window's spells), read at each record's pack temperature. Resume points sit only at the start of asleep
    spells and carry the sums of the spells before them (:meth:`sums_before`), so every window that
    re-derives a drive or a charge holds that spell and the same sums, and a recompute finds the same offset.
    """

    def __init__(
        self,
        w: TelemetryColumns,
        events: list[VehicleEvent],
        drift: bool = False,
        start: VehicleState | None = None,
    ) -> None:
        self._w = w
        self._drift = drift
        self._spells: list[tuple[int, int]] = []  # asleep (start, end) times; end = -1 for offline
        asleep_since: int | None = None
        for ev in events:
            if isinstance(ev, WentAsleep):
                asleep_since = ev.ts_ms
                continue
            if asleep_since is not None:
                self._spells.append((asleep_since, ev.ts_ms))
                asleep_since = None
            if isinstance(ev, WentOffline):
                self._spells.append((ev.ts_ms, -1))
        self._ends = np.array([e if e >= 0 else s for s, e in self._spells], dtype=np.int64)
        ts = w.ts_ms
        first = np.array([getattr(start or VehicleState(), f) for f in ASLEEP_SUMS], dtype=np.float64)
        sums = [first]  # sums[k]: the start's plus those of spells 0..k-1, added one spell at a time
        for s, e in self._spells:
            if e < 0:
                sums.append(sums[-1])
                continue
            a, b = int(np.searchsorted(ts, s)), int(np.searchsorted(ts, e))
            sums.append(sums[-1] + asleep_sums(w.pack_current_a[a:b], w.pack_temp_c[a:b]))
        self._sums = sums

    def sums_before(self, state: VehicleState, at_ms: int) -> VehicleState:
        """``state`` with the asleep sums over every spell that ended by ``at_ms`` (:data:`ASLEEP_SUMS`)."""
        k = int(np.searchsorted(self._ends, at_ms, side="right"))
        n, t, i, tt, ti, ii = (float(x) for x in self._sums[k])
        return replace(state, asleep_n=n, asleep_t=t, asleep_i=i, asleep_tt=tt, asleep_ti=ti, asleep_ii=ii)

    def at(self, at_ms: int) -> SensorOffset:
        """The offset for an activity starting at ``at_ms`` (0 when no asleep spell is known)."""
        k = int(np.searchsorted(self._ends, at_ms, side="right")) - 1
        if k < 0 or self._spells[k][1] < 0:
            return SensorOffset()
        start, end = self._spells[k]
        ts = self._w.ts_ms
        a, b = int(np.searchsorted(ts, start)), int(np.searchsorted(ts, end))
        current = self._w.pack_current_a[a:b]
        temp = self._w.pack_temp_c[a:b]
        slope = drift_slope(self._sums[k + 1]) if self._drift else 0.0
        if slope == 0.0:
            current = current[~np.isnan(current)]
            return SensorOffset(float(np.median(current)) if current.size else 0.0)
        ok = ~(np.isnan(current) | np.isnan(temp))
        ref = float(np.median(temp[ok]))
        return SensorOffset(float(np.median(current[ok] - slope * (temp[ok] - ref))), slope, ref)

    def offset_a(self, at_ms: int) -> float:
        """Offset in amperes at the spell's median temperature for an activity starting at ``at_ms``."""
        return self.at(at_ms).a_at_ref

    @staticmethod
    def corrected(w: TelemetryColumns, offset_a: float | npt.NDArray[np.float64]) -> TelemetryColumns:
        """``w`` with an offset (one number, or one per record of ``w``) taken off the pack current."""
        if isinstance(offset_a, float) and offset_a == 0.0:
            return w
        return replace(w, pack_current_a=w.pack_current_a - offset_a)


def _spans(
    w: TelemetryColumns,
    events: list[VehicleEvent],
    resumed_from: VehicleState | None,
    end_state: VehicleState,
    plugged: list[tuple[int, int]],
    screened: Screening,
    learned: list[tuple[int, VehicleState]],
    offset: _ZeroOffset,
) -> list[StateSpan]:
    """Cut the window into status spans and note which span starts are resume points.

    Each resume point carries the GPS-jump walk's reference before it; where jumped fixes are still
    waiting to agree (the walk is not settled), no span start is a resume point. It also carries what the
    machine had learned of the car by then (``park_signals``, ``stop_q_s``, the asleep sums of
    :meth:`_ZeroOffset.sums_before`), as a derivation from scratch would have it there.
    """
    learned_at = np.array([t for t, _ in learned], dtype=np.int64)
    ts = w.ts_ms
    start = resumed_from or VehicleState()
    plug_start = np.array([a for a, _ in plugged], dtype=np.int64)
    plug_end = np.array([b for _, b in plugged], dtype=np.int64)
    classes = classify_columns(w)
    marks: list[tuple[int, VehicleStatus]] = []
    for ev in events:
        status = _STATUS_AFTER[type(ev)]
        if marks and marks[-1][0] == ev.ts_ms:
            marks[-1] = (ev.ts_ms, status)
        else:
            marks.append((ev.ts_ms, status))
    merged: list[tuple[int, VehicleStatus]] = []
    for m in marks:
        if not merged or merged[-1][1] is not m[1]:
            merged.append(m)
    spans = []
    prev_status, prev_since = start.status, start.since_ts_ms
    for k, (t0, status) in enumerate(merged):
        is_last = k == len(merged) - 1
        t1 = int(ts[-1]) if is_last else merged[k + 1][0]
        i = int(np.searchsorted(ts, t0))
        resume = None
        j = int(np.searchsorted(plug_start, t0)) - 1  # the last plug-in that started before t0
        inside_charge = j >= 0 and t0 < int(plug_end[j])
        if k == 0 and i == 0:
            # The first record is a resume point (from scratch, or the point a recompute started from).
            resume = ResumePoint(t0, start)
        elif (
            prev_status is VehicleStatus.OFFLINE
            and i < len(w)
            and int(ts[i]) == t0
            and prev_since is not None
        ):
            resume = ResumePoint(t0, _learned_before(t0, start, learned, learned_at, VehicleState()))
        elif (
            i < len(w)
            and int(ts[i]) == t0
            and i > 0
            and int(classes[i]) == RecordClass.ASLEEP
            and status is VehicleStatus.ASLEEP
            and not inside_charge
        ):
            lat, lon = float(w.lat_deg[i - 1]), float(w.lon_deg[i - 1])
            before = VehicleState(
                status=prev_status,
                since_ts_ms=prev_since,
                last_ts_ms=int(ts[i - 1]),
                last_lat_deg=None if np.isnan(lat) else lat,
                last_lon_deg=None if np.isnan(lon) else lon,
            )
            before = _learned_before(t0, start, learned, learned_at, before)
            resume = ResumePoint(t0, before)
        if resume is not None:
            # (the window's first point keeps the reference it started from, even if it lies before ts[0])
            settled, gps_ref = screened.reference_before(max(t0, int(ts[0])))
            state = offset.sums_before(resume.state, t0)  # the offset drift's sums so far
            resume = replace(resume, state=state, gps_ref=gps_ref) if settled else None
        spans.append(StateSpan(w.vehicle_id, status, t0, t1, is_last and end_state.status is status, resume))
        prev_status, prev_since = status, t0
    return spans


def _learned_before(
    t0: int,
    start: VehicleState,
    learned: list[tuple[int, VehicleState]],
    learned_at: np.ndarray,
    state: VehicleState,
) -> VehicleState:
    """``state`` with what the machine had learned of the car before the run starting at ``t0``."""
    k = int(np.searchsorted(learned_at, t0)) - 1
    known = learned[k][1] if k >= 0 else start
    return replace(state, park_signals=known.park_signals, stop_q_s=known.stop_q_s)


def _drains(w: TelemetryColumns, spans: list[StateSpan], usable_kwh: float | None) -> list[ParkedDrain]:
    """Energy lost in each parked or asleep span of 15 min or more, from pack power or SoC."""
    out = []
    for s in spans:
        if s.status not in (VehicleStatus.PARKED, VehicleStatus.ASLEEP):
            continue
        dur_s = (s.end_ts_ms - s.start_ts_ms) / 1000
        if dur_s < MIN_DRAIN_SPAN_S:
            continue
        a = int(np.searchsorted(w.ts_ms, s.start_ts_ms))
        b = int(np.searchsorted(w.ts_ms, s.end_ts_ms))  # the record that ends the span is not in it
        part = w.slice(a, b)
        power = pack_power_kw(part)
        if np.count_nonzero(~np.isnan(power)) >= 2:
            kwh = integrate_kwh(part.ts_ms, power)
        else:
            soc = part.soc_pct[~np.isnan(part.soc_pct)]
            if usable_kwh is None or soc.size < 2:
                continue
            kwh = float(soc[0] - soc[-1]) / 100 * usable_kwh
        span_s = (int(part.ts_ms[-1]) - int(part.ts_ms[0])) / 1000 if len(part) >= 2 else 0.0
        if span_s <= 0:
            continue
        asleep = s.status is VehicleStatus.ASLEEP
        out.append(
            ParkedDrain(w.vehicle_id, s.start_ts_ms, s.end_ts_ms, asleep, kwh, kwh * 3.6e6 / span_s, False)
        )
    return flag_drain(out)
