"""Alert evaluation cost: one pass over N cars under six global rules, on SQLite (issue 13 item 6).

Every car is registered, sends one record that keeps every rule busy (unlocked and parked, plugged in at no
power: the two rules that read recent records and the charge limit both do), one car in ten below 20 % SoC.
Three passes are timed: the first (every car: a new evaluator starts with all of them), one after a tenth
of the cars sent a new record, and one with nothing new. No peer: TeslaMate and Traccar evaluate their
notifications on each incoming position and publish no figure for it.

    .venv/bin/python bench/alert_evaluation.py [--seed 1] [--quick] [--cars 1000]

prints the three times as a table and writes ``bench/results/alert_evaluation.json`` (rows in the benchmark
format of docs/benchmarks.md). The fleet is fully determined by --cars: --seed is accepted like every bench's
and recorded, but nothing here is drawn at random.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import msgspec

from microfleet.bootstrap import build_services
from microfleet.domain.alerts import AlertKind, Severity
from microfleet.domain.telemetry import TelemetryRecord
from microfleet.settings import Settings

RESULTS = Path(__file__).parent / "results" / "alert_evaluation.json"
NOW_MS = 1_764_000_000_000  # 2025-11-24T16:00:00Z: a fixed clock, so every run sees the same times
RULES = (
    AlertKind.LEFT_UNLOCKED,
    AlertKind.CHARGING_STOPPED,
    AlertKind.SOC_LOW,
    AlertKind.OFFLINE,
    AlertKind.AUX_BATTERY_LOW,
    AlertKind.DTC,
)


def run(cars: int) -> dict[str, float | int]:
    """Build the store, send the records, time the three passes (seconds)."""
    db = Path(tempfile.mkdtemp(prefix="mf-alert-bench-")) / "bench.db"
    settings = Settings(database_url=f"sqlite:///{db}", history_derive_interval_s=0, alerts_interval_s=0)
    services = build_services(settings, clock=lambda: NOW_MS)
    try:
        for i in range(cars):
            services.admin.add_vehicle(f"car-{i}")
        for kind in RULES:
            services.alerts.add_rule(kind, Severity.WARNING, {})

        def send(i: int, ts_ms: int, soc_pct: float) -> None:
            record = TelemetryRecord(
                vehicle_id=f"car-{i}", ts_ms=ts_ms, soc_pct=soc_pct, locked=False, speed_kmh=0.0,
                ignition_on=False, charger_connected=True, charger_power_kw=0.0, aux_battery_v=12.5,
                dtc_codes=[],
            )  # fmt: skip
            body = msgspec.json.encode([record])
            services.ingest.ingest(
                body, "application/json", credential_vehicle_id=f"car-{i}", source="bench", now_ms=ts_ms
            )

        for i in range(cars):
            send(i, NOW_MS - 120_000, 15.0 if i % 10 == 0 else 60.0)
        evaluator = services.alert_worker.evaluator
        started = time.perf_counter()
        first = evaluator.run_pass()
        first_s = time.perf_counter() - started
        for i in range(cars // 10):
            send(i, NOW_MS - 60_000, 14.0 if i % 10 == 0 else 61.0)
        started = time.perf_counter()
        changed = evaluator.run_pass()
        changed_s = time.perf_counter() - started
        started = time.perf_counter()
        idle = evaluator.run_pass()
        idle_s = time.perf_counter() - started
    finally:
        services.close()
    return {
        "cars": cars,
        "first_pass_s": round(first_s, 3),
        "first_pass_raised": first.raised,
        "changed_cars": changed.vehicles,
        "changed_pass_s": round(changed_s, 3),
        "idle_pass_cars": idle.vehicles,
        "idle_pass_s": round(idle_s, 4),
        "load_average_1min": round(os.getloadavg()[0], 1),
    }


def rows(result: dict[str, float | int]) -> list[dict[str, object]]:
    """The figures as benchmark rows (metric, system, value, unit)."""
    cars = result["cars"]

    def row(metric: str, value: float | int, unit: str, system: str = "microfleet") -> dict[str, object]:
        return {"metric": metric, "system": system, "value": value, "unit": unit}

    return [
        row(f"first pass s {cars} cars", result["first_pass_s"], "s"),
        row(f"alerts raised first pass {cars} cars", result["first_pass_raised"], "alerts"),
        row(f"pass after {result['changed_cars']} cars sent a record s", result["changed_pass_s"], "s"),
        row("pass with nothing new s", result["idle_pass_s"], "s"),
        row("load average 1 min at end", result["load_average_1min"], "load", "machine"),
    ]


def main() -> None:
    """Run and print the figures; write them to bench/results/alert_evaluation.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1, help="recorded; the fleet has nothing random")
    parser.add_argument("--quick", action="store_true", help="100 cars instead of 1000")
    parser.add_argument("--cars", type=int, default=None, help="cars in the store (default 1000)")
    args = parser.parse_args()
    cars = args.cars or (100 if args.quick else 1000)
    table = rows(run(cars))
    print(f"{'metric':45} {'system':12} {'value':>10} unit")
    for r in table:
        print(f"{r['metric']!s:45} {r['system']!s:12} {r['value']!s:>10} {r['unit']}")
    command = f"python bench/alert_evaluation.py --seed {args.seed}" + (" --quick" if args.quick else "")
    RESULTS.parent.mkdir(exist_ok=True)
    body = {"benchmark": "alert_evaluation", "command": command, "rows": table}
    RESULTS.write_text(json.dumps(body, indent=2) + "\n")


if __name__ == "__main__":
    main()
