"""Consumption and range over a repeated drive cycle, for a fleet of vehicles at once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from microfleet.physics.battery import Battery
from microfleet.physics.cycles import DriveCycle
from microfleet.physics.energy import power_breakdown
from microfleet.physics.params import VehicleParams

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
) -> CycleRange:
    """Drive ``cycle`` again and again from ``start_soc_pct`` until each pack is empty or hits cut-off.

    The ECM runs at the pack's temperature (starting at ambient) and stops a vehicle at 0 % SoC or when
    its weakest cell falls below the cut-off voltage under load; the distance to that second is its range.
    """
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
    battery = Battery.from_params(params, start_soc_pct, ambient_temp_c)
    distance = np.zeros(n)
    energy_kwh = np.zeros(n)
    alive = np.ones(n, dtype=np.bool_)
    passes = 0
    while alive.any() and passes < max_cycles:
        for k in range(speed.shape[1]):
            state = battery.step(np.where(alive, flows.battery_kw[:, k], 0.0), 1.0)
            empty = (
                (state.soc_pct <= 0.0)
                | (state.cell_voltage_min_v < params.cell_v_min_v)
                | state.power_limited
            )
            alive &= ~(empty & (flows.battery_kw[:, k] > 0.0))
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
