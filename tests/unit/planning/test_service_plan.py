"""Service planning worked by hand: interval items by days and km, the week's least-disruptive slots."""

from __future__ import annotations

import pytest

from microfleet.planning.service_plan import (
    CarState,
    ConditionItem,
    Interval,
    LastService,
    due_items,
    plan_week,
)

DAY = 86_400_000
HOUR = 3_600_000
MON = 1_767_571_200_000  # 2026-01-05T00:00:00Z, a Monday
NOW = MON + 7 * HOUR


def test_interval_due_by_days_and_by_km_whichever_first() -> None:
    car = CarState("c1", 10_900.0, MON - 400 * DAY, {"inspection": LastService(MON - 300 * DAY, 1_000.0)})
    (item,) = due_items(car, [Interval("inspection", 10_000.0, 365.0)], NOW)
    assert item.due_in_km == pytest.approx(100.0)  # 10,000 km after 1,000, now at 10,900
    assert item.due_in_days == pytest.approx(65.0 - 7 / 24)
    assert item.pressing  # 100 km left: within 500 km


def test_never_serviced_counts_from_the_first_record_and_overdue_says_so() -> None:
    car = CarState("c1", None, MON - 40 * DAY)
    (item,) = due_items(car, [Interval("tyre pressure check", None, 30.0)], MON)
    assert item.due_in_days == pytest.approx(-10.0)
    assert "overdue" in item.reason and item.severity == "warning"


def test_the_week_places_the_critical_car_first_and_around_bookings() -> None:
    leak = ConditionItem("tyre", "tyre:fl", "critical", "front left losing 8 kPa/day", "fix the tyre")
    busy = [(MON + 8 * HOUR, MON + 20 * HOUR)]  # Monday's working day is booked
    a = CarState("a", 500.0, MON - DAY, conditions=[leak], bookings=busy)
    b = CarState("b", 500.0, MON - DAY, conditions=[ConditionItem("12v_battery", "12v", "warning", "r", "x")])
    c = CarState("c", 500.0, MON - DAY)  # nothing pressing: not pulled in
    plan = plan_week([c, b, a], [], NOW)
    visits = {v.vehicle_id: v for v in plan.visits}
    assert set(visits) == {"a", "b"}
    # a's Monday is booked 08-20: its first free 3 h window is Tuesday 08:00, moving no booking
    assert visits["a"].start_ms == MON + DAY + 8 * HOUR
    assert visits["a"].disrupted_booking_min == 0
    assert visits["b"].start_ms == MON + 8 * HOUR  # the first window of the week
    assert plan.unplaced == []


def test_a_car_booked_all_week_goes_where_it_moves_the_fewest_minutes() -> None:
    week = [(MON, MON + 9 * HOUR + 30 * 60_000), (MON + 10 * HOUR, MON + 8 * DAY)]
    car = CarState("a", 0.0, MON, conditions=[ConditionItem("cell_balance", "cells", "warning", "r", "x")],
                   bookings=week)  # fmt: skip
    (visit,) = plan_week([car], [], NOW).visits
    # the only gap is 09:30-10:00 on Monday: a window over it still moves 150 of its 180 minutes
    assert visit.disrupted_booking_min == pytest.approx(150.0)
    assert MON + 7 * HOUR <= visit.start_ms <= MON + 10 * HOUR


def test_one_slot_per_window_pushes_the_second_car_later() -> None:
    cars = [
        CarState(v, 0.0, MON, conditions=[ConditionItem("gps", "gps", "warning", "r", "x")]) for v in "ab"
    ]
    plan = plan_week(cars, [], MON + 8 * HOUR, slots_per_window=1)
    starts = sorted(v.start_ms for v in plan.visits)
    assert starts == [MON + 8 * HOUR, MON + 9 * HOUR]
