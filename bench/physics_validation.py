"""Physics validation: modelled range/consumption vs published figures, FASTSim 3.1 beside, PyBaMM ECM check.

Run: .venv/bin/python bench/physics_validation.py [--quick] [--seed N]
Writes bench/results/physics_validation.json and the tables of docs/physics.md.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

import fastsim_peer  # bench/ is on sys.path when this file runs as a script
from microfleet.domain.catalogue import Sourced, VehicleSpec, load_catalogue
from microfleet.errors import PhysicsInputError
from microfleet.physics import (
    Battery,
    VehicleParams,
    cycle_range_km,
    power_breakdown,
    procedure_range_km,
    resolve_spec,
)
from microfleet.physics.calibration import (
    AUX_BASE_KW_GRID,
    MOTOR_LOSS_SCALE_GRID,
    PRIORS,
    ROLLING_RESISTANCE_GRID,
    USABLE_FRACTION_GRID,
    SharedParams,
    fit_all,
    leave_one_out,
    params_with_shared,
    search_grid,
)
from microfleet.physics.cycles import DriveCycle, load_cycle
from microfleet.physics.drivetrain import REGENERATION_STATED
from microfleet.physics.priors import ResolvedSpec
from microfleet.physics.procedures import NEDC_ADDED_KG, TestProcedure, procedure_for
from microfleet.physics.range_sim import capped_speed_mps, cycle_consumption_wh_per_km

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "physics_validation.json"
DOC = ROOT / "docs" / "physics.md"
FASTSIM_FAILURES: dict[str, str] = {}  # the new, documented FASTSim setup
FASTSIM_OLD_FAILURES: dict[str, str] = {}  # the old setup, kept for one release
COLD_REFERENCE_RETAINED_PCT = 59.0  # Mini EV at about -10 °C vs CLTC, as stated in issue 4 (car-media tests)


@dataclass
class Case:
    spec: VehicleSpec
    resolved: ResolvedSpec
    procedure: TestProcedure
    cycle_note: str

    @property
    def cycle_name(self) -> str:
        """The procedure's lap (e.g. WMTC part 1 reduced speed twice): cars sharing it run together."""
        return " + ".join(self.procedure.parts)

    @property
    def cycle(self) -> DriveCycle:
        return _lap(self.procedure)

    @property
    def test_mass_added_kg(self) -> float:
        return self.procedure.added_mass_kg


@functools.cache
def _lap(procedure: TestProcedure) -> DriveCycle:
    return procedure.lap()


def select_cases(quick: bool) -> tuple[list[Case], list[tuple[str, str]]]:
    """Every catalogue car with a published range and named cycle, with the procedure it was rated on.

    ``physics.procedures.procedure_for`` maps the rating to its trace(s), test mass and end-of-test rule:
    L-category cars on WMTC class 1 (part 1 reduced speed, cold then hot; the Rocks-e's "WLTP" too, as an
    L6e car), CLTC ratings on CLTC-P, NEDC on NEDC, WLTP on the WLTC class of the car's PMR.
    """
    cat = load_catalogue()
    cases: list[Case] = []
    skipped: list[tuple[str, str]] = []
    for spec in cat:
        if spec.range_km is None or spec.range_cycle is None:
            continue
        try:
            r = resolve_spec(spec, cat.all())
            gross = spec.gross_mass_kg.value if spec.gross_mass_kg else None
            procedure, note = procedure_for(spec.range_cycle.value, r, gross)
        except PhysicsInputError as exc:
            skipped.append((spec.model_id, exc.message))
            continue
        cases.append(Case(spec, r, procedure, note))
    if quick:
        keep = {"wuling-hongguang-mini-ev-gen1-9kwh", "citroen-ami", "dacia-spring-65-2024", "baojun-yep"}
        cases = [c for c in cases if c.spec.model_id in keep]
    return cases, skipped


def run_microfleet(
    cases: list[Case], shared: list[SharedParams] | None = None, how: str = "priors"
) -> dict[str, dict[str, float]]:
    """Range (km) and consumption (Wh/km) per car, one vectorised run per cycle."""
    out: dict[str, dict[str, float]] = {}
    for cycle_name in sorted({c.cycle_name for c in cases}):
        index = [i for i, c in enumerate(cases) if c.cycle_name == cycle_name]
        group = [cases[i] for i in index]
        params = VehicleParams.concatenate(
            [
                params_with_shared(
                    [cases[i].resolved],
                    shared[i] if shared else PRIORS,
                    payload_kg=cases[i].test_mass_added_kg,
                    how=how,
                )
                for i in index
            ]
        )
        t0 = time.perf_counter()
        result = procedure_range_km(params, group[0].procedure, ambient_temp_c=23.0)
        elapsed = time.perf_counter() - t0
        flows = power_breakdown(params, capped_speed_mps(params, group[0].cycle), 1.0, hvac_on=False)
        km = flows.mean_speed_mps.sum(1) / 1000.0
        for i, c in enumerate(group):
            out[c.spec.model_id] = {
                "range_km": float(result.range_km[i]),
                "wh_per_km": float(result.consumption_wh_per_km[i]),
                "run_s": elapsed / len(group),
                "motor_loss_wh_per_km": float(flows.motor_loss_kw[i].sum() / 3.6 / km[i]),
                "regen_wh_per_km": float(-np.minimum(flows.motor_shaft_kw[i], 0).sum() / 3.6 / km[i]),
                "aux_wh_per_km": float(flows.aux_kw[i].sum() / 3.6 / km[i]),
                "test_mass_kg": float(params.mass_kg[i]),
                "usable_kwh": float(params.usable_kwh[i]),
                "rrc": float(params.rolling_resistance[i]),
                "end_soc_pct": float(result.end_soc_pct[i]),
                "ecm_factor": float(
                    result.range_km[i] * result.consumption_wh_per_km[i] / (params.usable_kwh[i] * 1000.0)
                ),
            }
    return out


def calibrate(
    cases: list[Case], prior_run: dict[str, dict[str, float]]
) -> tuple[list[SharedParams], list[SharedParams], SharedParams]:
    """Fit the shared parameters leave-one-out and leave-one-platform-out (``physics.calibration``).

    Returns the per-car fits with the car (and rows identical to it) held out, the per-car fits with
    every row of its platform held out (all Spring variants at once, all Mini EV variants at once, …),
    and the fit on every car. Every car is on the trace its figure was measured on (WMTC since issue 11),
    so every car is trained on.
    """
    grid = search_grid()
    table = np.empty((len(grid), len(cases)))
    for cycle_name in sorted({c.cycle_name for c in cases}):
        index = [i for i, c in enumerate(cases) if c.cycle_name == cycle_name]
        cycle = cases[index[0]].cycle
        for g, shared in enumerate(grid):
            params = params_with_shared(
                [cases[i].resolved for i in index],
                shared,
                payload_kg=[cases[i].test_mass_added_kg for i in index],
            )
            table[g, index] = cycle_consumption_wh_per_km(params, cycle)
    identical = _groups(cases)
    platforms = [c.spec.platform_id for c in cases]
    by_platform = [platforms.index(p) for p in platforms]
    args = (
        table,
        grid,
        np.array([c.resolved.stated_kwh.value for c in cases]),
        np.array([c.resolved.usable_kwh.value for c in cases]),
        np.array([c.resolved.usable_kwh.is_prior for c in cases]),
        np.array([prior_run[c.spec.model_id]["ecm_factor"] for c in cases]),
        np.array([c.spec.range_km.value if c.spec.range_km else np.nan for c in cases]),
        np.ones(len(cases), dtype=bool),  # every car is now on its own stored cycle: all trainable
    )
    loo = leave_one_out(*args, identical)
    lopo = leave_one_out(*args, by_platform)
    return list(loo.fitted), list(lopo.fitted), fit_all(*args)


# Pessimistic ends of the cited bands, for the quadricycle check: Cd 0.45 is the top of Hucho's micro-car
# band (priors.CD_SOURCE); RRC, loss scale and auxiliaries take the top of their calibration grids.
CD_MICRO_CAR_MAX = 0.45


def _range_via_ecm(usable_kwh: float, ecm_factor: float, wh_per_km: float) -> float:
    """Range (km) from usable energy, the car's ECM factor from the full run and a consumption."""
    return usable_kwh * ecm_factor * 1000.0 / wh_per_km


def braking_above_motor(cases: list[Case]) -> str:
    """For the cars FASTSim refused: how often, and how hard, the trace brakes beyond the motor's rating."""
    parts = []
    for c in cases:
        if c.spec.model_id not in FASTSIM_FAILURES:
            continue
        params = params_with_shared([c.resolved], PRIORS, payload_kg=c.test_mass_added_kg)
        flows = power_breakdown(params, capped_speed_mps(params, c.cycle), 1.0, hvac_on=False)
        wheel = flows.wheel_kw[0]
        motor = c.resolved.motor_peak_kw.value
        parts.append(
            f"`{c.spec.model_id}` ({motor:.0f} kW motor, {params.mass_kg[0]:.0f} kg): the lap asks more "
            f"than {motor:.0f} kW of braking at the wheels in {int((wheel < -motor).sum())} of "
            f"{wheel.shape[0]} s, up to {-wheel.min():.1f} kW."
        )
    return " ".join(parts) if parts else "(no car refused in this run)"


def _solve_rrc(params: VehicleParams, cycle: DriveCycle, target_wh: float) -> float:
    """The RRC at which ``params`` (one car) draws ``target_wh`` Wh/km on ``cycle`` (bisection; nan if
    even 0.05 is not enough or the car already draws more at 0.002)."""
    lo, hi = 0.002, 0.05

    def wh(rrc: float) -> float:
        return float(
            cycle_consumption_wh_per_km(replace(params, rolling_resistance=np.array([rrc])), cycle)[0]
        )

    if not wh(lo) <= target_wh <= wh(hi):
        return float("nan")
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if wh(mid) < target_wh else (lo, mid)
    return 0.5 * (lo + hi)


def quadricycle_check(
    cases: list[Case], shared: list[SharedParams], ours: dict[str, dict[str, float]]
) -> dict[str, dict[str, float]]:
    """What it would take to reach the quadricycles' published ranges, applied by class rule.

    For every car the catalogue classes EU L6e/L7e (the rule a class prior would use), the consumption
    on its cycle (a) as validated, (b) with no regeneration at all, (c) with no regeneration and every
    cited band at its pessimistic end, and (d) with the one drivetrain efficiency on traction energy
    that would bring the Citroën Ami to its published 75 km, applied to the whole class.
    """
    members = [i for i, c in enumerate(cases) if c.resolved.is_quadricycle]
    ami = next((i for i in members if cases[i].spec.model_id == "citroen-ami"), None)
    out: dict[str, dict[str, float]] = {}
    for i in members:
        c = cases[i]
        params = params_with_shared([c.resolved], shared[i], payload_kg=c.test_mass_added_kg)
        cycle = c.cycle
        no_regen = replace(params, regen_max_kw=np.zeros(1))
        worst = replace(
            no_regen,
            rolling_resistance=np.array([max(ROLLING_RESISTANCE_GRID)]),
            drag_area_m2=np.array([c.resolved.frontal_area_m2.value * CD_MICRO_CAR_MAX]),
            motor_loss_scale=np.array([max(MOTOR_LOSS_SCALE_GRID)]),
            aux_base_kw=np.array([max(AUX_BASE_KW_GRID)]),
        )
        o = ours[c.spec.model_id]
        pub = c.spec.range_km.value if c.spec.range_km else float("nan")
        row = {"published_km": pub, "base_wh": o["wh_per_km"], "aux_wh": o["aux_wh_per_km"],
               "regen_stated": float(c.spec.platform_id in REGENERATION_STATED)}  # fmt: skip
        # every band pessimistic but regeneration kept, as the maker states it for the Ami platform
        worst_regen = replace(worst, regen_max_kw=params.regen_max_kw)
        for name, p in (("no_regen", no_regen), ("worst", worst), ("worst_regen", worst_regen)):
            wh = float(cycle_consumption_wh_per_km(p, cycle)[0])
            row[f"{name}_wh"] = wh
            row[f"{name}_err"] = 100.0 * (_range_via_ecm(o["usable_kwh"], o["ecm_factor"], wh) / pub - 1)
        # What one input alone would have to be for the published range, all else as validated:
        # the usable energy (kWh), or the rolling-resistance coefficient standing in for all road load.
        need_wh = o["usable_kwh"] * o["ecm_factor"] * 1000.0 / pub
        row["need_wh"] = need_wh
        row["need_usable_kwh"] = pub * o["wh_per_km"] / o["ecm_factor"] / 1000.0
        row["need_usable_share"] = row["need_usable_kwh"] / c.resolved.stated_kwh.value
        row["need_rrc"] = _solve_rrc(params, cycle, need_wh)
        out[c.spec.model_id] = row
    if ami is not None:
        a = out["citroen-ami"]
        o = ours["citroen-ami"]
        needed_wh = o["usable_kwh"] * o["ecm_factor"] * 1000.0 / a["published_km"]
        eta = (a["base_wh"] - a["aux_wh"]) / (needed_wh - a["aux_wh"])
        for mid, row in out.items():
            wh = row["aux_wh"] + (row["base_wh"] - row["aux_wh"]) / eta
            om = ours[mid]
            row["class_eta"] = eta
            row["class_wh"] = wh
            row["class_err"] = 100.0 * (
                _range_via_ecm(om["usable_kwh"], om["ecm_factor"], wh) / row["published_km"] - 1
            )
    return out


# Every corner of the consumption-side bands (calibration grids' ends): the physics' Wh/km band for a car.
BAND_CORNERS = [
    SharedParams(PRIORS.usable_fraction, rr, scale, aux)
    for rr in (min(ROLLING_RESISTANCE_GRID), max(ROLLING_RESISTANCE_GRID))
    for scale in (min(MOTOR_LOSS_SCALE_GRID), max(MOTOR_LOSS_SCALE_GRID))
    for aux in (min(AUX_BASE_KW_GRID), max(AUX_BASE_KW_GRID))
]
# A published range implies pack-side Wh/km = usable kWh x ECM factor / km; with the usable share of an
# unlabelled stated kWh anywhere from the band's foot (0.89) to all of it (1.00, an upper bound).
IMPLIED_USABLE_BAND = (min(USABLE_FRACTION_GRID), 1.0)
MINI_SMALL, MINI_MID, MINI_LARGE = (
    "wuling-hongguang-mini-ev-gen1-9kwh",
    "wuling-hongguang-mini-ev-gen1-14kwh",
    "wuling-hongguang-mini-ev-gen1-27kwh",
)


def _band_wh(resolved: ResolvedSpec, added_kg: float, cycle: DriveCycle) -> list[float]:
    """The car's pack-side Wh/km on ``cycle`` at every corner of the cited bands (``BAND_CORNERS``)."""
    params = VehicleParams.concatenate(
        [params_with_shared([resolved], sh, payload_kg=added_kg) for sh in BAND_CORNERS]
    )
    return [float(x) for x in cycle_consumption_wh_per_km(params, cycle)]


def mini_ev_bounds(cases: list[Case], ours: dict[str, dict[str, float]]) -> dict[str, float]:
    """The Mini EV's sources against physics bounds that no fitted value enters (issue 11 item 4).

    For each published figure: the pack-side Wh/km it implies (stated kWh x 0.89-1.00 x the car's ECM
    factor / published km) beside the physics' Wh/km over every corner of the cited bands (RRC label
    A-E, loss map x0.5-1.5, auxiliaries 0.1-0.4 kW) at the procedure's test mass. Then the same body's
    NEDC and CLTC figures against each other: at every corner, the physics' ratio of NEDC to CLTC-P
    Wh/km, against the ratio the two published figures imply with one usable share for both packs.
    """
    by_id = {c.spec.model_id: c for c in cases}
    if not all(m in by_id for m in (MINI_SMALL, MINI_MID, MINI_LARGE)):
        return {}
    out: dict[str, float] = {}
    band: dict[str, list[float]] = {}
    lo, hi = IMPLIED_USABLE_BAND
    for tag, mid in (("small", MINI_SMALL), ("mid", MINI_MID), ("large", MINI_LARGE)):
        c, o = by_id[mid], ours[mid]
        pub = c.spec.range_km.value if c.spec.range_km else float("nan")
        stated = c.resolved.stated_kwh.value
        band[tag] = _band_wh(c.resolved, c.test_mass_added_kg, c.cycle)
        out[f"{tag}_phys_min"], out[f"{tag}_phys_max"] = min(band[tag]), max(band[tag])
        out[f"{tag}_implied_min"] = stated * lo * o["ecm_factor"] * 1000.0 / pub
        out[f"{tag}_implied_max"] = stated * hi * o["ecm_factor"] * 1000.0 / pub
        out[f"{tag}_wh_per_kwh_km"] = 1000.0 / (pub / stated)  # Wh of stated pack per km
        out[f"{tag}_test_mass"] = c.resolved.curb_mass_kg.value + c.test_mass_added_kg
        prior = params_with_shared([c.resolved], PRIORS, payload_kg=c.test_mass_added_kg)
        out[f"{tag}_phys_prior"] = float(cycle_consumption_wh_per_km(prior, c.cycle)[0])
    for tag in ("small", "mid"):
        ratios = [a / b for a, b in zip(band[tag], band["large"], strict=True)]
        out[f"{tag}_ratio_phys_min"], out[f"{tag}_ratio_phys_max"] = min(ratios), max(ratios)
        out[f"{tag}_ratio_published"] = out[f"{tag}_wh_per_kwh_km"] / out["large_wh_per_kwh_km"]
        # the usable share the NEDC pack would need for its figure, if the CLTC pack's is at the band's
        # foot (0.89) and the physics' ratio is at its lowest: above 1.00 means no reading reconciles them
        out[f"{tag}_needed_fraction"] = lo * out[f"{tag}_ratio_phys_min"] / out[f"{tag}_ratio_published"]
    # electrive (MIIT filing): 26 kWh and "more than 300 km" NEDC for the same upgrade as the CLTC row
    c = by_id[MINI_LARGE]
    nedc = _band_wh(c.resolved, NEDC_ADDED_KG, load_cycle("nedc"))
    out["large_nedc_phys_min"], out["large_nedc_phys_max"] = min(nedc), max(nedc)
    out["large_nedc_implied_max"] = 26.0 * hi * ours[MINI_LARGE]["ecm_factor"] * 1000.0 / 300.0
    out["large_nedc_test_mass"] = c.resolved.curb_mass_kg.value + NEDC_ADDED_KG
    return out


def mini_ev_readings(
    cases: list[Case], shared: list[SharedParams], ours: dict[str, dict[str, float]]
) -> dict[str, float]:
    """Other readings of the Mini EV rows' own sources (catalogue notes), computed, not applied."""
    by_id = {c.spec.model_id: i for i, c in enumerate(cases)}
    out: dict[str, float] = mini_ev_bounds(cases, ours)
    small, large = MINI_SMALL, MINI_LARGE
    if small in by_id:
        c, o = cases[by_id[small]], ours[small]
        pub = c.spec.range_km.value if c.spec.range_km else float("nan")
        stated = c.resolved.stated_kwh.value
        # The notes give 9.3 kWh as a second published figure; and no source says whether 9.2 is usable.
        out["small_err"] = 100.0 * (o["range_km"] / pub - 1)
        out["small_93_err"] = 100.0 * (o["range_km"] * 9.3 / stated / pub - 1)
        out["small_usable_err"] = 100.0 * (o["range_km"] * stated / o["usable_kwh"] / pub - 1)
        out["small_fraction"] = o["usable_kwh"] / stated
        # The arithmetic that compares sources: the pack-side Wh/km each published figure implies (usable
        # energy x the car's own ECM factor / km) beside the physics' Wh/km on that cycle and test mass.
        out["small_wh"] = o["wh_per_km"]
        out["small_implied_wh"] = o["usable_kwh"] * o["ecm_factor"] * 1000.0 / pub
        out["small_km_per_kwh"] = pub / stated
    if large in by_id:
        i = by_id[large]
        c, o = cases[i], ours[large]
        pub = c.spec.range_km.value if c.spec.range_km else float("nan")
        out["large_err"] = 100.0 * (o["range_km"] / pub - 1)
        out["large_mass"] = c.resolved.curb_mass_kg.value
        # Cabrio note: 205 kg added, "total weight rising to 925 kg" (basis unclear): 720 kg for the hardtop.
        lighter = replace(
            c.resolved, curb_mass_kg=Sourced(925.0 - 205.0, "catalogue Cabrio note", "low", True)
        )
        p = params_with_shared([lighter], shared[i], payload_kg=c.test_mass_added_kg)
        wh = float(cycle_consumption_wh_per_km(p, c.cycle)[0])
        out["large_720_err"] = 100.0 * (_range_via_ecm(o["usable_kwh"], o["ecm_factor"], wh) / pub - 1)
        # electrive (MIIT filing): 26 kWh and "more than 300 km" NEDC for the same upgrade.
        p = params_with_shared([c.resolved], shared[i], payload_kg=NEDC_ADDED_KG)
        wh = float(cycle_consumption_wh_per_km(p, load_cycle("nedc"))[0])
        out["large_nedc_km"] = _range_via_ecm(o["usable_kwh"] * 26.0 / 26.5, o["ecm_factor"], wh)
        out["large_cltc_wh"] = o["wh_per_km"]
        out["large_nedc_wh"] = wh
        out["large_implied_wh"] = o["usable_kwh"] * o["ecm_factor"] * 1000.0 / pub
        # "more than 300 km" from 26 kWh: at most this many Wh/km (an upper bound)
        out["large_nedc_implied_wh_max"] = o["usable_kwh"] * 26.0 / 26.5 * o["ecm_factor"] * 1000.0 / 300.0
        out["large_km_per_kwh"] = pub / c.resolved.stated_kwh.value
    return out


def run_fastsim_old(cases: list[Case], shared: list[SharedParams]) -> dict[str, dict[str, float]]:
    """The old FASTSim setup, kept for one release: Microfleet's fitted values, Zoe curve, no cut-off."""
    import fastsim as fsim

    base = fsim.Vehicle.from_resource("2022_Renault_Zoe_ZE50_R135.yaml").to_dict()
    sim_params = fsim.SimParams.default().to_dict()
    sim_params["trace_miss_opts"] = "Allow"
    out: dict[str, dict[str, float]] = {}
    for c, sh in zip(cases, shared, strict=True):
        params = params_with_shared([c.resolved], sh, payload_kg=c.test_mass_added_kg)
        d = copy.deepcopy(base)
        bev = d["pt_type"]["BEV"]
        bev["res"]["energy_capacity_joules"] = float(params.usable_kwh[0]) * 3.6e6
        bev["res"]["min_soc"], bev["res"]["max_soc"] = 0.0, 1.0
        bev["em"]["pwr_out_max_watts"] = c.resolved.motor_peak_kw.value * 1000.0
        d["chassis"]["drag_coef"] = c.resolved.drag_coefficient.value
        d["chassis"]["frontal_area_square_meters"] = c.resolved.frontal_area_m2.value
        d["chassis"]["wheel_rr_coef"] = float(params.rolling_resistance[0])
        d["chassis"]["glider_mass_kilograms"] = None
        d["chassis"]["cargo_mass_kilograms"] = None
        d["mass_kilograms"] = float(params.mass_kg[0])
        d["pwr_aux_base_watts"] = float(params.aux_base_kw[0] * 1000.0)
        speed = capped_speed_mps(params, c.cycle)[0]
        cyc = fsim.Cycle.from_dict(
            {
                "time_seconds": [float(t) for t in range(speed.shape[0])],
                "speed_meters_per_second": [float(v) for v in speed],
                "init_elev_meters": 0.0,
            }
        )
        t0 = time.perf_counter()
        sd = fsim.SimDrive(fsim.Vehicle.from_dict(d), cyc, fsim.SimParams.from_dict(sim_params))
        try:
            sd.run()
        except RuntimeError as exc:  # FASTSim refuses some micro cars (regen above a small motor's limit)
            reason = _fastsim_reason(exc)
            out[c.spec.model_id] = {
                "range_km": float("nan"),
                "wh_per_km": float("nan"),
                "run_s": float("nan"),
            }
            FASTSIM_OLD_FAILURES[c.spec.model_id] = reason
            continue
        elapsed = time.perf_counter() - t0
        state = sd.to_dict()["veh"]
        km = state["state"]["dist_meters"] / 1000.0
        wh_per_km = state["pt_type"]["BEV"]["res"]["state"]["energy_out_electrical_joules"] / 3600.0 / km
        out[c.spec.model_id] = {
            "range_km": float(params.usable_kwh[0]) * 1000.0 / wh_per_km,
            "wh_per_km": wh_per_km,
            "run_s": elapsed,
        }
    return out


def _tyre(c: Case) -> str | None:
    return c.spec.tyre_size.value if c.spec.tyre_size else None


def run_fastsim(
    cases: list[Case], shared: list[SharedParams], *, to_empty: bool = True
) -> tuple[dict[str, fastsim_peer.FastsimResult], dict[str, str]]:
    """FASTSim 3.1 with its own inputs (``bench/fastsim_peer.py``), from full to min SoC on the capped trace.

    Returns the result per car it ran and the reason per car it refused.
    """
    base = fastsim_peer.template()
    out: dict[str, fastsim_peer.FastsimResult] = {}
    refused: dict[str, str] = {}
    for c, sh in zip(cases, shared, strict=True):
        d, usable = fastsim_peer.vehicle_dict(base, c.resolved, _tyre(c), sh, c.test_mass_added_kg)
        speed = fastsim_peer.capped_trace(c.resolved, sh, c.cycle, c.test_mass_added_kg)
        try:
            out[c.spec.model_id] = fastsim_peer.run_car(d, usable, speed, to_empty=to_empty)
        except fastsim_peer.FastsimRefused as exc:
            refused[c.spec.model_id] = str(exc)
    return out, refused


def _groups(cases: list[Case]) -> list[int]:
    """Identical rows (same cycle, mass, pack and published range) share a label and are held out together."""
    keys = [(c.cycle_name, c.resolved.curb_mass_kg.value, c.resolved.stated_kwh.value,
             c.spec.range_km.value if c.spec.range_km else 0.0) for c in cases]  # fmt: skip
    return [keys.index(k) for k in keys]


def calibrate_fastsim(
    cases: list[Case], prior: dict[str, fastsim_peer.FastsimResult]
) -> tuple[list[SharedParams], SharedParams]:
    """The same leave-one-out fit as Microfleet's, on FASTSim's own consumption over the same grid.

    FASTSim's parameters in the same cited bands: SoC window (usable fraction of an unlabelled stated
    kWh), ``wheel_rr_coef``, a scale on the losses of its motor efficiency curve, ``pwr_aux_base_watts``.
    Its range factor (battery efficiency, end of test) comes from its own run to min SoC at the priors.
    Cars FASTSim refused are neither trained on nor predicted.
    """
    grid = search_grid()
    base = fastsim_peer.template()
    ran = np.array([c.spec.model_id in prior for c in cases])
    table = np.full((len(grid), len(cases)), 1.0)
    for i, c in enumerate(cases):
        if not ran[i]:
            continue
        speed = fastsim_peer.capped_trace(c.resolved, PRIORS, c.cycle, c.test_mass_added_kg)
        for g, shared in enumerate(grid):
            d, usable = fastsim_peer.vehicle_dict(base, c.resolved, _tyre(c), shared, c.test_mass_added_kg)
            try:
                table[g, i] = fastsim_peer.run_car(d, usable, speed, to_empty=False).wh_per_km
            except fastsim_peer.FastsimRefused:
                table[g, i] = 1e9  # a grid point FASTSim cannot run is never chosen
    args = (
        table,
        grid,
        np.array([c.resolved.stated_kwh.value for c in cases]),
        np.array([c.resolved.usable_kwh.value for c in cases]),
        np.array([c.resolved.usable_kwh.is_prior for c in cases]),
        np.array([prior[c.spec.model_id].factor if ran[i] else 1.0 for i, c in enumerate(cases)]),
        np.array([c.spec.range_km.value if c.spec.range_km else np.nan for c in cases]),
        ran,
    )
    loo = leave_one_out(*args, _groups(cases))
    return list(loo.fitted), fit_all(*args)


def cold_weather(shared: SharedParams) -> dict[str, float]:
    """Mini EV (9.2 kWh) CLTC-P range at -10 °C with the cabin heated to 20 °C vs at 23 °C with HVAC off."""
    cat = load_catalogue()
    resolved = resolve_spec(cat.get("wuling-hongguang-mini-ev-gen1-9kwh"), cat.all())
    params = params_with_shared([resolved], shared, how="fit on all cars")
    cycle = load_cycle("cltc_p")
    warm = cycle_range_km(params, cycle, ambient_temp_c=23.0, hvac_on=False)
    cold = cycle_range_km(params, cycle, ambient_temp_c=-10.0, cabin_target_temp_c=20.0, hvac_on=True)
    return {
        "warm_range_km": float(warm.range_km[0]),
        "cold_range_km": float(cold.range_km[0]),
        "retained_pct": float(100.0 * cold.range_km[0] / warm.range_km[0]),
        "cold_wh_per_km": float(cold.consumption_wh_per_km[0]),
    }


def pybamm_check(quick: bool) -> dict[str, float]:
    """ECM vs PyBaMM SPMe (Prada2013 LFP cell) under one C-rate profile: a Mini EV on WLTC class 2."""
    import pybamm

    cat = load_catalogue()
    params = VehicleParams.from_specs([cat.get("wuling-hongguang-mini-ev-gen1-9kwh")], siblings=cat.all())
    cycle = load_cycle("wltc_class2")
    repeats = 1 if quick else 3
    speed = np.tile(capped_speed_mps(params, cycle), (1, repeats))
    power = power_breakdown(params, speed, 1.0, hvac_on=False).battery_kw[0]
    battery = Battery.from_params(params, soc_pct=90.0, temp_c=25.0)
    n_s = params.cells_in_series[0]
    v_ecm, c_rate = [], []
    for p in power:
        s = battery.step(np.array([p]), 1.0)
        v_ecm.append(s.pack_voltage_v[0] / n_s)
        c_rate.append(s.pack_current_a[0] / battery.capacity_ah[0])
    pv = pybamm.ParameterValues("Prada2013")
    cell_ah = float(pv["Nominal cell capacity [A.h]"])
    t = np.arange(1, len(c_rate) + 1, dtype=float)
    current = np.asarray(c_rate) * cell_ah
    pv["Current function [A]"] = pybamm.Interpolant(np.r_[0.0, t], np.r_[current[0], current], pybamm.t)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = pybamm.Simulation(pybamm.lithium_ion.SPMe(), parameter_values=pv)
        sol = sim.solve(np.r_[0.0, t], initial_soc=0.9)
    elapsed = time.perf_counter() - t0
    v_ref = sol["Voltage [V]"](t)
    err = np.asarray(v_ecm) - v_ref
    q_ref = sol["Discharge capacity [A.h]"](t)
    soc_ref = 90.0 - 100.0 * q_ref / cell_ah
    return {
        "voltage_rmse_mv": float(1000 * np.sqrt(np.mean(err**2))),
        "voltage_max_abs_error_mv": float(1000 * np.max(np.abs(err))),
        "soc_end_ecm_pct": float(battery.soc_pct[0]),
        "soc_end_pybamm_pct": float(soc_ref[-1]),
        "pybamm_run_s": elapsed,
        "duration_s": float(len(t)),
    }


def _finite(value: float) -> float | None:
    return round(value, 2) if np.isfinite(value) else None


def _fastsim_reason(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if "exceeds" in ln or "failed" in ln]
    return (lines[-1] if lines else str(exc).splitlines()[0])[:200]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="4 cars, one ECM check cycle")
    parser.add_argument("--seed", type=int, default=0, help="unused: the validation is deterministic")
    args = parser.parse_args()
    cases, skipped = select_cases(args.quick)
    prior_run = run_microfleet(cases)
    loo_shared, lopo_shared, all_shared = calibrate(cases, prior_run)
    ours = run_microfleet(cases, loo_shared, how="leave-one-out fit on the other cars")
    ours_lopo = run_microfleet(cases, lopo_shared, how="fit on the other platforms")
    quad = quadricycle_check(cases, loo_shared, ours)
    mini = mini_ev_readings(cases, loo_shared, ours)
    old_peer = run_fastsim_old(cases, loo_shared)
    fs_prior, fs_refused = run_fastsim(cases, [PRIORS] * len(cases))
    FASTSIM_FAILURES.update(fs_refused)
    fs_loo_shared, fs_all_shared = calibrate_fastsim(cases, fs_prior)
    fs_loo, fs_loo_refused = run_fastsim(cases, fs_loo_shared)
    for mid, why in fs_loo_refused.items():
        FASTSIM_FAILURES.setdefault(mid, f"{why} (with its leave-one-out fitted parameters)")
    cold = cold_weather(all_shared)
    ecm = pybamm_check(args.quick)
    rows: list[dict[str, object]] = []
    table = Table(title="Range on the published cycle: Microfleet and FASTSim 3.1 vs published")
    for col in (
        "car",
        "cycle",
        "published km",
        "microfleet km",
        "err %",
        "priors err %",
        "lopo err %",
        "fastsim km",
        "err %",
        "fs loo err %",
        "fs old err %",
        "Wh/km ours/fs",
    ):
        table.add_column(col)
    errors: list[float] = []
    prior_errors: list[float] = []
    lopo_errors: list[float] = []
    doc_rows: list[str] = []
    fs_errs: dict[str, list[float]] = {FS_NEW: [], FS_LOO: [], FS_OLD: []}
    for c, sh, lsh, fsh in zip(cases, loo_shared, lopo_shared, fs_loo_shared, strict=True):
        pub = c.spec.range_km.value if c.spec.range_km else float("nan")
        ours_err = 100.0 * (ours[c.spec.model_id]["range_km"] / pub - 1.0)
        mid = c.spec.model_id
        f = fs_prior.get(mid, NOT_RUN)
        fs_err = 100.0 * (f.range_km / pub - 1.0)
        fs_loo_err = 100.0 * (fs_loo.get(mid, NOT_RUN).range_km / pub - 1.0)
        fs_old_err = 100.0 * (old_peer[mid]["range_km"] / pub - 1.0)
        for system, value in ((FS_NEW, fs_err), (FS_LOO, fs_loo_err), (FS_OLD, fs_old_err)):
            fs_errs[system].append(value)
        prior_err = 100.0 * (prior_run[c.spec.model_id]["range_km"] / pub - 1.0)
        lopo_err = 100.0 * (ours_lopo[c.spec.model_id]["range_km"] / pub - 1.0)
        errors.append(ours_err)
        prior_errors.append(prior_err)
        lopo_errors.append(lopo_err)
        for system, value in (
            ("microfleet", ours_err),
            (FS_NEW, fs_err),
            (FS_LOO, fs_loo_err),
            (FS_OLD, fs_old_err),
            ("microfleet-priors", prior_err),
            ("microfleet-leave-one-platform-out", lopo_err),
        ):
            rows.append(
                {
                    "metric": f"range error % {c.spec.model_id}",
                    "system": system,
                    "value": round(value, 2) if np.isfinite(value) else None,
                    "unit": "%",
                }
            )
        loo_wh = fs_loo.get(mid, NOT_RUN).wh_per_km
        for system, wh_km in (
            ("microfleet", ours[mid]["wh_per_km"]),
            (FS_NEW, f.wh_per_km),
            (FS_LOO, loo_wh),
            (FS_OLD, old_peer[mid]["wh_per_km"]),
        ):
            rows.append({"metric": f"consumption Wh/km {mid}", "system": system,
                         "value": _finite(wh_km), "unit": "Wh/km"})  # fmt: skip
        o = ours[mid]
        wh = f"{o['wh_per_km']:.0f}/{f.wh_per_km:.0f}"
        table.add_row(mid, c.cycle_name, f"{pub:.0f}", f"{o['range_km']:.0f}", f"{ours_err:+.1f}",
                      f"{prior_err:+.1f}", f"{lopo_err:+.1f}", f"{f.range_km:.0f}", f"{fs_err:+.1f}",
                      f"{fs_loo_err:+.1f}", f"{fs_old_err:+.1f}", wh)  # fmt: skip
        doc_rows.append(
            f"| {c.spec.model_id} | {c.cycle_note} | {o['test_mass_kg']:.0f} | "
            f"{o['usable_kwh']:.1f}{'*' if c.resolved.usable_kwh.is_prior else ''} | "
            f"{pub:.0f} | {o['range_km']:.0f} | {ours_err:+.1f} | {lopo_err:+.1f} | {prior_err:+.1f} | "
            f"{f.range_km:.0f} | {fs_err:+.1f} | {fs_loo_err:+.1f} | {fs_old_err:+.1f} | "
            f"{o['wh_per_km']:.0f} | {f.wh_per_km:.0f} | "
            f"{o['motor_loss_wh_per_km']:.0f} | {o['regen_wh_per_km']:.0f} | {o['aux_wh_per_km']:.0f} | "
            f"{1000 * o['run_s']:.0f} | {1000 * f.run_s:.0f} | {sh.describe()} | {lsh.describe()} | "
            f"{fsh.describe() if mid in fs_prior else 'not run'} |"
        )
    max_abs = float(np.max(np.abs(errors)))
    within = int(np.sum(np.abs(errors) <= 10.0))
    real = np.ones(len(cases), dtype=bool)  # cars on their published cycle: every car run, since issue 11
    max_abs_real = float(np.max(np.abs(np.asarray(errors)[real])))
    within_real = int(np.sum(np.abs(np.asarray(errors)[real]) <= 10.0))
    prior_max = float(np.max(np.abs(prior_errors)))
    prior_within = int(np.sum(np.abs(prior_errors) <= 10.0))
    lopo = np.abs(np.asarray(lopo_errors))
    lopo_max, lopo_within = float(np.max(lopo)), int(np.sum(lopo <= 10.0))
    lopo_max_real, lopo_within_real = float(np.max(lopo[real])), int(np.sum(lopo[real] <= 10.0))
    fs_scores = {system: _score(errs, real) for system, errs in fs_errs.items()}

    def row(metric: str, system: str, value: float, unit: str) -> dict[str, object]:
        return {"metric": metric, "system": system, "value": value, "unit": unit}

    cold_metric = "cold range retained % wuling-hongguang-mini-ev-gen1-9kwh -10C"
    rows += [
        row("max abs range error %", "microfleet", round(max_abs, 2), "%"),
        row("mean abs range error %", "microfleet", round(float(np.mean(np.abs(errors))), 2), "%"),
        row("cars within ±10 %", "microfleet", within, f"of {len(cases)}"),
        row("cars run", "microfleet", len(cases), f"of {len(cases)}"),
        row("max abs range error %", "microfleet-priors", round(prior_max, 2), "%"),
        row("max abs range error %", "microfleet-leave-one-platform-out", round(lopo_max, 2), "%"),
        row("cars within ±10 %", "microfleet-leave-one-platform-out", lopo_within, f"of {len(cases)}"),
        row("max abs range error % (published cycle stored)", "microfleet-leave-one-platform-out",
            round(lopo_max_real, 2), "%"),
        row("cars within ±10 % (published cycle stored)", "microfleet-leave-one-platform-out",
            lopo_within_real, f"of {int(real.sum())}"),
        row("cars within ±10 %", "microfleet-priors", prior_within, f"of {len(cases)}"),
        row("max abs range error % (published cycle stored)", "microfleet", round(max_abs_real, 2), "%"),
        row("cars within ±10 % (published cycle stored)", "microfleet", within_real, f"of {int(real.sum())}"),
        row(cold_metric, "microfleet", round(cold["retained_pct"], 1), "%"),
        row(cold_metric, "published (issue 4)", COLD_REFERENCE_RETAINED_PCT, "%"),
        row("ECM voltage RMSE vs PyBaMM SPMe Prada2013", "microfleet",
            round(ecm["voltage_rmse_mv"], 1), "mV"),
        row("ECM voltage max abs error vs PyBaMM SPMe Prada2013", "microfleet",
            round(ecm["voltage_max_abs_error_mv"], 1), "mV"),
    ]  # fmt: skip
    for system, sc in fs_scores.items():
        rows += _score_rows(system, sc, len(cases), int(real.sum()))
    for mid, why in FASTSIM_FAILURES.items():
        rows.append({"metric": f"not run {mid}", "system": FS_NEW, "value": None, "unit": "", "reason": why})
    for mid, why in FASTSIM_OLD_FAILURES.items():
        rows.append({"metric": f"not run {mid}", "system": FS_OLD, "value": None, "unit": "", "reason": why})
    rows.append(row("shared parameters fitted on all cars", FS_LOO, fs_all_shared.describe(), ""))
    for mid, q in quad.items():
        for key, label in (
            ("no_regen_err", "no regeneration"),
            ("worst_err", "no regeneration and every cited band at its pessimistic end"),
            ("class_err", "class drivetrain efficiency that brings citroen-ami to 75 km"),
            ("worst_regen_err", "every cited band at its pessimistic end, regeneration kept"),
        ):
            if key in q:
                rows.append(
                    row(
                        f"quadricycle check range error % {mid} ({label})",
                        "microfleet",
                        round(q[key], 2),
                        "%",
                    )
                )
    for mid, q in quad.items():
        rows.append(row(f"quadricycle check usable kWh needed alone {mid}", "microfleet",
                        round(q["need_usable_kwh"], 3), "kWh"))  # fmt: skip
        rows.append(row(f"quadricycle check RRC needed alone {mid}", "microfleet",
                        _finite(round(q["need_rrc"], 5)), ""))  # fmt: skip
    for key in sorted(k for k in mini if "_phys_" in k or "_implied_" in k or "ratio" in k
                      or "needed_fraction" in k):  # fmt: skip
        rows.append(row(f"mini ev bounds {key}", "physics bounds", round(mini[key], 3),
                        "" if "ratio" in key or "fraction" in key else "Wh/km"))  # fmt: skip
    Console().print(table)
    Console().print(
        f"max abs range error {max_abs:.1f} % ({within}/{len(cases)} within ±10 %); cold: {cold}; ECM: {ecm}"
    )
    command = "bench/physics_validation.py" + (" --quick" if args.quick else "")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": "physics_validation", "command": f".venv/bin/python {command}", "rows": rows}
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    summary = {
        "max_abs": f"{max_abs:.1f}", "within": within, "n_cases": len(cases),
        "max_abs_real": f"{max_abs_real:.1f}", "within_real": within_real, "n_real": int(real.sum()),
        "prior_max": f"{prior_max:.1f}", "prior_within": prior_within, "all_shared": all_shared.describe(),
        "lopo_max": f"{lopo_max:.1f}", "lopo_within": lopo_within,
        "lopo_max_real": f"{lopo_max_real:.1f}", "lopo_within_real": lopo_within_real,
        "quad_table": _quad_markdown(quad), "mini_md": _mini_markdown(mini),
        **_quad_summary(quad, ours), **_mini_summary(mini, ours),
        "twizy_short": _twizy_shortfall(quad), "fastsim_brake": braking_above_motor(cases),
        "fs_summary": _fastsim_summary(fs_scores, len(cases),
        int(real.sum()), fs_all_shared),
    }  # fmt: skip
    misses = [c.spec.model_id for c, e in zip(cases, errors, strict=True) if abs(e) > 10.0]
    summary["verdict"] = (
        "The target (every car within ±10 % without per-car tuning) is met."
        if not misses
        else f"The target (every car within ±10 % without per-car tuning) is not met: {', '.join(misses)} "
        "fall outside; the misses are explained below and were not tuned away."
    )
    write_doc(doc_rows, skipped, summary, cold, ecm, quick=args.quick)


FS_NEW = "fastsim"
FS_LOO = "fastsim leave-one-out fitted"
FS_OLD = "fastsim (microfleet-fitted, old setup)"
NOT_RUN = fastsim_peer.FastsimResult(float("nan"), float("nan"), float("nan"), float("nan"))


def _score(errors: list[float], real: np.ndarray) -> dict[str, float]:
    """Max and mean abs error and cars within ±10 %, over the cars run (all, and on stored cycles)."""
    err = np.abs(np.asarray(errors))
    ran = np.isfinite(err)
    out: dict[str, float] = {"run": int(ran.sum()), "run_real": int((ran & real).sum())}
    for tag, mask in (("", ran), ("_real", ran & real)):
        out[f"max{tag}"] = float(err[mask].max()) if mask.any() else float("nan")
        out[f"mean{tag}"] = float(err[mask].mean()) if mask.any() else float("nan")
        out[f"within{tag}"] = int((err[mask] <= 10.0).sum())
    return out


def _score_rows(system: str, sc: dict[str, float], n: int, n_real: int) -> list[dict[str, object]]:
    """JSON rows for one FASTSim setup: the error rows carry the count of cars they were computed over."""
    over, over_real = f"{sc['run']} of {n} cars run", f"{sc['run_real']} of {n_real} cars run"
    return [
        {"metric": "cars run", "system": system, "value": sc["run"], "unit": f"of {n}"},
        {"metric": "max abs range error %", "system": system, "value": _finite(sc["max"]), "unit": "%",
         "over": over},
        {"metric": "mean abs range error %", "system": system, "value": _finite(sc["mean"]), "unit": "%",
         "over": over},
        {"metric": "cars within ±10 %", "system": system, "value": sc["within"], "unit": f"of {n}"},
        {"metric": "max abs range error % (published cycle stored)", "system": system,
         "value": _finite(sc["max_real"]), "unit": "%", "over": over_real},
        {"metric": "cars within ±10 % (published cycle stored)", "system": system,
         "value": sc["within_real"], "unit": f"of {n_real}"},
    ]  # fmt: skip


def _fastsim_summary(scores: dict[str, dict[str, float]], n: int, n_real: int, fs_all: SharedParams) -> str:
    """The FASTSim result lines of docs/physics.md."""
    label = {
        FS_NEW: "FASTSim 3.1, its own inputs (nothing fitted)",
        FS_LOO: "FASTSim 3.1, leave-one-out fitted",
        FS_OLD: "FASTSim 3.1, old setup (Microfleet's fitted values, Zoe curve and gear, no cut-off)",
    }
    lines = [
        f"**{label[s]}: ran {sc['run']} of {n} cars; over those, max abs range error {sc['max']:.1f} %, "
        f"{sc['within']} within ±10 %.**"
        for s, sc in scores.items()
    ]
    lines.append(f"FASTSim's shared parameters fitted on all cars: **{fs_all.describe()}**.")
    return "\n\n".join(lines)


def _quad_markdown(quad: dict[str, dict[str, float]]) -> str:
    """The quadricycle check as a Markdown table."""
    head = (
        "| car | maker states regeneration | published km | Wh/km as validated | Wh/km the published km "
        "needs | pessimistic bands, regen kept: Wh/km, err % | no regen: Wh/km, err % | no regen + "
        "pessimistic bands: Wh/km, err % | class drivetrain η from the Ami: Wh/km, err % | usable kWh "
        "needed alone (share of stated) | RRC needed alone |"
        "\n|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for mid, q in quad.items():
        cls = f"{q['class_wh']:.0f}, {q['class_err']:+.1f}" if "class_wh" in q else "n/a"
        stated = "yes (Opel FAQ)" if q.get("regen_stated") else "no maker statement found"
        lines.append(
            f"| {mid} | {stated} | {q['published_km']:.0f} | {q['base_wh']:.0f} | {q['need_wh']:.0f} | "
            f"{q['worst_regen_wh']:.0f}, {q['worst_regen_err']:+.1f} | {q['no_regen_wh']:.0f}, "
            f"{q['no_regen_err']:+.1f} | {q['worst_wh']:.0f}, {q['worst_err']:+.1f} | {cls} | "
            f"{q['need_usable_kwh']:.2f} ({q['need_usable_share']:.2f}) | {q['need_rrc']:.4f} |"
        )
    eta = next((q["class_eta"] for q in quad.values() if "class_eta" in q), float("nan"))
    lines.append(f"\nClass drivetrain efficiency on traction energy needed by the Ami: η = {eta:.2f}.")
    return "\n".join(lines)


def _twizy_shortfall(quad: dict[str, dict[str, float]]) -> str:
    """How far short the Twizy 80 falls with the Ami's far corner applied by class rule, from this run."""
    twizy = quad.get("renault-twizy-80")
    if twizy is None or "class_err" not in twizy:
        return "(quick run: no Twizy 80)"
    errors = sorted((-twizy["worst_err"], -twizy["class_err"]))
    return f"{errors[0]:.0f}–{errors[1]:.0f} %"


def _quad_summary(quad: dict[str, dict[str, float]], ours: dict[str, dict[str, float]]) -> dict[str, str]:
    """The Ami's arithmetic and the Twizy's no-regeneration error, from this run (n/a when not run)."""
    ami, twizy = quad.get("citroen-ami"), quad.get("renault-twizy-80")
    out = dict.fromkeys(
        ("ami_usable", "ami_ecm", "ami_need_wh", "ami_wh", "ami_regen", "ami_km", "ami_noregen_wh",
         "ami_noregen_err", "ami_worst_regen_wh", "ami_worst_regen_err", "ami_need_usable",
         "ami_need_share", "ami_need_rrc", "ami_rrc"), "n/a",
    )  # fmt: skip
    if ami is not None:
        o = ours["citroen-ami"]
        out.update(
            ami_usable=f"{o['usable_kwh']:.2f}", ami_ecm=f"{o['ecm_factor']:.3f}",
            ami_need_wh=f"{o['usable_kwh'] * o['ecm_factor'] * 1000.0 / ami['published_km']:.0f}",
            ami_wh=f"{o['wh_per_km']:.0f}", ami_regen=f"{o['regen_wh_per_km']:.0f}",
            ami_km=f"{o['range_km']:.0f}", ami_noregen_wh=f"{ami['no_regen_wh']:.0f}",
            ami_noregen_err=f"{ami['no_regen_err']:+.1f}",
            ami_worst_regen_wh=f"{ami['worst_regen_wh']:.0f}",
            ami_worst_regen_err=f"{ami['worst_regen_err']:+.1f}",
            ami_need_usable=f"{ami['need_usable_kwh']:.2f}", ami_need_share=f"{ami['need_usable_share']:.2f}",
            ami_need_rrc=f"{ami['need_rrc']:.4f}", ami_rrc=f"{o['rrc']:.4f}",
        )  # fmt: skip
    out["twizy_noregen_err"] = f"{twizy['no_regen_err']:+.1f}" if twizy else "n/a"
    return out


def _mini_summary(mini: dict[str, float], ours: dict[str, dict[str, float]]) -> dict[str, str]:
    small = ours.get(MINI_SMALL)
    end = small["end_soc_pct"] if small else float("nan")
    return {
        "mini_end_soc": f"{end:.1f}",
        "mini_end_gain": f"{100.0 * (1.0 / (1.0 - end / 100.0) - 1.0):.1f}",
        "mini_small_err": f"{mini['small_err']:+.1f}" if "small_err" in mini else "n/a",
        "mini_small_kmkwh": f"{mini['small_km_per_kwh']:.1f}" if "small_km_per_kwh" in mini else "n/a",
        "mini_large_kmkwh": f"{mini['large_km_per_kwh']:.1f}" if "large_km_per_kwh" in mini else "n/a",
    }


def _mini_markdown(mini: dict[str, float]) -> str:
    """The Mini EV sources' implied Wh/km beside the physics', and the other readings (full run only)."""
    if "small_err" not in mini or "large_err" not in mini:
        return "- (quick run: the Mini EV readings need the full car set)"
    sw, si = mini["small_wh"], mini["small_implied_wh"]
    lw, li, ln, lnmax = (mini[k] for k in ("large_cltc_wh", "large_implied_wh", "large_nedc_wh",
                                          "large_nedc_implied_wh_max"))  # fmt: skip
    table = "\n".join(
        [
            "| source | pack | cycle, test mass | published km | implied Wh/km | physics Wh/km | "
            "published ÷ physics range |",
            "|---|---|---|---|---|---|---|",
            f"| catalogue row (everyeye, wapcar) | 9.2 kWh | NEDC, curb + 100 kg | 120 | {si:.1f} | "
            f"{sw:.1f} | {sw / si:.2f} |",
            f"| catalogue row (insideevs.de via CarNewsChina) | 26.5 kWh | CLTC-P, curb + 100 kg | 280 | "
            f"{li:.1f} | {lw:.1f} | {lw / li:.2f} |",
            f"| electrive (MIIT filing), same upgrade | 26 kWh | NEDC, curb + 100 kg | more than 300 | "
            f"at most {lnmax:.1f} | {ln:.1f} | at least {ln / lnmax:.2f} |",
        ]
    )
    need = 100.0 * (300.0 / 26.0 / (280.0 / 26.5) - 1.0)
    physics = 100.0 * (lw / ln - 1.0)
    return "\n".join(
        [
            table,
            "",
            _mini_bounds_markdown(mini),
            "",
            f"- **Same pack, two sources.** 280 km CLTC and over 300 km NEDC for the 26–26.5 kWh upgrade "
            f"need CLTC-P to cost at least {need:.0f} % more per km than NEDC on the same car; the physics "
            f"gives {physics:+.0f} % (the slower, gentler CLTC-P trace costs less).",
            f"- **At the fitted shared parameters.** Every NEDC figure of this body is longer than the "
            f"physics gives (9.2 kWh: ×{sw / si:.2f}; 13.8 kWh: see its row; 26 kWh: at least "
            f"×{ln / lnmax:.2f}), "
            f"while the CLTC figures sit near it (26.5 kWh: ×{lw / li:.2f}; the 2025 Gen 2: see its row). "
            "The arithmetic points at the NEDC figures (or the NEDC test conditions they were measured "
            "under) as the inconsistent ones, not at the CLTC figure. Both rows stay in the validation.",
            f"- **Other readings of the rows' own notes** (computed, not applied): 9.3 kWh instead of 9.2: "
            f"{mini['small_93_err']:+.1f} %; 9.2 kWh read as fully usable (the model takes "
            f"{mini['small_fraction']:.2f} × stated): {mini['small_usable_err']:+.1f} %; the 26.5 kWh car "
            f"at the Cabrio note's 720 kg instead of the sibling-derived {mini['large_mass']:.0f} kg: "
            f"{mini['large_720_err']:+.1f} %.",
        ]
    )


def _mini_bounds_markdown(m: dict[str, float]) -> str:
    """Each Mini EV source against the physics' bounds, and the NEDC/CLTC pair against each other."""
    if "small_phys_min" not in m:
        return "- (the bounds need the three Mini EV gen 1 rows)"
    rows = [
        "Bounds that no fitted value enters: the physics' pack-side Wh/km at every corner of the cited "
        "bands (RRC 0.0065-0.0105, loss map x0.5-1.5, auxiliaries 0.1-0.4 kW) at the test mass, against "
        "the Wh/km each published figure implies with anywhere from 0.89 to all (1.00) of the stated kWh "
        "usable (× the car's ECM factor):",
        "",
        "| source | pack | cycle, test mass | published km | implied Wh/km (usable 0.89-1.00) | "
        "physics Wh/km over the bands | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for tag, src, pack, cyc, km in (
        ("small", "catalogue row (everyeye, wapcar)", "9.2 kWh", "NEDC", "120"),
        ("mid", "catalogue row (wapcar)", "13.8 kWh", "NEDC", "170"),
        ("large", "catalogue row (insideevs.de via CarNewsChina)", "26.5 kWh", "CLTC-P", "280"),
    ):
        lo, hi = m[f"{tag}_implied_min"], m[f"{tag}_implied_max"]
        plo, phi = m[f"{tag}_phys_min"], m[f"{tag}_phys_max"]
        rows.append(
            f"| {src} | {pack} | {cyc}, {m[f'{tag}_test_mass']:.0f} kg | {km} | {lo:.1f}-{hi:.1f} | "
            f"{plo:.1f}-{phi:.1f} | {_verdict(lo, hi, plo, phi)} |"
        )
    nmax, nlo, nhi = m["large_nedc_implied_max"], m["large_nedc_phys_min"], m["large_nedc_phys_max"]
    rows.append(
        f"| electrive (MIIT filing) | 26 kWh | NEDC, {m['large_nedc_test_mass']:.0f} kg | more than 300 | "
        f"at most {nmax:.1f} | {nlo:.1f}-{nhi:.1f} | {_verdict(float('-inf'), nmax, nlo, nhi)} |"
    )
    rows += [
        "",
        f"- **The same body's NEDC and CLTC figures against each other.** Per stated kWh the 9.2 kWh "
        f"NEDC figure costs {m['small_wh_per_kwh_km']:.1f} Wh/km and the 26.5 kWh CLTC figure "
        f"{m['large_wh_per_kwh_km']:.1f}: a ratio of {m['small_ratio_published']:.2f} (13.8 kWh NEDC: "
        f"{m['mid_ratio_published']:.2f}). The physics' ratio of NEDC (at {m['small_test_mass']:.0f} kg) to "
        f"CLTC-P (at {m['large_test_mass']:.0f} kg) Wh/km lies in {m['small_ratio_phys_min']:.2f}-"
        f"{m['small_ratio_phys_max']:.2f} at every corner of the bands ({m['mid_ratio_phys_min']:.2f}-"
        f"{m['mid_ratio_phys_max']:.2f} for the 13.8 kWh car). With the CLTC pack at the band's foot "
        f"(0.89 usable), the 9.2 kWh pack would need {m['small_needed_fraction']:.2f} of its stated kWh "
        f"usable ({m['mid_needed_fraction']:.2f} for the 13.8 kWh pack), more than all of it. So the two "
        "figures cannot both hold for one body under any setting of the cited bands.",
        f"- **Which one is inconsistent.** One at a time, each figure can be reached somewhere inside the "
        f"bands (verdicts above); together they cannot. The CLTC figure's implied "
        f"{m['large_implied_min']:.1f}-{m['large_implied_max']:.1f} Wh/km contains the physics at the cited "
        f"priors ({m['large_phys_prior']:.1f} Wh/km); the 9.2 kWh NEDC figure's "
        f"{m['small_implied_min']:.1f}-{m['small_implied_max']:.1f} Wh/km lies "
        f"{100 * (1 - m['small_implied_max'] / m['small_phys_prior']):.0f}-"
        f"{100 * (1 - m['small_implied_min'] / m['small_phys_prior']):.0f} % below the physics at the priors "
        f"({m['small_phys_prior']:.1f} Wh/km) and needs label-A tyres, the most efficient motor map, the "
        f"least auxiliary load and nearly all of the pack usable at once (13.8 kWh NEDC: "
        f"{m['mid_implied_min']:.1f}-{m['mid_implied_max']:.1f} against {m['mid_phys_prior']:.1f} at the "
        "priors). So the NEDC figures are the ones the physics reproduces only at the edge of every cited "
        "band; the CLTC figure needs no edge. Both rows stay in the validation and in the tables above.",
        "- **What would settle it**: the MIIT type-approval energy consumption (kWh/100 km) of the "
        "9.2 kWh car on its NEDC test, or the net energy of either pack: if the 9.2 kWh NEDC figure "
        f"holds, that consumption is at most {m['small_implied_max']:.0f} Wh/km at the pack "
        f"(9.2 kWh x ECM / 120 km, all of it usable).",
    ]
    return "\n".join(rows)


def _verdict(lo: float, hi: float, plo: float, phi: float) -> str:
    """Where a published figure's implied Wh/km band sits against the physics' band."""
    if hi < plo:
        return "below every setting of the bands: inconsistent"
    if lo > phi:
        return "above every setting of the bands: inconsistent"
    if hi < plo + 0.25 * (phi - plo):
        return "only in the optimistic quarter of the bands"
    if lo > phi - 0.25 * (phi - plo):
        return "only in the pessimistic quarter of the bands"
    return "inside the bands"


def write_doc(doc_rows, skipped, summary, cold, ecm, *, quick: bool) -> None:
    template = DOC_TEMPLATE
    skipped_md = "\n".join(f"- `{mid}`: {why}" for mid, why in skipped) or "- none"
    fs_failed = "\n".join(f"- `{mid}`: {why}" for mid, why in FASTSIM_FAILURES.items()) or "- none"
    DOC.write_text(
        template.format(
            header=DOC_HEADER,
            table="\n".join(doc_rows),
            skipped=skipped_md,
            fastsim_failed=fs_failed,
            fastsim_old_failed=", ".join(f"`{m}` ({w})" for m, w in FASTSIM_OLD_FAILURES.items()) or "none",
            **summary,
            cold_warm=f"{cold['warm_range_km']:.0f}",
            cold_cold=f"{cold['cold_range_km']:.0f}",
            cold_pct=f"{cold['retained_pct']:.0f}",
            cold_wh=f"{cold['cold_wh_per_km']:.0f}",
            cold_ref=f"{COLD_REFERENCE_RETAINED_PCT:.0f}",
            ecm_rmse=f"{ecm['voltage_rmse_mv']:.1f}",
            ecm_max=f"{ecm['voltage_max_abs_error_mv']:.1f}",
            ecm_soc=f"{ecm['soc_end_ecm_pct']:.2f}",
            ecm_soc_ref=f"{ecm['soc_end_pybamm_pct']:.2f}",
            ecm_dur=f"{ecm['duration_s']:.0f}",
            ecm_s=f"{ecm['pybamm_run_s']:.1f}",
            mode="quick run (4 cars)" if quick else "full run",
        )
    )


_DOC_COLUMNS = [
    "car", "cycle", "test mass kg", "usable kWh", "published km", "Microfleet km", "err %",
    "leave-one-platform-out err %", "priors-only err %", "FASTSim km", "FASTSim err %",
    "FASTSim leave-one-out err %", "FASTSim old setup err %", "Microfleet Wh/km",
    "FASTSim Wh/km", "motor loss Wh/km", "regen Wh/km", "aux Wh/km", "Microfleet ms", "FASTSim ms",
    "shared parameters fitted without this car", "fitted without its platform",
    "FASTSim's shared parameters fitted without this car",
]  # fmt: skip
DOC_HEADER = "| " + " | ".join(_DOC_COLUMNS) + " |\n" + "|---" * len(_DOC_COLUMNS) + "|"
DOC_TEMPLATE = """# Physics of small EVs

`microfleet.physics` is a pure-NumPy model of a 450–1,400 kg city car. It is vectorised over vehicles
(first axis) and seconds (second axis). It covers longitudinal road load (rolling, aero, grade, inertia
with rotating mass), a motor + inverter loss map over speed and torque with power caps and regeneration
limits, 12 V auxiliaries and cabin HVAC, a Thevenin battery (LFP/NMC OCV, two RC pairs, LFP
hysteresis, Arrhenius resistance, cell-to-cell spread, lumped thermal), and ageing laws. The
[public API](../src/microfleet/physics/__init__.py) is documented in the package docstring. Every
constant has its source beside it in the code.

This page is written by `.venv/bin/python bench/physics_validation.py` ({mode}); the numbers are also
in `bench/results/physics_validation.json`.

## Where the numbers come from

- **Catalogue** (`shared/data/vehicles/catalogue.csv`, 35 cited variants): mass, pack energy, motor
  power, top speed and dimensions, each with its source URL and the row's confidence.
- **Siblings**: a value missing on a row is borrowed from the nearest-year row of the same platform
  (Spring, Mini EV, Ami/Rocks-e/Topolino). Mass moves with the pack difference at 125 Wh/kg. Such values are
  marked as priors that name the sibling.
- **Cited priors** (`physics/priors.py`, `drivetrain.py`, `hvac.py`, `battery_cell.py`):
  - frontal area = 0.81 × width × height (Wong);
  - Cd 0.40 for micro cars and 0.33 for small hatchbacks (Hucho);
  - tyre RRC 0.0095 (EU label class E, Reg. 1222/2009);
  - rotating mass 4 %;
  - gear 97 %, a per-unit Larminie & Lowry motor loss map peaking near 94 %, regeneration capped at 30 %
    of motor power (Twizy controller data);
  - 0.25 kW auxiliaries (FASTSim's Zoe file);
  - usable energy = 0.93 × stated kWh where no usable figure is published (mean of the catalogue's
    labelled pairs);
  - cabin UA scaled from the AVILOO heating test.
- **Test procedures** (`microfleet.physics.procedures`; how a published range is measured, modelled
  before anything is fitted):
  - range = distance from a full pack to the second the car can no longer follow the repeated trace:
    its pack is empty, or it cannot deliver the power asked (the ECM's limit, or the BMS cutting current
    back once the weakest cell is at cut-off) and falls more than **2 km/h** behind the trace (the ±2 km/h
    speed tolerance of UNECE R83 / GTR 15, assumed for WMTC and CLTC, whose tolerances were not at
    hand). A motor too weak for the trace (the 6 kW Ami) drives at full power until it rejoins, as
    GTR No. 2 prescribes; that never ends a test. So range is usable energy at the pack terminals /
    pack-side consumption. The Dacia Spring 65 (2024) shows the convention: 25 kWh usable / 114 Wh/km
    battery-side (evkx) = 219 km against the published 220 km, while its 146 Wh/km headline includes
    charging losses. Grid-side figures are therefore never used here;
  - NEDC (UNECE R83/R101): reference mass = unladen + 100 kg;
  - CLTC (GB/T 18386): the exact CLTC-P trace (GB/T 38146.1-2019, 1,800 s, 14.48 km), consecutive-cycle
    method, curb + 100 kg (the 2017 edition's rule; the 2021 edition's is not confirmed). The shortened
    method is not modelled: no catalogue figure says it was used;
  - WLTP (Reg. (EU) 2017/1151 Annex XXI 3.2.25–3.2.26, M1): test mass = mass in running order (curb +
    75 kg driver) + 25 kg + 15 % of the maximum vehicle load (permissible laden mass − mass in running
    order − 25 kg). The load is computed where the catalogue gives the laden mass (Spring 2024) and is a
    300 kg prior elsewhere;
  - WMTC for EU L6e/L7e cars rated on it (Ami), and for an L6e car whose maker calls the figure "WLTP"
    (Rocks-e: quadricycles are approved on WMTC, Reg. (EU) 168/2013 and 134/2014): class 1 (v_max below
    100 km/h), part 1 at reduced speed driven cold then hot, the pair repeated, capped at the car's top
    speed. Test mass = mass in running order + 75 kg driver (commonly stated for WMTC's reference mass;
    not confirmed from the legal text). **Mass in running order excludes the driver for L-category
    vehicles** (Reg. (EU) 168/2013 Art. 5) but includes a 75 kg driver for M1; the catalogue README
    defines its column the M1 way, so `resolve_spec` reads that column per class (L6e/L7e: taken as
    curb mass; M1: minus 75 kg). The catalogue's quadricycle masses are kerb figures, used as the mass
    in running order. The Twizy 80 keeps NEDC: its 100 km is published as NEDC (approved in 2012
    under Directive 2002/24/EC, before WMTC applied to quadricycles), at its 450 kg kerb mass + 100 kg;
  - end of test on NEDC: UNECE R101 Annex 9 is commonly quoted as stopping the test once the car
    cannot follow the trace *up to 50 km/h*, so a shortfall only at higher speed would not end it; not
    confirmed from the text here and not modelled. Its size is bounded: the 9.2 kWh Mini EV's run ends
    at {mini_end_soc} % SoC, so even driving on to an empty pack adds at most {mini_end_gain} % of
    range, against its {mini_small_err} % miss;
  - checked per car in the table's "cycle" column: every L-category car rated on WMTC (or rated
    "WLTP" by its maker, an L6e car) drives WMTC class 1; every CLTC rating the standard's CLTC-P;
    every NEDC rating NEDC; WLTP ratings the WLTC class of the car's power-to-mass ratio;
  - traces: `src/microfleet/physics/cycles/` (README there gives every source and check).
- **Siblings for mass**: a mass is borrowed from the nearest-year sibling whose pack size is known, so
  the mass can follow the pack difference (the 26.5 kWh Mini EV now gets 665 kg + 17.3 kWh at 125 Wh/kg
  instead of the 700 kg of a Macaron trim with an unstated pack).
- **Speed limit**: each car follows the trace capped at its top speed.
- **Calibration of shared parameters, leave-one-out** (`microfleet.physics.calibration`). Four
  parameters that every car shares are searched on a grid inside cited bands: usable fraction of an
  unlabelled stated kWh (0.89–0.97, the catalogue's labelled pairs), tyre RRC (0.0065–0.0105, EU label
  A–E), a scale on the motor + inverter loss map (0.5–1.5) and the 12 V auxiliary load (0.1–0.4 kW).
  A catalogue figure (labelled usable kWh, published Cd) is never replaced, and no per-car value is
  fitted. For each car, the grid point that best fits the *other* cars (mean squared log range error;
  identical rows such as the Spring 70/100 2025 are held out together) predicts it. The fitted values
  per car are in the second-to-last column. Fitted on all cars,
  the shared parameters are: **{all_shared}**. Those are what `microfleet.physics.calibration` offers for use
  outside this validation; the library's defaults stay at the cited priors.
- **Leave-one-platform-out** (stricter). The same fit, but every row of the held-out car's platform is
  held out at once: all five Spring variants, all four Mini EV variants with a range, both Fiat 500e
  rows. A platform's siblings share a body, motor and often a pack, so plain leave-one-out lets a
  sibling's published figure pull the shared parameters towards the held-out car. The column
  "leave-one-platform-out err %" and the last column show this check; the headline result stays
  leave-one-out as the issue defines it.

## Range on the published cycle

Range is the distance driven on the repeated procedure (above) until the car can no longer follow the
trace within 2 km/h (23 °C, HVAC off). FASTSim 3.1 runs the same car on the same capped trace under the same
test rules, with a vehicle built from the catalogue the way FASTSim's calibration guide prescribes
("Calibration Level 0 (Parameterization)", `docs/src/cal_and_val.md` in NREL/fastsim;
`bench/fastsim_peer.py`): its bundled BEV file (2022 Renault Zoe) as template; total mass set to the
procedure's test mass (as for Microfleet); the catalogue's Cd, frontal area and peak motor power; the
wheel radius from the tyre code where the catalogue gives one (Twizy); the pack as stated kWh with a
min/max SoC window of width usable / stated, split at both ends as in the Zoe file (labelled usable kWh
where published, else the same usable fraction); FASTSim's own motor efficiency curve (0.84–0.95 over
output power) and battery (constant 98.5 %); the single-reduction gear at the same cited 97 % as
Microfleet (the Zoe file's 92 % is FASTSim 2's generic default); RRC and auxiliaries at the same cited
priors (0.0095, 0.25 kW); `trace_miss_opts="Allow"`. Its range is run, not divided out: consecutive
passes from max SoC until FASTSim's pack reaches min SoC, where FASTSim stops. "FASTSim err %" is
that configuration with nothing fitted. "FASTSim leave-one-out err %" runs the same leave-one-out fit
as Microfleet's, on FASTSim's own consumption, over the same grid and cited bands: SoC-window width
(usable fraction of an unlabelled stated kWh), `wheel_rr_coef`, a scale on the losses of FASTSim's
motor curve (efficiency = 1 − scale × (1 − curve)), and `pwr_aux_base_watts`; FASTSim's range factor
(its battery loss and end of test) takes the place of Microfleet's ECM factor. "FASTSim old setup err %"
is the previous release's setup, kept for one release: Microfleet's leave-one-out values, the Zoe's
curve and 92 % gear, no SoC window, range = usable / Wh/km. FASTSim's Wh/km is at the pack terminals
over one pass (nothing fitted). `*` marks a usable energy from the shared usable-fraction parameter.
"priors-only err %" is Microfleet with every shared parameter at its cited prior (nothing fitted).
The loss columns are Microfleet's: motor + inverter losses, energy regenerated at the shaft, and
auxiliaries. The run-time columns time different work.
Microfleet's is the whole drive to empty (ECM second by second over every pass, vectorised over the
cars sharing the cycle, divided among them). FASTSim's is a single pass of the cycle with its history
recording off (`save_interval = None`). Throughput is
compared on equal work in `bench/physics_speed.py`.

{header}
{table}

**Result (leave-one-out, every car on its own published cycle): max abs range error {max_abs} %;
{within} of {n_cases} cars within ±10 %. With priors only (nothing fitted): max abs error {prior_max} %,
{prior_within} of {n_cases} within ±10 %. {verdict}**

**Leave-one-platform-out: max abs range error {lopo_max} %; {lopo_within} of {n_cases} cars within
±10 %.**

{fs_summary}

Cars with a published range that could not be modelled (named field missing on the car and its siblings):

{skipped}

Cars FASTSim 3.1 refused to simulate with its own inputs (its error; shown as `nan` above, and left out
of its error figures, which say over how many cars they were computed):

{fastsim_failed}

Why FASTSim cannot run the Ami and Rocks-e: FASTSim 3.1's battery-electric powertrain hands the whole
negative tractive power to its electric machine (`Vehicle::solve_powertrain` → `BatteryElectricVehicle::
solve` → `ElectricMachine::get_pwr_in_req`), whose check that braking power stays within its regeneration
limit (the motor's `pwr_out_max`) fails before its own split of the excess to a dynamic brake, and a BEV
has no friction brakes to take the rest. {fastsim_brake} A car with a 100 kW motor (the Zoe the template
comes from) never meets this. Running it anyway would need a different motor rating or a different
trace, neither of which is the Ami, so FASTSim has no row for these two cars.

Cars the old FASTSim setup refused: {fastsim_old_failed}

### Where the models differ, and why the misses happen

- **The fit is pulled by the rows it cannot reach.** The fit minimises the mean squared log error
  over the other cars, so the two quadricycles (about +30 % at the fit; near +10 % only with every
  band at its pessimistic end) and the Mini EV's
  NEDC rows (short of the model on any setting) pull it in opposite directions; the per-car fitted
  values are in the table. RRC stands in for all road load here (the Cd and frontal-area priors are not
  fitted), so a fitted RRC should be read as "type-approval road load relative to the priors", not as a
  tyre measurement. Type-approval road-load coefficients for these cars are not public.
- **Microfleet and FASTSim** get the same car, test mass, usable energy, Cd, area, gear efficiency and
  cited priors, and each is fitted (or not) the same way. What stays different is each model's own
  physics: FASTSim's motor efficiency is a curve over output-power fraction (0.84–0.95), Microfleet's
  a loss map over torque and speed; FASTSim's regen is limited by its motor and battery curves, while
  Microfleet fades regen between 15 and 5 km/h and caps it at 30 % of motor power; FASTSim's pack has a
  constant 98.5 % efficiency and runs to its SoC floor (range factor about 0.98), while Microfleet's ECM
  loses I²R and RC energy and stops when the weakest cell reaches cut-off (ECM factor about 0.95).
- **Traces**: CLTC-P is now the standard's own table (1,800 s; the earlier public transcription had
  34 s of extra idling); WMTC part 1 at reduced speed is the carculator-utils table, which matches the
  full-speed part 1 of FASTSim's copy except where the 60 km/h hump is cut to 50 km/h (not checked
  against the GTR table itself; cycle README).

### The Mini EV pair: which source is inconsistent

The 9.2 kWh car (NEDC) comes out short and the 26.5 kWh car (CLTC-P) close, on the same body. The
published figures give {mini_small_kmkwh} km per stated kWh on NEDC and {mini_large_kmkwh} km per stated kWh
on CLTC-P, although CLTC-P (28.96 km/h mean) is slower and gentler than NEDC (33.35 km/h). The arithmetic:
each figure's implied pack-side consumption (usable energy × the car's ECM factor ÷ published km, the
same usable fraction and ECM as the model) against the physics' consumption on that trace at that
test mass:

{mini_md}

No shared parameter can move the pair apart (each moves both the same way). Neither row is dropped and
none of the readings is applied: picking whichever published figure agrees with the model would be
tuning by choice of source. Beside the inputs named above, a curb mass for the 26.5 kWh car would
remove the last assumption in the pair's arithmetic (its mass is the 9.2 kWh sibling's plus the pack
difference at 125 Wh/kg).

### The quadricycles (Citroën Ami, Opel Rocks-e) on WMTC

The published 75 km is WMTC (automobile-propre's test and the catalogue's sources: "selon la norme
WMTC dédiée aux deux-roues et quadricycles"). Both now drive their own procedure (WMTC class 1, part 1
at reduced speed, cold then hot, capped at 45 km/h, at 485 + 75 kg) and are trained on like every other
car. **The arithmetic:** 75 km from the Ami's usable {ami_usable} kWh at its ECM factor {ami_ecm} needs
{ami_need_wh} Wh/km at the pack; the physics gives {ami_wh} Wh/km on WMTC (after {ami_regen} Wh/km regenerated
at the shaft), so {ami_km} km. Each candidate cause was checked against what could be
cited:

- **Regeneration.** The maker says it regenerates: Opel's Rocks-e FAQ ("Bietet der Rocks-e einen
  Rekuperationsmodus ...?" — "Ja ... beim Bremsen oder beim Loslassen des Gaspedals ... nicht
  einstellbar", opel.de/fahrzeuge/rocks-e/faq/batterie-laden.html), and the Rocks-e is the Ami rebadged
  (`physics.drivetrain.REGENERATION_STATED`). So the model keeps regeneration for both, as for every
  car. Without it the Ami would need {ami_noregen_wh} Wh/km ({ami_noregen_err} %, inside ±10 %), but
  that reading contradicts the maker and is shown only as a computed reading. How much it regenerates
  is not published (the model caps it at 30 % of motor power, 1.8 kW, from the Twizy's controller).
- **Every cited band at its pessimistic end, regeneration kept** (RRC 0.0105, Cd 0.45, loss map ×1.5,
  0.4 kW auxiliaries): {ami_worst_regen_wh} Wh/km, **{ami_worst_regen_err} %**. Only that far corner
  of every band at once would reach it, and the fit cannot choose it for one car class: it is shared.
- **A class prior (48 V drivetrain losses, or no regeneration for all quadricycles).** A class prior is
  applied by rule to every car the catalogue classes EU L6e/L7e, which includes the Renault Twizy 80
  (L7e, NEDC, regenerates: the 30 % regen cap comes from its controller data).
  With no regeneration the Twizy 80 falls to {twizy_noregen_err} %; the single
  drivetrain efficiency that brings the Ami to 75 km puts it {twizy_short} short. So no class prior.
- **Tyres, body, auxiliaries, loss map.** The 14-inch tyres have no published size or label. The check
  below also puts every cited band at its pessimistic end at once: RRC 0.0105 (label E), Cd 0.45 (top
  of Hucho's micro-car band), loss map ×1.5, 0.4 kW auxiliaries, and no regeneration.
- **Gearbox.** None ("non c'è il cambio", red-live.it): a fixed reduction like the M1 cars.
- **Usable energy.** Only the 5.5 kWh headline is published; the usable fraction is the shared one.

{quad_table}

**The input that would settle it**, with the arithmetic: 75 km needs {ami_need_wh} Wh/km at the pack
where the model draws {ami_wh}. Alone, that gap means either a usable energy of {ami_need_usable} kWh
({ami_need_share} of the stated 5.5 kWh, below any labelled pair in the catalogue, 0.89–0.97), or road
load equal to an RRC of {ami_need_rrc} (against the fitted {ami_rrc}; label E ends at 0.0105). The
inputs that decide between them are published for neither car: the type-approval electric energy
consumption (Wh/km, test type VII of Reg. (EU) No 134/2014, Annex VII Appendix 3.3) with the pack's
usable (net) energy, which give the pack-side Wh/km directly; or the WMTC road-load (coast-down)
coefficients and the regenerated share (a CAN log of one drive). Until then the Ami and Rocks-e rows
stay outside ±10 %, untuned.

## Cold weather

The Mini EV (9.2 kWh, LFP, shared parameters fitted on all cars) runs CLTC-P at −10 °C with the cabin
held at 20 °C, against 23 °C with HVAC off. The −10 °C run **includes**:

- a PTC heater (COP 1) drawing the steady-state cabin loss UA × ΔT, capped at 1.5 kW for micro cars.
  UA is scaled from the AVILOO 14-EV heating test by frontal area;
- Arrhenius growth of R0, R1 and R2 in the cold, and more I²R loss and earlier cut-off with it;
- a lumped pack thermal model that starts at ambient and warms only by its own I²R heat.

It **omits**:

- the cabin warm-up transient (AVILOO: the first hour takes 1.5–2.5 kWh, more than steady state);
- any loss of accessible LFP capacity in the cold beyond what resistance and cut-off produce;
- BMS pack heating.

Result: {cold_cold} km against {cold_warm} km, **{cold_pct} % retained**, at {cold_wh} Wh/km.
Issue 4 states that car-media tests found the Mini EV keeps about {cold_ref} % of its CLTC range at about
−10 °C. No stored copy of those tests was found, so the figure is cited from the issue. The model is
more pessimistic. Most of the gap is the heater: 1.5 kW of continuous PTC draw at CLTC-P's 29 km/h mean
adds about 50 Wh/km. Owners of these cars often heat only partly, and a 20 °C cabin target at 1.5 kW is
an assumption, not a measurement. The omitted effects would push the model further down. So the
agreement to within about 7 points comes partly from cancelling assumptions, not from calibration.

## Battery model against PyBaMM

The Mini EV's pack power over WLTC class 2 (repeated; {ecm_dur} s from 90 % SoC at 25 °C) drives the
ECM. The same C-rate profile drives PyBaMM's SPMe with the `Prada2013` LFP cell. Terminal cell voltage:
**RMSE {ecm_rmse} mV, max |error| {ecm_max} mV**. End SoC: {ecm_soc} % (ECM) vs {ecm_soc_ref} %
(PyBaMM, coulomb count). PyBaMM took {ecm_s} s. The ECM's OCV table was computed from the same
`Prada2013` set. The resistances and time constants are cited priors, not fitted to PyBaMM, so the
voltage error measures the RC-prior mismatch honestly. The error grows as the run reaches low SoC,
where the LFP curve leaves its plateau and the SPMe's solid-diffusion overpotentials (absent from a
two-RC circuit) rise. This session did not localise it further. Later SoC estimators can be scored against
PyBaMM as the truth.

## Energy conservation and other checks

`tests/unit/physics/` checks the following:

- Pack energy equals road energy (computed independently from kinetic, rolling, aero and climb terms)
  plus losses plus auxiliaries, within 0.5 %, on three cycles, three temperatures and a varying grade.
- The ECM's first step and rest relaxation match a hand computation.
- OCV monotonicity, the LFP plateau and the hysteresis branches.
- Bit-identical reruns.
- Refusal of negative masses, traces with gaps or negative speeds, unknown car ids and cycle names.
- Every value the model uses has a source, and priors are marked as priors.
"""


if __name__ == "__main__":
    main()
