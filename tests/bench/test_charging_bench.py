"""bench/charging.py's rolling horizon: the same terminal rule and the same demand charge as the optimum."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

import charging as bench


@pytest.fixture(scope="module")
def small() -> tuple[bench.Scenario, np.ndarray]:
    sc = bench.make_scenario(6, 1, 1, np.random.default_rng(3))
    start = dt.datetime(2026, 6, 1, bench.START_HOUR, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    prices, _ = bench.cn_prices(start, 2 * bench.DAY)
    return sc, prices


def test_the_rolling_plan_ends_the_period_as_full_as_the_optimum_must(
    small: tuple[bench.Scenario, np.ndarray],
) -> None:
    # The last day's horizon stops at the period's end, where every car should hold end_min_frac (0.9) of
    # its capacity - the optimum's terminal rule. With a horizon of 24 h past the end the fleet ended emptier.
    sc, prices = small
    carbon = np.zeros(2 * bench.DAY)
    power, _, replans = bench.rolling(sc, prices, carbon, "microfleet", "CNY", 0.0)
    week = bench.week_snapshot(sc, prices[: sc.n_slots], carbon[: sc.n_slots], "CNY", 0.0)
    scored = bench.score(week, power, "microfleet")
    capacity = sum(c.capacity_kwh for c in sc.cars)
    assert replans > 0
    assert scored["bookings served share"] == 1.0
    assert scored["end energy kwh"] >= bench.CARE.end_min_frac * capacity - 1e-3


def test_a_demand_charge_is_planned_with_and_scored_apart(small: tuple[bench.Scenario, np.ndarray]) -> None:
    sc, prices = small
    carbon = np.zeros(2 * bench.DAY)
    plain = bench.score(
        bench.week_snapshot(sc, prices[: sc.n_slots], carbon[: sc.n_slots], "CNY", 0.0),
        bench.rolling(sc, prices, carbon, "microfleet", "CNY", 0.0)[0],
        "microfleet",
    )
    week = bench.week_snapshot(sc, prices[: sc.n_slots], carbon[: sc.n_slots], "CNY", 5.0)
    charged = bench.score(week, bench.rolling(sc, prices, carbon, "microfleet", "CNY", 5.0)[0], "microfleet")
    assert plain["demand cost"] == 0.0
    assert charged["demand cost"] == pytest.approx(5.0 * charged["peak kw"])
    # at 5 CNY per kW of the period's peak the planner flattens what the valley's price alone would stack
    assert charged["peak kw"] < plain["peak kw"]
    assert charged["energy cost unadjusted"] >= plain["energy cost unadjusted"] - 1e-6
