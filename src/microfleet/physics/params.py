"""Per-vehicle model parameters as arrays, one entry per vehicle, so every model runs on a whole fleet."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
from numpy.typing import NDArray

from microfleet.domain.catalogue import Sourced, VehicleSpec
from microfleet.errors import PhysicsInputError
from microfleet.physics import drivetrain, hvac
from microfleet.physics.battery_cell import cell_chemistry_arrays
from microfleet.physics.priors import AUX_BASE_KW, ROTATING_MASS_FRACTION, ResolvedSpec, resolve_spec

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class VehicleParams:
    """Physical parameters of ``n`` vehicles, each field an array of shape ``(n,)``.

    Masses in kg, powers in kW, speeds in m/s, areas in m², energies in kWh, voltages in V,
    resistances in Ω·Ah (cell resistance × cell capacity, independent of cell size), times in s.
    """

    model_ids: tuple[str, ...]
    mass_kg: FloatArray
    rotating_mass_fraction: FloatArray
    rolling_resistance: FloatArray
    drag_area_m2: FloatArray
    motor_peak_kw: FloatArray
    motor_base_speed_mps: FloatArray
    top_speed_mps: FloatArray
    gear_efficiency: FloatArray
    regen_max_kw: FloatArray
    aux_base_kw: FloatArray
    cabin_ua_w_per_k: FloatArray
    hvac_heat_max_kw: FloatArray
    hvac_cool_max_kw: FloatArray
    has_heat_pump: BoolArray
    usable_kwh: FloatArray
    pack_voltage_nominal_v: FloatArray
    cells_in_series: FloatArray
    chemistry_lfp: BoolArray
    cell_r0_ohm_ah: FloatArray
    cell_r1_ohm_ah: FloatArray
    cell_tau1_s: FloatArray
    cell_r2_ohm_ah: FloatArray
    cell_tau2_s: FloatArray
    cell_v_min_v: FloatArray
    cell_v_max_v: FloatArray
    hysteresis_max_v: FloatArray
    capacity_spread_frac: FloatArray
    pack_mass_kg: FloatArray
    pack_heat_capacity_j_per_k: FloatArray
    pack_ua_w_per_k: FloatArray
    max_discharge_kw: FloatArray
    max_charge_kw: FloatArray
    # Multiplier on the motor + inverter loss map (shared calibration; ``None`` = 1, the cited prior).
    motor_loss_scale: FloatArray | None = None

    @property
    def n_vehicles(self) -> int:
        """Number of vehicles."""
        return len(self.model_ids)

    def with_mass_kg(self, mass_kg: FloatArray | float) -> VehicleParams:
        """A copy with another mass (for example a test mass or a loaded car), broadcast to ``(n,)``."""
        mass = np.broadcast_to(np.asarray(mass_kg, dtype=np.float64), (self.n_vehicles,)).copy()
        if np.any(~np.isfinite(mass)) or np.any(mass <= 0.0):
            raise PhysicsInputError(f"vehicle mass must be positive, got {mass.tolist()}")
        return replace(self, mass_kg=mass)

    def take(self, index: Sequence[int] | NDArray[np.intp]) -> VehicleParams:
        """The parameters of a subset (or a repetition) of the vehicles, in the given order."""
        idx = np.asarray(index, dtype=np.intp)
        values: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "model_ids":
                values[f.name] = tuple(value[i] for i in idx)
            else:
                values[f.name] = None if value is None else value[idx]
        return VehicleParams(**values)  # type: ignore[arg-type]

    @classmethod
    def concatenate(cls, parts: Sequence[VehicleParams]) -> VehicleParams:
        """One fleet from several, in order (for example cars each with their own calibration)."""
        if not parts:
            raise PhysicsInputError("no vehicle parameters to concatenate")
        values: dict[str, object] = {}
        for f in fields(cls):
            items = [getattr(p, f.name) for p in parts]
            if f.name == "model_ids":
                values[f.name] = tuple(m for item in items for m in item)
            elif any(item is None for item in items):
                values[f.name] = (
                    None
                    if all(item is None for item in items)
                    else np.concatenate(
                        [
                            np.ones(p.n_vehicles) if it is None else it
                            for p, it in zip(parts, items, strict=True)
                        ]
                    )
                )
            else:
                values[f.name] = np.concatenate(items)
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def from_specs(
        cls,
        specs: Sequence[VehicleSpec],
        *,
        payload_kg: float | Sequence[float] = 75.0,
        siblings: Sequence[VehicleSpec] | None = None,
    ) -> VehicleParams:
        """Build parameters from catalogue specs, filling gaps from siblings and cited priors.

        Parameters
        ----------
        specs
            The vehicles, in the order the arrays will have.
        payload_kg
            Mass added to the curb mass (kg): a 75 kg driver by default.
        siblings
            Other catalogue rows to borrow platform values from (default: ``specs`` themselves).

        """
        if not specs:
            raise PhysicsInputError("no vehicle specs given")
        pool = list(siblings) if siblings is not None else list(specs)
        resolved = [resolve_spec(spec, pool) for spec in specs]
        return cls.from_resolved(resolved, payload_kg=payload_kg)

    @classmethod
    def from_resolved(
        cls, resolved: Sequence[ResolvedSpec], *, payload_kg: float | Sequence[float] = 75.0
    ) -> VehicleParams:
        """Build parameters from resolved specs (see :func:`~microfleet.physics.priors.resolve_spec`)."""
        n = len(resolved)

        def arr(values: Sequence[float]) -> FloatArray:
            return np.asarray(values, dtype=np.float64)

        curb = arr([r.curb_mass_kg.value for r in resolved])
        payload = np.broadcast_to(np.asarray(payload_kg, dtype=np.float64), (n,))
        mass = curb + payload
        if np.any(mass <= 0.0) or np.any(curb <= 0.0):
            bad = [r.model_id for r, m in zip(resolved, curb, strict=True) if m <= 0.0]
            raise PhysicsInputError(f"negative or zero mass for {', '.join(bad) or 'payload'}")
        motor_kw = arr([r.motor_peak_kw.value for r in resolved])
        top = arr([r.top_speed_kmh.value for r in resolved]) / 3.6
        usable = arr([r.usable_kwh.value for r in resolved])
        for name, values in (("motor_peak_kw", motor_kw), ("top_speed_kmh", top), ("usable_kwh", usable)):
            if np.any(values <= 0.0):
                bad = [r.model_id for r, v in zip(resolved, values, strict=True) if v <= 0.0]
                raise PhysicsInputError(f"{name} must be positive for {', '.join(bad)}")
        lfp = np.asarray([r.chemistry_lfp for r in resolved], dtype=np.bool_)
        voltage = arr([r.pack_voltage_nominal_v.value for r in resolved])
        cell = cell_chemistry_arrays(lfp)
        cells_series = np.maximum(np.round(voltage / cell.v_nominal_v), 1.0)
        area = arr([r.frontal_area_m2.value for r in resolved])
        pack_mass = usable * 1000.0 / cell.pack_wh_per_kg
        micro = np.asarray([r.is_micro for r in resolved], dtype=np.bool_)
        heater = np.asarray([r.has_heater for r in resolved], dtype=np.bool_)
        return cls(
            model_ids=tuple(r.model_id for r in resolved),
            mass_kg=mass,
            rotating_mass_fraction=np.full(n, ROTATING_MASS_FRACTION),
            rolling_resistance=arr([r.rolling_resistance.value for r in resolved]),
            drag_area_m2=area * arr([r.drag_coefficient.value for r in resolved]),
            motor_peak_kw=motor_kw,
            motor_base_speed_mps=top / drivetrain.CONSTANT_POWER_SPEED_RATIO,
            top_speed_mps=top,
            gear_efficiency=np.full(n, drivetrain.GEAR_EFFICIENCY),
            regen_max_kw=motor_kw * drivetrain.REGEN_POWER_FRACTION,
            aux_base_kw=np.full(n, AUX_BASE_KW),
            cabin_ua_w_per_k=hvac.cabin_ua_w_per_k(area),
            hvac_heat_max_kw=np.where(
                heater, np.where(micro, hvac.HEATER_MAX_KW_MICRO, hvac.HEATER_MAX_KW), 0.0
            ),
            hvac_cool_max_kw=np.where(micro, hvac.COOLER_MAX_KW_MICRO, hvac.COOLER_MAX_KW),
            has_heat_pump=np.zeros(n, dtype=np.bool_),
            usable_kwh=usable,
            pack_voltage_nominal_v=cells_series * cell.v_nominal_v,
            cells_in_series=cells_series,
            chemistry_lfp=lfp,
            cell_r0_ohm_ah=cell.r0_ohm_ah,
            cell_r1_ohm_ah=cell.r1_ohm_ah,
            cell_tau1_s=cell.tau1_s,
            cell_r2_ohm_ah=cell.r2_ohm_ah,
            cell_tau2_s=cell.tau2_s,
            cell_v_min_v=cell.v_min_v,
            cell_v_max_v=cell.v_max_v,
            hysteresis_max_v=cell.hysteresis_max_v,
            capacity_spread_frac=np.full(n, cell.capacity_spread_frac),
            pack_mass_kg=pack_mass,
            pack_heat_capacity_j_per_k=pack_mass * cell.specific_heat_j_per_kg_k,
            pack_ua_w_per_k=pack_mass * cell.ua_w_per_k_per_kg,
            max_discharge_kw=np.maximum(motor_kw * drivetrain.BATTERY_POWER_HEADROOM, usable * 3.0),
            max_charge_kw=usable * cell.max_charge_c,
        )


def provenance(resolved: ResolvedSpec) -> dict[str, Sourced]:
    """The provenance table of one resolved car (value, source, confidence, prior flag by name)."""
    return resolved.used_values()
