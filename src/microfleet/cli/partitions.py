"""``microfleet db partitions``: PostgreSQL's monthly telemetry partitions: list, create ahead, drop."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from microfleet.cli.common import DatabaseOption, console, services_for

if TYPE_CHECKING:
    from microfleet.store.partitions import TelemetryPartitions

partitions_app = typer.Typer(
    help="PostgreSQL's monthly telemetry partitions: list them (no subcommand), create ahead, drop old "
    "months (retention). SQLite keeps telemetry in one table.",
    invoke_without_command=True,
)


def _partitions(database_url: str | None) -> TelemetryPartitions:
    from microfleet.store.partitions import TelemetryPartitions

    return TelemetryPartitions(services_for(database_url).engine)


@partitions_app.callback()
def partitions_list(ctx: typer.Context, database_url: DatabaseOption = None) -> None:
    """List telemetry's partitions: month, span, estimated rows, size."""
    if ctx.invoked_subcommand is not None:
        return
    from microfleet.cli.tables import partitions_table

    console.print(partitions_table(_partitions(database_url).partitions()))


@partitions_app.command("ensure")
def partitions_ensure(
    months: Annotated[
        int, typer.Option(min=0, max=120, help="Months after the current one to have created.")
    ] = 3,
    from_default: Annotated[
        bool,
        typer.Option(
            "--from-default",
            help="Also give each month whose records wait in the DEFAULT partition (imports of old "
            "data, far-past records) a partition of its own, moving them there.",
        ),
    ] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Create the current month's partition and the next N months' where missing."""
    partitions = _partitions(database_url)
    created = partitions.ensure_ahead(months)
    last = partitions.current_month().plus(months)
    if created:
        console.print(f"created {', '.join(map(str, created))}; months through {last} exist")
    else:
        console.print(f"nothing to create: months through {last} exist")
    if from_default:
        moved = partitions.split_default()
        console.print(
            f"moved out of DEFAULT into their own months: {', '.join(map(str, moved))}"
            if moved
            else "DEFAULT holds no records"
        )


@partitions_app.command("drop")
def partitions_drop(
    before: Annotated[str, typer.Option(help="Drop every month before this one, YYYY-MM.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Drop raw telemetry of whole months before --before (retention); derived drives and charges stay."""
    from microfleet.store.partitions import Month

    month = Month.parse(before)
    partitions = _partitions(database_url)
    going = partitions.to_drop_before(month)
    months = ", ".join(str(p.month or p.name) for p in going) or "no whole month"
    rows = sum(p.rows_estimate for p in going)
    console.print(
        f"dropping before {month}: {months} (about {rows:,} records), and the records before {month} "
        "in the DEFAULT partition; derived drives, charges and states are kept"
    )
    if not yes and not typer.confirm("Drop this raw telemetry for good?", default=False):
        console.print("nothing dropped")
        raise typer.Exit(1)
    dropped = partitions.drop_before(month)
    console.print(
        f"dropped {len(dropped.months)} month(s) "
        f"({', '.join(map(str, dropped.months)) or 'none'}): {dropped.rows:,} records"
    )
