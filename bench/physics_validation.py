"""Physics validation: modelled range/consumption vs published figures, FASTSim 3.1 beside, PyBaMM ECM check.

Run: .venv/bin/python bench/physics_validation.py [--quick] [--seed N]
Writes bench/results/physics_validation.json and the tables of docs/physics.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from microfleet.domain.catalogue import VehicleSpec, load_catalogue
from microfleet.errors import PhysicsInputError
from microfleet.physics import Battery, VehicleParams, cycle_range_km, power_breakdown, resolve_spec
from microfleet.physics.cycles import load_cycle, wltc_class_for
from microfleet.physics.priors import NEDC_CLTC_TEST_MASS_ADDED_KG, WLTP_TEST_MASS_ADDED_KG, ResolvedSpec
from microfleet.physics.range_sim import capped_speed_mps

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "physics_validation.json"
DOC = ROOT / "docs" / "physics.md"
FASTSIM_FAILURES: dict[str, str] = {}
COLD_REFERENCE_RETAINED_PCT = 59.0  # Mini EV at about -10 °C vs CLTC, as stated in issue 4 (car-media tests)


@dataclass
class Case:
    spec: VehicleSpec
    resolved: ResolvedSpec
    cycle_name: str
    test_mass_added_kg: float
    cycle_note: str


def select_cases(quick: bool) -> tuple[list[Case], list[tuple[str, str]]]:
    """Every catalogue car with a published range and named cycle, mapped to a trace and a test mass."""
    cat = load_catalogue()
    cases: list[Case] = []
    skipped: list[tuple[str, str]] = []
    for spec in cat:
        if spec.range_km is None or spec.range_cycle is None:
            continue
        try:
            r = resolve_spec(spec, cat.all())
        except PhysicsInputError as exc:
            skipped.append((spec.model_id, exc.message))
            continue
        cycle = spec.range_cycle.value
        pmr = r.motor_peak_kw.value * 1000.0 / r.curb_mass_kg.value
        if cycle.startswith("WLTP"):
            name, note = wltc_class_for(pmr), f"WLTP → WLTC by PMR {pmr:.0f} W/kg"
            if "expected" in cycle:
                note += " (range stated as 'expected')"
            added = WLTP_TEST_MASS_ADDED_KG
        elif cycle == "NEDC":
            name, note, added = "nedc", "NEDC", NEDC_CLTC_TEST_MASS_ADDED_KG
        elif cycle == "CLTC":
            name, note, added = "cltc_p", "CLTC-P", NEDC_CLTC_TEST_MASS_ADDED_KG
        elif cycle == "WMTC":
            name, note = "wltc_class1", "WMTC not stored: WLTC class 1 capped at v_max as stand-in"
            added = WLTP_TEST_MASS_ADDED_KG
        else:
            skipped.append((spec.model_id, f"cycle {cycle!r} has no stored trace"))
            continue
        cases.append(Case(spec, r, name, added, note))
    if quick:
        keep = {"wuling-hongguang-mini-ev-gen1-9kwh", "citroen-ami", "dacia-spring-65-2024", "baojun-yep"}
        cases = [c for c in cases if c.spec.model_id in keep]
    return cases, skipped


def run_microfleet(cases: list[Case]) -> dict[str, dict[str, float]]:
    """Range (km) and consumption (Wh/km) per car, one vectorised run per cycle."""
    out: dict[str, dict[str, float]] = {}
    for cycle_name in sorted({c.cycle_name for c in cases}):
        group = [c for c in cases if c.cycle_name == cycle_name]
        params = VehicleParams.from_resolved(
            [c.resolved for c in group], payload_kg=[c.test_mass_added_kg for c in group]
        )
        t0 = time.perf_counter()
        result = cycle_range_km(params, load_cycle(cycle_name), ambient_temp_c=23.0, hvac_on=False)
        elapsed = time.perf_counter() - t0
        flows = power_breakdown(params, capped_speed_mps(params, load_cycle(cycle_name)), 1.0, hvac_on=False)
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
            }
    return out


def run_fastsim(cases: list[Case]) -> dict[str, dict[str, float]]:
    """FASTSim 3.1 on the same car and trace: bundled 2022 Zoe with mass, pack, motor and road load set."""
    import fastsim as fsim

    base = fsim.Vehicle.from_resource("2022_Renault_Zoe_ZE50_R135.yaml").to_dict()
    sim_params = fsim.SimParams.default().to_dict()
    sim_params["trace_miss_opts"] = "Allow"
    out: dict[str, dict[str, float]] = {}
    for c in cases:
        params = VehicleParams.from_resolved([c.resolved], payload_kg=c.test_mass_added_kg)
        d = copy.deepcopy(base)
        bev = d["pt_type"]["BEV"]
        bev["res"]["energy_capacity_joules"] = c.resolved.usable_kwh.value * 3.6e6
        bev["res"]["min_soc"], bev["res"]["max_soc"] = 0.0, 1.0
        bev["em"]["pwr_out_max_watts"] = c.resolved.motor_peak_kw.value * 1000.0
        d["chassis"]["drag_coef"] = c.resolved.drag_coefficient.value
        d["chassis"]["frontal_area_square_meters"] = c.resolved.frontal_area_m2.value
        d["chassis"]["wheel_rr_coef"] = c.resolved.rolling_resistance.value
        d["chassis"]["glider_mass_kilograms"] = None
        d["chassis"]["cargo_mass_kilograms"] = None
        d["mass_kilograms"] = float(params.mass_kg[0])
        d["pwr_aux_base_watts"] = float(params.aux_base_kw[0] * 1000.0)
        speed = capped_speed_mps(params, load_cycle(c.cycle_name))[0]
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
            FASTSIM_FAILURES[c.spec.model_id] = reason
            continue
        elapsed = time.perf_counter() - t0
        state = sd.to_dict()["veh"]
        km = state["state"]["dist_meters"] / 1000.0
        wh_per_km = state["pt_type"]["BEV"]["res"]["state"]["energy_out_electrical_joules"] / 3600.0 / km
        out[c.spec.model_id] = {
            "range_km": c.resolved.usable_kwh.value * 1000.0 / wh_per_km,
            "wh_per_km": wh_per_km,
            "run_s": elapsed,
        }
    return out


def cold_weather() -> dict[str, float]:
    """Mini EV (9.2 kWh) CLTC-P range at -10 °C with the cabin heated to 20 °C vs at 23 °C with HVAC off."""
    cat = load_catalogue()
    params = VehicleParams.from_specs([cat.get("wuling-hongguang-mini-ev-gen1-9kwh")], siblings=cat.all())
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
    ours = run_microfleet(cases)
    peer = run_fastsim(cases)
    cold = cold_weather()
    ecm = pybamm_check(args.quick)
    rows: list[dict[str, object]] = []
    table = Table(title="Range on the published cycle: Microfleet and FASTSim 3.1 vs published")
    for col in (
        "car",
        "cycle",
        "published km",
        "microfleet km",
        "err %",
        "fastsim km",
        "err %",
        "Wh/km ours/fs",
    ):
        table.add_column(col)
    errors: list[float] = []
    doc_rows: list[str] = []
    for c in cases:
        pub = c.spec.range_km.value if c.spec.range_km else float("nan")
        ours_err = 100.0 * (ours[c.spec.model_id]["range_km"] / pub - 1.0)
        fs_err = 100.0 * (peer[c.spec.model_id]["range_km"] / pub - 1.0)
        errors.append(ours_err)
        for system, value in (("microfleet", ours_err), ("fastsim", fs_err)):
            rows.append(
                {
                    "metric": f"range error % {c.spec.model_id}",
                    "system": system,
                    "value": round(value, 2) if np.isfinite(value) else None,
                    "unit": "%",
                }
            )
        for system, res in (("microfleet", ours), ("fastsim", peer)):
            rows.append({"metric": f"consumption Wh/km {c.spec.model_id}", "system": system,
                         "value": _finite(res[c.spec.model_id]["wh_per_km"]), "unit": "Wh/km"})  # fmt: skip
        o, f = ours[c.spec.model_id], peer[c.spec.model_id]
        wh = f"{o['wh_per_km']:.0f}/{f['wh_per_km']:.0f}"
        table.add_row(c.spec.model_id, c.cycle_name, f"{pub:.0f}", f"{o['range_km']:.0f}", f"{ours_err:+.1f}",
                      f"{f['range_km']:.0f}", f"{fs_err:+.1f}", wh)  # fmt: skip
        doc_rows.append(
            f"| {c.spec.model_id} | {c.cycle_note} | {o['test_mass_kg']:.0f} | "
            f"{c.resolved.usable_kwh.value:.1f}{'*' if c.resolved.usable_kwh.is_prior else ''} | "
            f"{pub:.0f} | {o['range_km']:.0f} | {ours_err:+.1f} | "
            f"{f['range_km']:.0f} | {fs_err:+.1f} | {o['wh_per_km']:.0f} | {f['wh_per_km']:.0f} | "
            f"{o['motor_loss_wh_per_km']:.0f} | {o['regen_wh_per_km']:.0f} | {o['aux_wh_per_km']:.0f} | "
            f"{1000 * o['run_s']:.0f} | {1000 * f['run_s']:.0f} |"
        )
    max_abs = float(np.max(np.abs(errors)))
    within = int(np.sum(np.abs(errors) <= 10.0))
    fs_errors = [
        100.0 * (peer[c.spec.model_id]["range_km"] / c.spec.range_km.value - 1.0)
        for c in cases
        if c.spec.range_km and np.isfinite(peer[c.spec.model_id]["range_km"])
    ]

    def row(metric: str, system: str, value: float, unit: str) -> dict[str, object]:
        return {"metric": metric, "system": system, "value": value, "unit": unit}

    cold_metric = "cold range retained % wuling-hongguang-mini-ev-gen1-9kwh -10C"
    rows += [
        row("max abs range error %", "microfleet", round(max_abs, 2), "%"),
        row("max abs range error %", "fastsim", round(float(np.max(np.abs(fs_errors))), 2), "%"),
        row("mean abs range error %", "microfleet", round(float(np.mean(np.abs(errors))), 2), "%"),
        row("mean abs range error %", "fastsim", round(float(np.mean(np.abs(fs_errors))), 2), "%"),
        row("cars within ±10 %", "microfleet", within, f"of {len(cases)}"),
        row(cold_metric, "microfleet", round(cold["retained_pct"], 1), "%"),
        row(cold_metric, "published (issue 4)", COLD_REFERENCE_RETAINED_PCT, "%"),
        row("ECM voltage RMSE vs PyBaMM SPMe Prada2013", "microfleet",
            round(ecm["voltage_rmse_mv"], 1), "mV"),
        row("ECM voltage max abs error vs PyBaMM SPMe Prada2013", "microfleet",
            round(ecm["voltage_max_abs_error_mv"], 1), "mV"),
    ]  # fmt: skip
    Console().print(table)
    Console().print(
        f"max abs range error {max_abs:.1f} % ({within}/{len(cases)} within ±10 %); cold: {cold}; ECM: {ecm}"
    )
    command = "bench/physics_validation.py" + (" --quick" if args.quick else "")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": "physics_validation", "command": f".venv/bin/python {command}", "rows": rows}
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    write_doc(doc_rows, skipped, max_abs, within, len(cases), cold, ecm, quick=args.quick)


def write_doc(doc_rows, skipped, max_abs, within, n_cases, cold, ecm, *, quick: bool) -> None:
    template = DOC_TEMPLATE
    skipped_md = "\n".join(f"- `{mid}`: {why}" for mid, why in skipped) or "- none"
    fs_failed = "\n".join(f"- `{mid}`: {why}" for mid, why in FASTSIM_FAILURES.items()) or "- none"
    DOC.write_text(
        template.format(
            header=DOC_HEADER,
            table="\n".join(doc_rows),
            skipped=skipped_md,
            fastsim_failed=fs_failed,
            max_abs=f"{max_abs:.1f}",
            within=within,
            n_cases=n_cases,
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
    "car", "cycle", "test mass kg", "usable kWh", "published km", "Microfleet km", "err %", "FASTSim km",
    "err %", "Microfleet Wh/km", "FASTSim Wh/km", "motor loss Wh/km", "regen Wh/km", "aux Wh/km",
    "Microfleet ms", "FASTSim ms",
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
- **Test masses**: NEDC and CLTC use curb + 100 kg (reference mass). WLTP uses curb + 75 + 25 + 15 % of
  a 300 kg payload.
- **Speed limit**: each car follows the trace capped at its top speed.
- **No calibration**: no parameter was fitted to any published range, so no leave-one-out was needed.
  Every number below is an out-of-sample prediction from catalogue figures and priors.

## Range on the published cycle

Range is the distance driven on the repeated cycle until the ECM reaches 0 % SoC or the weakest cell
hits cut-off (23 °C, HVAC off). FASTSim 3.1 runs the same car on the same capped trace. It uses its
bundled 2022 Renault Zoe with mass, usable pack, motor power, Cd, frontal area, RRC and auxiliary load
overridden to ours, and `trace_miss_opts="Allow"`. Its range is usable energy / its Wh/km. `*` marks a
usable energy taken from the 0.93 prior. The loss columns are Microfleet's: motor + inverter losses,
energy regenerated at the shaft, and auxiliaries. The run-time columns time different work.
Microfleet's is the whole drive to empty (ECM second by second over every pass, vectorised over the
cars sharing the cycle, divided among them). FASTSim's is a single pass of the cycle. Throughput is
compared on equal work in `bench/physics_speed.py`.

{header}
{table}

**Result: max abs range error {max_abs} %; {within} of {n_cases} cars within ±10 %. The target (every
car within ±10 % without per-car tuning) is not met.**

Cars with a published range that could not be modelled (named field missing on the car and its siblings):

{skipped}

Cars FASTSim 3.1 refused to simulate (its error; shown as `nan` above):

{fastsim_failed}

### Where the models differ, and why the misses happen

- **Microfleet and FASTSim agree closely** (a few Wh/km) on the same inputs. The drivetrain maps
  differ: FASTSim uses an efficiency curve in output-power fraction (Zoe: 0.84–0.95) with a constant
  92 % transmission; Microfleet uses losses over torque and speed with a 97 % gear. Regeneration
  differs too: FASTSim's regen is limited by its motor and battery curves, while Microfleet fades regen
  between 15 and 5 km/h and caps it at 30 % of motor power. Auxiliaries are equal by construction. Where
  both miss a published figure by the same amount, the cause is in the shared inputs or in the test
  procedure, not in the model structure.
- **Microfleet's range sits 2–5 % below FASTSim's** on the same Wh/km-class inputs. Microfleet
  discharges the Thevenin pack (internal I²R and RC losses, stopping when the weakest cell reaches
  cut-off). FASTSim's bundled pack uses a constant 98.5 % efficiency and runs to its SoC floor.
- **NEDC, Mini EV 9.2/13.8 kWh: both models fall 13–20 % short** (the Twizy 80, capped at 80 km/h,
  is within 8 %). Chinese NEDC ranges
  came from dynamometer road-load settings that were not published. The NEDC's tolerances and
  coast-down flexibilities are documented to make type-approval energy well below real driving (ICCT,
  "From laboratory to road" series). The usable-energy prior (0.93) may also be low for these packs: with
  the full 9.2 kWh usable, the Mini EV error shrinks by 7 points.
- **Citroën Ami and Opel Rocks-e: both models predict far more range than published.** The published
  75 km is WMTC, and no WMTC trace is stored; WLTC class 1 capped at 45 km/h stands in. A 48 V, 6 kW
  drivetrain likely has lower efficiency than the per-unit map assumes (high currents). The boxy body
  probably has a Cd above the 0.40 prior.
- **WLTC class 3b, Spring 2025 (24.3 kWh), Twingo Electric, Fiat 500e 42 kWh: both models are
  10–14 % short.** The same models land within 3 % on the 2021–2024 Springs, so the likely cause is
  the shared Cd/RRC priors: the type-approval road-load coefficients of these cars are not public. For
  the 2025 Spring, the usable energy also comes from the 0.93 prior, and its motor power is borrowed
  from the 2024 sibling (48 kW for 52/74 kW cars).
- **CLTC-P**: the stored trace matches the standard's distance but runs 34 s longer (see
  `src/microfleet/physics/cycles/README.md`). The extra idling adds only auxiliary energy, about 0.1 Wh/km.

## Cold weather

The Mini EV (9.2 kWh, LFP) on CLTC-P at −10 °C, with the cabin heated to 20 °C by a PTC heater (COP 1,
cap 1.5 kW), runs the ECM with Arrhenius resistance and a pack starting at ambient temperature. Its
range is {cold_cold} km against {cold_warm} km at 23 °C with HVAC off: **{cold_pct} % retained**, at
{cold_wh} Wh/km. Issue 4 states that car-media tests found the Mini EV keeps about {cold_ref} % of its
CLTC range at about −10 °C. No stored copy of those tests was found in this session, so that figure is
cited from the issue, not from a source read here. The model omits cabin warm-up transients and the
loss of usable LFP capacity in the cold beyond what the ECM's resistance and cut-off produce. Both would
lower the modelled figure further.

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
