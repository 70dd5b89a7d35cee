"""Consumption and range over a repeated drive cycle, for a fleet of vehicles at once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from microfleet.errors import PhysicsInputError
from microfleet.physics.battery import Battery, BatteryStep
from microfleet.physics.cycles import DriveCycle
from microfleet.physics.energy import power_breakdown
from microfleet.physics.params import VehicleParams
from microfleet.physics.procedures import TRACE_TOLERANCE_KMH, TestProcedure

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class CycleRange:
    """Result per vehicle, arrays ``(n,)``: range (km), consumption at the pack terminals (Wh/km)."""

    range_km: FloatArray
    consumption_wh_per_km: FloatArray
    energy_delivered_kwh: FloatArray
    cycles_driven: FloatArray
    end_soc_pct: FloatArray
    trace_shortfall_kwh_per_cycle: FloatArray


def capped_speed_mps(params: VehicleParams, cycle: DriveCycle) -> FloatArray:
    """The cycle per vehicle, capped at each car's top speed (GTR 15 "capped speed" practice), ``(n, t)``."""
    return np.minimum(cycle.speed_mps[None, :], params.top_speed_mps[:, None])


def cycle_consumption_wh_per_km(
    params: VehicleParams,
    cycle: DriveCycle,
    *,
    ambient_temp_c: float = 23.0,
    cabin_target_temp_c: float = 22.0,
    hvac_on: bool = False,
) -> FloatArray:
    """Energy drawn at the pack terminals per km over one pass of ``cycle`` (Wh/km), ``(n,)``.

    Each car follows the trace capped at its top speed; distance is the capped trace's.
    """
    speed = capped_speed_mps(params, cycle)
    flows = power_breakdown(
        params,
        speed,
        1.0,
        ambient_temp_c=ambient_temp_c,
        cabin_target_temp_c=cabin_target_temp_c,
        hvac_on=hvac_on,
    )
    energy_wh = flows.battery_kw.sum(axis=1) * 1000.0 / 3600.0
    return np.asarray(energy_wh / (flows.mean_speed_mps.sum(axis=1) / 1000.0))


def cycle_range_km(
    params: VehicleParams,
    cycle: DriveCycle,
    *,
    ambient_temp_c: float = 23.0,
    cabin_target_temp_c: float = 22.0,
    hvac_on: bool = False,
    start_soc_pct: float = 100.0,
    max_cycles: int = 200,
    trace_tolerance_kmh: float = TRACE_TOLERANCE_KMH,
) -> CycleRange:
    """Drive ``cycle`` again and again from ``start_soc_pct`` until each car can no longer follow it.

    The ECM runs at the pack's temperature (starting at ambient: the first pass is the cold one) and the
    test ends for a car, as type-approval range tests do, on the second it cannot follow the trace:

    - its pack is empty (0 % SoC); or
    - its pack cannot deliver the power the trace asks for (the ECM's power limit, or the BMS cutting
      current back once the weakest cell is at cut-off: :func:`_missed_kw`), and the speed lost since it
      last kept up exceeds ``trace_tolerance_kmh`` (``procedures.TRACE_TOLERANCE_KMH``: 2 km/h). The
      speed lost in a second is the energy not delivered over the car's momentum, ``ΔE / (m_eff · v)``.

    A trace miss because the *motor* is too weak (``trace_shortfall_kwh_per_cycle``) never ends the test:
    such a car drives at full power until it rejoins. The range is the distance to that second.
    """
    if not (np.isfinite(trace_tolerance_kmh) and trace_tolerance_kmh >= 0.0):
        raise PhysicsInputError(
            f"trace_tolerance_kmh must be a non-negative number, got {trace_tolerance_kmh}"
        )
    n = params.n_vehicles
    speed = capped_speed_mps(params, cycle)
    flows = power_breakdown(
        params,
        speed,
        1.0,
        ambient_temp_c=ambient_temp_c,
        cabin_target_temp_c=cabin_target_temp_c,
        hvac_on=hvac_on,
    )
    step_km = flows.mean_speed_mps / 1000.0
    momentum_kg = params.mass_kg * (1.0 + params.rotating_mass_fraction)
    tolerance_mps = trace_tolerance_kmh / 3.6
    battery = Battery.from_params(params, start_soc_pct, ambient_temp_c)
    distance = np.zeros(n)
    energy_kwh = np.zeros(n)
    lost_mps = np.zeros(n)
    alive = np.ones(n, dtype=np.bool_)
    passes = 0
    while alive.any() and passes < max_cycles:
        for k in range(speed.shape[1]):
            asked_kw = flows.battery_kw[:, k]
            state = battery.step(np.where(alive, asked_kw, 0.0), 1.0)
            driving = asked_kw > 0.0
            missed_kw = _missed_kw(params, state, asked_kw) * driving
            v = np.maximum(flows.mean_speed_mps[:, k], 1.0)
            behind = missed_kw > 0.0
            lost_mps = np.where(behind, lost_mps + missed_kw * 1000.0 / (momentum_kg * v), 0.0)
            alive &= ~(((state.soc_pct <= 0.0) & driving) | (lost_mps > tolerance_mps))
            distance += np.where(alive, step_km[:, k], 0.0)
            energy_kwh += np.where(alive, state.pack_power_kw / 3600.0, 0.0)
            if not alive.any():
                break
        passes += 1
    cycle_energy_wh = flows.battery_kw.sum(axis=1) * 1000.0 / 3600.0
    cycle_km = step_km.sum(axis=1)
    return CycleRange(
        range_km=distance,
        consumption_wh_per_km=cycle_energy_wh / cycle_km,
        energy_delivered_kwh=energy_kwh,
        cycles_driven=distance / cycle_km,
        end_soc_pct=battery.soc_pct,
        trace_shortfall_kwh_per_cycle=flows.trace_shortfall_kw.sum(axis=1) / 3600.0,
    )


def _missed_kw(params: VehicleParams, state: BatteryStep, asked_kw: FloatArray) -> FloatArray:
    """Power (kW) the pack could not give this second: its own limit, or the BMS's cut-back at cut-off.

    The ECM caps power at the mean cell's voltage floor (``power_limited``). The weakest cell reaches
    cut-off first; a BMS then cuts the current back until that cell sits at cut-off. The share cut is
    estimated from the step's overpotential (OCV - terminal voltage): the fraction of it the weakest
    cell is below cut-off. The pack has already delivered that power in this step, so the tail of a
    run overdraws at most the energy of the seconds before the trace tolerance is exceeded.
    """
    n_s = params.cells_in_series
    overpotential_v = np.maximum((state.ocv_v - state.pack_voltage_v) / n_s, 1e-3)
    below_v = np.maximum(params.cell_v_min_v - state.cell_voltage_min_v, 0.0)
    cut_back = np.clip(below_v / overpotential_v, 0.0, 1.0) * np.maximum(state.pack_power_kw, 0.0)
    limited = np.where(state.power_limited, np.maximum(asked_kw - state.pack_power_kw, 0.0), 0.0)
    return np.asarray(limited + cut_back)


def procedure_range_km(
    params: VehicleParams, procedure: TestProcedure, *, ambient_temp_c: float = 23.0
) -> CycleRange:
    """Range (km) by a type-approval procedure: its lap (e.g. WMTC part 1 cold then hot) repeated to the end.

    ``params`` must already carry the procedure's test mass (``procedure.added_mass_kg`` above curb).
    Tests run with HVAC off; ``cycles_driven`` counts laps.
    """
    return cycle_range_km(
        params,
        procedure.lap(),
        ambient_temp_c=ambient_temp_c,
        hvac_on=False,
        trace_tolerance_kmh=procedure.trace_tolerance_kmh,
    )
