"""An OVMS v3 module as a test writes it: protocol-v1 records in, the server-v3 messages OVMS would send out.

Written from OVMS's sources (commit 1aa1daff; see microfleet.ingest.ovms): floats through a C++ stream's
default format (6 significant digits, Python's ``g``), latitude and longitude with 6 fixed decimals, booleans
``yes``/``no``, vectors comma-separated, ``m.time.utc`` as ``YYYY-MM-DD HH:MM:SS UTC``; each tick sends
the time and the metrics that changed since the last tick, sorted by name as OVMS's metric list is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from microfleet.domain.telemetry import TelemetryRecord
from microfleet.ingest.ovms import METRICS

_FIXED6 = {"v.p.latitude", "v.p.longitude"}


def ovms_text(name: str, value: Any) -> str:
    """A metric's value as OVMS's ``AsString`` writes it."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if name == "v.e.gear":
        return {"R": "-1", "N": "0", "D": "1", "P": "0"}[value]
    if isinstance(value, list):
        return ",".join(f"{v:g}" for v in value)
    if name in _FIXED6:
        return f"{value:.6f}"
    return f"{value:g}"


def utc_text(ts_ms: int) -> str:
    """``m.time.utc`` as OVMS writes it (whole seconds)."""
    return datetime.fromtimestamp(ts_ms // 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ticks(records: list[TelemetryRecord]) -> list[list[tuple[str, str]]]:
    """Each record as one module tick: ``(metric name, payload)`` of the time and what changed."""
    out: list[list[tuple[str, str]]] = []
    last: dict[str, str] = {}
    for record in records:
        now: dict[str, str] = {}
        for metric in METRICS:
            value = getattr(record, metric.target)
            if value is not None:
                now[metric.name] = ovms_text(metric.name, value)
        changed = {k: v for k, v in now.items() if last.get(k) != v}
        # TransmitModifiedMetrics walks the metric list, kept sorted by name: m.time.utc before v.*
        tick = sorted([*changed.items(), ("m.time.utc", utc_text(record.ts_ms))])
        out.append(tick)
        last = now
    return out


def topic(user: str, vehicle: str, name: str) -> str:
    """Where server-v3 publishes a metric: ``ovms/<user>/<vehicleid>/metric/<name, '.' -> '/'>``."""
    return f"ovms/{user}/{vehicle}/metric/{name.replace('.', '/')}"
