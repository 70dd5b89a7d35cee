"""Longitudinal road load: rolling, aerodynamic, grade and inertial force at the wheels."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

GRAVITY_MPS2 = 9.80665  # standard gravity (CGPM 1901)
AIR_DENSITY_KG_M3 = 1.2  # air at 20 °C, 1013 hPa; WLTP road-load reference conditions use 1.2 kg/m³


def air_density_kg_m3(ambient_temp_c: FloatArray | float) -> FloatArray:
    """Dry-air density (kg/m³) at sea-level pressure by the ideal-gas law (101,325 Pa, 287.05 J/kg/K)."""
    return np.asarray(101_325.0 / (287.05 * (np.asarray(ambient_temp_c, dtype=np.float64) + 273.15)))


def step_kinematics(speed_mps: FloatArray, dt_s: float) -> tuple[FloatArray, FloatArray]:
    """Mean speed (m/s) and acceleration (m/s²) over each step ending at each sample.

    Parameters
    ----------
    speed_mps
        Speed samples, shape ``(n_vehicles, n_steps)``; the step ending at sample ``k`` runs from
        sample ``k-1`` (sample 0 is treated as preceded by itself, so its acceleration is zero).
    dt_s
        Time between samples (s).

    Returns
    -------
    tuple of ndarray
        ``(mean_speed_mps, accel_mps2)``, each ``(n_vehicles, n_steps)``.

    """
    previous = np.concatenate([speed_mps[:, :1], speed_mps[:, :-1]], axis=1)
    return 0.5 * (speed_mps + previous), (speed_mps - previous) / dt_s


def wheel_force_n(
    mass_kg: FloatArray,
    rotating_mass_fraction: FloatArray,
    rolling_resistance: FloatArray,
    drag_area_m2: FloatArray,
    mean_speed_mps: FloatArray,
    accel_mps2: FloatArray,
    grade_rad: FloatArray | float,
    air_density: FloatArray | float,
) -> FloatArray:
    """Tractive force needed at the wheels (N), positive = propelling.

    ``F = m g Crr cos θ + ½ ρ CdA v² + m g sin θ + m (1 + f_rot) a``; rolling resistance acts only
    while the car moves (Guzzella & Sciarretta, Vehicle Propulsion Systems, 3rd ed., 2013, §2.1).

    Parameters
    ----------
    mass_kg, rotating_mass_fraction, rolling_resistance, drag_area_m2
        Per-vehicle arrays of shape ``(n,)``: mass (kg), rotating-mass allowance (–), Crr (–), Cd·A (m²).
    mean_speed_mps, accel_mps2
        Per-step arrays ``(n, t)`` in m/s and m/s².
    grade_rad
        Road grade (rad), scalar or broadcastable to ``(n, t)``.
    air_density
        Air density (kg/m³), scalar or broadcastable to ``(n, t)``.

    """
    m = mass_kg[:, None]
    moving = mean_speed_mps > 0.0
    grade = np.asarray(grade_rad, dtype=np.float64)
    rolling = np.where(moving, m * GRAVITY_MPS2 * rolling_resistance[:, None] * np.cos(grade), 0.0)
    aero = 0.5 * air_density * drag_area_m2[:, None] * mean_speed_mps**2
    climb = m * GRAVITY_MPS2 * np.sin(grade)
    inertia = m * (1.0 + rotating_mass_fraction[:, None]) * accel_mps2
    return np.asarray(rolling + aero + climb + inertia)
