"""Type-approval range procedures: the trace a published range was measured on, test mass, end of test.

A published range is the distance from a full pack to the second the car can no longer follow the
repeated trace (UNECE R101 Annex 9 for NEDC; Reg. (EU) No 134/2014 Annex VII Appendix 3.3 for
L-category vehicles; GB/T 18386.1-2021 consecutive-cycle method for CLTC). What is and is not confirmed
from the legal texts is stated beside each rule; see ``cycles/README.md``.

Mass conventions differ by vehicle class, and the catalogue's column notes follow the M1 one:

- **M1** (Reg. (EU) 2017/1151): "mass in running order" *includes* a 75 kg driver, so the catalogue's
  ``mass_in_running_order_kg`` minus 75 kg is the curb mass (``priors.resolve_spec``).
- **L-category** (Reg. (EU) No 168/2013 Art. 5): "mass in running order" *excludes* the driver (liquids,
  standard equipment, fuel ≥ 90 %); the published kerb/unladen figures of quadricycles are that mass.
  ``priors.resolve_spec`` therefore takes an L-category row's ``mass_in_running_order_kg`` as its curb
  mass with nothing subtracted, and the WMTC test mass adds the 75 kg driver here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microfleet.errors import PhysicsInputError
from microfleet.physics.cycles import DriveCycle, load_cycle, wltc_class_for
from microfleet.physics.priors import DRIVER_MASS_KG, ResolvedSpec

# Test masses above the curb (kg).
# NEDC (UNECE R83/R101: reference mass = unladen mass + 100 kg).
NEDC_ADDED_KG = 100.0
# CLTC range (GB/T 18386): curb + 100 kg for M1/N1 is quoted from the 2017 edition (s.4.3.1, "附加质量 ...
# 100 kg", study notes in the project library); the 2021 edition's rule is not confirmed here.
CLTC_ADDED_KG = 100.0
# WMTC type I "reference mass" = mass in running order + 75 kg (Reg. (EU) No 134/2014 Annex II; UN GTR No. 2)
# as commonly stated; not confirmed from the legal text (cycles README).
WMTC_ADDED_KG = DRIVER_MASS_KG
# WLTP (Reg. (EU) 2017/1151 Annex XXI 3.2.25-3.2.26): mass in running order (curb + 75 kg driver) + 25 kg
# + 15 % of the maximum vehicle load; the load is a 300 kg prior where no permissible laden mass is known.
WLTP_DEFAULT_LOAD_KG = 300.0

# "Cannot follow the trace": the car falls more than this far below the trace because its pack cannot
# deliver the power asked for. 2 km/h is the speed tolerance of UNECE R83 Annex 4a / GTR 15 (±2 km/h,
# ±1 s); the same band is assumed for WMTC and CLTC (GTR No. 2 and GB/T 18386.1 tolerances not at hand).
# A car whose *motor* is too weak for the trace drives at full power until it rejoins (GTR No. 2, cycles
# README): that miss never ends a test.
TRACE_TOLERANCE_KMH = 2.0

# WMTC class by maximum speed for an electric L-vehicle: class 1 below 100 km/h drives part 1 at reduced
# speed, cold then hot (commonly stated; UN GTR No. 2 table titles, not confirmed: cycles README).
WMTC_CLASS1_MAX_KMH = 100.0


@dataclass(frozen=True)
class TestProcedure:
    """A range test: the parts of one lap (driven in order, the lap repeated) and its rules."""

    __test__ = False  # not a pytest class, despite the name

    name: str
    parts: tuple[str, ...]
    part_labels: tuple[str, ...]
    added_mass_kg: float
    mass_rule: str
    trace_tolerance_kmh: float = TRACE_TOLERANCE_KMH

    def lap(self) -> DriveCycle:
        """One lap of the procedure as a single 1 Hz trace (parts joined end to end)."""
        cycles = [load_cycle(p) for p in self.parts]
        if len(cycles) == 1:
            return cycles[0]
        speed = np.concatenate([c.speed_kmh for c in cycles])
        source = "; ".join(f"{label}: {c.source}" for label, c in zip(self.part_labels, cycles, strict=True))
        return DriveCycle(name=" + ".join(self.parts), speed_kmh=speed, source=source)


def wltp_added_kg(curb_kg: float, gross_kg: float | None) -> float:
    """WLTP test mass above curb (kg), M1: 75 kg driver + 25 kg + 15 % of the maximum vehicle load.

    Maximum load = technically permissible laden mass - mass in running order (curb + 75 kg) - 25 kg
    (Reg. (EU) 2017/1151 Annex XXI 3.2.25-3.2.26); the 300 kg prior where the laden mass is unknown.
    """
    if gross_kg is None:
        load = WLTP_DEFAULT_LOAD_KG
    else:
        load = max(gross_kg - (curb_kg + DRIVER_MASS_KG) - 25.0, 0.0)
    return DRIVER_MASS_KG + 25.0 + 0.15 * load


def procedure_for(
    rating: str, resolved: ResolvedSpec, gross_mass_kg: float | None = None
) -> tuple[TestProcedure, str]:
    """The procedure a published range was measured on, from the rating the source names, and a note.

    ``rating`` is the catalogue's ``range_cycle`` (``NEDC``, ``CLTC``, ``WLTP``, ``WMTC``, or a wording
    starting with one of them). An EU L6e/L7e car rated "WLTP" (Opel's wording for the Rocks-e) is
    approved on WMTC (Reg. (EU) No 168/2013 and 134/2014), so it gets the WMTC procedure with a note.
    Raises :class:`PhysicsInputError` for a rating with no stored trace.
    """
    head = rating.strip().upper()
    if head.startswith("WMTC") or (resolved.is_quadricycle and head.startswith("WLTP")):
        top = resolved.top_speed_kmh.value
        if top >= WMTC_CLASS1_MAX_KMH:
            raise PhysicsInputError(
                f"{resolved.model_id}: WMTC class 2/3 (v_max {top:.0f} km/h) needs parts not modelled here"
            )
        note = "WMTC class 1: part 1 reduced speed, cold then hot"
        if not head.startswith("WMTC"):
            note += f" ({rating.strip()} as stated, but an L-category car is approved on WMTC)"
        return TestProcedure(
            "WMTC class 1",
            ("wmtc_part1_reduced_speed", "wmtc_part1_reduced_speed"),
            ("cold", "hot"),
            WMTC_ADDED_KG,
            "L-category mass in running order (no driver) + 75 kg (commonly stated, not confirmed)",
        ), note
    if head.startswith("CLTC"):
        return TestProcedure(
            "CLTC-P", ("cltc_p",), ("",), CLTC_ADDED_KG, "curb + 100 kg (GB/T 18386-2017; 2021 not confirmed)"
        ), "CLTC-P, consecutive-cycle method"
    if head.startswith("NEDC"):
        return TestProcedure(
            "NEDC", ("nedc",), ("",), NEDC_ADDED_KG, "unladen + 100 kg (UNECE R83/R101)"
        ), "NEDC"
    if head.startswith("WLTP"):
        pmr = resolved.motor_peak_kw.value * 1000.0 / resolved.curb_mass_kg.value
        name = wltc_class_for(pmr)
        note = f"WLTP → WLTC by PMR {pmr:.0f} W/kg"
        if "EXPECTED" in head:
            note += " (range stated as 'expected')"
        added = wltp_added_kg(resolved.curb_mass_kg.value, gross_mass_kg)
        rule = "WLTP M1 test mass (Reg. (EU) 2017/1151 Annex XXI)" + (
            "" if gross_mass_kg is not None else ", 300 kg load prior"
        )
        return TestProcedure("WLTP", (name,), ("",), added, rule), note
    raise PhysicsInputError(f"{resolved.model_id}: range cycle {rating!r} has no stored trace")
