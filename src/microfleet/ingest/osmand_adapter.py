"""OsmAnd / Traccar Client reports into the store: key to vehicle, fix to record, record to ingest.

The API route (``/osmand``) reads the request within the size limit; this adapter decodes it
(:mod:`microfleet.ingest.osmand`), resolves the tracker key to its vehicle (an unknown or revoked key is
refused and throttled, never stored: it belongs to nobody), and hands the record to
:meth:`IngestService.ingest_batch` under that vehicle's credential, as HTTP telemetry: stored exactly once,
or quarantined with source ``osmand ...`` and a reason. Every outcome is logged and counted.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

from microfleet.errors import AuthenticationError, InvalidInputError, TooManyRequestsError
from microfleet.ingest.osmand import OsmAndFix, SpeedUnit, decode_json, decode_query, to_batch
from microfleet.services.ingest import IngestReport, IngestService
from microfleet.services.tracker_keys import TrackerKeyService

log = logging.getLogger(__name__)


class OsmAndAdapter:
    """Phone position reports in, per-record verdicts out; ``counts`` tallies outcomes since start."""

    def __init__(self, ingest: IngestService, keys: TrackerKeyService, *, speed_unit: SpeedUnit) -> None:
        self._ingest = ingest
        self._keys = keys
        self._speed_unit = speed_unit
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()  # "accepted", "duplicate", "rejected <reason>", "refused <why>"

    def receive_query(self, query: str, *, client_host: str, now_ms: int) -> IngestReport:
        """Ingest a query-string report (GET, or a form body)."""
        return self._receive(decode_query(query, speed_unit=self._speed_unit), client_host, now_ms)

    def receive_json(self, body: bytes, *, client_host: str, now_ms: int) -> IngestReport:
        """Ingest a JSON report; a body that is not JSON names no key and is refused (422), not stored."""
        fix = decode_json(body)
        if fix.key is None and fix.refused is not None:
            self._count("refused unreadable body")
            log.warning("osmand: refused a request from %s: %s", client_host, fix.refused[1])
            raise InvalidInputError(f"the body is not an OsmAnd JSON report: {fix.refused[1]}")
        return self._receive(fix, client_host, now_ms)

    def _receive(self, fix: OsmAndFix, client_host: str, now_ms: int) -> IngestReport:
        try:
            vehicle_id = self._keys.authenticate(fix.key, client_host)
        except (AuthenticationError, TooManyRequestsError):
            self._count("refused unknown key" if fix.key else "refused no key")
            raise
        report = self._ingest.ingest_batch(
            to_batch(fix, vehicle_id, received_at_ms=now_ms),
            credential_vehicle_id=vehicle_id,
            source=f"osmand {client_host} vehicle {vehicle_id}",
            now_ms=now_ms,
        )
        for result in report.results:
            outcome = result.status if result.reason is None else f"{result.status} {result.reason}"
            self._count(outcome)
            if result.status == "rejected":
                log.warning("osmand: vehicle %s: %s (%s)", vehicle_id, result.reason, result.detail)
        return report

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.counts[outcome] += 1
