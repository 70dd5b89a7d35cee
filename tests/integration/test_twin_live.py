"""A twin fleet's day reaches the store through the real HTTP endpoint; every record is accounted for."""

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
from microfleet.sim.launch import demo_registrations, run_live_twin
from microfleet.sim.run import run_days
from microfleet.sim.scenario import FaultRates, LinkFaults, Scenario
from microfleet.sim.senders import HttpSender, records_from_rows
from microfleet.store.schema import telemetry


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Services]]:
    services = build_services(Settings(database_url=f"sqlite:///{tmp_path / 'twin.db'}"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        create_app(services.settings, services),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
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


SCENARIO = Scenario(
    vehicles=6,
    days=1,
    seed=11,
    sharing_share=0.34,
    fault_rates=FaultRates(tyre_slow_leak=200, gps_glitch=200),
    link=LinkFaults(drop_p=0.02, duplicate_p=0.05, delay_p=0.05, delay_max_s=300),
    vehicle_id_prefix="itwin",
)


def test_a_twin_day_reaches_the_store_and_every_record_is_accounted_for(server: tuple[str, Services]) -> None:
    url, services = server
    tokens = {
        r.vehicle_id: services.admin.add_vehicle(r.vehicle_id, name=r.name, model_id=r.model_id)
        for r in demo_registrations(SCENARIO)
    }
    expected_sent = sum(day.telemetry.num_rows for day in run_days(Twin(SCENARIO)))
    result = run_live_twin(url, tokens, SCENARIO, speedup=86_400 * 50)
    assert result.sent == expected_sent
    assert result.failed == 0
    assert result.accepted + result.duplicate + result.rejected == expected_sent
    assert result.duplicate > 0  # the link duplicated messages and the server saw them as duplicates
    with services.engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(telemetry)).scalar_one()
    assert stored == result.accepted


def test_a_refused_credential_is_reported_not_retried(server: tuple[str, Services]) -> None:
    url, services = server
    regs = demo_registrations(SCENARIO)
    tokens = {r.vehicle_id: services.admin.add_vehicle(r.vehicle_id) for r in regs}
    victim = regs[0].vehicle_id
    tokens[victim] = "mfd_not-a-real-token"
    sender = HttpSender(url, tokens)
    twin_day = next(run_days(Twin(SCENARIO)))
    rows = [r for r in twin_day.telemetry.slice(0, 3000).to_pylist() if r["vehicle_id"] == victim]
    first = sender.send(victim, records_from_rows(rows))
    again = sender.send(victim, records_from_rows(rows))
    sender.close()
    assert first.failed == len(rows) and first.accepted == 0
    assert any("credential refused (401)" in reason for reason in first.reasons)
    assert again.failed == len(rows)
    assert victim in sender.refused_credentials
