"""``microfleet import FILE...``: load telemetry files (the twin's Parquet, NDJSON, CSV) into the store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from microfleet.cli.common import DatabaseOption, console, services_for

if TYPE_CHECKING:
    from microfleet.ingest.files import ImportReport


def import_files(
    files: Annotated[
        list[Path],
        typer.Argument(help="Telemetry files: .parquet (the twin's telemetry.parquet), .ndjson, .csv."),
    ],
    file_format: Annotated[
        str | None,
        typer.Option("--format", help="parquet, ndjson or csv (default: by each file's suffix)."),
    ] = None,
    register: Annotated[
        bool,
        typer.Option(help="Register vehicle ids the store does not know, instead of refusing their records."),
    ] = False,
    batch_records: Annotated[int, typer.Option(min=1, max=100_000, help="Records per batch.")] = 5000,
    database_url: DatabaseOption = None,
) -> None:
    """Import protocol-v1 telemetry files into the store, exactly once, as each record's own vehicle.

    A re-import stores nothing twice (its records are duplicates); a record that conflicts with a
    stored one, and a refused record of a registered car, are quarantined as over HTTP. Records of a
    vehicle that is not registered are refused (or, with --register, the vehicle is registered first).
    The cars' history is derived afterwards, as for HTTP: by a running server or 'microfleet derive'.
    """
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    from microfleet.domain.telemetry_codec import DecodeLimits
    from microfleet.ingest.files import (
        FileImporter,
        ImportReport,
        detect_format,
        import_source,
        registered_by,
    )

    formats = [detect_format(path, file_format) for path in files]  # refuse a bad name before any work
    services = services_for(database_url)
    settings = services.settings
    importer = FileImporter(
        services.ingest,
        registered_by(services.accounts.require_vehicle),
        limits=DecodeLimits(settings.ingest_max_batch_records, settings.ingest_max_record_bytes),
        clock=services.clock,
        register=(lambda vehicle_id: services.admin.add_vehicle(vehicle_id)) if register else None,
    )
    report = ImportReport()
    started = time.perf_counter()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[records]:,} records"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,  # a pipe or a log gets the summary only
    ) as progress:
        for path, kind in zip(files, formats, strict=True):
            reader = importer.open(path, kind, batch_records)
            if reader.dropped_columns:
                report.dropped_columns[path.name] = reader.dropped_columns
            task = progress.add_task(f"{path.name} ({kind})", total=reader.total or 1, records=0)
            for chunk in reader.chunks:
                importer.ingest_chunk(chunk, report, source=import_source(path))
                progress.update(task, completed=chunk.done, records=report.records)
            progress.update(task, completed=reader.total or 1)
    _print_summary(report, files, time.perf_counter() - started)


def _print_summary(report: ImportReport, files: list[Path], elapsed_s: float) -> None:
    rate = report.records / elapsed_s if elapsed_s > 0 else 0.0
    console.print(
        f"imported {len(files)} file(s): {report.records:,} records in {elapsed_s:.1f} s "
        f"({rate:,.0f} records/s): [green]{report.accepted:,} accepted[/green], "
        f"{report.duplicate:,} duplicate, [red]{report.rejected:,} rejected[/red] "
        f"({report.quarantined:,} quarantined)"
    )
    if report.rejected:
        console.print("rejected, most frequent reasons first:")
        for reason, count, example in report.top_reasons():
            console.print(f"  {count:>9,}  {reason}  e.g. {example}", markup=False)
    for name, columns in report.dropped_columns.items():
        console.print(
            f"{name}: dropped column(s) that are not protocol-v1 fields: {', '.join(columns)}", markup=False
        )
    if report.unknown_vehicles:
        shown = ", ".join(sorted(report.unknown_vehicles)[:10])
        more = len(report.unknown_vehicles) - 10
        console.print(
            f"{len(report.unknown_vehicles)} vehicle(s) not registered, their records refused: {shown}"
            f"{f' and {more} more' if more > 0 else ''}; register them (microfleet admin add-vehicle) or "
            "import again with --register",
            markup=False,
        )
    if report.registered:
        console.print(
            f"registered {len(report.registered)} vehicle(s): {', '.join(report.registered[:10])}"
            f"{' …' if len(report.registered) > 10 else ''} (a device credential: microfleet admin "
            "rotate-device ID)",
            markup=False,
        )
    if report.vehicles:
        console.print(
            f"{len(report.vehicles)} car(s) have new telemetry: a running server derives their history, "
            "or run 'microfleet derive --interval-s 0'",
            markup=False,
        )
