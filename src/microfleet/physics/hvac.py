"""Cabin heating and cooling load as a function of ambient and target cabin temperature.

Steady-state heat balance ``Q = UA (T_target − T_ambient)``; the electrical draw is ``Q / COP``
(PTC heater: COP 1; heat pump: COP falling with ambient temperature), capped by the unit's power.
The cabin UA is scaled from the AVILOO test of 14 EVs (catalogue README, "HVAC draw"): holding a
cabin at 22 °C from 0 °C took 2.7–4.5 kWh over two hours, 1.5–2.5 kWh of which was the first hour's
warm-up, so the second hour ≈ 1.2–2.0 kWh for 22 K → UA ≈ 55–90 W/K for cars of about 2.3 m² frontal
area; 70 W/K is taken and scaled with frontal area (envelope area grows with the car's cross-section).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

CABIN_UA_REFERENCE_W_PER_K = 70.0
REFERENCE_FRONTAL_AREA_M2 = 2.3
# Heater size: up to 6 kW resistive heaters in ordinary EVs at −7 °C (catalogue README, nenpower);
# small cars carry smaller units: 3 kW (A00/B-segment) and 1 kW (quadricycles; prior).
HEATER_MAX_KW = 3.0
HEATER_MAX_KW_MICRO = 1.5
# Holding a cooled cabin takes about 1 kW (AVILOO, catalogue README); compressor caps 2 kW / 1 kW.
COOLER_MAX_KW = 2.0
COOLER_MAX_KW_MICRO = 1.0
COOLING_COP = 2.5  # automotive R1234yf A/C at 30–35 °C: COP 2–3 (SAE J2765 test points, typical)
DEADBAND_K = 2.0  # no HVAC draw within ±2 K of the target (ventilation only)
# Heat-pump COP: about 2 at −10 °C and 3 at +10 °C (Steinstraeter et al., World Electr. Veh. J. 12
# (2021) 115, measured on BEVs); linear in between, never below 1.
HEAT_PUMP_COP_AT_0C = 2.5
HEAT_PUMP_COP_PER_K = 0.05


def cabin_ua_w_per_k(frontal_area_m2: FloatArray) -> FloatArray:
    """Cabin heat-loss coefficient (W/K) per vehicle from its frontal area (m²)."""
    return np.asarray(CABIN_UA_REFERENCE_W_PER_K * frontal_area_m2 / REFERENCE_FRONTAL_AREA_M2)


def hvac_power_kw(
    ambient_temp_c: FloatArray | float,
    cabin_target_temp_c: FloatArray | float,
    cabin_ua_w_per_k: FloatArray,
    heat_max_kw: FloatArray,
    cool_max_kw: FloatArray,
    has_heat_pump: BoolArray,
) -> FloatArray:
    """Electrical HVAC draw (kW) per vehicle, broadcast against the temperature arrays.

    Parameters
    ----------
    ambient_temp_c, cabin_target_temp_c
        Ambient and target cabin temperature (°C), scalars or arrays broadcastable to ``(n, t)``.
    cabin_ua_w_per_k, heat_max_kw, cool_max_kw, has_heat_pump
        Per-vehicle ``(n,)`` cabin UA (W/K), heater and A/C electrical caps (kW), heat-pump flag.

    """
    ambient = np.asarray(ambient_temp_c, dtype=np.float64)
    target = np.asarray(cabin_target_temp_c, dtype=np.float64)
    if ambient.ndim == 1:
        ambient = ambient[:, None]
    if target.ndim == 1:
        target = target[:, None]
    gap_k = target - ambient
    ua = cabin_ua_w_per_k[:, None]
    heat_kw_thermal = np.where(gap_k > DEADBAND_K, ua * gap_k / 1000.0, 0.0)
    cool_kw_thermal = np.where(-gap_k > DEADBAND_K, ua * (-gap_k) / 1000.0, 0.0)
    cop_hp = np.maximum(HEAT_PUMP_COP_AT_0C + HEAT_PUMP_COP_PER_K * ambient, 1.0)
    cop_heat = np.where(has_heat_pump[:, None], cop_hp, 1.0)
    heat = np.minimum(heat_kw_thermal / cop_heat, heat_max_kw[:, None])
    cool = np.minimum(cool_kw_thermal / COOLING_COP, cool_max_kw[:, None])
    return np.asarray(heat + cool)


# Cabin heat capacity: the AVILOO warm-up hour took 0.3–0.5 kWh more than holding the cabin (1.5–2.5 against
# 1.2–2.0 kWh, module docstring) for a 22 K rise → 49–82 kJ/K at 2.3 m²; 65 kJ/K taken, scaled as UA is.
CABIN_HEAT_CAPACITY_REFERENCE_J_PER_K = 65_000.0


def cabin_heat_capacity_j_per_k(cabin_ua_w_per_k: float) -> float:
    """Cabin heat capacity (J/K) of a car from its cabin UA (W/K): both scale with the frontal area."""
    return CABIN_HEAT_CAPACITY_REFERENCE_J_PER_K * cabin_ua_w_per_k / CABIN_UA_REFERENCE_W_PER_K


def cabin_climate_step(
    cabin_c: float,
    ambient_c: float,
    target_c: float | None,
    dt_s: float,
    *,
    cabin_ua_w_per_k: float,
    heat_capacity_j_per_k: float,
    heat_max_kw: float,
    cool_max_kw: float,
    has_heat_pump: bool,
) -> tuple[float, float]:
    """The cabin temperature after ``dt_s`` and the HVAC's mean electrical draw (kW) over the step.

    A parked car's cabin as one heat capacity losing ``UA (T - T_ambient)``. With a ``target_c`` (climate
    on) the unit delivers the steady heat that brings the cabin exactly to the target by the step's end,
    capped by its electrical power times its COP (as :func:`hvac_power_kw`); with None (off) it draws
    nothing. The step is solved exactly (first-order response), so any ``dt_s`` is stable and a step never
    overshoots the target.

    Parameters
    ----------
    cabin_c, ambient_c, target_c
        Cabin, outside and target temperature (°C); ``target_c`` None when the climate is off.
    dt_s
        Step length (s).
    cabin_ua_w_per_k, heat_capacity_j_per_k
        Cabin heat-loss coefficient (W/K) and heat capacity (J/K).
    heat_max_kw, cool_max_kw, has_heat_pump
        The unit's electrical caps (kW) and whether it heats with a heat pump.

    Returns
    -------
    (cabin temperature after the step in °C, mean electrical HVAC power in kW).

    """
    decay = float(np.exp(-cabin_ua_w_per_k * max(dt_s, 0.0) / heat_capacity_j_per_k))
    if decay >= 1.0:  # no time passes (or too little to tell)
        return cabin_c, 0.0
    thermal_w = 0.0
    electric_kw = 0.0
    if target_c is not None:
        # The steady heat that lands the exact first-order response on the target at the step's end.
        needed_w = cabin_ua_w_per_k * (target_c - ambient_c - (cabin_c - ambient_c) * decay) / (1.0 - decay)
        if needed_w > 0.0:
            cop = max(HEAT_PUMP_COP_AT_0C + HEAT_PUMP_COP_PER_K * ambient_c, 1.0) if has_heat_pump else 1.0
            electric_kw = min(needed_w / cop / 1000.0, heat_max_kw)
            thermal_w = electric_kw * cop * 1000.0
        elif needed_w < 0.0:
            electric_kw = min(-needed_w / COOLING_COP / 1000.0, cool_max_kw)
            thermal_w = -electric_kw * COOLING_COP * 1000.0
    equilibrium_c = ambient_c + thermal_w / cabin_ua_w_per_k
    return equilibrium_c + (cabin_c - equilibrium_c) * decay, electric_kw
