"""The live feed's events: what is announced, the log every process appends to, and how others publish.

An event is a change of one vehicle that a screen showing it wants at once: a new position or changed
signals (from ingest, written in the telemetry's own transaction), a command's status, an alert. Events go
through the store (:class:`LiveEventLog`), never an in-process queue, because the process that commits
telemetry (the MQTT bridge, an ingest worker) is often not the one serving WebSockets. The kinds and their
payloads are in docs/live.md; :class:`microfleet.services.live_feed.LiveFeed` fans them out.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from microfleet.errors import InvalidInputError

POSITION: Final = "position"  # a newer fix, with the changed signals of the same batch
STATE: Final = "state"  # changed signals, no newer fix
COMMAND: Final = "command"  # a remote command's status changed (issue 13 item 1)
ALERT: Final = "alert"  # an alert was raised, acknowledged or resolved (issue 13 item 6)
# Sent by the feed itself, never stored: the resume token is older than the log, or the replay is done.
GAP: Final = "gap"
READY: Final = "ready"

_KIND = re.compile(r"[a-z][a-z_]{0,31}")
_FEED_KINDS = frozenset({GAP, READY})
# The fields of a fix announced with a position; lat and lon are announced there, not as signals.
POSITION_FIELDS: Final = ("lat_deg", "lon_deg", "speed_kmh", "heading_deg", "altitude_m", "gps_hdop")


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """An event to announce: what happened to ``vehicle_id`` at ``ts_ms`` (UTC epoch ms)."""

    vehicle_id: str
    kind: str
    ts_ms: int
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class StoredLiveEvent:
    """An event as the log holds it, numbered in commit order; ``payload_json`` is a JSON object."""

    event_id: int
    vehicle_id: str
    kind: str
    ts_ms: int
    created_at_ms: int
    payload_json: str


class LiveEventLog(Protocol):
    """The durable event log (``microfleet.store.live_store.LiveEventStore``)."""

    def append(self, events: list[LiveEvent], now_ms: int) -> None:
        """Append events in a transaction of their own, numbered in commit order."""
        ...

    def after(self, event_id: int, limit: int) -> list[StoredLiveEvent]:
        """Up to ``limit`` events with an id above ``event_id``, oldest first."""
        ...

    def bounds(self) -> tuple[int, int] | None:
        """The oldest and newest event id held; None while the log is empty."""
        ...

    def prune(self, before_ms: int) -> int:
        """Delete events created before ``before_ms`` (the newest always stays); returns how many."""
        ...


def check_event(event: LiveEvent) -> None:
    """Refuse an event the feed could not send: a malformed kind, one of the feed's own, a bad payload."""
    if not _KIND.fullmatch(event.kind) or event.kind in _FEED_KINDS:
        raise InvalidInputError(
            f"live event kind {event.kind!r} must be 1-32 lower-case letters or '_', not 'gap' or 'ready'"
        )
    if not isinstance(event.payload, Mapping):
        raise InvalidInputError("a live event's payload is a JSON object")
    try:
        json.dumps(event.payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"a live event's payload must be plain JSON: {exc}") from None


class LiveEvents:
    """Publishing to the live feed for use cases outside ingest (commands, alerts)."""

    def __init__(self, log: LiveEventLog, clock: Callable[[], int]) -> None:
        self._log = log
        self._clock = clock

    def publish(self, vehicle_id: str, kind: str, ts_ms: int, payload: Mapping[str, Any]) -> None:
        """Announce one event of ``vehicle_id``; subscribers who may see the vehicle receive it."""
        event = LiveEvent(vehicle_id, kind, ts_ms, payload)
        check_event(event)
        self._log.append([event], self._clock())


# --- the events of a telemetry commit


Signals = Mapping[str, tuple[int, Any]]  # signal name -> (ts_ms, value) of its newest value


def telemetry_event(
    vehicle_id: str, newest: Signals, previous: Mapping[str, tuple[int, str]]
) -> LiveEvent | None:
    """The one event a committed batch of a vehicle announces, or None if it changed nothing visible.

    ``newest``: the batch's newest value of each signal; ``previous``: the vehicle's latest state before
    the batch (value as stored JSON). A signal is announced when its newest value is at least as new as the
    stored one and differs from it; a position when the batch's newest fix is newer than the stored one
    and elsewhere.
    """
    changed: dict[str, dict[str, Any]] = {}
    for name, (ts_ms, value) in newest.items():
        if name in ("lat_deg", "lon_deg"):
            continue
        before = previous.get(name)
        if before is not None and (ts_ms < before[0] or json.dumps(value) == before[1]):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            continue  # the validator refuses these; never let one break the feed's JSON
        changed[name] = {"value": value, "ts_ms": ts_ms}
    fix = _newer_fix(newest, previous)
    if fix is None and not changed:
        return None
    payload: dict[str, Any] = {"signals": changed}
    if fix is not None:
        payload["position"] = fix
    times = [s["ts_ms"] for s in changed.values()] + ([fix["ts_ms"]] if fix is not None else [])
    return LiveEvent(vehicle_id, POSITION if fix is not None else STATE, max(times), payload)


def _newer_fix(newest: Signals, previous: Mapping[str, tuple[int, str]]) -> dict[str, Any] | None:
    """The batch's newest fix (lat and lon of one record) if newer than the stored one, with its extras."""
    lat, lon = newest.get("lat_deg"), newest.get("lon_deg")
    if lat is None or lon is None or lat[0] != lon[0]:
        return None
    before_lat, before_lon = previous.get("lat_deg"), previous.get("lon_deg")
    if before_lat is not None and before_lon is not None:
        if lat[0] <= before_lat[0]:
            return None  # not newer than the stored fix
        if json.dumps(lat[1]) == before_lat[1] and json.dumps(lon[1]) == before_lon[1]:
            return None  # the same place: a parked car's fix is not news
    fix: dict[str, Any] = {"ts_ms": lat[0]}
    for name in POSITION_FIELDS:
        signal = newest.get(name)
        if signal is not None and signal[0] == lat[0]:  # measured with the fix, not an older value
            fix[name] = signal[1]
    return fix
