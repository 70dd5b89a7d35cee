"""The fair baseline for derived history: threshold rules on what a Traccar-style report is given.

Traccar has no charge detection and no energy model; what it has is trip rules on speed, position and
time (``report.trip.*`` in Traccar's ``Keys.java``), the device's attributes as they are sent, and a trip's
"spent fuel" as the fuel level at its start minus at its end (``ReportUtils.calculateFuel``). This module
is the best honest version of such a report for an electric car, named for what it is: "threshold rules
(trips: Traccar's rules; charges: charger flag)".

* Trips: Traccar's rules with its defaults (moving above 0.01 knots; a trip of >= 300 s or >= 500 m; a stop
  after 300 s still; a gap of >= 3600 s ends it), run by the same state machine Microfleet steps, with
  speed as the only class: a position tracker's trip report.
* Charges: the charger's own attributes, which every twin record carries: a session is a run of records
  with charger power above 0.05 kW (Microfleet's threshold, so the threshold is not what differs), or with
  the plug flag on for a device that sends no power; none inside one of its trips (a lagging charger
  flag is not a charge); a gap of >= 3600 s ends it. Start is the first powered record and end the last
  one: the same end rule as Microfleet's ``power_end_ts_ms``.
* Energy: a drive's is ΔSoC x capacity (Traccar's spent fuel with SoC as the fuel level, unfloored: SoC as
  the device sends it). A charge's is ΔSoC x capacity as well; integrated charger power x a cited charger
  efficiency is the alternative (:data:`CHARGER_EFFICIENCY`), chosen against on the development seed (see
  ``docs/benchmarks.md``, Derived history). The capacity is the caller's: the bench gives the physics-
  resolved usable kWh of the car's catalogue model, never the twin's true capacity.

Used by ``bench/history_accuracy.py`` (accuracy) and ``bench/history_speed.py`` (speed). Not product code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal

import numpy as np

from microfleet.domain.pack_energy import integrate_kwh
from microfleet.domain.vehicle_state import (
    DEFAULT_THRESHOLDS,
    DriveEnded,
    DriveStarted,
    RecordClass,
    StateThresholds,
    TelemetryColumns,
    VehicleState,
    runs_of,
    step,
)

NAME: Final = "threshold rules (trips: Traccar's rules; charges: charger flag)"
# Traccar's default speedThreshold is 0.01 knots = 0.0185 km/h (Keys.java EVENT_MOTION_SPEED_THRESHOLD).
TRACCAR_SPEED_THRESHOLD_KMH: Final = 0.01 * 1.852
# Charger power above this is energy flowing: Microfleet's own threshold (StateThresholds.charging_power_kw),
# so both systems read the same signal the same way and only the method differs.
CHARGING_POWER_KW: Final = DEFAULT_THRESHOLDS.charging_power_kw
# On-board charger efficiency, wall to pack: 0.85 for the Dacia Spring from its WLTP consumption with and
# without charging losses (11.9 / 14.0 kWh/100 km at 10 A; pushevs.com, "Calculating on-board chargers
# efficiency", 2020-10-22); the same article and Tu.no's 2020 list span 0.70-0.90 across cars.
CHARGER_EFFICIENCY: Final = 0.85
ChargeEnergy = Literal["soc", "power"]


@dataclass(frozen=True, slots=True)
class ThresholdSpan:
    """A trip or charge found by thresholds: first and last record's time and an energy estimate.

    ``first`` and ``stop`` are the indexes of the records the span holds, half-open; the bench counts
    double-counted records from them.
    """

    start_ts_ms: int
    end_ts_ms: int
    energy_kwh: float | None
    first: int
    stop: int


def threshold_trips(
    cols: TelemetryColumns, capacity_kwh: float | None, th: StateThresholds = DEFAULT_THRESHOLDS
) -> list[ThresholdSpan]:
    """Trips by Traccar's rules: movement >= 300 s or >= 500 m, stop after 300 s still, gap ends."""
    speed = np.nan_to_num(cols.speed_kmh, nan=0.0)
    classes = np.where(speed > TRACCAR_SPEED_THRESHOLD_KMH, RecordClass.MOVING, RecordClass.STILL).astype(
        np.int8
    )
    base = replace(th, moving_speed_kmh=TRACCAR_SPEED_THRESHOLD_KMH)
    state = VehicleState()
    starts: list[int] = []
    ends: list[tuple[int, str]] = []
    for run in runs_of(cols, classes, base):
        state, events = step(state, cols.vehicle_id, run, base)
        for ev in events:
            if isinstance(ev, DriveStarted):
                starts.append(ev.ts_ms)
            elif isinstance(ev, DriveEnded):
                ends.append((ev.ts_ms, ev.reason))
    if len(ends) < len(starts) and len(cols):
        ends.append((int(cols.ts_ms[-1]), "open"))
    soc = _SocSteps(cols.soc_pct)
    spans = []
    for s, (e, reason) in zip(starts, ends, strict=True):
        a = int(np.searchsorted(cols.ts_ms, s))
        # a trip stopped by standing still ends on its first still record, which belongs to the stop;
        # one ended by a data gap or by the data's end ends on its own last record
        b = int(np.searchsorted(cols.ts_ms, e, side="left" if reason == "stopped" else "right"))
        b = max(b, a + 1)
        spans.append(ThresholdSpan(s, e, soc.energy(a, b, capacity_kwh, -1.0), a, b))
    return spans


def charging_records(cols: TelemetryColumns) -> np.ndarray:
    """Records with energy flowing in, as the charger's attributes say: its power if the device sends power
    at all, else its plug flag. Not record by record: a car that sends power sends none once unplugged,
    while its plug flag may still read plugged for a few records (a lagging flag)."""
    power = cols.charger_power_kw
    if np.isnan(power).all():
        return np.asarray(cols.charger_connected == 1.0)
    return np.nan_to_num(power, nan=0.0) > CHARGING_POWER_KW


def threshold_charges(
    cols: TelemetryColumns,
    capacity_kwh: float | None,
    energy: ChargeEnergy = "soc",
    trips: Sequence[ThresholdSpan] = (),
    th: StateThresholds = DEFAULT_THRESHOLDS,
) -> list[ThresholdSpan]:
    """Charges from the charger's attributes: runs of powered records, a data gap ending one.

    ``energy``: "soc" for ΔSoC x ``capacity_kwh`` (from the last SoC at or before the first powered record
    to the first SoC after the last one), "power" for integrated charger power x :data:`CHARGER_EFFICIENCY`.
    Records inside one of ``trips`` are not charging: a car that drives is not plugged in, whatever a
    lagging charger flag says.
    """
    n = len(cols)
    if n == 0:
        return []
    flowing = charging_records(cols)
    for t in trips:
        flowing[t.first : t.stop] = False
    ts = cols.ts_ms
    cut = np.zeros(n, dtype=bool)
    cut[1:] = np.diff(ts) >= th.offline_gap_s * 1000
    # a run starts on a flowing record after a non-flowing one or after a gap, and ends before the next such
    starts = np.flatnonzero(flowing & (~np.r_[False, flowing[:-1]] | cut))
    soc = _SocSteps(cols.soc_pct)
    spans = []
    for a in starts.tolist():
        b = a + 1
        while b < n and flowing[b] and not cut[b]:
            b += 1
        if energy == "power":
            # power is held until the record after the last powered one, if it follows without a gap
            stop = b + 1 if b < n and not cut[b] else b
            grid = np.nan_to_num(cols.charger_power_kw[a:stop], nan=0.0)
            kwh: float | None = integrate_kwh(ts[a:stop], grid) * CHARGER_EFFICIENCY
        else:
            kwh = soc.energy(a, b, capacity_kwh, 1.0)
        spans.append(ThresholdSpan(int(ts[a]), int(ts[b - 1]), kwh, a, b))
    return spans


class _SocSteps:
    """SoC before and after a span: the last reading at or before its first record, the first at or after
    its last record, so a SoC step on either boundary counts."""

    def __init__(self, soc: np.ndarray) -> None:
        self.soc = soc
        idx = np.arange(soc.size)
        valid = ~np.isnan(soc)
        self.last = np.maximum.accumulate(np.where(valid, idx, -1))  # last valid index at or before i
        nxt = np.where(valid, idx, soc.size)
        self.next = np.minimum.accumulate(nxt[::-1])[::-1]  # first valid index at or after i

    def energy(self, first: int, stop: int, capacity_kwh: float | None, sign: float) -> float | None:
        """sign x (SoC after - SoC before) x capacity, for the records ``first`` to ``stop`` (exclusive)."""
        if capacity_kwh is None:
            return None
        a, b = int(self.last[first]), int(self.next[stop - 1])
        if a < 0 or b >= self.soc.size:
            return None
        return sign * float(self.soc[b] - self.soc[a]) / 100 * capacity_kwh
