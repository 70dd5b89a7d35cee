"""FASTSim 3.1 as the physics peer: a BEV built from the catalogue as FASTSim's documentation prescribes.

Used by ``bench/physics_validation.py``. FASTSim's calibration guide ("Calibration Level 0
(Parameterization) Guidelines", docs/src/cal_and_val.md in NREL/fastsim) says: start from an existing
vehicle file of the same powertrain, enter every parameter a specification gives, set the total (test)
mass as the mass override, set ``drag_coef`` and ``wheel_rr_coef`` (engineering judgement where no
coast-down exists), compute ``wheel_radius_m`` from the tyre code, and use the motor's own peak power.
Its bundled BEV file (2022 Renault Zoe) sets the pack as gross energy with a min/max SoC window around
the usable energy (54.7 kWh, 0.029–0.98, so 52 kWh usable). Everything the catalogue does not give is
the same cited prior Microfleet uses, or a shared parameter fitted inside the same cited band.
"""

from __future__ import annotations

import copy
import math
import re
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from microfleet.physics.calibration import SharedParams, params_with_shared
from microfleet.physics.cycles import DriveCycle
from microfleet.physics.drivetrain import GEAR_EFFICIENCY
from microfleet.physics.priors import ResolvedSpec
from microfleet.physics.range_sim import capped_speed_mps

TEMPLATE = "2022_Renault_Zoe_ZE50_R135.yaml"  # FASTSim's one bundled small BEV, the closest template
SOC_TOLERANCE = 1e-3  # FASTSim stops with a solver error on the step its SoC crosses min_soc


@dataclass(frozen=True)
class FastsimResult:
    """One car in FASTSim: range to min SoC (km), one-pass consumption (Wh/km), one pass wall time (s).

    ``factor`` is range x consumption / usable energy (-): FASTSim's own battery loss and end-of-test
    effect, the counterpart of Microfleet's ECM factor in the shared-parameter fit.
    """

    range_km: float
    wh_per_km: float
    run_s: float
    factor: float


class FastsimRefused(Exception):
    """FASTSim stopped with an error that is not the pack reaching its minimum SoC."""


def tyre_radius_m(tyre_size: str | None) -> float | None:
    """Loaded-free tyre radius (m) from an ISO code such as ``145/80 R13``; the last (rear) one if several.

    Same formula as FASTSim's ``calculate_tire_radius``: rim radius plus width x aspect ratio.
    """
    if not tyre_size:
        return None
    codes = re.findall(r"(\d{3})/(\d{2})\s*Z?R\s*(\d{2})", tyre_size)
    if not codes:
        return None
    width_mm, aspect_pct, rim_in = (float(x) for x in codes[-1])
    return (rim_in * 25.4 / 2.0 + width_mm * aspect_pct / 100.0) / 1000.0


def template() -> dict[str, Any]:
    """FASTSim's bundled Zoe as a dict, the starting point the calibration guide recommends."""
    import fastsim as fsim

    return dict(fsim.Vehicle.from_resource(TEMPLATE).to_dict())


def vehicle_dict(
    base: dict[str, Any],
    resolved: ResolvedSpec,
    tyre_size: str | None,
    shared: SharedParams,
    test_added_kg: float,
) -> tuple[dict[str, Any], float]:
    """FASTSim's vehicle inputs for one car and the test rules, and its usable energy (kWh).

    Mass is the test mass of the procedure; the pack is the stated energy with a SoC window of width
    usable / stated (labelled usable kWh where published, else the shared usable fraction); the motor
    efficiency curve is FASTSim's own with its losses scaled by ``shared.motor_loss_scale``; the single
    reduction gear takes the same cited 97 % as Microfleet's (Guzzella & Sciarretta 2013).
    """
    params = params_with_shared([resolved], shared, payload_kg=test_added_kg)
    usable_kwh = float(params.usable_kwh[0])
    stated_kwh = resolved.stated_kwh.value
    margin = max(0.0, 1.0 - usable_kwh / stated_kwh) / 2.0
    d = copy.deepcopy(base)
    bev = d["pt_type"]["BEV"]
    bev["res"]["energy_capacity_joules"] = stated_kwh * 3.6e6
    bev["res"]["min_soc"], bev["res"]["max_soc"] = margin, 1.0 - margin
    bev["em"]["pwr_out_max_watts"] = resolved.motor_peak_kw.value * 1000.0
    eff = bev["em"]["eff_interp_achieved"]["data"]["values"]
    eff["data"] = [1.0 - shared.motor_loss_scale * (1.0 - e) for e in eff["data"]]
    bev["transmission"]["eff_interp"] = GEAR_EFFICIENCY
    chassis = d["chassis"]
    chassis["drag_coef"] = resolved.drag_coefficient.value
    chassis["frontal_area_square_meters"] = resolved.frontal_area_m2.value
    chassis["wheel_rr_coef"] = float(params.rolling_resistance[0])
    radius = tyre_radius_m(tyre_size)
    if radius is not None:
        chassis["wheel_radius_meters"] = radius
    chassis["glider_mass_kilograms"] = None
    chassis["cargo_mass_kilograms"] = None
    d["mass_kilograms"] = float(params.mass_kg[0])
    d["pwr_aux_base_watts"] = float(params.aux_base_kw[0] * 1000.0)
    return d, usable_kwh


def capped_trace(
    resolved: ResolvedSpec, shared: SharedParams, cycle: DriveCycle, added_kg: float
) -> np.ndarray:
    """The published cycle capped at the car's top speed (m/s), the same trace Microfleet drives."""
    params = params_with_shared([resolved], shared, payload_kg=added_kg)
    return np.asarray(capped_speed_mps(params, cycle)[0])


def _simulate(d: dict[str, Any], speed: np.ndarray, soc: float) -> tuple[dict[str, Any], str | None, float]:
    """Run FASTSim with history recording off; the final state, the error text if it stopped, wall s."""
    import fastsim as fsim

    d = copy.deepcopy(d)
    d["pt_type"]["BEV"]["res"]["state"]["soc"] = soc
    veh = fsim.Vehicle.from_dict(d)
    veh.set_save_interval(None)  # keep only the last state: FASTSim's documented fast mode
    cyc = fsim.Cycle.from_dict(
        {
            "time_seconds": [float(t) for t in range(speed.shape[0])],
            "speed_meters_per_second": [float(v) for v in speed],
            "init_elev_meters": 0.0,
        }
    )
    sim_params = fsim.SimParams.default().to_dict()
    sim_params["trace_miss_opts"] = "Allow"
    sd = fsim.SimDrive(veh, cyc, fsim.SimParams.from_dict(sim_params))
    error = None
    t0 = time.perf_counter()
    try:
        sd.run()
    except RuntimeError as exc:
        error = str(exc)
    elapsed = time.perf_counter() - t0
    return sd.to_dict()["veh"], error, elapsed


def reason(error: str) -> str:
    """The informative line of a FASTSim error."""
    lines = [ln.strip() for ln in error.splitlines() if "exceeds" in ln or "failed" in ln]
    return (lines[-1] if lines else error.splitlines()[0])[:200]


def run_car(d: dict[str, Any], usable_kwh: float, speed: np.ndarray, *, to_empty: bool) -> FastsimResult:
    """One pass from mid-window for consumption; if ``to_empty``, consecutive passes from full to min SoC.

    Raises ``FastsimRefused`` when FASTSim stops for any reason other than the pack reaching min SoC.
    """
    res = d["pt_type"]["BEV"]["res"]
    lo, hi = res["min_soc"], res["max_soc"]
    state, error, elapsed = _simulate(d, speed, (lo + hi) / 2.0)
    if error is not None:
        raise FastsimRefused(reason(error))
    km = state["state"]["dist_meters"] / 1000.0
    wh_per_km = state["pt_type"]["BEV"]["res"]["state"]["energy_out_electrical_joules"] / 3600.0 / km
    if not to_empty:
        return FastsimResult(float("nan"), wh_per_km, elapsed, float("nan"))
    passes = math.ceil(1.3 * usable_kwh * 1000.0 / wh_per_km / km) + 2
    state, error, _ = _simulate(d, np.tile(speed, passes), hi)
    soc = state["pt_type"]["BEV"]["res"]["state"]["soc"]
    if error is None or soc > lo + SOC_TOLERANCE:
        raise FastsimRefused(reason(error) if error else f"did not reach min SoC in {passes} passes")
    range_km = state["state"]["dist_meters"] / 1000.0
    return FastsimResult(range_km, wh_per_km, elapsed, range_km * wh_per_km / (usable_kwh * 1000.0))
