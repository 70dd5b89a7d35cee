"""Digital-twin speed: simulated vehicle-seconds per wall second offline, and live records/s into a server.

Offline: ``simulate`` of N cars × 1 day (city load, routing, driving, physics, sensors, faults, link faults
and Parquet output of telemetry and truth all included), against the issue's target of 1,000,000.
Live: one ``--live`` process (the HTTP sender, one device token per car, batches per car) publishing a twin
day as fast as it can into a real ``microfleet serve`` process on SQLite; the server's own ceiling for the
same path is in bench/results/ingest.json.

    .venv/bin/python bench/twin_speed.py [--seed 1] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from microfleet.bootstrap import build_services
from microfleet.settings import Settings
from microfleet.sim.engine import Twin
from microfleet.sim.launch import demo_registrations, run_live_twin
from microfleet.sim.run import simulate_to_dir
from microfleet.sim.scenario import LinkFaults, Scenario

RESULTS = Path(__file__).parent / "results" / "twin_speed.json"
TARGET = 1_000_000.0  # issue 5: 1,000 cars × 1 day on this 2-core machine


def offline_rate(vehicles: int, seed: int) -> tuple[float, int, float]:
    scenario = Scenario(vehicles=vehicles, days=1, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        summary = simulate_to_dir(Twin(scenario), Path(tmp))
        wall = time.perf_counter() - started
    return vehicles * 86_400 / wall, summary.records, wall


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def live_rate(vehicles: int, seed: int) -> tuple[float, int, float, dict[str, object]]:
    scenario = Scenario(
        vehicles=vehicles, days=1, seed=seed, vehicle_id_prefix="bench", link=LinkFaults(duplicate_p=0.01)
    )
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=f"sqlite:///{tmp}/twin.db")
        services = build_services(settings)
        tokens = {
            r.vehicle_id: services.admin.add_vehicle(r.vehicle_id) for r in demo_registrations(scenario)
        }
        services.close()
        port = free_port()
        env = {**os.environ, "MICROFLEET_DATABASE_URL": settings.database_url}
        server = subprocess.Popen(
            [sys.executable, "-m", "microfleet", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            started = time.perf_counter()
            result = run_live_twin(base, tokens, scenario, speedup=1e9)
            wall = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(timeout=30)
    verdicts = {
        "accepted": result.accepted,
        "duplicate": result.duplicate,
        "rejected": result.rejected,
        "failed": result.failed,
        "reasons": dict(result.reasons.most_common(5)),
    }
    return result.sent / wall, result.sent, wall, verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="100 cars offline, 5 cars live")
    args = parser.parse_args()
    n_offline, n_live = (100, 5) if args.quick else (1000, 50)
    rate, records, wall = offline_rate(n_offline, args.seed)
    live, sent, live_wall, verdicts = live_rate(n_live, args.seed)
    rows = [
        {
            "metric": "vehicle-seconds per second",
            "system": "microfleet",
            "value": round(rate),
            "unit": "vehicle-s/s",
        },
        {"metric": "vehicle-seconds per second", "system": "target", "value": TARGET, "unit": "vehicle-s/s"},
        {
            "metric": "offline records/s",
            "system": "microfleet",
            "value": round(records / wall),
            "unit": "records/s",
        },
        {"metric": "live records/s", "system": "microfleet", "value": round(live), "unit": "records/s"},
    ]
    command = f"python bench/twin_speed.py --seed {args.seed}" + (" --quick" if args.quick else "")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "twin_speed",
                "command": command,
                "rows": rows,
                "details": {
                    "offline": {
                        "vehicles": n_offline,
                        "days": 1,
                        "records": records,
                        "wall_s": round(wall, 2),
                    },
                    "live": {
                        "vehicles": n_live,
                        "days": 1,
                        "sent": sent,
                        "wall_s": round(live_wall, 2),
                        **verdicts,
                    },
                    "cpu_count": os.cpu_count(),
                },
            },
            indent=2,
        )
        + "\n"
    )
    table = Table(title="Digital twin speed")
    for column in ("metric", "system", "value", "unit"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["metric"], row["system"], f"{row['value']:,.0f}", row["unit"])
    Console().print(table)
    Console().print(f"offline: {n_offline} cars × 1 day, {records:,} records in {wall:.1f} s; "
                    f"live: {n_live} cars, {sent:,} records in {live_wall:.1f} s, {verdicts}")  # fmt: skip


if __name__ == "__main__":
    main()
