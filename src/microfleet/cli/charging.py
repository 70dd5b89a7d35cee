"""``microfleet plan FLEET`` and ``microfleet charging``: a fleet's charging plan, sites and chargers."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

import typer

from microfleet.cli.common import DatabaseOption, console, services_for

if TYPE_CHECKING:
    from rich.table import Table

    from microfleet.domain.charge_points import StoredPlan

charging_app = typer.Typer(
    help="Charging sites and OCPP chargers of a fleet (docs/charging.md).", no_args_is_help=True
)


def _installation_admin() -> Any:
    """The CLI acts as the installation's administrator (it holds the database URL)."""
    from microfleet.domain.access import Role, UserPrincipal

    return UserPrincipal(0, "cli", Role.ADMIN, None)


def _clock(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, tz=dt.UTC).strftime("%H:%M")


def _windows(power_kw: list[float], start_ms: int, slot_s: int) -> str:
    """The car's charging windows as 'HH:MM–HH:MM' (UTC), from its slots with power."""
    spans: list[tuple[int, int]] = []
    for i, kw in enumerate(power_kw):
        if kw <= 0:
            continue
        if spans and spans[-1][1] == i:
            spans[-1] = (spans[-1][0], i + 1)
        else:
            spans.append((i, i + 1))
    return (
        ", ".join(
            f"{_clock(start_ms + a * slot_s * 1000)}–{_clock(start_ms + b * slot_s * 1000)}" for a, b in spans
        )
        or "—"
    )


def plan_table(plan: StoredPlan) -> Table:
    """One row per car: where it charges, when, how much, its next booking's SoC and the reason."""
    from rich.table import Table

    body = plan.plan
    start_ms, slot_s = body["start_ms"], body["slot_s"]
    chargers = {
        t["vehicle_id"]: f"{t['charge_point_id']}/{t['connector_id']}" for t in body.get("targets", [])
    }
    first_booking: dict[str, dict[str, Any]] = {}
    for b in sorted(body["bookings"], key=lambda b: b["start_ms"]):
        first_booking.setdefault(b["vehicle_id"], b)
    table = Table(
        title=f"Charging plan {plan.plan_id} of {plan.fleet_id} ({plan.trigger}, {plan.status}) from "
        f"{dt.datetime.fromtimestamp(start_ms / 1000, tz=dt.UTC):%Y-%m-%d %H:%M} UTC",
        caption=f"cost {plan.cost:.2f} {body['currency']} · peak {plan.peak_kw:.1f} kW · energy "
        f"{body['energy_kwh']:.1f} kWh · losses {plan.losses_kwh:.2f} kWh · carbon "
        f"{(plan.carbon_kg or 0.0):.1f} kg · gap {(plan.gap or 0.0):.2%}",
    )
    for column in (
        "car",
        "charger",
        "charges (UTC)",
        "kWh",
        "peak kW",
        "next booking",
        "SoC then",
        "short kWh",
    ):
        table.add_column(
            column, justify="right" if column in ("kWh", "peak kW", "SoC then", "short kWh") else "left"
        )
    table.add_column("why", overflow="fold")
    hours = slot_s / 3600
    for car in body["cars"]:
        vid, kw = car["vehicle_id"], car["power_kw"]
        booking = first_booking.get(vid)
        table.add_row(
            vid,
            chargers.get(vid, "—"),
            _windows(kw, start_ms, slot_s),
            f"{sum(kw) * hours:.1f}",
            f"{max(kw, default=0.0):.1f}",
            _clock(booking["start_ms"]) if booking else "—",
            f"{booking['expected_soc_pct']:.0f} %" if booking else "—",
            f"{booking['shortfall_kwh']:.1f}" if booking and booking["shortfall_kwh"] > 0 else "",
            car["explanation"],
        )
    return table


def plan(
    fleet_id: Annotated[str, typer.Argument(help="The fleet's id.")],
    now: Annotated[
        bool, typer.Option("--now", help="Plan again from the stores now (same inputs: same plan).")
    ] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Show a fleet's charging plan: when each car charges, at what power, and why (docs/charging.md)."""
    charging = services_for(database_url).charging
    current = charging.latest(fleet_id)
    if now or current is None:
        current = charging.replan(fleet_id, "cli")
    console.print(plan_table(current))


@charging_app.command("add-site")
def add_site(
    fleet_id: str,
    site_id: str,
    limit_kw: Annotated[float, typer.Option("--limit-kw", help="The grid connection's limit, kW.")],
    name: Annotated[str, typer.Option(help="A name people know the depot by.")] = "",
    database_url: DatabaseOption = None,
) -> None:
    """Register a depot of a fleet with its grid connection's limit."""
    points = services_for(database_url).charge_points
    site = points.add_site_for(_installation_admin(), fleet_id, site_id, name or site_id, limit_kw)
    console.print(f"site {site.site_id} of {site.fleet_id}: {site.power_limit_kw:g} kW")


@charging_app.command("add-charge-point")
def add_charge_point(
    site_id: str,
    charge_point_id: Annotated[str, typer.Argument(help="The charger's OCPP identity.")],
    max_kw: Annotated[float, typer.Option("--max-kw", help="Per connector, kW.")],
    connectors: Annotated[int, typer.Option(help="How many connectors.")] = 1,
    phases: Annotated[int, typer.Option(help="1 or 3.")] = 3,
    min_current_a: Annotated[float, typer.Option(help="IEC 61851-1: 6 A.")] = 6.0,
    voltage_v: Annotated[float, typer.Option(help="Phase voltage, V.")] = 230.0,
    dumb: Annotated[bool, typer.Option("--dumb", help="No smart charging: the car is commanded.")] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Register an OCPP 1.6J charger; prints its Basic-auth password for /ocpp/ID, shown only now."""
    points = services_for(database_url).charge_points
    point, password = points.add_charge_point_for(
        _installation_admin(),
        site_id,
        charge_point_id,
        connectors=connectors,
        max_kw=max_kw,
        min_current_a=min_current_a,
        phases=phases,
        voltage_v=voltage_v,
        smart=not dumb,
    )
    console.print(f"charge point {point.charge_point_id} at {point.site_id}; OCPP password (shown once):")
    console.print(password, markup=False, highlight=False)
