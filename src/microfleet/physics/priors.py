"""Cited priors: typical values used where no source gives a car's own figure.

Each constant names its source beside it. A value filled from a prior is marked ``is_prior=True`` in
its :class:`~microfleet.domain.catalogue.Sourced` wrapper, so every table and test can tell a catalogue
figure from an assumption. No prior was tuned to any car's published range.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from microfleet.domain.catalogue import Sourced, VehicleSpec
from microfleet.errors import PhysicsInputError

CATALOGUE_README = "shared/data/vehicles/README.md"

# Frontal area ≈ 0.79–0.84 × overall width × height for passenger cars (Wong, Theory of Ground
# Vehicles, 4th ed., 2008, §3.1.1); the middle of that band is used.
FRONTAL_AREA_SHAPE_FACTOR = 0.81
FRONTAL_AREA_SOURCE = (
    "prior: 0.81 x width x height (Wong, Theory of Ground Vehicles, 4th ed. 2008, s.3.1.1: 79-84%)"
)

# Cd of small hatchbacks 0.30–0.35 and of tall boxy micro cars / quadricycles about 0.35–0.45 (Hucho,
# Aerodynamics of Road Vehicles, 4th ed., 1998, ch. 4 tables of production cars). The one catalogue
# Cd (Fiat 500e 2013: 0.311) sits in the hatchback band.
CD_SMALL_CAR = 0.33
CD_MICRO_CAR = 0.40
CD_SOURCE = (
    "prior: Cd by body (Hucho, Aerodynamics of Road Vehicles, 4th ed. 1998, ch.4: "
    "0.30-0.35 hatchback, 0.35-0.45 micro)"
)
MICRO_CAR_MAX_LENGTH_MM = 3100.0  # L6e/L7e quadricycles and A00 cars such as the Mini EV (2,917 mm)

# Passenger-car (C1) tyres span RRC 0.0065 (label A) to over 0.012 (G) (Reg. (EC) 1222/2009 Annex I A,
# in the catalogue README). Small 12–14" tyres of budget cars are taken at label E (9.1–10.5 kg/t).
ROLLING_RESISTANCE = 0.0095
ROLLING_RESISTANCE_SOURCE = (
    "prior: RRC 0.0095, EU label class E (Reg. (EC) 1222/2009 Annex I part A; catalogue README)"
)

# Rotating-mass allowance for a single-reduction EV: 3–5 % of vehicle mass (Guzzella & Sciarretta,
# Vehicle Propulsion Systems, 3rd ed., 2013, §2.1: m_r is "a few percent" without a multi-speed gearbox).
ROTATING_MASS_FRACTION = 0.04

# Test masses per procedure are in ``procedures.py``.
DRIVER_MASS_KG = 75.0  # EU "mass in running order" driver allowance (catalogue README, PMR definition)

# Usable / gross energy: the catalogue's three labelled pairs give 97 %, 93 % and 89 % (README,
# "LFP usable SoC window"); their mean is used where only a headline figure is published.
USABLE_FRACTION_OF_STATED = 0.93
USABLE_FRACTION_SOURCE = (
    "prior: usable = 0.93 x stated kWh (mean of 97/93/89 % pairs in the catalogue README)"
)

# Pack-level specific energy used to move mass between siblings with different packs: LFP packs of
# small Chinese EVs about 110–140 Wh/kg, NMC 140–160 Wh/kg at pack level (BloombergNEF / CATL public
# figures as summarised by IEA Global EV Outlook 2022, "Battery" chapter). 125 Wh/kg is used for both.
PACK_SPECIFIC_ENERGY_WH_PER_KG = 125.0

# 12 V auxiliaries (controllers, pumps, lights off) during a type-approval test: FASTSim's bundled
# 2022 Renault Zoe file uses pwr_aux_base_watts = 250 W; the same 0.25 kW is used here.
AUX_BASE_KW = 0.25
AUX_SOURCE = "prior: 0.25 kW 12 V load (FASTSim 3.1 bundled 2022 Renault Zoe file: pwr_aux_base_watts 250)"


@dataclass(frozen=True, slots=True)
class ResolvedSpec:
    """The numbers the physics needs for one car, each with its provenance (prior or catalogue)."""

    model_id: str
    chemistry_lfp: bool
    chemistry: Sourced
    curb_mass_kg: Sourced
    usable_kwh: Sourced
    stated_kwh: Sourced
    motor_peak_kw: Sourced
    top_speed_kmh: Sourced
    frontal_area_m2: Sourced
    drag_coefficient: Sourced
    rolling_resistance: Sourced
    pack_voltage_nominal_v: Sourced
    is_quadricycle: bool
    is_micro: bool
    has_heater: bool

    def used_values(self) -> dict[str, Sourced]:
        """Every value the model reads, by name (for provenance tables and tests)."""
        return {
            "chemistry": self.chemistry,
            "curb_mass_kg": self.curb_mass_kg,
            "usable_kwh": self.usable_kwh,
            "stated_kwh": self.stated_kwh,
            "motor_peak_kw": self.motor_peak_kw,
            "top_speed_kmh": self.top_speed_kmh,
            "frontal_area_m2": self.frontal_area_m2,
            "drag_coefficient": self.drag_coefficient,
            "rolling_resistance": self.rolling_resistance,
            "pack_voltage_nominal_v": self.pack_voltage_nominal_v,
        }


def _prior(value: float, source: str) -> Sourced:
    return Sourced(value, source, "prior", is_prior=True)


def _sibling(
    spec: VehicleSpec, siblings: Sequence[VehicleSpec], getter: Callable[[VehicleSpec], Sourced | None]
) -> tuple[VehicleSpec, Sourced] | None:
    """The nearest-year sibling on the same platform that has the value."""
    year = spec.market_year.value if spec.market_year else 0.0
    found = [(s, v) for s in siblings if s.model_id != spec.model_id and (v := getter(s)) is not None]
    if not found:
        return None
    return min(found, key=lambda sv: abs((sv[0].market_year.value if sv[0].market_year else 0.0) - year))


def _from_sibling(
    spec: VehicleSpec,
    siblings: Sequence[VehicleSpec],
    field: str,
    getter: Callable[[VehicleSpec], Sourced | None],
) -> Sourced | None:
    own = getter(spec)
    if own is not None:
        return own
    hit = _sibling(spec, siblings, getter)
    if hit is None:
        return None
    sib, value = hit
    return Sourced(value.value, f"prior: {field} of sibling {sib.model_id} ({value.source})", "prior", True)


def _need(spec: VehicleSpec, value: Sourced | None, field: str) -> Sourced:
    if value is None:
        raise PhysicsInputError(
            f"{spec.model_id} ({spec.display_name}): the catalogue gives no {field} for this car or a "
            "sibling on its platform, and the model needs it"
        )
    return value


def _stated_kwh(spec: VehicleSpec) -> Sourced | None:
    return spec.battery_nominal_kwh or spec.battery_gross_kwh or spec.battery_usable_kwh


def _motor_kw(spec: VehicleSpec) -> Sourced | None:
    return spec.motor_peak_kw or spec.motor_power_kw_stated or spec.motor_continuous_kw


def _is_l_category(spec: VehicleSpec) -> bool:
    klass = (spec.vehicle_class.value if spec.vehicle_class else "").lower()
    return "l6e" in klass or "l7e" in klass


def _curb_mass(spec: VehicleSpec) -> Sourced | None:
    """Curb mass (no driver). "Mass in running order" means two things by class (``procedures.py``).

    The catalogue README defines that column with a 75 kg driver, which is the M1 definition (Reg. (EU)
    2017/1151). For L-category vehicles Reg. (EU) No 168/2013 Art. 5 defines it *without* the driver, so an
    L6e/L7e row's figure is taken as the curb mass unchanged.
    """
    if spec.curb_mass_kg is not None:
        return spec.curb_mass_kg
    mro = spec.mass_in_running_order_kg
    if mro is None:
        return None
    if _is_l_category(spec):
        return Sourced(
            mro.value, f"{mro.source} (L-category mass in running order: no driver)", mro.confidence
        )
    return Sourced(
        mro.value - DRIVER_MASS_KG, f"{mro.source} (M1 mass in running order - 75 kg driver)", mro.confidence
    )


def usable_kwh(spec: VehicleSpec, siblings: Sequence[VehicleSpec] = ()) -> Sourced | None:
    """Usable pack energy: stated usable kWh, else the cited 0.93 x stated kWh.

    The stated kWh is the car's own or its nearest platform sibling's; None when neither states any.

    The one rule for a model's capacity: the physics, derivation's context (``bootstrap``) and the history
    bench all take it from here, never from a twin's true pack.
    """
    if spec.battery_usable_kwh is not None:
        return spec.battery_usable_kwh
    same_platform = [s for s in siblings if s.platform_id == spec.platform_id]
    stated = _from_sibling(spec, same_platform, "battery kWh", _stated_kwh)
    if stated is None:
        return None
    source = f"{USABLE_FRACTION_SOURCE}; stated: {stated.source}"
    return _prior(stated.value * USABLE_FRACTION_OF_STATED, source)


def resolve_spec(spec: VehicleSpec, siblings: Sequence[VehicleSpec] = ()) -> ResolvedSpec:
    """Fill what the physics needs from the catalogue, then platform siblings, then cited priors.

    Raises :class:`~microfleet.errors.PhysicsInputError` naming the car and field when a value that has
    no defensible prior (mass, pack energy, motor power) is missing from the car and its siblings.
    """
    same_platform = [s for s in siblings if s.platform_id == spec.platform_id]
    stated = _need(
        spec, _from_sibling(spec, same_platform, "battery kWh", _stated_kwh), "battery_nominal_kwh_stated"
    )
    usable = _need(spec, usable_kwh(spec, siblings), "battery_usable_kwh")
    mass = _curb_mass(spec)
    if mass is None:
        # Prefer a sibling whose pack size is known, so the mass can follow the pack difference; a
        # sibling with a mass but no stated pack would carry its own pack's mass over unchanged.
        sized = [s for s in same_platform if _stated_kwh(s) is not None]
        hit = _sibling(spec, sized, _curb_mass) or _sibling(spec, same_platform, _curb_mass)
        if hit is not None:
            sib, sib_mass = hit
            sib_kwh = _stated_kwh(sib)
            delta_kg = (
                (stated.value - sib_kwh.value) * 1000.0 / PACK_SPECIFIC_ENERGY_WH_PER_KG if sib_kwh else 0.0
            )
            mass = _prior(
                sib_mass.value + delta_kg,
                f"prior: curb mass of sibling {sib.model_id} ({sib_mass.source}) + pack difference at "
                f"{PACK_SPECIFIC_ENERGY_WH_PER_KG:.0f} Wh/kg",
            )
    mass = _need(spec, mass, "curb_mass_kg")
    motor = _need(spec, _from_sibling(spec, same_platform, "motor kW", _motor_kw), "motor_power_kw_stated")
    top = _need(
        spec, _from_sibling(spec, same_platform, "top speed", lambda s: s.top_speed_kmh), "top_speed_kmh"
    )
    width = _from_sibling(spec, same_platform, "width", lambda s: s.width_mm)
    height = _from_sibling(spec, same_platform, "height", lambda s: s.height_mm)
    length = _from_sibling(spec, same_platform, "length", lambda s: s.length_mm)
    is_quadricycle = _is_l_category(spec)
    is_micro = is_quadricycle or (length is not None and length.value <= MICRO_CAR_MAX_LENGTH_MM)
    if spec.frontal_area_m2 is not None:
        area = spec.frontal_area_m2
    else:
        w = _need(spec, width, "width_mm")
        h = _need(spec, height, "height_mm")
        area = _prior(
            FRONTAL_AREA_SHAPE_FACTOR * w.value * h.value * 1e-6,
            f"{FRONTAL_AREA_SOURCE}; width: {w.source}; height: {h.source}",
        )
    cd = spec.drag_coefficient or _prior(CD_MICRO_CAR if is_micro else CD_SMALL_CAR, CD_SOURCE)
    # Chemistry is never borrowed from a sibling: packs change chemistry between variants (Spring 2025).
    chem_text = spec.chemistry
    chemistry_lfp = chem_text is None or chem_text.value.upper() != "NMC"
    chemistry = Sourced(
        1.0 if chemistry_lfp else 0.0,
        chem_text.source
        if chem_text
        else "prior: LFP, the chemistry of most Chinese small EVs (catalogue: 10 of 10 named)",
        chem_text.confidence if chem_text else "prior",
        chem_text is None or chem_text.is_prior,
    )
    # A rebadge shares its pack (the Rocks-e is the Ami's 48 V pack), so a sibling's voltage is borrowed.
    voltage = _from_sibling(
        spec, same_platform, "pack voltage", lambda s: s.pack_voltage_nominal_v
    ) or _prior(_voltage_prior(motor.value), VOLTAGE_SOURCE)
    # Twizy has no heating (catalogue README, HVAC caveat, alvolante.it).
    has_heater = spec.platform_id != "renault-twizy"
    return ResolvedSpec(
        model_id=spec.model_id,
        chemistry_lfp=chemistry_lfp,
        chemistry=chemistry,
        curb_mass_kg=mass,
        usable_kwh=usable,
        stated_kwh=stated,
        motor_peak_kw=motor,
        top_speed_kmh=top,
        frontal_area_m2=area,
        drag_coefficient=cd,
        rolling_resistance=_prior(ROLLING_RESISTANCE, ROLLING_RESISTANCE_SOURCE),
        pack_voltage_nominal_v=voltage,
        is_quadricycle=is_quadricycle,
        is_micro=is_micro,
        has_heater=has_heater,
    )


# Low-voltage packs for quadricycles (Ami 48 V, catalogue; Twizy controller 39–65 V, Twizy-Virtual-BMS),
# about 100 V class for 10–35 kW A00 cars and about 330 V above (Baojun E300 Plus 320 V, catalogue).
VOLTAGE_SOURCE = (
    "prior: pack voltage class by motor power (catalogue: Ami 48 V, E300 Plus 320 V; Twizy 39-65 V)"
)


def _voltage_prior(motor_kw: float) -> float:
    if motor_kw <= 15.0:
        return 57.6
    if motor_kw <= 35.0:
        return 102.4
    return 332.8
