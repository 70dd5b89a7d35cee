"""Rich tables of places and suggested places, as `microfleet places list` and `places suggest` print."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from microfleet.domain.places import Circle, DiscoveredPlace
from microfleet.store.places_store import StoredPlace


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
