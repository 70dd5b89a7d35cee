"""``microfleet charging add-site / add-charge-point`` and ``microfleet plan FLEET`` as an administrator runs
them: a site and a charger registered, a plan printed as a table that names each car's charging window and
its booking's SoC, and a bad input refused with the input named."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from microfleet.bootstrap import build_services
from microfleet.domain.access import Role
from microfleet.settings import Settings
from tests.e2e.command import microfleet


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "m.db"
    services = build_services(Settings(database_url=f"sqlite:///{path}"))
    services.admin.add_fleet("f1", "Fleet one")
    services.admin.add_user("d1", Role.DRIVER, "f1")
    now_ms = time.time_ns() // 1_000_000  # the command runs on the wall clock
    services.admin.add_vehicle("car-a", model_id="wuling-hongguang-mini-ev-gen1-14kwh", fleet_id="f1")
    body = json.dumps([{"vehicle_id": "car-a", "ts_ms": now_ms - 60_000, "soc_pct": 10.0}]).encode()
    services.ingest.ingest(body, "application/json", credential_vehicle_id="car-a", source="t", now_ms=now_ms)
    services.bookings.create("car-a", "d1", now_ms + 3 * 3_600_000, now_ms + 5 * 3_600_000)
    services.close()
    return path


def test_a_fleet_plan_from_the_terminal(db: Path) -> None:
    no_site = microfleet("plan", "f1", db=db)
    assert no_site.returncode == 2 and "fleet f1 has no charging site" in no_site.stdout
    zero = microfleet("charging", "add-site", "f1", "depot", "--limit-kw", "0", db=db)
    assert zero.returncode == 2 and "power_limit_kw 0.0" in zero.stdout
    site = microfleet("charging", "add-site", "f1", "depot", "--limit-kw", "11", db=db)
    assert site.returncode == 0 and "site depot of f1: 11 kW" in site.stdout
    point = microfleet(
        "charging", "add-charge-point", "depot", "cp-1", "--max-kw", "7.4", "--phases", "1", db=db
    )
    assert point.returncode == 0 and "OCPP password (shown once)" in point.stdout
    planned = microfleet("plan", "f1", db=db)
    assert planned.returncode == 0, planned.stdout
    out = planned.stdout
    assert "Charging plan 1 of f1 (cli" in out
    # car-a is not plugged in: the plan says so, and that its booking falls short
    assert "car-a" in out and "not plugged in" in out
    again = microfleet("plan", "f1", "--now", db=db)
    assert again.returncode == 0 and "Charging plan 1 of f1" in again.stdout  # same inputs: the same plan
