"""Refusal of bad inputs to the vehicle model, and fleet-vectorisation consistency."""

from __future__ import annotations

import numpy as np
import pytest

from microfleet.domain.catalogue import load_catalogue
from microfleet.errors import PhysicsInputError
from microfleet.physics import VehicleParams, battery_power_kw
from microfleet.physics.cycles import load_cycle


@pytest.fixture(scope="module")
def params() -> VehicleParams:
    cat = load_catalogue()
    return VehicleParams.from_specs([cat.get("citroen-ami"), cat.get("baojun-yep")], siblings=cat.all())


def test_negative_mass_is_refused(params):
    with pytest.raises(PhysicsInputError, match="mass must be positive"):
        params.with_mass_kg(-5.0)
    cat = load_catalogue()
    with pytest.raises(PhysicsInputError, match="mass"):
        VehicleParams.from_specs([cat.get("citroen-ami")], payload_kg=-600.0)


@pytest.mark.parametrize(
    ("speed", "message"),
    [
        (np.array([[0.0, 5.0, -1.0]] * 2), "negative"),
        (np.array([[0.0, np.nan, 1.0]] * 2), "NaN"),
        (np.zeros((3, 10)), "shape"),
    ],
)
def test_bad_speed_traces_are_refused(params, speed, message):
    with pytest.raises(PhysicsInputError, match=message):
        battery_power_kw(params, speed, 1.0)


def test_non_positive_time_step_is_refused(params):
    with pytest.raises(PhysicsInputError, match="dt_s"):
        battery_power_kw(params, np.zeros((2, 5)), 0.0)


def test_a_fleet_run_equals_single_car_runs(params):
    speed = np.tile(load_cycle("wltc_class2").speed_mps, (2, 1))
    fleet = battery_power_kw(params, speed, 1.0, ambient_temp_c=-5.0)
    for i in range(2):
        single = battery_power_kw(params.take([i]), speed[i : i + 1], 1.0, ambient_temp_c=-5.0)
        np.testing.assert_array_equal(fleet[i], single[0])


def test_heavier_car_draws_more_and_grade_costs_energy(params):
    speed = np.tile(load_cycle("wltc_class1").speed_mps, (2, 1))
    base = battery_power_kw(params, speed, 1.0, hvac_on=False).sum(1)
    heavy = battery_power_kw(params.with_mass_kg(params.mass_kg + 200), speed, 1.0, hvac_on=False).sum(1)
    uphill = battery_power_kw(params, speed, 1.0, grade_rad=0.03, hvac_on=False).sum(1)
    assert np.all(heavy > base) and np.all(uphill > base)
