"""``microfleet alerts`` as an installer uses it: a rule, a channel, one evaluation, the alert, ack."""

from __future__ import annotations

import http.server
import json
import threading
import time
from pathlib import Path
from typing import Any

import msgspec

from microfleet.bootstrap import build_services
from microfleet.domain.telemetry import TelemetryRecord
from microfleet.settings import Settings
from tests.e2e.command import microfleet, microfleet_process
from tests.integration.mqtt_broker import free_port


def _send(db: Path, vehicle_id: str, **signals: Any) -> None:
    now_ms = time.time_ns() // 1_000_000
    record = TelemetryRecord(vehicle_id=vehicle_id, ts_ms=now_ms - 60_000, **signals)
    services = build_services(Settings(database_url=f"sqlite:///{db}"))
    try:
        report = services.ingest.ingest(
            msgspec.json.encode([record]),
            "application/json",
            credential_vehicle_id=vehicle_id,
            source="test",
            now_ms=now_ms,
        )
        assert report.accepted == 1, report
    finally:
        services.close()


def test_a_rule_a_webhook_one_evaluation_then_the_alert_acknowledged(tmp_path: Path) -> None:
    got: list[dict[str, Any]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    db = tmp_path / "a.db"
    try:
        assert microfleet("admin", "add-vehicle", "mini-7", db=db).returncode == 0
        assert microfleet("admin", "add-user", "ann", db=db).returncode == 0
        assert microfleet("admin", "grant", "mini-7", "--user", "ann", db=db).returncode == 0
        rule = microfleet(
            "alerts", "rules", "add", "soc_low", "--param", "below_pct=25", "--vehicle", "mini-7", db=db
        )
        assert rule.returncode == 0 and "alert rule 1 (soc_low) added for vehicle" in rule.stdout, rule.stdout
        hook = f"json://127.0.0.1:{server.server_address[1]}/hook"
        down = f"json://127.0.0.1:{free_port()}/down"
        for url in (hook, down):
            added = microfleet("alerts", "subscriptions", "add", "ann", url, db=db)
            assert added.returncode == 0, added.stdout
        assert "json://127.0.0.1" in microfleet("alerts", "subscriptions", "list", db=db).stdout
        _send(db, "mini-7", soc_pct=18.0)

        ran = microfleet("alerts", "evaluate", db=db)
        assert ran.returncode == 0, ran.stdout
        assert "1 alert(s) raised" in ran.stdout and "2 sent, 1 to retry" in ran.stdout  # hook + live feed
        assert len(got) == 1 and "Battery low: mini-7" in got[0]["title"]
        listed = microfleet("alerts", db=db).stdout
        assert "mini-7" in listed and "soc_low" in listed and "raised" in listed and "18 %" in listed
        failing = microfleet("alerts", "deliveries", "--failing", db=db).stdout
        assert "apprise" in failing and "Connection" in failing and "/hook" not in failing

        again = microfleet("alerts", "evaluate", db=db)  # the condition holds on: no second alert, no message
        assert "0 alert(s) raised" in again.stdout and len(got) == 1
        acked = microfleet("alerts", "ack", "1", db=db)
        assert acked.returncode == 0 and "is acknowledged" in acked.stdout
        assert "acknowledged" in microfleet("alerts", "--status", "acknowledged", db=db).stdout
        deleted = microfleet("alerts", "rules", "delete", "1", db=db)
        assert "1 open alert(s) resolved" in deleted.stdout
    finally:
        server.shutdown()
        server.server_close()


def test_bad_input_gets_a_clear_refusal(tmp_path: Path) -> None:
    db = tmp_path / "b.db"
    assert microfleet("admin", "add-user", "ann", db=db).returncode == 0
    unknown = microfleet("alerts", "rules", "add", "flat_tyre", db=db)
    assert unknown.returncode == 2 and "a kind is one of left_unlocked" in unknown.stdout
    bounds = microfleet("alerts", "rules", "add", "soc_low", "--param", "below_pct=150", db=db)
    assert bounds.returncode == 2 and "below_pct must be within 1 … 99" in bounds.stdout
    url = microfleet("alerts", "subscriptions", "add", "ann", "nosuchscheme://x", db=db)
    assert url.returncode == 2 and "no notification channel takes this URL" in url.stdout
    quiet = microfleet(
        "alerts", "subscriptions", "add", "ann", "json://127.0.0.1/x", "--quiet", "22-7", db=db
    )
    assert quiet.returncode == 2 and "is not HH:MM" in quiet.stdout
    missing = microfleet("alerts", "ack", "99", db=db)
    assert missing.returncode == 2 and "alert 99 does not exist" in missing.stdout


def test_alerts_runs_as_its_own_process(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    ran = microfleet_process("alerts", db=db)
    assert ran.returncode == 0 and "Alerts" in ran.stdout, ran.stdout + ran.stderr
