"""Twin cars as OsmAnd / Traccar Client phones (issue 12 item 5): each car's fixes reach the store through
a real server's /osmand with the car's tracker key, as positions only; a record without a fix (a tunnel, on
the realistic sensors) is not reported; a revoked key is reported as refused, not retried."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import func, select

from microfleet.api import create_app
from microfleet.bootstrap import Services, build_services
from microfleet.settings import Settings
from microfleet.sim.engine import Twin
from microfleet.sim.launch import run_live_twin
from microfleet.sim.run import run_days
from microfleet.sim.scenario import Scenario, registrations
from microfleet.sim.senders import OsmAndSender, records_from_rows
from microfleet.store.schema import telemetry

# Seed 20 on the realistic sensors: one car's day, 695 records, 14 of them in a GPS dropout (no fix); one
# request per fix, as the apps send, is slow enough (~20 ms each on this shared machine) to keep it to one.
SCENARIO = Scenario(
    vehicles=1,
    days=1,
    seed=20,
    sharing_share=0.0,
    vehicle_id_prefix="otwin",
    sensor_model="realistic",
    protocol="osmand",
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Services]]:
    services = build_services(Settings(database_url=f"sqlite:///{tmp_path / 'twin.db'}"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        create_app(services.settings, services), host="127.0.0.1", port=port, log_level="warning"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", services
    srv.should_exit = True
    thread.join(timeout=10)
    services.close()


def _keys(services: Services) -> dict[str, str]:
    keys = {}
    for car in registrations(SCENARIO):
        services.admin.add_vehicle(car.vehicle_id, name=car.name, model_id=car.model_id)
        keys[car.vehicle_id] = services.tracker_keys.issue(car.vehicle_id, replace=False).key
    return keys


def test_a_twin_day_of_phones_is_stored_as_positions_once(server: tuple[str, Services]) -> None:
    url, services = server
    keys = _keys(services)
    rows = [row for day in run_days(Twin(SCENARIO)) for row in day.telemetry.to_pylist()]
    fixes = [row for row in rows if row["lat_deg"] is not None]
    result = run_live_twin(url, keys, SCENARIO, speedup=86_400 * 50)
    assert result.sent == len(rows) and result.failed == 0, result.reasons
    assert result.skipped == len(rows) - len(fixes) > 0
    assert result.accepted + result.duplicate + result.rejected == len(fixes)
    with services.engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(telemetry)).scalar_one()
        car_signals = conn.execute(
            select(func.count()).select_from(telemetry).where(telemetry.c.soc_pct.is_not(None))
        ).scalar_one()
    assert stored == result.accepted == len({(r["vehicle_id"], r["ts_ms"]) for r in fixes}) - result.rejected
    assert car_signals == 0  # a phone reports its fix, never the car's SoC
    # The live run moves the day to end now: the records keep their order, not their times.
    first_moving = next(i for i, r in enumerate(sorted(fixes, key=lambda r: r["ts_ms"])) if r["speed_kmh"])
    with services.engine.connect() as conn:
        kept = conn.execute(
            select(telemetry.c.lat_deg, telemetry.c.lon_deg, telemetry.c.speed_kmh)
            .order_by(telemetry.c.ts_ms)
            .offset(first_moving)
            .limit(1)
        ).one()
    sent = sorted(fixes, key=lambda r: r["ts_ms"])[first_moving]
    assert (kept.lat_deg, kept.lon_deg) == (sent["lat_deg"], sent["lon_deg"])
    assert kept.speed_kmh == pytest.approx(sent["speed_kmh"], rel=1e-9)  # to knots and back


def test_a_revoked_key_is_reported_not_retried(server: tuple[str, Services]) -> None:
    url, services = server
    keys = _keys(services)
    victim = sorted(keys)[0]
    services.tracker_keys.revoke(victim)
    day = next(run_days(Twin(SCENARIO)))
    rows = [r for r in day.telemetry.to_pylist() if r["vehicle_id"] == victim and r["lat_deg"] is not None]
    sender = OsmAndSender(url, keys)
    try:
        first = sender.send(victim, records_from_rows(rows[:5]))
        again = sender.send(victim, records_from_rows(rows[5:10]))
    finally:
        sender.close()
    assert first.failed == 5 and first.accepted == 0
    assert any("tracker key refused (401)" in reason for reason in first.reasons), first.reasons
    assert again.failed == 5 and victim in sender.refused_credentials
    assert services.telemetry.count(victim) == 0
