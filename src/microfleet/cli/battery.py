"""``microfleet battery VEHICLE``: a car's SoC, SoH, range, advice and pack alerts in the terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from microfleet.cli.common import DatabaseOption, VehicleArg, console, services_for

if TYPE_CHECKING:
    from rich.table import Table

    from microfleet.services.battery import BatteryReport

RefitOption = Annotated[bool, typer.Option("--refit", help="Fit the car's models now before showing them.")]
TripOption = Annotated[
    float | None, typer.Option(min=0.1, max=10_000, help="A planned trip (km): can it make it?")
]


def battery(
    vehicle_id: VehicleArg,
    refit: RefitOption = False,
    trip_km: TripOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Show a vehicle's battery: SoC with its uncertainty, SoH with its band, range P10/P50/P90, advice."""
    services = services_for(database_url)
    services.accounts.require_vehicle(vehicle_id)
    if refit:
        services.battery.refit(vehicle_id)
    console.print(battery_table(services.battery.report(vehicle_id, trip_km)))


def _fig(part: dict[str, Any], fmt: str, key: str) -> str:
    value = part.get(key)
    return "" if value is None else format(value, fmt)


def battery_table(r: BatteryReport) -> Table:
    """The report as one Rich table: figure, value, uncertainty or why it is missing."""
    from rich.table import Table

    version = r.model_version or "not fitted yet"
    title = f"Battery of {r.vehicle_id} ({r.chemistry or 'chemistry unknown'}; {version})"
    table = Table("figure", "value", "uncertainty / note", title=title)
    soc = r.soc
    est = soc.get("estimate") or {}
    if est:
        table.add_row(
            "state of charge",
            f"{est['soc_pct']:.1f} %",
            f"±{est['sigma_pct']:.1f} (1σ); BMS {soc.get('bms_soc_pct')} %",
        )
    else:
        table.add_row(
            "state of charge",
            _fig(soc, ".1f", "bms_soc_pct") + (" % (BMS)" if soc.get("bms_soc_pct") is not None else ""),
            str(soc.get("reason", "")),
        )
    soh = r.soh
    if soh.get("available"):
        band = f"90 % band {soh['band_low_pct']:.1f}-{soh['band_high_pct']:.1f} %"
        band += f"; {soh['sessions_used']} sessions ({soh['basis']})"
        table.add_row("state of health", f"{soh['soh_pct']:.1f} % ({soh['capacity_kwh']:.2f} kWh)", band)
        if soh.get("fade_pct_per_year") is not None:
            table.add_row(
                "fade",
                f"{soh['fade_pct_per_year']:.2f} points/yr",
                f"±{soh['fade_sigma_pct_per_year']:.2f} (1σ)",
            )
    else:
        table.add_row("state of health", "", str(soh.get("reason")))
    rng = r.range
    if rng.get("available"):
        table.add_row(
            "range P10 / P50 / P90",
            f"{rng['p10_km']:.0f} / {rng['p50_km']:.0f} / {rng['p90_km']:.0f} km",
            f"at {rng['temp_c']:.0f} °C, {rng['wh_per_km_p50']:.0f} Wh/km",
        )
        if "trip_verdict" in rng:
            table.add_row(
                f"trip of {rng['trip_km']:.0f} km",
                str(rng["trip_verdict"]),
                "yes: P10 covers it; likely: P50; risky: P90",
            )
    else:
        table.add_row("range", "", str(rng.get("reason")))
    for a in r.advice:
        table.add_row("advice", a.title, f"{a.reason} ({a.source})")
    for alert in r.alerts:
        table.add_row("pack alert", str(alert["title"]), str(alert["detail"]))
    if r.data_from_ms is not None:
        table.add_row(
            "data window", f"{r.data_from_ms} - {r.data_to_ms}", "UTC epoch ms of the history fitted on"
        )
    return table
