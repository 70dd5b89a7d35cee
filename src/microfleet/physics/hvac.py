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
