"""``microfleet driver-scores FLEET``: a fleet's drivers, their Tesla-formula scores, events and energy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from microfleet.cli.common import DatabaseOption, console, services_for
from microfleet.domain.access import Role, UserPrincipal

if TYPE_CHECKING:
    from rich.table import Table

    from microfleet.services.driving import FleetDriverScores

# The terminal is the installation's administrator (as for every other CLI command): it sees every fleet.
_ADMINISTRATOR = UserPrincipal(user_id=0, name="cli", role=Role.ADMIN, fleet_id=None)
FleetArg = Annotated[str, typer.Argument(help="The fleet's id.")]
DaysOption = Annotated[int, typer.Option(min=1, max=90, help="The period: this many days up to now.")]


def driver_scores(fleet_id: FleetArg, days: DaysOption = 30, database_url: DatabaseOption = None) -> None:
    """Show a fleet's drivers: safety score, harsh events per 100 km, speeding, energy factor, coaching."""
    services = services_for(database_url)
    console.print(driver_scores_table(services.driving.fleet_scores_for(_ADMINISTRATOR, fleet_id, days)))


def _f(x: float | None, fmt: str) -> str:
    return "" if x is None else format(x, fmt)


def driver_scores_table(f: FleetDriverScores) -> Table:
    """The fleet's drivers as one Rich table (learning drivers say how many drives they still need)."""
    from rich.table import Table

    title = f"Driver scores of {f.fleet_id} ({f.unattributed_drives} drives outside any booking)"
    table = Table(
        "driver",
        "score",
        "HB %",
        "AT %",
        "harsh acc/brk/turn per 100 km",
        "speeding",
        "energy factor",
        "excess kWh",
        "drives",
        "km",
        "note",
        title=title,
    )
    for s in f.drivers:
        rates = "/".join(f"{v:.1f}" for v in s.events_per_100km.values())
        note = s.message or "; ".join(t.advice for t in s.coaching)
        table.add_row(
            s.driver,
            _f(s.safety_score, ".1f"),
            f"{s.hard_braking_pct:.1f}",
            f"{s.aggressive_turning_pct:.1f}",
            rates,
            _f(None if s.speeding_share is None else 100 * s.speeding_share, ".0f")
            + (" %" if s.speeding_share is not None else ""),
            _f(s.energy_factor, ".2f"),
            f"{s.excess_kwh:.1f}",
            str(s.drives),
            f"{s.distance_km:.0f}",
            note,
        )
    return table
