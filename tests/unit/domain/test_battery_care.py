"""Battery care advice: each item fires on the car's own numbers, and the planner's bounds."""

from __future__ import annotations

from microfleet.domain.battery_care import advise, charge_bounds, drive_temperatures
from tests.unit.intelligence.battery_history import DAY_MS, T0_MS, charge, drive

NOW = T0_MS + 30 * DAY_MS


def codes(items: list) -> list[str]:
    return [a.code for a in items]


def test_lfp_without_a_full_charge_this_week_is_told_to_charge_to_100() -> None:
    charges = [charge(10, 30, 100, 8.0), charge(25, 30, 80, 6.0)]
    items = advise("LFP", charges, [], NOW)
    assert codes(items) == ["lfp_full_charge"]
    assert items[0].numbers["days_since_full_charge"] is not None
    assert charge_bounds("LFP", charges, NOW).full_charge_due
    charges.append(charge(28, 40, 100, 8.0))
    assert "lfp_full_charge" not in codes(advise("LFP", charges, [], NOW))
    assert not charge_bounds("LFP", charges, NOW).full_charge_due


def test_nmc_dwell_at_full_and_deep_discharge() -> None:
    charges = [charge(d, 5, 100, 20.0, idle_s=10 * 3600) for d in (5, 10, 15, 20, 25)]
    got = codes(advise("NMC", charges, [], NOW))
    assert "nmc_dwell_at_full" in got
    assert "nmc_deep_discharge" in got
    assert charge_bounds("NMC", charges, NOW).target_high_pct == 80.0


def test_heat_and_dc_exposure() -> None:
    drives = [drive(d, 20, 2, 38.0 if d % 2 else 20.0) for d in range(5, 29)]
    charges = [charge(d, 30, 80, 10.0, kind="DC") for d in (10, 20)] + [charge(15, 30, 80, 5.0)]
    got = codes(advise("NMC", charges, drive_temperatures(drives), NOW))
    assert "heat_exposure" in got
    assert "dc_fast_charging" in got
    assert advise("LFP", [charge(25, 30, 80, 6.0)], [], NOW)[0].numbers["days_since_full_charge"] is None
    assert advise("LFP", [], [], NOW) == []  # no charges seen: no advice made up
