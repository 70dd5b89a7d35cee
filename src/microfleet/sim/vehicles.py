"""The twin's car models and the one place the twin uses :mod:`microfleet.physics`.

Road load, drivetrain losses, regeneration limits, auxiliaries and HVAC come from
``microfleet.physics.power_breakdown`` with parameters resolved from the cited catalogue
(``VehicleParams.from_specs``). Where the catalogue lacks a value the physics needs (the QQ Ice Cream has
no published mass), the twin borrows the Wuling Mini EV's parameters with its own assumed mass and
capacity, marked ``assumed`` below. Terminal voltage at sample times uses the OCV curves here (the
physics ECM is not stepped second by second yet).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

import numpy as np
import numpy.typing as npt

from microfleet.domain.catalogue import load_catalogue
from microfleet.errors import PhysicsInputError
from microfleet.physics import VehicleParams, power_breakdown
from microfleet.sim.models import MODELS, TwinModel

F64 = npt.NDArray[np.float64]

PACK_INTERNAL_RESISTANCE_OHM_PER_CELL: Final = 0.0008  # assumed, LFP/NMC prismatic ~0.5-1 mOhm per cell group

# Open-circuit voltage of one cell against SoC: typical shapes of LFP and NMC cells (assumed, datasheet-like).
OCV_SOC_PCT: Final = np.array([0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100], dtype=np.float64)
OCV_LFP_V: Final = np.array(
    [2.80, 3.10, 3.20, 3.25, 3.27, 3.28, 3.29, 3.30, 3.31, 3.33, 3.35, 3.40, 3.50], dtype=np.float64
)
OCV_NMC_V: Final = np.array(
    [3.00, 3.35, 3.45, 3.55, 3.62, 3.68, 3.74, 3.82, 3.90, 3.98, 4.07, 4.12, 4.18], dtype=np.float64
)


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


FALLBACK_MODEL_ID: Final = "wuling-hongguang-mini-ev-gen1-14kwh"  # same class and size as the QQ Ice Cream


@dataclass(frozen=True, slots=True)
class TwinPhysics:
    """Physics parameters of each model in a run, and the model values the twin keeps consistent with them."""

    models: dict[str, TwinModel]
    params: dict[str, VehicleParams]

    @classmethod
    def load(cls, model_ids: tuple[str, ...]) -> TwinPhysics:
        """Resolve each model through the cited catalogue (borrowing a sibling's parameters if it must)."""
        catalogue = load_catalogue()
        siblings = catalogue.all()
        models: dict[str, TwinModel] = {}
        params: dict[str, VehicleParams] = {}
        for model_id in dict.fromkeys(model_ids):
            twin = MODELS[model_id]
            try:
                p = VehicleParams.from_specs([catalogue.get(model_id)], siblings=siblings)
            except PhysicsInputError:
                base = VehicleParams.from_specs([catalogue.get(FALLBACK_MODEL_ID)], siblings=siblings)
                p = replace(
                    base.with_mass_kg(twin.curb_mass_kg + 75.0),
                    model_ids=(model_id,),
                    usable_kwh=np.array([twin.usable_kwh]),
                )
            params[model_id] = p
            models[model_id] = replace(
                twin,
                usable_kwh=float(p.usable_kwh[0]),
                curb_mass_kg=float(p.mass_kg[0]) - 75.0,
                cells_series=int(p.cells_in_series[0]),
                chemistry="LFP" if bool(p.chemistry_lfp[0]) else "NMC",
            )
        return cls(models, params)

    def drive_power(
        self, model_id: str, speed_mps: F64, ambient_c: float, setpoint_c: float, hvac_on: bool
    ) -> tuple[F64, float]:
        """Battery power each second of a drive (kW, + = discharge) and the HVAC's mean electric power (kW).

        Parameters
        ----------
        model_id
            The car model.
        speed_mps
            Speed each second (m/s).
        ambient_c
            Outside air temperature (°C).
        setpoint_c
            Cabin temperature the driver wants (°C).
        hvac_on
            Whether the driver runs heating or air conditioning.

        Returns
        -------
        (battery power per second in kW, mean HVAC power in kW).

        """
        flows = power_breakdown(
            self.params[model_id], speed_mps[None, :], 1.0,
            ambient_temp_c=ambient_c, cabin_target_temp_c=setpoint_c, hvac_on=hvac_on,
        )  # fmt: skip
        return np.asarray(flows.battery_kw[0], dtype=np.float64), float(flows.hvac_kw.mean())
