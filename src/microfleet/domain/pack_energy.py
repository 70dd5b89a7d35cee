"""Energy in and out of the traction pack over a window: sampled power, and the BMS's own counters.

Telemetry samples pack voltage and current every few seconds; between samples the power of a city drive
swings with every acceleration, so integrating samples carries a few % of error per drive. Cars that
report the BMS's cumulative counters (``energy_used_kwh``, ``energy_recovered_kwh``; OVMS v3
``v.b.energy.used.total`` / ``v.b.energy.recd.total``) give what left and entered the pack exactly,
integrated by the car itself: :func:`counter_energy` reads them, and falls back to sampled power only
where the counters cannot say (before the first reading, after the last, across a reset).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from microfleet.domain.vehicle_state import TelemetryColumns

MS_PER_H: Final = 3_600_000.0
# Counters must span at least half a window, else the window's energy comes from the other methods: a
# counter seen that rarely says little and hints at a car whose counters are not to be trusted.
COUNTER_MIN_SHARE: Final = 0.5
# At most 5 % of a window may be neither counted nor sampled: that energy would be missing, not estimated.
COUNTER_MAX_UNKNOWN_SHARE: Final = 0.05
# Protocol v1's limits on pack voltage and current (1000 V, 1000 A): a counter rising faster than this is a
# glitch (a value from another source, a bit error), not energy.
MAX_PACK_POWER_KW: Final = 1000.0
# Counter widths a car's module may keep its energy in, in its own steps: 16-bit CAN signals (OVMS and
# most OEM frames pack energy into 16 bits), 24 and 32 bits.
COUNTER_WRAP_BITS: Final = (16, 24, 32)
# A counter whose step is at least 2 % of what it counted over a window is read below its step
# (:func:`_sub_step`): the plain difference of two floored readings is off by up to one step, so there
# its quantisation alone can break the 2 % the history's energy aims at. Below that, the difference stands
# (it then follows the counter alone). Microfleet's choice from that arithmetic, not tuned.
SUB_STEP_SHARE: Final = 0.02
# The readings averaged at each end of a window for the sub-step estimate: up to 8 (40 s at OVMS's 5 s
# while driving), never more than a third of the window's readings. Chosen on development seed 1 (8 of
# 4, 8, 16 tried), no other seed.
SUB_STEP_READINGS: Final = 8


def pack_power_kw(cols: TelemetryColumns) -> npt.NDArray[np.float64]:
    """Pack power per record in kW, positive = discharge (V x I); NaN where either is missing."""
    return cols.pack_voltage_v * cols.pack_current_a / 1000.0


def integrate_kwh(ts_ms: npt.NDArray[np.int64], power_kw: npt.NDArray[np.float64]) -> float:
    """Trapezoidal integral of a power series over time, in kWh; pairs with a missing end are skipped."""
    if ts_ms.shape[0] < 2:
        return 0.0
    dt_h = np.diff(ts_ms) / MS_PER_H
    mid = (power_kw[1:] + power_kw[:-1]) / 2
    return float(np.nansum(mid * dt_h))


@dataclass(frozen=True, slots=True)
class CounterEnergy:
    """Energy out of and into the pack over a window, read from the BMS's counters.

    ``offset_kwh`` is what a current-sensor zero offset of the given size added to ``used - recovered``
    over the counted stretches (offset x the integral of pack voltage): the BMS counts the current it
    measures, offset included. ``counted_share`` is the part of the window the counters covered.
    """

    used_kwh: float
    recovered_kwh: float
    offset_kwh: float
    counted_share: float


def _cumulative(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Running sum with a leading zero, NaN counted as 0: ``out[b] - out[a]`` sums ``values[a:b]``."""
    return np.concatenate([[0.0], np.cumsum(np.nan_to_num(values, nan=0.0))])


def _rises(counter: npt.NDArray[np.float64], most_kwh: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """What a lifetime counter counted between consecutive readings; NaN where it cannot say.

    A monotonic counter that went down wrapped or was reset, never counted negative energy. A wrap
    (the counter rolled over at ``2**bits`` of its own step, :data:`COUNTER_WRAP_BITS`) counted the
    rest to the top plus the new reading, taken when that is no more than the pack could have delivered
    (``most_kwh``). Any other fall (a reset: the BMS or module lost power and restarted from 0; a
    glitch) is NaN: the caller fills the pair from sampled power, which sees the whole interval, where
    the reading after a reset sees only its part after the reset.
    """
    d = np.diff(counter)
    down = np.flatnonzero(d < 0)
    if down.size == 0:
        return d
    up = np.diff(counter)
    step = float(up[up > 0].min()) if np.any(up > 0) else 0.0
    for j in down.tolist():
        new = float(counter[j + 1])
        best = np.nan
        for bits in COUNTER_WRAP_BITS:
            rise = new + round(step * 2**bits, 6) - float(counter[j])
            if step > 0 and 0 <= rise <= most_kwh[j]:
                best = rise
                break
        d[j] = best
    return d


def _anchored(
    rises: npt.NDArray[np.float64], idx: npt.NDArray[np.intp], sampled_cum: npt.NDArray[np.float64]
) -> float | None:
    """A coarse counter's energy over a window, anchored on its first and last step (None: not coarse).

    A counter read in steps (10 Wh on some cars: 5 % of a 0.2 kWh city hop) is floored at both ends of a
    window, so its difference is good to one step. Where it stays put at most readings and a step is
    more than sampled power says the pack moves in a typical reading interval (of those it moves in),
    the instants it crosses its first and last new level are better known than the levels' fractions:
    between them it counted exactly ``level2 - level1``; before and after, sampled power
    (``sampled_cum``, the running integral per record) fills in. The crossing is placed within its
    interval where a reading uniformly inside its step would put it: half-way for one step, later for
    several.
    """
    changes = np.flatnonzero(rises > 0)
    if changes.size < 2:
        return None
    step = float(rises[changes].min())
    moved = np.diff(sampled_cum[idx])
    moved = moved[moved > 0]
    if float(np.median(rises)) > 0 or moved.size == 0 or step <= float(np.median(moved)):
        return None  # a fine counter (it steps at most readings, or less than one moves): its ends are better
    j1, j2 = int(changes[0]), int(changes[-1])

    def crossing(j: int) -> float:
        f = (rises[j] - step / 2) / rises[j]  # of the interval's sampled energy, before the level
        a, b = int(idx[j]), int(idx[j + 1])
        return float(sampled_cum[a] + f * (sampled_cum[b] - sampled_cum[a]))

    head = crossing(j1) - float(sampled_cum[0])
    tail = float(sampled_cum[-1]) - crossing(j2)
    return head + float(rises[j1 + 1 : j2 + 1].sum()) + tail


def _sub_step(
    rises: npt.NDArray[np.float64], idx: npt.NDArray[np.intp], sampled_cum: npt.NDArray[np.float64]
) -> float | None:
    """A stepping counter's energy over a window, read below its step (None: its difference stands).

    Each reading is the counter's true value cut to its step: ``reading - sampled energy since the window's
    start`` is the counter at the start, off by a fraction of a step that changes from reading to reading
    as the counter moves. Averaged over the first and the last :data:`SUB_STEP_READINGS` readings, the
    counter at each end is known to a fraction of a step; sampled power (``sampled_cum``, the running
    integral per record) carries it only over those few readings. Used where a step is at least
    :data:`SUB_STEP_SHARE` of the counted energy and the counter moved at both ends.
    """
    ups = rises[rises > 0]
    total = float(rises.sum())
    if ups.size == 0 or total <= 0 or float(ups.min()) < SUB_STEP_SHARE * total:
        return None
    k = min(SUB_STEP_READINGS, idx.size // 3)
    if k < 2:
        return None
    level = np.r_[0.0, np.cumsum(rises)]  # each reading, relative to the first
    sampled = sampled_cum[idx] - sampled_cum[0]
    if not (np.any(np.diff(level[:k]) > 0) or np.any(np.diff(level[-k:]) > 0)):
        return None  # a counter standing still at both ends: nothing to average
    head = float(np.mean(level[:k] - sampled[:k]))
    tail = float(np.mean(level[-k:] - sampled[-k:]))
    return float(sampled_cum[-1] - sampled_cum[0]) + tail - head


def counter_energy(
    w: TelemetryColumns, current_offset_a: float | npt.NDArray[np.float64] = 0.0, sub_step: bool = True
) -> CounterEnergy | None:
    """Energy used and recovered over a window from the cumulative counters (None: use another method).

    Between two consecutive readings of both counters the energy is their difference; a counter that
    went down wrapped or was reset (:func:`_rises`). One that rose faster than :data:`MAX_PACK_POWER_KW`
    or fell and is neither (a glitch) is a gap in the counter: no energy is read from that pair, and
    like the stretches before the first and after the last reading it is integrated from sampled pack
    power (``w``'s current already corrected for the sensor's offset). ``current_offset_a`` is that
    offset, one value for the window or one per record (it drifts with the pack's temperature). None when
    the window has fewer than two readings, when the counters span less than :data:`COUNTER_MIN_SHARE`
    of it, or when more than :data:`COUNTER_MAX_UNKNOWN_SHARE` of it is neither counted nor sampled. A
    counter counted over the whole window is read below its step where it is coarse for the window
    (:func:`_anchored`), or with ``sub_step`` where a step is a sizeable part of its energy
    (:func:`_sub_step`).
    """
    n = len(w)
    ts = w.ts_ms
    if n < 2 or ts[-1] <= ts[0]:
        return None
    idx = np.flatnonzero(~(np.isnan(w.energy_used_kwh) | np.isnan(w.energy_recovered_kwh)))
    if idx.size < 2:
        return None
    used, recovered = w.energy_used_kwh[idx], w.energy_recovered_kwh[idx]
    most_kwh = MAX_PACK_POWER_KW * np.diff(ts[idx]) / MS_PER_H
    d_used, d_recovered = _rises(used, most_kwh), _rises(recovered, most_kwh)
    ok = (d_used >= 0) & (d_recovered >= 0) & (d_used <= most_kwh) & (d_recovered <= most_kwh)  # NaN: False
    span_ms = float(ts[-1] - ts[0])
    counted_ms = float(np.diff(ts[idx])[ok].sum())
    if counted_ms < COUNTER_MIN_SHARE * span_ms:
        return None
    dt_ms = np.diff(ts).astype(np.float64)
    dt_h = dt_ms / MS_PER_H
    power = pack_power_kw(w)
    mid_out = (np.maximum(power[1:], 0.0) + np.maximum(power[:-1], 0.0)) / 2 * dt_h
    mid_in = -(np.minimum(power[1:], 0.0) + np.minimum(power[:-1], 0.0)) / 2 * dt_h
    out_cum, in_cum = _cumulative(mid_out), _cumulative(mid_in)
    unknown_cum = _cumulative(np.where(np.isnan(mid_out), dt_ms, 0.0))
    if isinstance(current_offset_a, np.ndarray):  # per record: offset x voltage is the power it added
        ov = current_offset_a * w.pack_voltage_v
        offset_cum = _cumulative((ov[1:] + ov[:-1]) / 2 * dt_h)
        scale = 1.0
    else:
        offset_cum = _cumulative((w.pack_voltage_v[1:] + w.pack_voltage_v[:-1]) / 2 * dt_h)
        scale = current_offset_a
    # record-index pieces the counters do not cover: the head, every reset pair, the tail
    bad = np.flatnonzero(~ok)
    gap_a = np.r_[0, idx[bad], idx[-1]]
    gap_b = np.r_[idx[0], idx[bad + 1], n - 1]
    unknown_ms = float(np.sum(unknown_cum[gap_b] - unknown_cum[gap_a]))
    if unknown_ms > COUNTER_MAX_UNKNOWN_SHARE * span_ms:
        return None
    good_a, good_b = idx[:-1][ok], idx[1:][ok]
    # V x h (x A when per record) over the counted pieces
    offset_wh = scale * float(np.sum(offset_cum[good_b] - offset_cum[good_a]))
    used_kwh = float(d_used[ok].sum() + np.sum(out_cum[gap_b] - out_cum[gap_a]))
    recovered_kwh = float(d_recovered[ok].sum() + np.sum(in_cum[gap_b] - in_cum[gap_a]))
    if bad.size == 0 and unknown_cum[-1] == 0:
        for_used, for_recovered = _anchored(d_used, idx, out_cum), _anchored(d_recovered, idx, in_cum)
        if sub_step:
            for_used = for_used if for_used is not None else _sub_step(d_used, idx, out_cum)
            for_recovered = (
                for_recovered if for_recovered is not None else _sub_step(d_recovered, idx, in_cum)
            )
        used_kwh = for_used if for_used is not None else used_kwh
        recovered_kwh = for_recovered if for_recovered is not None else recovered_kwh
    return CounterEnergy(
        used_kwh=used_kwh,
        recovered_kwh=recovered_kwh,
        offset_kwh=offset_wh / 1000.0,
        counted_share=counted_ms / span_ms,
    )
