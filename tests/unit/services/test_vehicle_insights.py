"""A car's SoH trend, parked drain and charging costs, from stored state and derived history (fakes)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from microfleet.domain.charges import ChargeSession
from microfleet.domain.summaries import Period
from microfleet.errors import InvalidInputError
from microfleet.intelligence import range_model as rm
from microfleet.services.battery import ModelFacts, StoredBattery
from microfleet.services.vehicle_insights import VehicleInsightsService
from tests.unit.intelligence.battery_history import charge

DAY_MS = 86_400_000
H_MS = 3_600_000
SHANGHAI = ZoneInfo("Asia/Shanghai")
YEAR_2026 = (1_767_225_600_000, 1_767_225_600_000 + 365 * DAY_MS)


class Fakes:
    def __init__(self) -> None:
        self.stored: StoredBattery | None = None
        self.drain_rows: list[dict[str, Any]] = []
        self.charge_rows: list[ChargeSession] = []
        self.new_kwh: float | None = 25.0

    def get(self, vehicle_id: str) -> StoredBattery | None:
        return self.stored

    def model_of(self, vehicle_id: str) -> str | None:
        return "model-x"

    def drains(self, vehicle_id: str, from_ms: int, to_ms: int, limit: int) -> list[dict[str, Any]]:
        return [r for r in self.drain_rows if from_ms <= r["start_ts_ms"] < to_ms]

    def charges(self, vehicle_id: str, from_ms: int, to_ms: int, limit: int) -> list[ChargeSession]:
        return [c for c in self.charge_rows if from_ms <= c.start_ts_ms < to_ms]

    def facts(self, model_id: str | None) -> ModelFacts:
        assert model_id == "model-x"
        return ModelFacts("NMC", self.new_kwh, 96, rm.PriorCurve((0.0,), (100.0,)))


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def service(fakes: Fakes) -> VehicleInsightsService:
    return VehicleInsightsService(fakes, fakes, fakes.facts)


def _stored(state: dict[str, Any]) -> StoredBattery:
    return StoredBattery("car", "battery-1", 1_000, 0, 900, 8, 8, state)


def test_battery_history_says_why_until_the_refit_stored_a_trend(
    fakes: Fakes, service: VehicleInsightsService
) -> None:
    out = service.battery_history("car")
    assert (out.available, out.reason) == (
        False,
        "not fitted yet: the trend needs 5 charge sessions that measure capacity",
    )
    fakes.stored = _stored({"new_usable_kwh": 25.0, "soh": {"soh_pct": 95.0}})
    assert (
        service.battery_history("car").reason
        == "fitted before the trend was kept: it appears after the car's next refit"
    )
    fakes.stored = _stored({"new_usable_kwh": 25.0, "soh": {"soh_pct": None, "sessions_needed": 3},
                            "soh_history": [], "capacity_points": [{"ts_ms": 5}]})  # fmt: skip
    out = service.battery_history("car")
    assert out.reason is not None and out.reason.startswith("not enough data yet: 3 more charge sessions")
    assert out.measurements == [{"ts_ms": 5}]
    fakes.stored = _stored({"new_usable_kwh": None, "soh": None, "soh_history": []})
    assert (
        service.battery_history("car").reason
        == "the car's model has no known capacity when new: no SoH without a reference"
    )


def test_battery_history_serves_the_stored_points_and_forecast(
    fakes: Fakes, service: VehicleInsightsService
) -> None:
    point = {"ts_ms": 7, "soh_pct": 93.0, "band_low_pct": 92.0, "band_high_pct": 94.0, "capacity_kwh": 23.25,
             "sessions_used": 6}  # fmt: skip
    soh = {"soh_pct": 92.5, "fade_pct_per_year": -2.5, "fade_sigma_pct_per_year": 0.4, "eol_ts_ms": 99}
    fakes.stored = _stored(
        {"new_usable_kwh": 25.0, "soh": soh, "soh_history": [point], "capacity_points": []}
    )
    out = service.battery_history("car")
    assert out.available and out.reason is None
    assert out.estimates == [point]
    assert (out.soh_pct, out.fade_pct_per_year, out.eol_ts_ms, out.end_of_life_pct) == (92.5, -2.5, 99, 80.0)
    assert (out.model_version, out.fitted_at_ms, out.new_usable_kwh) == ("battery-1", 1_000, 25.0)


def _drain(
    start_h: float, hours: float, energy_kwh: float, asleep: bool, flagged: bool = False
) -> dict[str, Any]:
    start = int(start_h * H_MS)
    end = start + int(hours * H_MS)
    return {"vehicle_id": "car", "start_ts_ms": start, "end_ts_ms": end, "asleep": asleep,
            "energy_kwh": energy_kwh, "drain_w": energy_kwh * 1000 / hours, "flagged": flagged}  # fmt: skip


def test_parked_drain_per_day_per_spell_and_over_all_parked_time(
    fakes: Fakes, service: VehicleInsightsService
) -> None:
    fakes.drain_rows = [_drain(0, 10, 0.5, True), _drain(20, 2, 0.4, False), _drain(30, 12, 2.4, True, True)]
    out = service.parked_drain("car", 0, 100 * H_MS)
    # 0.5 kWh in 10 h is 50 W, i.e. 1.2 kWh a day; of the catalogue's 25 kWh new, 4.8 % a day
    first = out.spells[0]
    assert (first.drain_w, first.kwh_per_day, first.soc_pct_per_day) == pytest.approx((50.0, 1.2, 4.8))
    assert (out.usable_kwh, out.usable_basis) == (25.0, "catalogue")
    assert out.parked_h == pytest.approx(24.0)
    assert out.energy_kwh == pytest.approx(3.3)
    assert out.kwh_per_day == pytest.approx(3.3)  # 3.3 kWh over exactly one parked day
    assert out.soc_pct_per_day == pytest.approx(13.2)
    assert (out.median_asleep_w, out.median_awake_w, out.flagged) == pytest.approx((125.0, 200.0, 1))
    # a fitted capacity (a worn pack) is the basis once there is one
    fakes.stored = _stored({"soh": {"capacity_kwh": 20.0}})
    out = service.parked_drain("car", 0, 100 * H_MS)
    assert (out.usable_basis, out.spells[0].soc_pct_per_day) == ("fitted", pytest.approx(6.0))
    # the window selects by start; an unknown capacity gives kWh but no SoC points
    fakes.stored, fakes.new_kwh = None, None
    out = service.parked_drain("car", 15 * H_MS, 25 * H_MS)
    assert [s.start_ts_ms for s in out.spells] == [20 * H_MS]
    assert (out.soc_pct_per_day, out.spells[0].soc_pct_per_day, out.usable_basis) == (None, None, None)


def test_parked_drain_with_no_spell_is_empty_not_zero(service: VehicleInsightsService) -> None:
    out = service.parked_drain("car", 0, DAY_MS)
    assert (out.spells, out.kwh_per_day, out.median_asleep_w, out.parked_h) == ([], None, None, 0.0)
    with pytest.raises(InvalidInputError):
        service.parked_drain("car", DAY_MS, 0)
    with pytest.raises(InvalidInputError):
        service.parked_drain("car", 0, 800 * DAY_MS)


def _costed(
    local: dt.datetime, kwh: float, cost: float | None, currency: str | None, grid: float | None = None
) -> ChargeSession:
    start = int(local.timestamp() * 1000)
    c = charge(0, 20, 80, kwh)
    tariff = None if cost is None else f"t-{currency}"
    return dataclasses.replace(
        c, start_ts_ms=start, power_end_ts_ms=start + H_MS, end_ts_ms=start + H_MS, cost=cost,
        currency=currency, tariff_id=tariff, energy_grid_kwh=grid,
    )  # fmt: skip


def test_costs_per_local_week_with_uncosted_sessions_apart(
    fakes: Fakes, service: VehicleInsightsService
) -> None:
    sun_late = dt.datetime(2026, 3, 1, 23, 30, tzinfo=SHANGHAI)  # a Sunday: in UTC still Sunday afternoon
    mon = dt.datetime(2026, 3, 2, 1, 0, tzinfo=SHANGHAI)  # in UTC still Sunday, 17:00
    fakes.charge_rows = [
        _costed(sun_late, 10.0, 3.0, "CNY", grid=11.0),
        _costed(mon, 5.0, 1.5, "CNY"),
        _costed(mon + dt.timedelta(hours=5), 4.0, None, None),  # at a place without a tariff
        _costed(mon + dt.timedelta(days=1), 2.0, 0.8, "EUR"),
    ]
    out = service.charging_costs("car", Period.WEEK, *YEAR_2026, SHANGHAI)
    assert [p.period_start for p in out.periods] == [dt.date(2026, 2, 23), dt.date(2026, 3, 2)]
    first, second = out.periods
    assert (first.charges, first.costed_charges, first.energy_kwh, first.cost) == (1, 1, 11.0, {"CNY": 3.0})
    assert (second.charges, second.costed_charges) == (3, 2)
    assert (second.energy_kwh, second.costed_energy_kwh) == pytest.approx((11.0, 7.0))
    assert second.cost == pytest.approx({"CNY": 1.5, "EUR": 0.8})
    assert out.total_cost == pytest.approx({"CNY": 4.5, "EUR": 0.8})
    assert (out.charges, out.costed_charges, out.tariff_ids, out.timezone) == (
        4,
        3,
        ["t-CNY", "t-EUR"],
        "Asia/Shanghai",
    )
    # cut in UTC, Monday's early charges (Sunday in UTC) fall in the week before
    by_utc = service.charging_costs("car", Period.WEEK, *YEAR_2026, dt.UTC)
    assert [(p.period_start, p.charges) for p in by_utc.periods] == [
        (dt.date(2026, 2, 23), 3),
        (dt.date(2026, 3, 2), 1),
    ]
    # by month in UTC: the Sunday-night charge (15:30 UTC on 1 March) is March's too
    by_month = service.charging_costs("car", Period.MONTH, *YEAR_2026, dt.UTC)
    assert [p.period_start for p in by_month.periods] == [dt.date(2026, 3, 1)]
    with pytest.raises(InvalidInputError, match="by week or month"):
        service.charging_costs("car", Period.DAY, 0, DAY_MS, dt.UTC)
