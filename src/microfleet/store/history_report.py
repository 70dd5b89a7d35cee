"""Rich tables of a vehicle's drives and charges, as `microfleet drives` and `microfleet charges` print."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from rich.table import Table
from sqlalchemy import Engine

from microfleet.store.history import HistoryStore

FAR_FUTURE_MS = 32_503_680_000_000  # 3000-01-01


def _when(ts_ms: int, tz: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, tz=tz).strftime("%Y-%m-%d %H:%M")


def _num(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f}"


def drives_table(engine: Engine, vehicle_id: str, *, last: int = 20, tz_name: str = "UTC") -> Table:
    """The vehicle's last ``last`` drives, oldest first, with distance, energy and efficiency."""
    tz = ZoneInfo(tz_name)
    rows = HistoryStore(engine).drives(vehicle_id, 0, FAR_FUTURE_MS, 1_000_000)[-last:]
    table = Table(title=f"Drives of {vehicle_id} ({tz_name})")
    for name, justify in (
        ("start", "left"), ("min", "right"), ("from", "left"), ("to", "left"), ("km", "right"),
        ("kWh", "right"), ("regen kWh", "right"), ("Wh/km", "right"), ("max km/h", "right"),
        ("SoC %", "right"), ("note", "left"),
    ):  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for d in rows:
        km = d["distance_odometer_km"] if d["distance_odometer_km"] is not None else d["distance_gps_km"]
        soc = (
            f"{d['soc_start_pct']:.0f}→{d['soc_end_pct']:.0f}"
            if d["soc_start_pct"] is not None and d["soc_end_pct"] is not None
            else "-"
        )
        note = d["end_reason"] if d["end_reason"] != "stopped" else ""
        if d["data_gap_s"]:
            note = (note + f" gap {d['data_gap_s']:.0f} s").strip()
        table.add_row(
            _when(d["start_ts_ms"], tz),
            _minutes(d["duration_s"]),
            d["start_place_id"] or "",
            d["end_place_id"] or "",
            _num(km, ".1f"),
            _num(d["energy_used_kwh"], ".2f"),
            _num(d["regen_kwh"], ".2f"),
            _num(d["efficiency_wh_per_km"], ".0f"),
            _num(d["max_speed_kmh"], ".0f"),
            soc,
            note,
        )
    return table


def charges_table(engine: Engine, vehicle_id: str, *, last: int = 20, tz_name: str = "UTC") -> Table:
    """The vehicle's last ``last`` charging sessions, oldest first, with energy, power and cost."""
    tz = ZoneInfo(tz_name)
    rows = HistoryStore(engine).charges(vehicle_id, 0, FAR_FUTURE_MS, 1_000_000)[-last:]
    table = Table(title=f"Charges of {vehicle_id} ({tz_name})")
    for name, justify in (
        ("start", "left"), ("min", "right"), ("place", "left"), ("SoC %", "right"), ("kWh in", "right"),
        ("kWh grid", "right"), ("loss kWh", "right"), ("peak kW", "right"), ("AC/DC", "left"),
        ("cost", "right"), ("idle min", "right"),
    ):  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for c in rows:
        soc = (
            f"{c['soc_from_pct']:.0f}→{c['soc_to_pct']:.0f}"
            if c["soc_from_pct"] is not None and c["soc_to_pct"] is not None
            else "-"
        )
        cost = f"{c['cost']:.2f} {c['currency']}" if c["cost"] is not None else "-"
        table.add_row(
            _when(c["start_ts_ms"], tz),
            _minutes((c["power_end_ts_ms"] - c["start_ts_ms"]) / 1000),
            c["place_id"] or "",
            soc,
            _num(c["energy_added_kwh"], ".2f"),
            _num(c["energy_grid_kwh"], ".2f"),
            _num(c["losses_kwh"], ".2f"),
            _num(c["peak_power_kw"], ".1f"),
            c["current_kind"] or "?",
            cost,
            _minutes(c["idle_after_full_s"]),
        )
    return table
