"""`routes` and `forecast` as a person reads them: a commuter's routine, its insight, tomorrow's trips."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from microfleet.bootstrap import build_services
from microfleet.domain.derivation import DerivedHistory
from microfleet.settings import Settings
from microfleet.store.history import HistoryStore
from tests.e2e.command import microfleet
from tests.unit.intelligence.test_trips import commuter


def _commuter_car(db: Path) -> None:
    """Six weeks of commuting that end in the week before today (the forecast runs on the wall clock)."""
    services = build_services(Settings(database_url=f"sqlite:///{db}"))
    try:
        services.admin.add_vehicle("mini-r", name="Mini", model_id="wuling-hongguang-mini-ev-gen1-14kwh")
        today = dt.datetime.now(dt.UTC).date()
        monday = today - dt.timedelta(days=today.weekday() + 7 * 7)
        drives = [dataclasses.replace(d, vehicle_id="mini-r") for d in commuter(6, monday)]
        HistoryStore(services.engine).replace_history(
            "mini-r", drives[0].start_ts_ms, DerivedHistory([], drives, [], [], [], [])
        )
    finally:
        services.close()


def test_routes_and_forecast_of_a_commuter(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    _commuter_car(db)
    routes = microfleet("routes", "mini-r", "--tz", "Europe/Amsterdam", db=db)
    assert routes.returncode == 0, routes.stdout + routes.stderr
    assert "routine trips from 72 drives" in routes.stdout
    assert "07:40" in routes.stdout and "0.50 / 0.50 / 0.60" in routes.stdout
    assert "uses 20 % more at 08:10 than at 07:40" in routes.stdout
    forecast = microfleet("forecast", "mini-r", "--tz", "Europe/Amsterdam", db=db)
    assert forecast.returncode == 0, forecast.stdout + forecast.stderr
    assert "next trips" in forecast.stdout and "SoC needed by the first departure" in forecast.stdout
    unknown = microfleet("forecast", "nobody", db=db)
    assert unknown.returncode == 2 and "error (not_found)" in unknown.stdout
    bad_tz = microfleet("routes", "mini-r", "--tz", "Mars/Olympus", db=db)
    assert bad_tz.returncode == 2
