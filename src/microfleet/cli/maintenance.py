"""``microfleet maintenance VEHICLE`` and ``microfleet service-plan FLEET``: detectors and service."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from microfleet.cli.common import DatabaseOption, VehicleArg, console, services_for

EvaluateOption = Annotated[bool, typer.Option("--evaluate", help="Run the detectors on the car now first.")]
FleetArg = Annotated[str, typer.Argument(help="The fleet's id.")]


def maintenance(
    vehicle_id: VehicleArg, evaluate: EvaluateOption = False, database_url: DatabaseOption = None
) -> None:
    """Show each detector's answer for a vehicle (reason and data), its due service and its records."""
    from rich.table import Table

    services = services_for(database_url)
    if evaluate:
        services.maintenance.evaluate(vehicle_id)
    report = services.maintenance.report(vehicle_id)
    table = Table("detector", "verdict", "severity", "reason", "action", title=f"Maintenance of {vehicle_id}")
    for f in report.findings:
        table.add_row(
            f.detector, f.verdict, f.severity if f.verdict == "suspected" else "", f.reason, f.action
        )
    if not report.findings:
        table.add_row("", "not evaluated", "", "run with --evaluate, or wait for the server's next pass", "")
    console.print(table)
    due = Table("item", "kind", "due in days", "due in km", "reason", title="Service due")
    for d in report.due:
        due.add_row(d.item, d.kind, _num(d.due_in_days), _num(d.due_in_km), d.reason)
    console.print(due)


def service_plan(fleet_id: FleetArg, database_url: DatabaseOption = None) -> None:
    """Show which of a fleet's cars to pull in this week, when, and the booking minutes each visit moves."""
    from rich.table import Table

    services = services_for(database_url)
    plan, _ = services.maintenance.service_plan(fleet_id)
    table = Table("vehicle", "from (UTC)", "to", "items", "booking min moved", "severity",
                  title=f"Service plan of {fleet_id}, next 7 days")  # fmt: skip
    for v in plan.visits:
        start = dt.datetime.fromtimestamp(v.start_ms / 1000, dt.UTC).strftime("%a %Y-%m-%d %H:%M")
        end = dt.datetime.fromtimestamp(v.end_ms / 1000, dt.UTC).strftime("%H:%M")
        table.add_row(
            v.vehicle_id, start, end, "; ".join(v.items), f"{v.disrupted_booking_min:.0f}", v.severity
        )
    console.print(table)
    if plan.unplaced:
        console.print(f"no workshop slot this week for: {', '.join(plan.unplaced)}")


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.0f}"
