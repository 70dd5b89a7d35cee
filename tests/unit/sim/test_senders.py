"""What a twin car's phone would report to /osmand: only its fix, in the units Traccar Client sends."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from microfleet.domain.telemetry import TelemetryRecord
from microfleet.ingest.osmand import decode_query
from microfleet.sim.senders import SendResult, osmand_query


def test_a_record_becomes_the_fix_a_phone_reports_and_decodes_back() -> None:
    record = TelemetryRecord(
        vehicle_id="twin-own-00000",
        ts_ms=1_796_300_000_123,
        lat_deg=31.2304,
        lon_deg=121.4737,
        speed_kmh=37.04,
        heading_deg=271.5,
        gps_hdop=1.3,
        soc_pct=64.0,
        gear="D",
    )
    query = osmand_query("mft_key", record)
    assert query is not None
    assert query["speed"] == repr(37.04 / 1.852)  # knots: 20 kn, Traccar Client's unit
    assert "soc" not in urlencode(query) and "gear" not in query  # a phone knows no car signal
    fix = decode_query(urlencode(query))  # Microfleet's own decoder, knots by default
    assert fix.key == "mft_key" and fix.ts_ms == record.ts_ms and fix.refused is None
    assert fix.signals == {
        "lat_deg": 31.2304,
        "lon_deg": 121.4737,
        "speed_kmh": pytest.approx(37.04, rel=1e-12),
        "heading_deg": 271.5,
        "gps_hdop": 1.3,
    }


def test_a_record_without_a_fix_is_not_a_report() -> None:
    assert (
        osmand_query("mft_key", TelemetryRecord(vehicle_id="v", ts_ms=1_796_300_000_000, soc_pct=5.0)) is None
    )


def test_skipped_records_count_as_sent() -> None:
    total = SendResult(accepted=2)
    total.add(SendResult(skipped=3, failed=1))
    assert (total.sent, total.skipped) == (6, 3)
