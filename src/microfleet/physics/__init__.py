"""Physics of small EVs: road load, drivetrain, auxiliaries/HVAC, battery ECM, thermal and ageing.

Pure NumPy, vectorised over vehicles (first axis) and time steps (second axis). Public API::

    from microfleet.domain.catalogue import load_catalogue
    from microfleet.physics import VehicleParams, battery_power_kw, Battery
    from microfleet.physics.cycles import load_cycle

    catalogue = load_catalogue()
    specs = [catalogue.get("wuling-hongguang-mini-ev-gen1-9kwh"), catalogue.get("citroen-ami")]
    params = VehicleParams.from_specs(specs, siblings=catalogue.all())    # arrays of shape (n,)
    cycle = load_cycle("wltc_class1")                                      # 1 Hz, .speed_kmh, .source
    speed = np.tile(cycle.speed_mps, (params.n_vehicles, 1))               # (n, t)
    p_kw = battery_power_kw(params, speed, 1.0, ambient_temp_c=-10.0)     # (n, t), + = discharge
    battery = Battery.from_params(params, soc_pct=90.0, temp_c=20.0, soh_pct=100.0)
    for k in range(p_kw.shape[1]):
        state = battery.step(p_kw[:, k], 1.0)   # .soc_pct .pack_voltage_v .pack_current_a .pack_temp_c
                                                # .cell_voltage_min_v .cell_voltage_max_v, all (n,)

- :class:`VehicleParams` — per-vehicle arrays; ``from_specs(specs, payload_kg=75, siblings=None)``,
  ``with_mass_kg``, ``take``.
- :func:`battery_power_kw` — pack-terminal power (kW) including losses, regen limits, caps, aux, HVAC;
  :func:`power_breakdown` gives every flow.
- :class:`Battery` / :class:`BatteryStep` — Thevenin ECM (2 RC, LFP hysteresis, Arrhenius R, cell
  spread, lumped thermal); negative power charges.
- :mod:`microfleet.physics.ageing` — ``calendar_fade_pct``, ``cycle_fade_pct``, ``state_of_health_pct``,
  ``resistance_growth_frac``.
- :mod:`microfleet.physics.cycles` — ``load_cycle(name)`` for "wltc_class1", "wltc_class2",
  "wltc_class3b", "nedc", "cltc_p", "wmtc_part1", "wmtc_part2", "wmtc_part3",
  "wmtc_part1_reduced_speed"; ``DriveCycle``; ``validate_speed_trace``.
- :func:`cycle_range_km` — range over a repeated cycle, running the ECM until the car can no longer
  follow the trace; :func:`procedure_range_km` with :mod:`microfleet.physics.procedures`
  (``procedure_for(rating, resolved)``: trace parts, test mass per class, end-of-test tolerance).
- :func:`resolve_spec` — the values the model uses for one car, each with source and prior flag;
  :func:`usable_kwh` — a model's usable pack energy alone (stated usable, else 0.93 x stated).
- :mod:`microfleet.physics.calibration` — ``SharedParams`` (usable fraction, RRC, loss-map scale, aux
  kW), ``params_with_shared`` and the leave-one-out fit used by ``bench/physics_validation.py``.
  ``VehicleParams.from_specs`` keeps the cited priors; apply calibrated values explicitly.

Errors: :class:`microfleet.errors.PhysicsInputError` for bad inputs (negative mass, bad speed
traces, missing catalogue fields, named by car and field); :class:`microfleet.errors.NotFoundError`
for unknown car ids or cycle names.
"""

from __future__ import annotations

from microfleet.physics.battery import Battery, BatteryStep
from microfleet.physics.energy import PowerBreakdown, battery_power_kw, power_breakdown
from microfleet.physics.params import VehicleParams
from microfleet.physics.priors import ResolvedSpec, resolve_spec, usable_kwh
from microfleet.physics.range_sim import (
    CycleRange,
    cycle_consumption_wh_per_km,
    cycle_range_km,
    procedure_range_km,
)

__all__ = [
    "Battery",
    "BatteryStep",
    "CycleRange",
    "PowerBreakdown",
    "ResolvedSpec",
    "VehicleParams",
    "battery_power_kw",
    "cycle_consumption_wh_per_km",
    "cycle_range_km",
    "power_breakdown",
    "procedure_range_km",
    "resolve_spec",
    "usable_kwh",
]
