"""A live twin: simulate, then publish each message when its accelerated send time comes, via a sender."""

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
    """Publish the twin's scenario, ``speedup`` simulated seconds per wall second; returns the totals."""
    days = twin.scenario.days
    origin = live_origin_ms(days, now_ms())
    end = origin + days * 86_400_000
    wall0 = monotonic_s()
    total = SendResult()
    for day in run_days(twin, start_ms=origin):
        if should_stop():
            break
        rows = day.telemetry.to_pylist()
        send_ms = np.asarray(day.send_ms)
        i = 0
        while i < len(rows) and not should_stop():
            sim_now = origin + (monotonic_s() - wall0) * speedup * 1000.0
            j = int(np.searchsorted(send_ms, sim_now, side="right"))
            if j <= i:
                sleep(min(TICK_S, (float(send_ms[i]) - sim_now) / speedup / 1000.0 + 1e-3))
                continue
            total.add(_send_grouped(sender, rows[i:j]))
            i = j
            if on_progress is not None:
                on_progress(LiveProgress(int(min(sim_now, end)), end, day.day, days, total))
    if on_progress is not None:
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
