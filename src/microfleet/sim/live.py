"""A live twin: simulate, then publish each message when its accelerated send time comes, via a sender.

The run replays the scenario's days accelerated so that they end now. An open-ended twin
(``Twin(..., open_ended=True)``, the demo's) then goes on in real time (1×): its simulated clock follows
the wall clock, and it simulates one more day whenever the last is sent, until ``should_stop``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from microfleet.sim.engine import Twin
from microfleet.sim.run import run_days
from microfleet.sim.senders import SendResult, TelemetrySender, records_from_rows

TICK_S = 0.2  # the longest the sender sleeps before looking at the clock again


@dataclass(frozen=True, slots=True)
class LiveProgress:
    """Where a live run stands: simulated time reached, and the server's verdicts so far."""

    sim_ms: int
    end_ms: int
    day: int
    days: int
    result: SendResult

    @property
    def caught_up(self) -> bool:
        """The simulated clock has reached the wall clock: an open-ended twin now runs in real time."""
        return self.sim_ms >= self.end_ms


def live_origin_ms(days: int, now_ms: int) -> int:
    """Start of the simulated period: ``days`` before now, so no message is ever stamped in the future."""
    return (now_ms - days * 86_400_000) // 1000 * 1000


def run_live(
    twin: Twin,
    sender: TelemetrySender,
    *,
    speedup: float,
    on_progress: Callable[[LiveProgress], None] | None = None,
    now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    monotonic_s: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    should_stop: Callable[[], bool] = lambda: False,
) -> SendResult:
    """Publish the twin's scenario, ``speedup`` simulated seconds per wall second; returns the totals.

    A bounded twin's run ends after its last day. An open-ended twin's run catches up with now and then
    keeps the simulated clock on the wall clock (1×) until ``should_stop`` says so.
    """
    days = twin.scenario.days
    now0 = now_ms()
    origin = live_origin_ms(days, now0)
    end = origin + days * 86_400_000
    wall0 = monotonic_s()
    total = SendResult()

    def sim_clock() -> tuple[float, float]:
        """The simulated now (ms) and the rate (simulated s per wall s) it moves at."""
        elapsed_s = monotonic_s() - wall0
        accelerated = origin + elapsed_s * speedup * 1000.0
        if twin.open_ended and accelerated > now0 + elapsed_s * 1000.0:
            return now0 + elapsed_s * 1000.0, 1.0  # caught up: real time from here on
        return accelerated, speedup

    sim_now, day_index = float(origin), 0
    for day in run_days(twin, start_ms=origin):
        if should_stop():
            break
        day_index = day.day
        rows = day.telemetry.to_pylist()
        send_ms = np.asarray(day.send_ms)
        i = 0
        while i < len(rows) and not should_stop():
            sim_now, rate = sim_clock()
            j = int(np.searchsorted(send_ms, sim_now, side="right"))
            if j <= i:
                sleep(min(TICK_S, (float(send_ms[i]) - sim_now) / rate / 1000.0 + 1e-3))
                continue
            total.add(_send_grouped(sender, rows[i:j]))
            i = j
            if on_progress is not None:
                shown = sim_now if twin.open_ended else min(sim_now, end)
                on_progress(LiveProgress(int(shown), end, day.day, days, total))
    if on_progress is not None:
        if twin.open_ended:
            on_progress(LiveProgress(int(sim_now), end, day_index, days, total))
        else:
            on_progress(LiveProgress(end, end, days - 1, days, total))
    return total


def _send_grouped(sender: TelemetrySender, rows: list[dict[str, Any]]) -> SendResult:
    by_vehicle: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_vehicle[row["vehicle_id"]].append(row)
    result = SendResult()
    for vehicle_id, vehicle_rows in by_vehicle.items():
        result.add(sender.send(vehicle_id, records_from_rows(vehicle_rows)))
    return result
