"""Senders: the port a twin car publishes telemetry through, and its HTTP adapters.

:class:`HttpSender` posts protocol v1 (``POST /api/v1/telemetry``) with the car's device credential;
:class:`OsmAndSender` reports positions as a phone running OsmAnd or Traccar Client does (``GET /osmand``
with the car's tracker key). The MQTT sender is in :mod:`microfleet.sim.mqtt_sender`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import httpx
import msgspec

from microfleet.domain.telemetry import TelemetryRecord

RETRIES: Final = 3  # attempts on a transport error or a 5xx before the batch is reported as failed
BACKOFF_S: Final = 0.5


@dataclass
class SendResult:
    """What happened to a batch: the server's verdicts, plus records that never got a verdict."""

    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    failed: int = 0  # not delivered: bad credential, transport error after retries
    skipped: int = 0  # not sendable over the protocol: a phone has no fix to report for a record without one
    unconfirmed: int = 0  # published where no answer comes (OVMS sends QoS 0 and hears nothing back)
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, other: SendResult) -> None:
        """Accumulate another result into this one."""
        self.accepted += other.accepted
        self.duplicate += other.duplicate
        self.rejected += other.rejected
        self.failed += other.failed
        self.skipped += other.skipped
        self.unconfirmed += other.unconfirmed
        self.reasons.update(other.reasons)

    @property
    def sent(self) -> int:
        """Records handed to the sender."""
        return self.accepted + self.duplicate + self.rejected + self.failed + self.skipped + self.unconfirmed


class TelemetrySender(Protocol):
    """Port: publish one vehicle's records and report what became of each."""

    def send(self, vehicle_id: str, records: Sequence[TelemetryRecord]) -> SendResult:
        """Deliver ``records`` of ``vehicle_id``; never raises for a refusal, reports it."""
        ...


class ClosableSender(TelemetrySender, Protocol):
    """A sender holding connections (HTTP keep-alive, broker sessions) until it is closed."""

    def close(self) -> None:
        """Release the connections."""
        ...


_ENCODER = msgspec.json.Encoder()


def records_from_rows(rows: Sequence[Mapping[str, Any]]) -> list[TelemetryRecord]:
    """Protocol-v1 records from telemetry rows (absent signals dropped); raises if a row breaks protocol."""
    return [msgspec.convert({k: v for k, v in r.items() if v is not None}, TelemetryRecord) for r in rows]


class NdjsonFileSender:
    """Appends every record as one NDJSON line to a file (a capture of what a live run would send)."""

    def __init__(self, path: Path) -> None:
        """Open ``path`` for appending."""
        self._file = path.open("ab")

    def send(self, vehicle_id: str, records: Sequence[TelemetryRecord]) -> SendResult:
        """Write the records; a file accepts everything."""
        for record in records:
            self._file.write(_ENCODER.encode(record) + b"\n")
        return SendResult(accepted=len(records))

    def close(self) -> None:
        """Flush and close the file."""
        self._file.close()


class HttpSender:
    """Posts JSON batches with each car's own device credential; drops a credential the server refuses."""

    def __init__(
        self,
        base_url: str,
        tokens: Mapping[str, str],
        *,
        max_batch_records: int = 500,
        timeout_s: float = 30.0,
        client: httpx.Client | None = None,
    ) -> None:
        """Prepare a keep-alive client for ``base_url`` with one bearer token per vehicle id."""
        self._tokens = dict(tokens)
        self._max = max_batch_records
        self._client = client or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s)
        self.refused_credentials: dict[str, str] = {}

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def send(self, vehicle_id: str, records: Sequence[TelemetryRecord]) -> SendResult:
        """Post ``records`` in batches of at most ``max_batch_records``."""
        total = SendResult()
        for start in range(0, len(records), self._max):
            total.add(self._post(vehicle_id, records[start : start + self._max]))
        return total

    def _post(self, vehicle_id: str, batch: Sequence[TelemetryRecord]) -> SendResult:
        token = self._tokens.get(vehicle_id)
        if token is None or vehicle_id in self.refused_credentials:
            reason = self.refused_credentials.get(vehicle_id, "no device credential for this vehicle")
            return SendResult(failed=len(batch), reasons=Counter({f"not sent: {reason}": len(batch)}))
        body = _ENCODER.encode(list(batch))
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        last_error = ""
        for attempt in range(RETRIES):
            try:
                response = self._client.post("/api/v1/telemetry", content=body, headers=headers)
            except httpx.TransportError as exc:
                last_error = f"transport error: {exc.__class__.__name__}"
            else:
                if response.status_code == 200:
                    return verdicts(response.json())
                if response.status_code == 413 and len(batch) > 1:
                    half = len(batch) // 2
                    result = self._post(vehicle_id, batch[:half])
                    result.add(self._post(vehicle_id, batch[half:]))
                    return result
                if response.status_code in (401, 403):
                    message = _message(response)
                    self.refused_credentials[vehicle_id] = (
                        f"credential refused ({response.status_code}): {message}"
                    )
                    return SendResult(
                        failed=len(batch), reasons=Counter({self.refused_credentials[vehicle_id]: len(batch)})
                    )
                if response.status_code < 500:
                    reason = f"batch refused ({response.status_code}): {_message(response)}"
                    return SendResult(rejected=len(batch), reasons=Counter({reason: len(batch)}))
                last_error = f"server error {response.status_code}"
            time.sleep(BACKOFF_S * (2**attempt))
        return SendResult(
            failed=len(batch), reasons=Counter({f"gave up after {RETRIES} tries: {last_error}": len(batch)})
        )


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", response.text))[:200]
    except ValueError:
        return response.text[:200]


def verdicts(body: dict[str, Any]) -> SendResult:
    """A Microfleet answer (totals and per-record results) as a :class:`SendResult`."""
    reasons: Counter[str] = Counter(
        f"rejected: {r.get('reason')}" for r in body.get("results", []) if r.get("status") == "rejected"
    )
    return SendResult(
        accepted=int(body["accepted"]),
        duplicate=int(body["duplicate"]),
        rejected=int(body["rejected"]),
        reasons=reasons,
    )


KMH_PER_KNOT: Final = 1.852  # exact: one international nautical mile (1852 m) per hour


def osmand_query(key: str, record: TelemetryRecord) -> dict[str, str] | None:
    """The query a phone in the car would send for this record; None if the record has no position.

    Only what a phone knows: its GPS fix (position, speed in knots as Traccar Client sends it, bearing,
    altitude, HDOP as OsmAnd's ``{hdop}``) and its time in epoch ms (OsmAnd's ``{timestamp}``), never
    the car's own signals (SoC, gear, pack).
    """
    if record.lat_deg is None or record.lon_deg is None:
        return None
    query = {
        "id": key,
        "timestamp": str(record.ts_ms),
        "lat": repr(record.lat_deg),
        "lon": repr(record.lon_deg),
    }
    if record.speed_kmh is not None:
        query["speed"] = repr(record.speed_kmh / KMH_PER_KNOT)
    if record.heading_deg is not None:
        query["bearing"] = repr(record.heading_deg)
    if record.altitude_m is not None:
        query["altitude"] = repr(record.altitude_m)
    if record.gps_hdop is not None:
        query["hdop"] = repr(record.gps_hdop)
    return query


class OsmAndSender:
    """Reports each record's fix as ``GET /osmand?id=KEY&...``, one request per fix, as the phone apps do.

    The server must read ``speed`` as knots (``MICROFLEET_OSMAND_SPEED_UNIT=kn``, the default).
    """

    def __init__(
        self,
        base_url: str,
        keys: Mapping[str, str],
        *,
        timeout_s: float = 30.0,
        client: httpx.Client | None = None,
    ) -> None:
        """Prepare a keep-alive client for ``base_url`` with one tracker key per vehicle id."""
        self._keys = dict(keys)
        self._client = client or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s)
        self.refused_credentials: dict[str, str] = {}

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def send(self, vehicle_id: str, records: Sequence[TelemetryRecord]) -> SendResult:
        """Report every record that has a position; count the others as skipped."""
        total = SendResult()
        for record in records:
            key = self._keys.get(vehicle_id)
            query = osmand_query(key, record) if key is not None else None
            if key is None or vehicle_id in self.refused_credentials:
                reason = self.refused_credentials.get(vehicle_id, "no tracker key for this vehicle")
                total.add(SendResult(failed=1, reasons=Counter({f"not sent: {reason}": 1})))
            elif query is None:
                total.add(
                    SendResult(
                        skipped=1, reasons=Counter({"not sent: a phone reports no record without a fix": 1})
                    )
                )
            else:
                total.add(self._get(vehicle_id, query))
        return total

    def _get(self, vehicle_id: str, query: dict[str, str]) -> SendResult:
        last_error = ""
        for attempt in range(RETRIES):
            try:
                response = self._client.get("/osmand", params=query)
            except httpx.TransportError as exc:
                last_error = f"transport error: {exc.__class__.__name__}"
            else:
                if response.status_code == 200:
                    return verdicts(response.json())
                if response.status_code == 401:
                    refusal = f"tracker key refused (401): {_message(response)}"
                    self.refused_credentials[vehicle_id] = refusal
                    return SendResult(failed=1, reasons=Counter({refusal: 1}))
                if response.status_code < 500:
                    reason = f"report refused ({response.status_code}): {_message(response)}"
                    return SendResult(rejected=1, reasons=Counter({reason: 1}))
                last_error = f"server error {response.status_code}"
            time.sleep(BACKOFF_S * (2**attempt))
        return SendResult(failed=1, reasons=Counter({f"gave up after {RETRIES} tries: {last_error}": 1}))
