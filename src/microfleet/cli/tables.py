"""Rich tables the ``microfleet`` command prints: drives, charges, places and suggested places."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from rich.table import Table

from microfleet.domain.alert_delivery import Delivery, Subscription
from microfleet.domain.alerts import Alert, AlertRule
from microfleet.domain.bookings import Booking
from microfleet.domain.charges import ChargeSession
from microfleet.domain.drives import Drive
from microfleet.domain.places import Circle, DiscoveredPlace, StoredPlace
from microfleet.domain.tariffs import (
    DayAheadTariff,
    FlatTariff,
    PerKwhTariff,
    PerMinuteTariff,
    StoredTariff,
    TimeOfUseTariff,
    tariff_kind,
)

if TYPE_CHECKING:  # SQLAlchemy loads only when a command opens the store
    from microfleet.services.command_keys import CommandKeyInfo
    from microfleet.services.commands import AuditEvent, RemoteCommand
    from microfleet.store.partitions import TelemetryPartition


def _when(ts_ms: int, tz: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, tz=tz).strftime("%Y-%m-%d %H:%M")


def _num(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f}"


def _place(place_id: str | None, names: Mapping[str, str]) -> str:
    """A place as a person knows it: its name; a place deleted since (no name) shows its id."""
    if place_id is None:
        return ""
    return names.get(place_id) or place_id


def drives_table(
    vehicle_id: str,
    drives: Sequence[Drive],
    *,
    tz_name: str = "UTC",
    place_names: Mapping[str, str] | None = None,
) -> Table:
    """A vehicle's drives, in the order given, with distance, energy and efficiency.

    From and to are the places' names (``place_names``: place id → name); a place not named there shows
    its id.
    """
    names = place_names or {}
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
            _place(d.start_place_id, names),
            _place(d.end_place_id, names),
            _num(km, ".1f"),
            _num(d.energy_used_kwh, ".2f"),
            _num(d.regen_kwh, ".2f"),
            _num(d.efficiency_wh_per_km, ".0f"),
            _num(d.max_speed_kmh, ".0f"),
            soc,
            note,
        )
    return table


def charges_table(
    vehicle_id: str,
    charges: Sequence[ChargeSession],
    *,
    tz_name: str = "UTC",
    place_names: Mapping[str, str] | None = None,
) -> Table:
    """A vehicle's charging sessions, in the order given, with energy, power and cost.

    The place is its name (``place_names``: place id → name); a place not named there shows its id.
    """
    names = place_names or {}
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
            _place(c.place_id, names),
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


def when_utc(ts_ms: int) -> str:
    """UTC epoch ms as ``YYYY-MM-DD HH:MM`` in UTC."""
    return _when(ts_ms, ZoneInfo("UTC"))


def _tariff_prices(stored: StoredTariff) -> str:
    """A tariff's prices in a few words."""
    t = stored.tariff
    if isinstance(t, FlatTariff):
        return f"{t.price_per_session:g} per session"
    if isinstance(t, PerKwhTariff):
        return f"{t.price_per_kwh:g}/kWh + {t.session_fee:g} per session"
    if isinstance(t, PerMinuteTariff):
        return f"{t.price_per_min:g}/min"
    if isinstance(t, DayAheadTariff):
        span = t.span_ms
        covered = f"{when_utc(span[0])} to {when_utc(span[1])} UTC" if span else "no prices yet"
        return f"{len(t.starts_ms)} × {t.interval_min} min, {covered}"
    default = f", else {t.default_price_per_kwh:g}" if t.default_price_per_kwh is not None else ""
    return f"{len(t.bands)} band(s) {min((b.price_per_kwh for b in t.bands), default=0):g}-" + (
        f"{max((b.price_per_kwh for b in t.bands), default=0):g}/kWh{default}"
    )


def tariffs_table(found: Sequence[StoredTariff]) -> Table:
    """Tariffs with their kind, scope, currency and prices in a few words."""
    table = Table(title="Tariffs")
    for name in ("id", "kind", "for", "currency", "prices", "source"):
        table.add_column(name)
    for stored in found:
        t = stored.tariff
        scope = (
            f"vehicle {stored.vehicle_id}"
            if stored.vehicle_id
            else f"fleet {stored.fleet_id}"
            if stored.fleet_id
            else stored.scope
        )
        source = t.source if len(t.source) <= 40 else t.source[:39] + "…"
        table.add_row(t.tariff_id, tariff_kind(t), scope, t.currency, _tariff_prices(stored), source)
    return table


def tariff_table(stored: StoredTariff) -> Table:
    """One tariff: its time-of-use bands, or its other prices in a few words."""
    t = stored.tariff
    table = Table(title=f"Tariff {t.tariff_id} ({tariff_kind(t)}, {stored.scope}, {t.currency})")
    if not isinstance(t, TimeOfUseTariff):
        table.add_column("prices")
        table.add_column("source")
        table.add_row(_tariff_prices(stored), t.source)
        return table
    for name, justify in (("months", "left"), ("weekdays", "left"), ("from", "left"), ("to", "left"),
                          ("price/kWh", "right")):  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    days = "MTWTFSS"
    for b in t.bands:
        months = "all" if len(b.months) == 12 else ",".join(str(m) for m in sorted(b.months))
        weekdays = "".join(d if i in b.weekdays else "-" for i, d in enumerate(days))
        start, end = (f"{m // 60:02d}:{m % 60:02d}" for m in (b.start_min, b.end_min))
        table.add_row(months, weekdays, start, end, f"{b.price_per_kwh + t.fee_per_kwh:g}")
    if t.default_price_per_kwh is not None:
        table.add_row("otherwise", "", "", "", f"{t.default_price_per_kwh + t.fee_per_kwh:g}")
    return table


def partitions_table(found: Sequence[TelemetryPartition]) -> Table:
    """PostgreSQL's telemetry partitions: the UTC month each holds, estimated rows and size on disk."""
    table = Table(title="Telemetry partitions (PostgreSQL; rows are the planner's estimate)")
    table.add_column("partition")
    table.add_column("month (UTC)")
    table.add_column("rows (est.)", justify="right")
    table.add_column("size MiB", justify="right")
    for p in found:
        if p.month is not None:
            month = str(p.month)
        elif p.from_ms is None:
            month = "any other"  # DEFAULT
        else:
            month = f"{when_utc(p.from_ms)} to {when_utc(p.to_ms or p.from_ms)}"
        table.add_row(p.name, month, f"{p.rows_estimate:,}", f"{p.size_bytes / 2**20:.2f}")
    return table


def alerts_table(found: Sequence[Alert]) -> Table:
    """Alerts, newest first: vehicle, kind, severity, status, what and when (UTC)."""
    table = Table(title="Alerts")
    for name in ("id", "vehicle", "kind", "severity", "status", "title", "detail", "raised", "last seen"):
        table.add_column(name)
    for a in found:
        table.add_row(
            str(a.alert_id), a.vehicle_id, a.kind.value, a.severity.value, a.status.value, a.title, a.detail,
            when_utc(a.raised_at_ms), when_utc(a.last_seen_ms),
        )  # fmt: skip
    return table


def alert_rules_table(found: Sequence[AlertRule]) -> Table:
    """Alert rules with their scope and thresholds."""
    table = Table(title="Alert rules")
    for name in ("id", "kind", "severity", "for", "parameters"):
        table.add_column(name)
    for r in found:
        scope = f"vehicle {r.vehicle_id}" if r.vehicle_id else f"fleet {r.fleet_id}" if r.fleet_id else "all"
        params = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.params.items())
        table.add_row(str(r.rule_id), r.kind.value, r.severity.value, scope, params)
    return table


def subscriptions_table(found: Sequence[Subscription], users: Mapping[int, str]) -> Table:
    """Subscriptions: whose, the channel (secrets masked), what they want and their quiet hours."""
    table = Table(title="Alert subscriptions")
    for name in ("id", "user", "channel", "least severity", "kinds", "quiet hours"):
        table.add_column(name)
    for s in found:
        kinds = ", ".join(sorted(k.value for k in s.kinds)) or "all"
        quiet = f"{s.quiet.start}-{s.quiet.end} {s.quiet.timezone}" if s.quiet else "-"
        if s.quiet and s.critical_bypasses_quiet:
            quiet += " (not for critical)"
        user = users.get(s.user_id, str(s.user_id))
        table.add_row(str(s.subscription_id), user, s.channel_url, s.min_severity.value, kinds, quiet)
    return table


def deliveries_table(found: Sequence[Delivery]) -> Table:
    """Deliveries, newest first: channel, status, attempts, the next try and the last error."""
    table = Table(title="Alert deliveries")
    for name in ("id", "alert", "vehicle", "channel", "to", "status", "attempts", "next try", "error"):
        table.add_column(name)
    for d in found:
        next_try = when_utc(d.next_attempt_ms) if d.status.value == "pending" else "-"
        table.add_row(
            str(d.delivery_id), str(d.alert_id), d.vehicle_id, d.channel.value,
            "-" if d.subscription_id is None else str(d.subscription_id), d.status.value, str(d.attempts),
            next_try, d.last_error or "",
        )  # fmt: skip
    return table


def _when_s(ts_ms: int | None) -> str:
    return "-" if ts_ms is None else dt.datetime.fromtimestamp(ts_ms / 1000, tz=dt.UTC).strftime("%H:%M:%S")


def commands_table(vehicle_id: str, found: Sequence[RemoteCommand]) -> Table:
    """A vehicle's remote commands, newest first: action, status, who, from where and when (UTC)."""
    table = Table(title=f"Remote commands of {vehicle_id} (UTC)")
    columns = ("command", "action", "params", "status", "issued by", "from")
    for name in (*columns, "issued", "expires", "sent", "answered", "reason"):
        table.add_column(name)
    for c in found:
        params = ", ".join(f"{k}={v}" for k, v in sorted(c.params.items())) or "-"
        table.add_row(
            c.command_id[:8], c.action.value, params, c.status.value, c.issued_by, c.client or "-",
            f"{when_utc(c.issued_at_ms)}:{_when_s(c.issued_at_ms)[-2:]}", _when_s(c.expires_at_ms),
            _when_s(c.sent_at_ms), _when_s(c.result_at_ms), c.result_reason or "-",
        )  # fmt: skip
    return table


def command_events_table(title: str, found: Sequence[AuditEvent]) -> Table:
    """Audit lines, newest first: when (UTC), who, from where, what and why."""
    table = Table(title=title)
    for name in ("when (UTC)", "actor", "from", "event", "action", "detail"):
        table.add_column(name)
    for e in found:
        when = f"{when_utc(e.at_ms)}:{_when_s(e.at_ms)[-2:]}"
        table.add_row(when, e.actor, e.client or "-", e.event, e.action or "-", e.detail)
    return table


def command_keys_table(vehicle_id: str, found: Sequence[CommandKeyInfo]) -> Table:
    """A vehicle's command public keys, current first (base64 of the raw Ed25519 key)."""
    table = Table(title=f"Command keys of {vehicle_id}")
    for name in ("key id", "public key", "created (UTC)", "current", "listed until (UTC)"):
        table.add_column(name)
    for k in found:
        until = "-" if k.listed_until_ms is None else when_utc(k.listed_until_ms)
        table.add_row(k.key_id, k.public_key, when_utc(k.created_at_ms), "yes" if k.current else "no", until)
    return table


def bookings_table(found: Sequence[Booking]) -> Table:
    """Bookings by start: car, driver, window (UTC) and whether cancelled."""
    table = Table(title="Bookings (UTC)")
    for name in ("id", "vehicle", "driver", "from", "to", "by", "cancelled"):
        table.add_column(name)
    for b in found:
        cancelled = "-" if b.cancelled_at_ms is None else when_utc(b.cancelled_at_ms)
        table.add_row(
            str(b.booking_id), b.vehicle_id, b.user_name, when_utc(b.start_ms), when_utc(b.end_ms),
            b.created_by, cancelled,
        )  # fmt: skip
    return table
