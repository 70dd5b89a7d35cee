"""The twin's car models and their energy and battery behaviour (the one place the twin uses physics).

Values marked ``catalogue`` come from ``shared/data/vehicles/catalogue.csv`` (its row cites the source);
values marked ``assumed`` are not published for that car and are typical of its class. When
``microfleet.physics`` lands, :func:`battery_power_kw` and :func:`pack_state` are the two functions to
route through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

GRAVITY_MPS2: Final = 9.81
AIR_DENSITY_KGPM3: Final = 1.2  # dry air at about 20 °C, sea level (ISO 2533 standard atmosphere ≈ 1.225)
DRIVER_MASS_KG: Final = 75.0  # one occupant, as in UN R83/R101 "mass in running order" conventions
REGEN_SHARE: Final = 0.6  # share of braking power recovered at the wheels (assumed, typical small EV)
DRIVETRAIN_EFFICIENCY: Final = 0.85  # battery-to-wheel, assumed mean of small PMSM drivetrains
AUX_POWER_KW: Final = 0.15  # lights, infotainment, BMS, pumps: assumed for a small city car
PACK_INTERNAL_RESISTANCE_OHM_PER_CELL: Final = 0.0008  # assumed, LFP/NMC prismatic ~0.5-1 mOhm per cell group

# Open-circuit voltage of one cell against SoC: typical shapes of LFP and NMC cells (assumed, datasheet-like).
OCV_SOC_PCT: Final = np.array([0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100], dtype=np.float64)
OCV_LFP_V: Final = np.array(
    [2.80, 3.10, 3.20, 3.25, 3.27, 3.28, 3.29, 3.30, 3.31, 3.33, 3.35, 3.40, 3.50], dtype=np.float64
)
OCV_NMC_V: Final = np.array(
    [3.00, 3.35, 3.45, 3.55, 3.62, 3.68, 3.74, 3.82, 3.90, 3.98, 4.07, 4.12, 4.18], dtype=np.float64
)


@dataclass(frozen=True, slots=True)
class TwinModel:
    """One car model as the twin drives it; every number carries its unit and (in MODELS) its source."""

    model_id: str
    name: str
    usable_kwh: float
    curb_mass_kg: float
    motor_peak_kw: float
    top_speed_kmh: float
    cda_m2: float
    crr: float
    chemistry: str
    cells_series: int
    ac_charge_kw: float
    dc_charge_kw: float
    soc_step_pct: float

    @property
    def nominal_voltage_v(self) -> float:
        """Pack voltage at 50% state of charge."""
        ocv = OCV_LFP_V if self.chemistry == "LFP" else OCV_NMC_V
        return float(np.interp(50.0, OCV_SOC_PCT, ocv)) * self.cells_series


MODELS: Final[dict[str, TwinModel]] = {
    m.model_id: m
    for m in (
        # catalogue: 13.8 kWh, 20 kW, 100 km/h, 665 kg (gen 1 row), 9 h on the slow charger → ≈1.5 kW AC.
        # assumed: usable = stated (no figure), CdA 0.78 m² (1.49 m × 1.62 m box, Cd ≈ 0.40), 30s LFP (96 V).
        TwinModel("wuling-hongguang-mini-ev-gen1-14kwh", "Wuling Hongguang Mini EV 13.8 kWh",
                  13.8, 665.0, 20.0, 100.0, 0.78, 0.011, "LFP", 30, 1.5, 0.0, 1.0),
        # catalogue: 9.2 kWh LFP, 20 kW, 100 km/h, 665 kg, 6.5 h on a 220 V outlet → ≈1.4 kW AC.
        TwinModel("wuling-hongguang-mini-ev-gen1-9kwh", "Wuling Hongguang Mini EV 9.2 kWh",
                  9.2, 665.0, 20.0, 100.0, 0.78, 0.011, "LFP", 30, 1.4, 0.0, 1.0),
        # catalogue: 13.9 kWh LFP, 100 km/h. assumed: 730 kg, 20 kW, 1.6 kW AC, CdA 0.80 m², 32s LFP.
        TwinModel("chery-qq-ice-cream-14kwh", "Chery QQ Ice Cream 13.9 kWh",
                  13.9, 730.0, 20.0, 100.0, 0.80, 0.011, "LFP", 32, 1.6, 0.0, 0.5),
        # catalogue: 26.8 kWh (25 usable), 48 kW, 125 km/h, 984 kg, 7 kW AC, 30 kW DC.
        # assumed: CdA 0.70 m², 72s NMC.
        TwinModel("dacia-spring-65-2024", "Dacia Spring Electric 65 (2024)",
                  25.0, 984.0, 48.0, 125.0, 0.70, 0.010, "NMC", 72, 7.0, 30.0, 0.5),
        # catalogue: 5.5 kWh, 48 V, 6 kW, 45 km/h, 485 kg, 1.8 kW AC. assumed: CdA 0.90, 15s LFP (48 V).
        TwinModel("citroen-ami", "Citroën Ami (2020)",
                  5.5, 485.0, 6.0, 45.0, 0.90, 0.012, "LFP", 15, 1.8, 0.0, 1.0),
    )
}  # fmt: skip


def battery_power_kw(
    mass_kg: F64,
    cda_m2: F64,
    crr: F64,
    speed_mps: F64,
    accel_mps2: F64,
    hvac_kw: F64,
) -> F64:
    """Battery power for each sample (road load + drivetrain losses + auxiliaries + HVAC).

    Parameters
    ----------
    mass_kg
        Per-sample vehicle mass with driver (kg).
    cda_m2
        Per-sample drag area (m²).
    crr
        Per-sample rolling resistance coefficient (-).
    speed_mps
        Per-sample speed (m/s).
    accel_mps2
        Per-sample acceleration (m/s²); roads are flat (central Shanghai is 3-5 m above sea level).
    hvac_kw
        Per-sample electric power of heating / air conditioning (kW).

    Returns
    -------
    Battery power in kW, positive = discharge, negative = regeneration.

    """
    wheel_w = speed_mps * (
        mass_kg * GRAVITY_MPS2 * crr * (speed_mps > 0.1)
        + 0.5 * AIR_DENSITY_KGPM3 * cda_m2 * speed_mps**2
        + mass_kg * accel_mps2
    )
    battery_w = np.where(
        wheel_w > 0, wheel_w / DRIVETRAIN_EFFICIENCY, wheel_w * REGEN_SHARE * DRIVETRAIN_EFFICIENCY
    )
    return np.asarray(battery_w / 1000.0 + AUX_POWER_KW + hvac_kw, dtype=np.float64)


def hvac_power_kw(ambient_c: F64, setpoint_c: F64, on: npt.NDArray[np.bool_]) -> F64:
    """Electric HVAC power: PTC heating below the setpoint (COP 1), AC above it (COP ≈ 2.5), capped at 3 kW.

    Parameters
    ----------
    ambient_c
        Outside air temperature (°C).
    setpoint_c
        Desired cabin temperature (°C).
    on
        Whether the HVAC runs.

    Returns
    -------
    Electric power in kW. The 0.12 kW/K conductance of a small cabin is assumed.

    """
    delta_k = setpoint_c - ambient_c
    heat_kw = np.clip(delta_k, 0.0, None) * 0.12
    cool_kw = np.clip(-delta_k, 0.0, None) * 0.12 / 2.5
    return np.asarray(np.where(on, np.minimum(heat_kw + cool_kw + 0.1, 3.0), 0.0), dtype=np.float64)


def pack_state(
    soc_pct: F64, power_kw: F64, cells_series: F64, is_lfp: npt.NDArray[np.bool_]
) -> tuple[F64, F64, F64]:
    """Pack terminal voltage, current and mean cell voltage for a state of charge and a power.

    Parameters
    ----------
    soc_pct
        True state of charge (%).
    power_kw
        Battery power (kW), positive = discharge.
    cells_series
        Cells in series in the pack (-).
    is_lfp
        True for LFP chemistry, False for NMC.

    Returns
    -------
    (pack_voltage_v, pack_current_a with positive = discharge, cell_voltage_v under load).

    """
    ocv_cell = np.where(
        is_lfp, np.interp(soc_pct, OCV_SOC_PCT, OCV_LFP_V), np.interp(soc_pct, OCV_SOC_PCT, OCV_NMC_V)
    )
    ocv_pack = ocv_cell * cells_series
    r_pack = PACK_INTERNAL_RESISTANCE_OHM_PER_CELL * cells_series
    # P = V I = (OCV - R I) I  →  I = (OCV - sqrt(OCV² - 4 R P)) / 2R (the physical root).
    disc = np.maximum(ocv_pack**2 - 4.0 * r_pack * power_kw * 1000.0, 0.0)
    current_a = (ocv_pack - np.sqrt(disc)) / (2.0 * r_pack)
    voltage_v = ocv_pack - r_pack * current_a
    return voltage_v, current_a, voltage_v / cells_series
