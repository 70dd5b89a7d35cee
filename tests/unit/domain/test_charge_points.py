"""Charge points' pure rules: limits rounded down to 0.1; chargers and sites that cannot charge refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microfleet.domain.charge_points import (
    ChargePoint,
    check_charge_point,
    check_point_id,
    check_site_limit,
    ocpp_limit,
)
from microfleet.errors import InvalidInputError


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_an_ocpp_limit_is_a_tenth_never_above_the_plan_and_never_negative(value: float) -> None:
    limit = ocpp_limit(value)
    assert limit >= 0
    assert round(limit * 10) == pytest.approx(limit * 10, abs=1e-6)  # the schema's multipleOf 0.1
    assert limit <= max(value, 0.0) + 1e-9
    assert max(value, 0.0) - limit < 0.1 + 1e-9


def test_limits_round_down_by_tenths() -> None:
    assert [ocpp_limit(v) for v in (0.0, 0.05, 0.1, 4.44, 4.45, 4.5, 7399.99, -3)] == [
        0.0,
        0.0,
        0.1,
        4.4,
        4.4,
        4.5,
        7399.9,
        0.0,
    ]


def test_a_chargers_minimum_power_and_amps_per_kw() -> None:
    three_phase = ChargePoint("cp", "s", 1, 11.0, 6.0, 3, 230.0, True)
    assert three_phase.min_kw == pytest.approx(4.14)  # 6 A x 3 x 230 V
    assert three_phase.amps_per_kw == pytest.approx(1000 / 690)
    assert ChargePoint("cp", "s", 1, 7.4, 6.0, 1, 230.0, True).min_kw == pytest.approx(1.38)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ((0, 7.4, 6.0, 1, 230.0), "connectors"),
        ((1, 0.0, 6.0, 1, 230.0), "max_kw"),
        ((1, float("nan"), 6.0, 1, 230.0), "max_kw"),
        ((1, 7.4, 6.0, 2, 230.0), "phases"),
        ((1, 7.4, -1.0, 1, 230.0), "min_current_a"),
        ((1, 3.0, 16.0, 1, 230.0), "above max_kw"),
        ((1, 7.4, 6.0, 1, 50.0), "voltage_v"),
    ],
)
def test_a_charger_that_cannot_charge_is_refused_naming_the_input(
    args: tuple[int, float, float, int, float], named: str
) -> None:
    with pytest.raises(InvalidInputError, match=named):
        check_charge_point(*args)


def test_site_limits_and_ids() -> None:
    assert check_site_limit(50.0) == 50.0
    for bad in (0.0, -1.0, float("inf")):
        with pytest.raises(InvalidInputError, match="power_limit_kw"):
            check_site_limit(bad)
    assert check_point_id("CP-01.depot:2") == "CP-01.depot:2"
    for bad in ("", "-cp", "a/b", "x" * 65, "cp 1"):
        with pytest.raises(InvalidInputError, match="charge_point_id"):
            check_point_id(bad)
