"""Thevenin equivalent-circuit pack model, vectorised over vehicles, with a lumped thermal model.

Each vehicle's pack is ``cells_in_series`` identical series blocks (parallel cells lumped into one
block of the pack's capacity). A block is ``OCV(SoC) + h − R0·I − v1 − v2`` with two RC pairs and an
LFP hysteresis state ``h`` (Plett, Battery Management Systems vol. 1, 2015, ch. 2 "ESC model").
Resistances follow Arrhenius in temperature and grow with ageing; capacity follows state of health.
Two extra blocks track the weakest and the strongest cell (capacity spread of the series string:
the expected extreme of ``n`` normal draws ≈ ``σ √(2 ln n)``), giving min/max cell voltage.

Thermal: ``C dT/dt = I² R_total + I·(v1 + v2) − UA (T − T_ambient)`` per pack (lumped).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from microfleet.errors import PhysicsInputError
from microfleet.physics import battery_cell
from microfleet.physics.params import VehicleParams

FloatArray = NDArray[np.float64]

_T_REF_K = 298.15


@dataclass(frozen=True)
class BatteryStep:
    """The pack after one step; each field is an array of shape ``(n_vehicles,)``."""

    soc_pct: FloatArray
    pack_voltage_v: FloatArray
    pack_current_a: FloatArray
    pack_power_kw: FloatArray
    pack_temp_c: FloatArray
    cell_voltage_min_v: FloatArray
    cell_voltage_max_v: FloatArray
    ocv_v: FloatArray
    heat_w: FloatArray
    power_limited: NDArray[np.bool_]


class Battery:
    """Vectorised Thevenin ECM (2 RC pairs, LFP hysteresis, Arrhenius R, cell spread, lumped thermal).

    Create it with :meth:`from_params`; call :meth:`step` with the pack power of each vehicle.
    """

    def __init__(
        self,
        params: VehicleParams,
        soc_frac: FloatArray,
        temp_c: FloatArray,
        capacity_ah: FloatArray,
        resistance_factor: FloatArray,
        ambient_temp_c: FloatArray,
    ) -> None:
        self.params = params
        n = params.n_vehicles
        self.capacity_ah = capacity_ah
        self.resistance_factor = resistance_factor
        self.soc = soc_frac.copy()
        z = np.sqrt(2.0 * np.log(np.maximum(params.cells_in_series, 2.0)))
        self._spread = params.capacity_spread_frac * z
        self.soc_weak = soc_frac.copy()
        self.soc_strong = soc_frac.copy()
        self.v1 = np.zeros(n)
        self.v2 = np.zeros(n)
        self.h = -params.hysteresis_max_v.copy()  # a car at rest after driving sits on the discharge branch
        self.temp_c = temp_c.copy()
        self.ambient_temp_c = ambient_temp_c.copy()

    @classmethod
    def from_params(
        cls,
        params: VehicleParams,
        soc_pct: FloatArray | float,
        temp_c: FloatArray | float,
        soh_pct: FloatArray | float = 100.0,
        *,
        resistance_growth_frac: FloatArray | float = 0.0,
        ambient_temp_c: FloatArray | float | None = None,
    ) -> Battery:
        """Start packs at ``soc_pct`` (%), ``temp_c`` (°C) and state of health ``soh_pct`` (% of capacity).

        Parameters
        ----------
        params
            The vehicles.
        soc_pct
            Initial state of charge (%, 0–100), scalar or ``(n,)``.
        temp_c
            Initial pack temperature (°C), scalar or ``(n,)``.
        soh_pct
            Capacity as % of new (see :mod:`microfleet.physics.ageing`), scalar or ``(n,)``.
        resistance_growth_frac
            Resistance increase over new (0.2 = +20 %), scalar or ``(n,)``.
        ambient_temp_c
            Ambient temperature for the thermal model (°C); defaults to ``temp_c``.

        """
        n = params.n_vehicles

        def vec(x: FloatArray | float, name: str) -> FloatArray:
            out = np.broadcast_to(np.asarray(x, dtype=np.float64), (n,)).copy()
            if not np.all(np.isfinite(out)):
                raise PhysicsInputError(f"{name} must be finite, got {out.tolist()}")
            return out

        soc = vec(soc_pct, "soc_pct")
        soh = vec(soh_pct, "soh_pct")
        if np.any((soc < 0.0) | (soc > 100.0)):
            raise PhysicsInputError(f"soc_pct must lie in 0–100, got {soc.tolist()}")
        if np.any((soh <= 0.0) | (soh > 100.0)):
            raise PhysicsInputError(f"soh_pct must lie in (0, 100], got {soh.tolist()}")
        temp = vec(temp_c, "temp_c")
        ambient = vec(temp_c if ambient_temp_c is None else ambient_temp_c, "ambient_temp_c")
        capacity_new_ah = params.usable_kwh * 1000.0 / params.pack_voltage_nominal_v
        growth = vec(resistance_growth_frac, "resistance_growth_frac")
        return cls(params, soc / 100.0, temp, capacity_new_ah * soh / 100.0, 1.0 + growth, ambient)

    def _arrhenius(self) -> FloatArray:
        t_k = self.temp_c + 273.15
        ea = battery_cell.RESISTANCE_ACTIVATION_J_PER_MOL / battery_cell.GAS_CONSTANT_J_PER_MOL_K
        return np.asarray(np.exp(ea * (1.0 / t_k - 1.0 / _T_REF_K)))

    def step(
        self, power_kw: FloatArray, dt_s: float, *, ambient_temp_c: FloatArray | float | None = None
    ) -> BatteryStep:
        """Advance ``dt_s`` seconds drawing ``power_kw`` (``(n,)``, positive = discharge, negative = charge).

        Power beyond what the pack can deliver (maximum power transfer, cell voltage limits) is cut
        and flagged in ``power_limited``; a full pack accepts no charge and an empty one gives none.
        """
        p = self.params
        power = np.broadcast_to(np.asarray(power_kw, dtype=np.float64), (p.n_vehicles,))
        if not np.all(np.isfinite(power)):
            raise PhysicsInputError("power_kw contains NaN or infinite values")
        if ambient_temp_c is not None:
            self.ambient_temp_c = np.broadcast_to(
                np.asarray(ambient_temp_c, dtype=np.float64), (p.n_vehicles,)
            ).copy()
        temp_factor = self._arrhenius() * self.resistance_factor
        q = self.capacity_ah
        r0 = p.cell_r0_ohm_ah / q * temp_factor
        r1 = p.cell_r1_ohm_ah / q * temp_factor
        r2 = p.cell_r2_ohm_ah / q * temp_factor
        ocv = battery_cell.ocv_v(self.soc, p.chemistry_lfp)
        e = ocv + self.h - self.v1 - self.v2
        p_cell_w = power * 1000.0 / p.cells_in_series
        # Power limits: maximum transfer E²/4R0, voltage floor on discharge, ceiling on charge.
        p_max = np.minimum(e**2 / (4.0 * r0), p.cell_v_min_v * (e - p.cell_v_min_v) / r0)
        p_min = -p.cell_v_max_v * np.maximum(p.cell_v_max_v - e, 0.0) / r0
        p_max = np.where(self.soc <= 0.0, 0.0, np.maximum(p_max, 0.0))
        p_min = np.where(self.soc >= 1.0, 0.0, p_min)
        p_use = np.clip(p_cell_w, p_min, p_max)
        limited = np.abs(p_use - p_cell_w) > 1e-9
        current = (e - np.sqrt(np.maximum(e**2 - 4.0 * r0 * p_use, 0.0))) / (2.0 * r0)
        v_cell = e - current * r0
        # RC pairs (exact zero-order-hold update) and hysteresis (Plett ESC).
        a1 = np.exp(-dt_s / p.cell_tau1_s)
        a2 = np.exp(-dt_s / p.cell_tau2_s)
        heat_w = p.cells_in_series * (current**2 * r0 + current * (self.v1 + self.v2))
        self.v1 = a1 * self.v1 + (1.0 - a1) * r1 * current
        self.v2 = a2 * self.v2 + (1.0 - a2) * r2 * current
        dsoc = current * dt_s / (3600.0 * q)
        decay = np.exp(-np.abs(dsoc) * battery_cell.HYSTERESIS_GAMMA)
        self.h = decay * self.h + (1.0 - decay) * (-p.hysteresis_max_v * np.sign(current))
        self.soc = self.soc - dsoc
        self.soc_weak = self.soc_weak - dsoc / (1.0 - self._spread)
        self.soc_strong = self.soc_strong - dsoc / (1.0 + self._spread)
        cooling_w = p.pack_ua_w_per_k * (self.temp_c - self.ambient_temp_c)
        self.temp_c = self.temp_c + dt_s * (heat_w - cooling_w) / p.pack_heat_capacity_j_per_k
        v_weak = self._cell_v(self.soc_weak, current, r0 * (1.0 + self._spread))
        v_strong = self._cell_v(self.soc_strong, current, r0 * (1.0 - self._spread))
        v_mean_after = self._cell_v(self.soc, current, r0)
        return BatteryStep(
            soc_pct=self.soc * 100.0,
            pack_voltage_v=v_cell * p.cells_in_series,
            pack_current_a=current,
            pack_power_kw=p_use * p.cells_in_series / 1000.0,
            pack_temp_c=self.temp_c.copy(),
            cell_voltage_min_v=np.minimum(np.minimum(v_weak, v_strong), v_mean_after),
            cell_voltage_max_v=np.maximum(np.maximum(v_weak, v_strong), v_mean_after),
            ocv_v=battery_cell.ocv_v(self.soc, p.chemistry_lfp) * p.cells_in_series,
            heat_w=heat_w,
            power_limited=limited,
        )

    def _cell_v(self, soc: FloatArray, current: FloatArray, r0: FloatArray) -> FloatArray:
        ocv = battery_cell.ocv_v(soc, self.params.chemistry_lfp)
        return np.asarray(ocv + self.h - self.v1 - self.v2 - current * r0)

    @property
    def soc_pct(self) -> FloatArray:
        """Current state of charge (%) per vehicle."""
        return self.soc * 100.0
