"""The Thevenin ECM against hand-computed responses, OCV/hysteresis shape, limits and determinism."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from microfleet.domain.catalogue import load_catalogue
from microfleet.errors import PhysicsInputError
from microfleet.physics import Battery, VehicleParams
from microfleet.physics.battery_cell import OCV_LFP_V, OCV_NMC_V, OCV_SOC_GRID, ocv_v


@pytest.fixture(scope="module")
def params() -> VehicleParams:
    cat = load_catalogue()
    return VehicleParams.from_specs([cat.get("wuling-hongguang-mini-ev-gen1-9kwh")], siblings=cat.all())


def _isothermal(params: VehicleParams) -> VehicleParams:
    # Huge heat capacity: the cell stays at 25 °C, so the hand calculation needs no thermal term.
    return dataclasses.replace(params, pack_heat_capacity_j_per_k=params.pack_heat_capacity_j_per_k * 1e12)


def test_current_step_response_matches_hand_computation(params):
    p = _isothermal(params)
    battery = Battery.from_params(p, soc_pct=50.0, temp_c=25.0)
    battery.h[:] = 0.0  # start off the hysteresis branch for a clean hand calculation
    n_s = p.cells_in_series[0]
    q_ah = battery.capacity_ah[0]
    r0 = p.cell_r0_ohm_ah[0] / q_ah
    r1, tau1 = p.cell_r1_ohm_ah[0] / q_ah, p.cell_tau1_s[0]
    r2, tau2 = p.cell_r2_ohm_ah[0] / q_ah, p.cell_tau2_s[0]
    ocv0 = float(np.interp(0.5, OCV_SOC_GRID, OCV_LFP_V))
    # Choose the power so the first-step current is exactly i_a (E = OCV at t=0, no RC voltage yet).
    i_a = 0.5 * q_ah  # 0.5 C
    power_kw = n_s * (ocv0 - i_a * r0) * i_a / 1000.0
    first = battery.step(np.array([power_kw]), 1.0)
    assert first.pack_current_a[0] == pytest.approx(i_a, rel=1e-9)
    assert first.pack_voltage_v[0] == pytest.approx(n_s * (ocv0 - i_a * r0), rel=1e-9)
    # After one 1-s step the RC voltages follow the exact ZOH solution v = R i (1 - e^{-t/τ}).
    v1 = r1 * i_a * (1 - np.exp(-1 / tau1))
    v2 = r2 * i_a * (1 - np.exp(-1 / tau2))
    assert battery.v1[0] == pytest.approx(v1, rel=1e-9)
    assert battery.v2[0] == pytest.approx(v2, rel=1e-9)
    assert first.soc_pct[0] == pytest.approx(50.0 - 100 * i_a / 3600 / q_ah, rel=1e-12)
    # Rest: current zero, RC voltages relax as e^{-t/τ}; after 600 s v1 is gone, v2 down by e^-2.
    for _ in range(600):
        rest = battery.step(np.array([0.0]), 1.0)
    assert rest.pack_current_a[0] == 0.0
    assert battery.v1[0] == pytest.approx(v1 * np.exp(-600 / tau1), abs=1e-12)
    assert battery.v2[0] == pytest.approx(v2 * np.exp(-600 / tau2), rel=1e-9)


def test_ocv_curves_are_monotonic_and_lfp_is_flat_in_the_middle():
    assert np.all(np.diff(OCV_LFP_V) > 0) and np.all(np.diff(OCV_NMC_V) > 0)
    lfp_mid = np.interp([0.3, 0.7], OCV_SOC_GRID, OCV_LFP_V)
    nmc_mid = np.interp([0.3, 0.7], OCV_SOC_GRID, OCV_NMC_V)
    assert lfp_mid[1] - lfp_mid[0] < 0.1  # LFP plateau: < 100 mV over 40 % SoC
    assert nmc_mid[1] - nmc_mid[0] > 0.3  # NMC slopes
    assert ocv_v(np.array([0.5, 0.5]), np.array([True, False])).tolist() == pytest.approx(
        [np.interp(0.5, OCV_SOC_GRID, OCV_LFP_V), np.interp(0.5, OCV_SOC_GRID, OCV_NMC_V)]
    )


def test_lfp_hysteresis_moves_toward_the_branch_of_the_current_sign(params):
    p = _isothermal(params)
    battery = Battery.from_params(p, soc_pct=50.0, temp_c=25.0)
    m = p.hysteresis_max_v[0]
    assert battery.h[0] == pytest.approx(-m)
    for _ in range(900):  # charge at 0.5 C for 15 min: 12.5 % SoC, well past the settling width
        battery.step(np.array([-0.5 * battery.capacity_ah[0] * p.pack_voltage_nominal_v[0] / 1000]), 1.0)
    assert battery.h[0] == pytest.approx(m, rel=0.01)
    for _ in range(900):
        battery.step(np.array([0.5 * battery.capacity_ah[0] * p.pack_voltage_nominal_v[0] / 1000]), 1.0)
    assert battery.h[0] == pytest.approx(-m, rel=0.01)


def test_cold_raises_resistance_and_weak_cell_sags_first(params):
    warm = Battery.from_params(params, soc_pct=20.0, temp_c=25.0)
    cold = Battery.from_params(params, soc_pct=20.0, temp_c=-10.0)
    power = np.array([15.0])
    sw, sc = warm.step(power, 1.0), cold.step(power, 1.0)
    assert sc.pack_voltage_v[0] < sw.pack_voltage_v[0]
    assert sc.heat_w[0] > sw.heat_w[0]
    for _ in range(1200):
        s = warm.step(np.array([5.0]), 1.0)
    assert s.cell_voltage_min_v[0] < s.cell_voltage_max_v[0]


def test_full_pack_refuses_charge_and_empty_pack_gives_nothing(params):
    full = Battery.from_params(params, soc_pct=100.0, temp_c=25.0)
    s = full.step(np.array([-3.0]), 1.0)
    assert s.pack_current_a[0] == 0.0 and bool(s.power_limited[0])
    empty = Battery.from_params(params, soc_pct=0.0, temp_c=25.0)
    s = empty.step(np.array([3.0]), 1.0)
    assert s.pack_current_a[0] == 0.0 and bool(s.power_limited[0])


def test_same_inputs_give_bit_identical_outputs(params):
    rng = np.random.default_rng(7)
    power = rng.normal(3.0, 6.0, size=500)
    runs = []
    for _ in range(2):
        b = Battery.from_params(params, soc_pct=80.0, temp_c=10.0)
        runs.append(np.array([b.step(np.array([x]), 1.0).pack_voltage_v[0] for x in power]))
    assert np.array_equal(runs[0], runs[1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"soc_pct": 120.0, "temp_c": 20.0}, "soc_pct"),
        ({"soc_pct": 50.0, "temp_c": float("nan")}, "temp_c"),
        ({"soc_pct": 50.0, "temp_c": 20.0, "soh_pct": 0.0}, "soh_pct"),
    ],
)
def test_bad_battery_inputs_are_refused(params, kwargs, message):
    with pytest.raises(PhysicsInputError, match=message):
        Battery.from_params(params, **kwargs)
