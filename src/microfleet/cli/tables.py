"""Rich tables the ``microfleet`` command prints: drives, charges, places and suggested places."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from rich.table import Table

from microfleet.domain.charges import ChargeSession
from microfleet.domain.drives import Drive
from microfleet.domain.places import Circle, DiscoveredPlace, StoredPlace


def _when(ts_ms: int, tz: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, tz=tz).strftime("%Y-%m-%d %H:%M")


def _num(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f}"


def drives_table(vehicle_id: str, drives: Sequence[Drive], *, tz_name: str = "UTC") -> Table:
    """A vehicle's drives, in the order given, with distance, energy and efficiency."""
    tz = ZoneInfo(tz_name)
    table = Table(title=f"Drives of {vehicle_id} ({tz_name})")
    for name, justify in (
        ("start", "left"), ("min", "right"), ("from", "left"), ("to", "left"), ("km", "right"),
        ("kWh", "right"), ("regen kWh", "right"), ("Wh/km", "right"), ("max km/h", "right"),
        ("SoC %", "right"), ("note", "left"),
    ):  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for d in drives:
        km = d.distance_odometer_km if d.distance_odometer_km is not None else d.distance_gps_km
        soc = (
            f"{d.soc_start_pct:.0f}→{d.soc_end_pct:.0f}"
            if d.soc_start_pct is not None and d.soc_end_pct is not None
            else "-"
        )
        note = d.end_reason if d.end_reason != "stopped" else ""
        if d.data_gap_s:
            note = (note + f" gap {d.data_gap_s:.0f} s").strip()
        table.add_row(
            _when(d.start_ts_ms, tz),
            _minutes(d.duration_s),
            d.start_place_id or "",
            d.end_place_id or "",
            _num(km, ".1f"),
            _num(d.energy_used_kwh, ".2f"),
            _num(d.regen_kwh, ".2f"),
            _num(d.efficiency_wh_per_km, ".0f"),
            _num(d.max_speed_kmh, ".0f"),
            soc,
            note,
        )
    return table


def charges_table(vehicle_id: str, charges: Sequence[ChargeSession], *, tz_name: str = "UTC") -> Table:
    """A vehicle's charging sessions, in the order given, with energy, power and cost."""
    tz = ZoneInfo(tz_name)
    table = Table(title=f"Charges of {vehicle_id} ({tz_name})")
    for name, justify in (
        ("start", "left"), ("min", "right"), ("place", "left"), ("SoC %", "right"), ("kWh in", "right"),
        ("kWh grid", "right"), ("loss kWh", "right"), ("peak kW", "right"), ("AC/DC", "left"),
        ("cost", "right"), ("idle min", "right"),
    ):  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for c in charges:
        soc = (
            f"{c.soc_from_pct:.0f}→{c.soc_to_pct:.0f}"
            if c.soc_from_pct is not None and c.soc_to_pct is not None
            else "-"
        )
        cost = f"{c.cost:.2f} {c.currency}" if c.cost is not None else "-"
        table.add_row(
            _when(c.start_ts_ms, tz),
            _minutes((c.power_end_ts_ms - c.start_ts_ms) / 1000),
            c.place_id or "",
            soc,
            _num(c.energy_added_kwh, ".2f"),
            _num(c.energy_grid_kwh, ".2f"),
            _num(c.losses_kwh, ".2f"),
            _num(c.peak_power_kw, ".1f"),
            c.current_kind or "?",
            cost,
            _minutes(c.idle_after_full_s),
        )
    return table


def places_table(found: Sequence[StoredPlace], title: str = "Places") -> Table:
    """Places with their kind, scope, geofence and tariff."""
    table = Table("id", "name", "kind", "applies to", "geofence", "tariff", title=title)
    for p in found:
        g = p.place.geometry
        fence = (
            f"circle {g.lat_deg:.5f}, {g.lon_deg:.5f} r {g.radius_m:.0f} m"
            if isinstance(g, Circle)
            else f"polygon of {len(g.vertices)} vertices"
        )
        scope = (
            f"vehicle {p.vehicle_id}" if p.vehicle_id else f"fleet {p.fleet_id}" if p.fleet_id else "everyone"
        )
        table.add_row(
            p.place.place_id, p.place.name, p.place.kind.value, scope, fence, p.place.tariff_id or ""
        )
    return table


def suggestions_table(vehicle_id: str, found: Sequence[DiscoveredPlace]) -> Table:
    """Places where a vehicle stops often, each with the command that keeps it."""
    table = Table(
        "visits", "lat °", "lon °", "radius m", "keep it with", title=f"Places suggested for {vehicle_id}"
    )
    for p in found:
        table.add_row(
            str(p.visits),
            f"{p.lat_deg:.5f}",
            f"{p.lon_deg:.5f}",
            f"{p.radius_m:.0f}",
            f"microfleet places add NAME --lat {p.lat_deg:.5f} --lon {p.lon_deg:.5f} "
            f"--radius-m {p.radius_m:.0f} --vehicle {vehicle_id}",
        )
    return table
