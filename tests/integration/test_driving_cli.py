"""``microfleet driver-scores FLEET`` as an administrator runs it: the fleet's drivers, or why not."""

from __future__ import annotations

from pathlib import Path

from microfleet.bootstrap import build_services
from microfleet.settings import Settings
from tests.e2e.command import microfleet


def test_driver_scores_of_a_fleet_and_of_an_unknown_one(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    services = build_services(Settings(database_url=f"sqlite:///{path}"))
    services.admin.add_fleet("city", "City sharing")
    services.admin.add_vehicle("car-1", fleet_id="city")
    services.close()
    shown = microfleet("driver-scores", "city", "--days", "7", db=path)
    assert shown.returncode == 0, shown.stdout
    assert "Driver scores of city (0 drives outside any booking)" in shown.stdout
    unknown = microfleet("driver-scores", "nowhere", db=path)
    assert unknown.returncode == 2 and "fleet 'nowhere' does not exist" in unknown.stdout
    too_long = microfleet("driver-scores", "city", "--days", "91", db=path)
    assert too_long.returncode == 2
