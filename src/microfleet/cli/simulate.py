"""``microfleet simulate``: run the digital twin into Parquet files or live into a server."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from microfleet.errors import ConfigurationError
from microfleet.sim.launch import CREDENTIAL_NAMES, MqttBroker, build_scenario, run_live_twin
from microfleet.sim.scenario import Scenario, registrations

if TYPE_CHECKING:  # the twin itself (scipy, pyarrow, the city) loads only when a command runs
    from microfleet.sim.live import LiveProgress
    from microfleet.sim.senders import SendResult

_err = Console(stderr=True)


def simulate(
    vehicles: Annotated[int | None, typer.Option(help="Number of cars (owners' and car sharing).")] = None,
    days: Annotated[int | None, typer.Option(help="Days to simulate.")] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed: the same seed gives identical output.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder for telemetry.parquet and truth/*.parquet.")
    ] = None,
    live: Annotated[
        str | None,
        typer.Option(
            help="Where to publish: a running Microfleet server's base URL (http, osmand), or the broker "
            "as mqtt://HOST:PORT[/TOPIC_PREFIX] (mqtt; prefix 'microfleet' if none)."
        ),
    ] = None,
    speedup: Annotated[float, typer.Option(help="Simulated seconds per wall second with --live.")] = 60.0,
    tokens: Annotated[
        Path | None,
        typer.Option(
            help="JSON file {vehicle_id: credential} for --live, one per twin car: its device token (http), "
            "MQTT password (mqtt) or tracker key (osmand)."
        ),
    ] = None,
    scenario: Annotated[
        Path | None, typer.Option(help="TOML scenario file (city, models, faults, link).")
    ] = None,
    city: Annotated[
        str | None, typer.Option(help="City: shanghai_center, or the path of an .osm extract.")
    ] = None,
    sharing_share: Annotated[
        float | None, typer.Option(help="Share of the cars in car sharing, 0..1.")
    ] = None,
    climate_city: Annotated[
        str | None, typer.Option(help="Climate: Shanghai, Hangzhou, Guangzhou, Amsterdam.")
    ] = None,
    temp_offset_c: Annotated[
        float | None, typer.Option(help="Shift every temperature (°C), e.g. -10.")
    ] = None,
    sensor_model: Annotated[
        str | None,
        typer.Option(help="Sensors: ideal (exact flags, offset only) or realistic (err like real cars')."),
    ] = None,
    protocol: Annotated[
        str | None,
        typer.Option(
            help="How --live cars send: http or mqtt (protocol v1), osmand (phones) or ovms (OVMS modules)."
        ),
    ] = None,
) -> None:
    """Run the digital twin: write telemetry and truth as Parquet (--out) or publish to a server (--live)."""
    try:
        sc = build_scenario(
            vehicles, days, seed, scenario,
            city=city, sharing_share=sharing_share, climate_city=climate_city,
            temp_offset_c=temp_offset_c, sensor_model=sensor_model, protocol=protocol,
        )  # fmt: skip
        if (out is None) == (live is None):
            raise ConfigurationError("give exactly one of --out DIR (files) or --live URL (a running server)")
        if live is not None:
            _simulate_live(sc, live, speedup, tokens)
        else:
            assert out is not None
            _simulate_files(sc, out)
    except ConfigurationError as exc:
        _err.print(f"[red]error:[/red] {escape(exc.message)}")
        raise typer.Exit(2) from exc


def _simulate_files(sc: Scenario, out: Path) -> None:
    from microfleet.sim.engine import Twin
    from microfleet.sim.run import simulate_to_dir

    started = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task(f"simulating {sc.vehicles} cars", total=sc.days)
        summary = simulate_to_dir(Twin(sc), out, lambda done, _: progress.update(task, completed=done))
    wall = time.perf_counter() - started
    rate = sc.vehicles * sc.days * 86400 / wall
    typer.echo(
        f"{summary.records:,} telemetry records and {summary.trips:,} trips of {sc.vehicles} cars × "
        f"{sc.days} day(s) in {wall:.1f} s ({rate:,.0f} vehicle-seconds per second) → "
        f"{out}/telemetry.parquet, {out}/truth/"
    )


def _simulate_live(sc: Scenario, url: str, speedup: float, tokens_file: Path | None) -> None:
    if speedup <= 0:
        raise ConfigurationError(f"--speedup must be positive, got {speedup}")
    what = CREDENTIAL_NAMES[sc.protocol]
    if tokens_file is None:
        ids = ", ".join(r.vehicle_id for r in registrations(sc)[:3])
        raise ConfigurationError(
            f"--live needs --tokens FILE: a JSON object of each twin car's {what} ({ids}, ...); "
            "register them on the server first (`microfleet demo` does this for you)"
        )
    try:
        tokens = json.loads(tokens_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the {what}s from {tokens_file}: {exc}") from exc
    mqtt = _broker(url, sc.protocol) if sc.protocol in ("mqtt", "ovms") else None
    if mqtt is None and not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"--live {url!r}: protocol {sc.protocol} sends to a server's http(s):// URL")
    with _progress() as progress:
        task = progress.add_task(f"publishing {sc.vehicles} cars to {url} over {sc.protocol}", total=1.0)

        def show(p: LiveProgress) -> None:
            progress.update(task, completed=1.0 - (p.end_ms - p.sim_ms) / (p.days * 86_400_000))

        result = run_live_twin(url, tokens, sc, speedup=speedup, on_progress=show, mqtt=mqtt)
    report_live(result)


def _broker(url: str, protocol: str) -> MqttBroker:
    """``mqtt://HOST:PORT[/PREFIX]`` as the broker the twin's cars publish to."""
    parts = urlsplit(url)
    try:
        port = parts.port or 1883
    except ValueError as exc:
        raise ConfigurationError(f"--live {url!r}: {exc}") from exc
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ConfigurationError(
            f"--live {url!r}: protocol mqtt sends to a broker, mqtt://HOST:PORT[/PREFIX]"
        )
    return MqttBroker(parts.hostname, port, parts.path.strip("/") or "microfleet")


def report_live(result: SendResult) -> None:
    """Print the server's verdicts on everything sent, and why anything was refused."""
    skipped = f", not sendable over the protocol {result.skipped:,}" if result.skipped else ""
    if result.unconfirmed:
        skipped += f", published without an answer (QoS 0) {result.unconfirmed:,}"
    typer.echo(
        f"sent {result.sent:,}: accepted {result.accepted:,}, duplicate {result.duplicate:,}, "
        f"rejected {result.rejected:,}, not delivered {result.failed:,}{skipped}"
    )
    for reason, count in result.reasons.most_common(10):
        typer.echo(f"  {count:,} × {reason}")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=_err)
