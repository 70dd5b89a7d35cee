"""Physics speed: simulated vehicle-seconds per wall-second, 1,000 cars over a day at 1 s, FASTSim 3.1 beside.

Run: .venv/bin/python bench/physics_speed.py [--quick] [--seed N]
Microfleet runs the full chain per vehicle and second: road load, drivetrain, auxiliaries/HVAC
(battery_power_kw) and the Thevenin battery with thermal model (Battery.step), vectorised over the
fleet and chunked over the day. FASTSim runs the same day trace car by car (it simulates one vehicle
per SimDrive); its rate is measured on a sample of cars and reported per vehicle-second, twice: with its
per-second history recorded (its default, ``save_interval = 1``) and with history off
(``save_interval = None``, FASTSim's documented fast mode: only the last state is kept), as Microfleet
keeps none.
Writes bench/results/physics_speed.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from microfleet.domain.catalogue import load_catalogue
from microfleet.errors import PhysicsInputError
from microfleet.physics import Battery, VehicleParams, battery_power_kw
from microfleet.physics.cycles import load_cycle

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "physics_speed.json"
DAY_S = 86_400
CHUNK_S = 3_600


def day_traces(n_cars: int, seed: int) -> np.ndarray:
    """A day per car (m/s, 1 Hz): parked, with 4 trips drawn from the standard cycles at random hours."""
    rng = np.random.default_rng(seed)
    pieces = [load_cycle(n).speed_mps for n in ("wltc_class1", "wltc_class2", "cltc_p", "nedc")]
    speed = np.zeros((n_cars, DAY_S))
    for i in range(n_cars):
        for _ in range(4):
            trip = pieces[rng.integers(len(pieces))]
            start = int(rng.integers(0, DAY_S - trip.shape[0]))
            speed[i, start : start + trip.shape[0]] = trip
    return speed


def fleet_params(n_cars: int, seed: int) -> VehicleParams:
    """A fleet drawn from every catalogue car the model can resolve."""
    cat = load_catalogue()
    usable = []
    for spec in cat:
        try:
            VehicleParams.from_specs([spec], siblings=cat.all())
            usable.append(spec)
        except PhysicsInputError:  # cars missing a required field are left out of the fleet
            continue
    base = VehicleParams.from_specs(usable, siblings=cat.all())
    rng = np.random.default_rng(seed)
    return base.take(rng.integers(0, base.n_vehicles, size=n_cars))


def run_microfleet(params: VehicleParams, speed: np.ndarray) -> float:
    """Wall seconds for the whole fleet-day: power chain on 1-hour chunks, then the ECM second by second."""
    ambient = np.linspace(2.0, 12.0, params.n_vehicles)
    battery = Battery.from_params(params, soc_pct=90.0, temp_c=ambient)
    t0 = time.perf_counter()
    for start in range(0, speed.shape[1], CHUNK_S):
        chunk = speed[:, start : start + CHUNK_S]
        power = battery_power_kw(params, chunk, 1.0, ambient_temp_c=ambient, hvac_on=True)
        for k in range(power.shape[1]):
            battery.step(power[:, k], 1.0)
    return time.perf_counter() - t0


def run_fastsim(params: VehicleParams, speed: np.ndarray, n_sample: int) -> tuple[float, float, int]:
    """Wall seconds for ``n_sample`` car-days in FASTSim 3.1 with and without history, and the count run.

    The vehicle is the bundled Zoe with mass, pack and motor overridden; each car-day is run with its
    history recorded every second and again with history off, on the same vehicle and trace.
    """
    import fastsim as fsim

    base = fsim.Vehicle.from_resource("2022_Renault_Zoe_ZE50_R135.yaml").to_dict()
    sim_params = fsim.SimParams.default().to_dict()
    sim_params["trace_miss_opts"] = "Allow"
    sp = fsim.SimParams.from_dict(sim_params)
    elapsed = 0.0
    elapsed_no_history = 0.0
    done = 0
    for i in range(params.n_vehicles):
        if done == n_sample:
            break
        d = copy.deepcopy(base)
        d["pt_type"]["BEV"]["res"]["min_soc"], d["pt_type"]["BEV"]["res"]["max_soc"] = 0.0, 1.0
        d["pt_type"]["BEV"]["res"]["energy_capacity_joules"] = float(params.usable_kwh[i] * 3.6e6)
        d["pt_type"]["BEV"]["em"]["pwr_out_max_watts"] = float(params.motor_peak_kw[i] * 1000)
        d["chassis"]["glider_mass_kilograms"] = None
        d["chassis"]["cargo_mass_kilograms"] = None
        d["mass_kilograms"] = float(params.mass_kg[i])
        v = np.minimum(speed[i], params.top_speed_mps[i])
        cyc = fsim.Cycle.from_dict(
            {
                "time_seconds": [float(t) for t in range(DAY_S)],
                "speed_meters_per_second": v.tolist(),
                "init_elev_meters": 0.0,
            }
        )
        try:
            with_history = _time_fastsim(fsim, d, cyc, sp, save_interval=1)
            without_history = _time_fastsim(fsim, d, cyc, sp, save_interval=None)
        except RuntimeError as exc:  # FASTSim refuses some micro cars (regen above a 4 kW motor's limit)
            Console().print(f"fastsim refused {params.model_ids[i]}: {_fastsim_reason(exc)}")
            continue
        elapsed += with_history
        elapsed_no_history += without_history
        done += 1
    return elapsed, elapsed_no_history, done


def _time_fastsim(fsim: Any, d: dict[str, Any], cyc: Any, sp: Any, *, save_interval: int | None) -> float:
    """Wall seconds of one FASTSim SimDrive run (vehicle built outside the timed part)."""
    veh = fsim.Vehicle.from_dict(d)
    veh.set_save_interval(save_interval)
    sd = fsim.SimDrive(veh, cyc, sp)
    t0 = time.perf_counter()
    sd.run()
    return time.perf_counter() - t0


def _fastsim_reason(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if "exceeds" in ln or "failed" in ln]
    return (lines[-1] if lines else str(exc).splitlines()[0])[:200]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100 cars, 2 FASTSim car-days")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    n_cars = 100 if args.quick else 1000
    n_fastsim = 2 if args.quick else 5
    params = fleet_params(n_cars, args.seed)
    speed = day_traces(n_cars, args.seed)
    ours_s = run_microfleet(params, speed)
    fs_s, fs_quiet_s, fs_n = run_fastsim(params, speed, n_fastsim)
    ours_rate = n_cars * DAY_S / ours_s
    fs_rate = fs_n * DAY_S / fs_s
    fs_quiet_rate = fs_n * DAY_S / fs_quiet_s
    table = Table(title=f"{n_cars} cars x 1 day at 1 s (vehicle-seconds per wall-second)")
    for col in ("system", "work timed", "wall s", "vehicle-s per s", "per car-day s"):
        table.add_column(col)
    table.add_row(
        "microfleet", f"{n_cars} car-days", f"{ours_s:.1f}", f"{ours_rate:,.0f}", f"{ours_s / n_cars:.4f}"
    )
    table.add_row("fastsim 3.1", f"{fs_n} car-days", f"{fs_s:.1f}", f"{fs_rate:,.0f}", f"{fs_s / fs_n:.3f}")
    table.add_row(
        "fastsim 3.1 without history",
        f"{fs_n} car-days",
        f"{fs_quiet_s:.1f}",
        f"{fs_quiet_rate:,.0f}",
        f"{fs_quiet_s / fs_n:.3f}",
    )
    Console().print(table)
    rows = [
        {
            "metric": "vehicle-seconds per second",
            "system": "microfleet",
            "value": round(ours_rate),
            "unit": "vehicle-s/s",
        },
        {
            "metric": "vehicle-seconds per second",
            "system": "fastsim",
            "value": round(fs_rate),
            "unit": "vehicle-s/s",
        },
        {
            "metric": "vehicle-seconds per second",
            "system": "fastsim without history",
            "value": round(fs_quiet_rate),
            "unit": "vehicle-s/s",
        },
        {
            "metric": "wall seconds per car-day",
            "system": "microfleet",
            "value": round(ours_s / n_cars, 5),
            "unit": "s",
        },
        {
            "metric": "wall seconds per car-day",
            "system": "fastsim",
            "value": round(fs_s / fs_n, 4),
            "unit": "s",
        },
        {"metric": "cars simulated", "system": "microfleet", "value": n_cars, "unit": "cars"},
        {
            "metric": "wall seconds per car-day",
            "system": "fastsim without history",
            "value": round(fs_quiet_s / fs_n, 4),
            "unit": "s",
        },
        {"metric": "cars simulated", "system": "fastsim", "value": fs_n, "unit": "cars"},
        {"metric": "cars simulated", "system": "fastsim without history", "value": fs_n, "unit": "cars"},
    ]
    command = f".venv/bin/python bench/physics_speed.py --seed {args.seed}"
    command += " --quick" if args.quick else ""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"benchmark": "physics_speed", "command": command, "rows": rows}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
