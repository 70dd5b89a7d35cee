"""Bad links between car and server: dropped, duplicated, delayed (out-of-order) messages, clock skew."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from microfleet.sim.scenario import LinkFaults

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class LinkOutcome:
    """Which samples are sent, in which order, with which device timestamps, and what went wrong (truth)."""

    rows: I64  # sample index of each sent message, in send order (a duplicated sample appears twice)
    ts_ms: I64  # timestamp the device writes into each sent message (its clock, skew included)
    send_ms: I64  # when each message leaves the device (true time)
    event_rows: I64  # truth: sample index of each link event
    event_kind: npt.NDArray[np.str_]  # "dropped" | "duplicated" | "delayed"
    event_delay_ms: I64


def device_skew_ms(cfg: LinkFaults, n_vehicles: int, rng: np.random.Generator) -> I64:
    """Fixed clock error of each device (0 for most): the skewed share gets ±skew_max_s."""
    skewed = rng.random(n_vehicles) < cfg.skewed_vehicle_share
    return np.where(skewed, rng.uniform(-cfg.skew_max_s, cfg.skew_max_s, n_vehicles) * 1000.0, 0.0).astype(
        np.int64
    )


def transmit(
    true_ms: I64,
    vehicle: I64,
    skew_ms: I64,
    cfg: LinkFaults,
    rng: np.random.Generator,
    clock_ms: I64 | None = None,
) -> LinkOutcome:
    """Apply the link faults to samples taken at ``true_ms``; ``skew_ms`` is indexed by vehicle.

    ``clock_ms`` is each sample's own device-clock error (jitter, steps) on top of the skew, if any.
    """
    n = true_ms.size
    dropped = rng.random(n) < cfg.drop_p
    duplicated = ~dropped & (rng.random(n) < cfg.duplicate_p)
    delayed = ~dropped & (rng.random(n) < cfg.delay_p)
    delay_ms = np.where(delayed, rng.uniform(1.0, cfg.delay_max_s, n) * 1000.0, 0.0).astype(np.int64)
    kept = np.flatnonzero(~dropped)
    dups = np.flatnonzero(duplicated)
    rows = np.concatenate([kept, dups])
    send = np.concatenate(
        [
            true_ms[kept] + delay_ms[kept],
            true_ms[dups] + delay_ms[dups] + rng.integers(1_000, 30_000, dups.size),
        ]
    )
    order = np.lexsort((rows, send))
    rows, send = rows[order], send[order]
    events = np.concatenate([np.flatnonzero(dropped), dups, np.flatnonzero(delayed)])
    kinds = np.concatenate([
        np.full(int(dropped.sum()), "dropped"),
        np.full(dups.size, "duplicated"),
        np.full(int(delayed.sum()), "delayed"),
    ])  # fmt: skip
    return LinkOutcome(
        rows=rows.astype(np.int64),
        ts_ms=(true_ms[rows] + skew_ms[vehicle[rows]] + (0 if clock_ms is None else clock_ms[rows])).astype(
            np.int64
        ),
        send_ms=send.astype(np.int64),
        event_rows=events.astype(np.int64),
        event_kind=kinds,
        event_delay_ms=delay_ms[events],
    )
