"""Energy conservation: what leaves the pack equals road load + losses + auxiliaries."""

from __future__ import annotations

import numpy as np
import pytest

from microfleet.domain.catalogue import load_catalogue
from microfleet.physics import VehicleParams, power_breakdown
from microfleet.physics.cycles import load_cycle
from microfleet.physics.road_load import GRAVITY_MPS2, air_density_kg_m3


@pytest.fixture(scope="module")
def params() -> VehicleParams:
    cat = load_catalogue()
    ids = ["wuling-hongguang-mini-ev-gen1-9kwh", "citroen-ami", "dacia-spring-65-2024", "renault-twizy-80"]
    return VehicleParams.from_specs([cat.get(i) for i in ids], siblings=cat.all())


@pytest.mark.parametrize("cycle_name", ["wltc_class2", "cltc_p", "nedc"])
@pytest.mark.parametrize("ambient_c", [-10.0, 23.0, 35.0])
def test_pack_energy_equals_road_plus_losses_plus_auxiliaries(params, cycle_name, ambient_c):
    cycle = load_cycle(cycle_name)
    speed = np.minimum(cycle.speed_mps[None, :], params.top_speed_mps[:, None])
    grade = 0.02 * np.sin(np.arange(speed.shape[1]) / 90.0)
    f = power_breakdown(params, speed, 1.0, grade_rad=grade, ambient_temp_c=ambient_c, hvac_on=True)
    # Road energy computed independently from first principles: kinetic + rolling + aero + climb.
    v = f.mean_speed_mps
    dist_m = v  # 1 s steps
    m = params.mass_kg[:, None]
    kinetic_j = (
        0.5 * params.mass_kg * (1 + params.rotating_mass_fraction) * (speed[:, -1] ** 2 - speed[:, 0] ** 2)
    )
    rolling_j = (
        np.where(v > 0, m * GRAVITY_MPS2 * params.rolling_resistance[:, None] * np.cos(grade), 0) * dist_m
    ).sum(1)
    aero_j = (0.5 * air_density_kg_m3(ambient_c) * params.drag_area_m2[:, None] * v**2 * dist_m).sum(1)
    climb_j = (m * GRAVITY_MPS2 * np.sin(grade) * dist_m).sum(1)
    road_kwh = (kinetic_j + rolling_j + aero_j + climb_j) / 3.6e6
    losses_kwh = (f.friction_brake_kw + f.gear_loss_kw + f.motor_loss_kw - f.trace_shortfall_kw).sum(1) / 3600
    aux_kwh = (f.aux_kw + f.hvac_kw).sum(1) / 3600
    pack_kwh = f.battery_kw.sum(1) / 3600
    np.testing.assert_allclose(pack_kwh, road_kwh + losses_kwh + aux_kwh, rtol=0.005)


def test_breakdown_terms_have_physical_signs(params):
    cycle = load_cycle("wltc_class1")
    f = power_breakdown(params, np.tile(cycle.speed_mps, (params.n_vehicles, 1)), 1.0, hvac_on=False)
    assert np.all(f.friction_brake_kw >= -1e-12)
    assert np.all(f.gear_loss_kw >= -1e-12)
    assert np.all(f.motor_loss_kw >= 0)
    assert np.all(f.trace_shortfall_kw >= 0)
    # Regeneration never returns more than the braking power the wheels offered.
    assert np.all(f.motor_shaft_kw >= np.minimum(f.wheel_kw, 0) - 1e-9)


def test_heating_costs_energy_in_the_cold_and_not_at_the_target(params):
    cycle = load_cycle("cltc_p")
    speed = np.tile(cycle.speed_mps, (params.n_vehicles, 1))
    cold = power_breakdown(params, speed, 1.0, ambient_temp_c=-10.0, hvac_on=True).hvac_kw
    mild = power_breakdown(params, speed, 1.0, ambient_temp_c=22.0, hvac_on=True).hvac_kw
    twizy = params.model_ids.index("renault-twizy-80")
    assert np.all(mild == 0)
    assert cold[twizy].max() == 0  # the Twizy has no heater (catalogue README)
    others = [i for i in range(params.n_vehicles) if i != twizy]
    assert np.all(cold[others] > 0)
    assert np.all(cold[others] <= params.hvac_heat_max_kw[others, None] + 1e-12)
