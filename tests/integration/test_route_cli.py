"""``microfleet route FROM TO`` on a real SQLite store: both routes, the trade-off, bad points refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from microfleet.bootstrap import build_services
from microfleet.settings import Settings
from tests.e2e.command import microfleet


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "m.db"
    services = build_services(Settings(database_url=f"sqlite:///{path}"))
    services.admin.add_vehicle("mini-1", model_id="wuling-hongguang-mini-ev-gen1-14kwh")
    services.close()
    return path


def test_route_from_the_terminal(db: Path) -> None:
    ran = microfleet(
        "route", "31.2304,121.4737", "31.2400,121.4900", "--vehicle", "mini-1", "--soc-pct", "60",
        "--ambient-c", "5", "--hour", "8", db=db,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout
    assert "energy-optimal" in ran.stdout and "fastest" in ran.stdout
    assert "extra minutes" in ran.stdout
    # no drives yet: the car's catalogue prior, saying how many drives it needs
    assert (
        "needs 10 more drives" in ran.stdout and "catalogue prior of wuling-hongguang-mini-ev" in ran.stdout
    )
    assert "makes it there and back" in ran.stdout
    off = microfleet("route", "31.2304,121.4737", "39.9042,116.4074", db=db)
    assert off.returncode == 2 and "off the map" in off.stdout
    bad = microfleet("route", "north", "31.2400,121.4900", db=db)
    assert bad.returncode == 2 and "lat,lon" in bad.stdout
