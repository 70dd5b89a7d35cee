"""Power at the pack terminals from a speed trace: road load, gear, motor/inverter, auxiliaries, HVAC."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from microfleet.errors import PhysicsInputError
from microfleet.physics import drivetrain, road_load
from microfleet.physics.hvac import hvac_power_kw
from microfleet.physics.params import VehicleParams

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class PowerBreakdown:
    """Where the power goes at each step, all in kW with shape ``(n_vehicles, n_steps)``.

    Signs: ``wheel_kw`` is the tractive power the road asks for (negative when braking);
    ``battery_kw`` is positive for discharge. Energy balance per step:
    ``battery = motor_shaft + motor_loss + aux + hvac`` and
    ``motor_shaft = wheel_delivered / gear (motoring) or wheel_delivered * gear (regen)``.
    """

    wheel_kw: FloatArray
    wheel_delivered_kw: FloatArray
    friction_brake_kw: FloatArray
    gear_loss_kw: FloatArray
    motor_shaft_kw: FloatArray
    motor_loss_kw: FloatArray
    aux_kw: FloatArray
    hvac_kw: FloatArray
    battery_kw: FloatArray
    mean_speed_mps: FloatArray
    trace_shortfall_kw: FloatArray


def _check_speed(speed_mps: FloatArray, n_vehicles: int, dt_s: float) -> FloatArray:
    speed = np.asarray(speed_mps, dtype=np.float64)
    if speed.ndim == 1:
        speed = np.broadcast_to(speed, (n_vehicles, speed.shape[0]))
    if speed.ndim != 2 or speed.shape[0] != n_vehicles:
        raise PhysicsInputError(
            f"speed_mps must have shape (n_vehicles={n_vehicles}, n_steps), got {speed.shape}"
        )
    if not np.all(np.isfinite(speed)):
        raise PhysicsInputError("speed_mps contains NaN or infinite values")
    if np.any(speed < 0.0):
        raise PhysicsInputError("speed_mps contains negative speeds")
    if not (np.isfinite(dt_s) and dt_s > 0.0):
        raise PhysicsInputError(f"dt_s must be a positive number of seconds, got {dt_s}")
    return speed


def power_breakdown(
    params: VehicleParams,
    speed_mps: FloatArray,
    dt_s: float,
    *,
    grade_rad: FloatArray | float = 0.0,
    ambient_temp_c: FloatArray | float = 20.0,
    cabin_target_temp_c: FloatArray | float = 22.0,
    hvac_on: bool = True,
) -> PowerBreakdown:
    """Compute every power flow for ``speed_mps`` (``(n_vehicles, n_steps)``, m/s) at steps of ``dt_s`` s.

    Parameters
    ----------
    params
        The vehicles.
    speed_mps
        Speed samples (m/s), ``(n_vehicles, n_steps)`` or ``(n_steps,)`` shared by all vehicles.
    dt_s
        Time between samples (s).
    grade_rad
        Road grade (rad), scalar or broadcastable to ``(n_vehicles, n_steps)``.
    ambient_temp_c, cabin_target_temp_c
        Ambient and target cabin temperature (°C): scalars, ``(n_vehicles,)`` or ``(n_vehicles, n_steps)``.
    hvac_on
        Whether the cabin is heated or cooled (type-approval tests run with it off).

    """
    speed = _check_speed(speed_mps, params.n_vehicles, dt_s)
    v, a = road_load.step_kinematics(speed, dt_s)
    ambient = np.asarray(ambient_temp_c, dtype=np.float64)
    rho = road_load.air_density_kg_m3(ambient[:, None] if ambient.ndim == 1 else ambient)
    force = road_load.wheel_force_n(
        params.mass_kg, params.rotating_mass_fraction, params.rolling_resistance, params.drag_area_m2,
        v, a, grade_rad, rho,
    )  # fmt: skip
    wheel_kw = force * v / 1000.0
    gear = params.gear_efficiency[:, None]
    # Motoring: the motor can give at most its speed-dependent maximum; the rest is a trace miss.
    available_wheel_kw = (
        drivetrain.max_motor_power_kw(v, params.motor_peak_kw, params.motor_base_speed_mps) * gear
    )
    traction_kw = np.minimum(np.maximum(wheel_kw, 0.0), available_wheel_kw)
    shortfall_kw = np.maximum(wheel_kw, 0.0) - traction_kw
    # Braking: regeneration takes what fade and the regen cap allow; friction brakes take the rest.
    braking_kw = np.minimum(wheel_kw, 0.0)
    regen_wheel_kw = np.maximum(
        braking_kw * drivetrain.regen_fraction(v), -params.regen_max_kw[:, None] / gear
    )
    friction_kw = regen_wheel_kw - braking_kw  # ≥ 0: power dissipated in the brakes
    shaft_kw = traction_kw / gear + regen_wheel_kw * gear
    gear_loss = traction_kw / gear - traction_kw + (-regen_wheel_kw) * (1.0 - gear)
    loss_kw = drivetrain.motor_loss_kw(shaft_kw, v, params.motor_peak_kw, params.motor_base_speed_mps)
    if params.motor_loss_scale is not None:
        loss_kw = loss_kw * params.motor_loss_scale[:, None]
    aux_kw = np.broadcast_to(params.aux_base_kw[:, None], v.shape)
    if hvac_on:
        hvac_kw = np.broadcast_to(
            hvac_power_kw(
                ambient, cabin_target_temp_c, params.cabin_ua_w_per_k, params.hvac_heat_max_kw,
                params.hvac_cool_max_kw, params.has_heat_pump,
            ),
            v.shape,
        )  # fmt: skip
    else:
        hvac_kw = np.zeros_like(v)
    battery_kw = shaft_kw + loss_kw + aux_kw + hvac_kw
    return PowerBreakdown(
        wheel_kw=wheel_kw,
        wheel_delivered_kw=traction_kw + regen_wheel_kw,
        friction_brake_kw=friction_kw,
        gear_loss_kw=gear_loss,
        motor_shaft_kw=shaft_kw,
        motor_loss_kw=loss_kw,
        aux_kw=np.asarray(aux_kw),
        hvac_kw=np.asarray(hvac_kw),
        battery_kw=battery_kw,
        mean_speed_mps=v,
        trace_shortfall_kw=shortfall_kw,
    )


def battery_power_kw(
    params: VehicleParams,
    speed_mps: FloatArray,
    dt_s: float,
    *,
    grade_rad: FloatArray | float = 0.0,
    ambient_temp_c: FloatArray | float = 20.0,
    cabin_target_temp_c: FloatArray | float = 22.0,
    hvac_on: bool = True,
) -> FloatArray:
    """Power at the pack terminals (kW, positive = discharge), ``(n_vehicles, n_steps)``.

    Includes road load, gear and motor/inverter losses, regeneration limits, power caps, 12 V
    auxiliaries and HVAC. See :func:`power_breakdown` for the parameters and the individual flows.
    """
    return power_breakdown(
        params, speed_mps, dt_s, grade_rad=grade_rad, ambient_temp_c=ambient_temp_c,
        cabin_target_temp_c=cabin_target_temp_c, hvac_on=hvac_on,
    ).battery_kw  # fmt: skip
