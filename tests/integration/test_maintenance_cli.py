"""``microfleet maintenance VEHICLE --evaluate`` and ``microfleet service-plan FLEET`` as an administrator
runs them: a car with a leaking tyre and no cell voltages, its detectors' answers, its place in the week."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import pytest

from microfleet.bootstrap import build_services
from microfleet.domain.telemetry import TelemetryRecord
from microfleet.settings import Settings
from tests.e2e.command import microfleet

DAY_MS = 86_400_000


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "m.db"
    services = build_services(Settings(database_url=f"sqlite:///{path}"))
    services.admin.add_fleet("f1", "Fleet one")
    services.admin.add_vehicle("car-a", fleet_id="f1")
    now_ms = time.time_ns() // 1_000_000  # the command runs on the wall clock
    t0 = now_ms - 6 * DAY_MS
    records = [
        TelemetryRecord(
            vehicle_id="car-a", ts_ms=t0 + i * 600_000, speed_kmh=0.0, ignition_on=False, ambient_temp_c=12.0,
            tyre_pressure_kpa=[250.0, 250.0, 250.0, round(250.0 - max(0.0, i / 144 - 4) * 12.0)],
        )
        for i in range(6 * 144 - 1)
    ]  # fmt: skip
    services.ingest.ingest(
        msgspec.json.encode(records),
        "application/json",
        credential_vehicle_id="car-a",
        source="t",
        now_ms=now_ms,
    )
    services.close()
    return path


def test_a_cars_detectors_and_the_fleets_week_from_the_terminal(db: Path) -> None:
    before = microfleet("maintenance", "car-a", db=db)
    assert before.returncode == 0 and "not evaluated" in before.stdout
    out = microfleet("maintenance", "car-a", "--evaluate", db=db)
    assert out.returncode == 0, out.stdout
    text = " ".join(out.stdout.split())  # Rich wraps long cells
    assert "rear right tyre is losing" in text
    assert "no cell_balance detector" in text and "no 12v_battery detector" in text
    plan = microfleet("service-plan", "f1", db=db)
    assert plan.returncode == 0, plan.stdout
    assert "car-a" in plan.stdout and "rear right tyre" in " ".join(plan.stdout.split())
    missing = microfleet("maintenance", "car-z", db=db)
    assert missing.returncode == 2 and "car-z" in missing.stdout
