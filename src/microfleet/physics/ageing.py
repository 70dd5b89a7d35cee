"""Battery ageing: calendar and cycle capacity fade and resistance growth, with cited coefficients.

Calendar fade follows the square-root-of-time law with Arrhenius temperature and a SoC stress
factor (Naumann et al., "Analysis and modeling of calendar aging of a commercial LiFePO4/graphite
cell", J. Energy Storage 17 (2018) 153: about 3–4 % capacity after one year at 25 °C and 50 % SoC).
Cycle fade follows Wang et al., "Cycle-life model for graphite-LiFePO4 cells", J. Power Sources 196
(2011) 3942: ``Q_loss% = B exp(−(31,700 − 370.3 C)/(R T)) Ah^0.55`` with B = 30,330 at C/2, where Ah is
throughput per cell normalised to the 2.2 Ah test cell. NMC cells are given the same laws (prior).
Resistance grows about 1.5× faster than capacity fades in relative terms (Naumann 2018, fig. 9).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from microfleet.errors import PhysicsInputError

FloatArray = NDArray[np.float64]

GAS_CONSTANT_J_PER_MOL_K = 8.314
CALENDAR_FADE_PCT_PER_SQRT_DAY = 3.5 / np.sqrt(365.0)  # 3.5 % after a year at 25 °C, 50 % SoC (Naumann 2018)
CALENDAR_ACTIVATION_J_PER_MOL = 50_000.0  # doubles fade per ~10 K near room temperature (Naumann 2018)
CALENDAR_SOC_SLOPE_PER_PCT = 0.008  # stress rises with storage SoC: ×1.4 at 100 % vs 50 % (Naumann 2018)
WANG_B_HALF_C = 30_330.0
WANG_EA_J_PER_MOL = 31_700.0
WANG_RATE_J_PER_MOL_PER_C = 370.3
WANG_Z = 0.55
WANG_CELL_AH = 2.2  # A123 ANR26650 cell used by Wang et al. (2011)
RESISTANCE_GROWTH_PER_FADE = 1.5


def calendar_fade_pct(
    days: FloatArray | float, temp_c: FloatArray | float, soc_pct: FloatArray | float
) -> FloatArray:
    """Capacity lost to calendar ageing (% of new) after ``days`` at ``temp_c`` °C and ``soc_pct`` %."""
    d = np.asarray(days, dtype=np.float64)
    if np.any(d < 0.0):
        raise PhysicsInputError("days must be non-negative")
    t_k = np.asarray(temp_c, dtype=np.float64) + 273.15
    arrhenius = np.exp(-CALENDAR_ACTIVATION_J_PER_MOL / GAS_CONSTANT_J_PER_MOL_K * (1.0 / t_k - 1.0 / 298.15))
    soc_factor = 1.0 + CALENDAR_SOC_SLOPE_PER_PCT * (np.asarray(soc_pct, dtype=np.float64) - 50.0)
    return np.asarray(CALENDAR_FADE_PCT_PER_SQRT_DAY * arrhenius * np.maximum(soc_factor, 0.2) * np.sqrt(d))


def cycle_fade_pct(
    throughput_ah_per_ah: FloatArray | float, temp_c: FloatArray | float, c_rate: FloatArray | float = 0.5
) -> FloatArray:
    """Capacity lost to cycling (% of new) after a charge throughput in capacities (Wang et al. 2011).

    Parameters
    ----------
    throughput_ah_per_ah
        Charge throughput in multiples of the cell's capacity (1 full cycle ≈ 2: out and back in).
    temp_c
        Cell temperature (°C).
    c_rate
        Mean C-rate of the cycling (1/h).

    """
    x = np.asarray(throughput_ah_per_ah, dtype=np.float64)
    if np.any(x < 0.0):
        raise PhysicsInputError("throughput must be non-negative")
    t_k = np.asarray(temp_c, dtype=np.float64) + 273.15
    c = np.asarray(c_rate, dtype=np.float64)
    exponent = -(WANG_EA_J_PER_MOL - WANG_RATE_J_PER_MOL_PER_C * c) / (GAS_CONSTANT_J_PER_MOL_K * t_k)
    return np.asarray(WANG_B_HALF_C * np.exp(exponent) * (x * WANG_CELL_AH) ** WANG_Z)


def state_of_health_pct(calendar_pct: FloatArray | float, cycle_pct: FloatArray | float) -> FloatArray:
    """Remaining capacity (% of new) after calendar and cycle fade (added, floored at 0)."""
    return np.asarray(np.maximum(100.0 - np.asarray(calendar_pct) - np.asarray(cycle_pct), 0.0))


def resistance_growth_frac(soh_pct: FloatArray | float) -> FloatArray:
    """Relative resistance increase (0.3 = +30 %) that goes with a state of health (% of new)."""
    fade = (100.0 - np.asarray(soh_pct, dtype=np.float64)) / 100.0
    return np.asarray(RESISTANCE_GROWTH_PER_FADE * np.maximum(fade, 0.0))
