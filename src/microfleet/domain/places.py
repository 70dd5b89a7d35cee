"""Places and geofences: named circles and polygons, enter/exit events, and places found from stops.

Distances are great-circle distances on a spherical Earth; at city scale (< 50 km) their error
against the WGS84 ellipsoid is below 0.5 %, far under GPS noise.
"""

from __future__ import annotations

import enum
import math
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from microfleet.errors import InvalidInputError

EARTH_RADIUS_M: Final = 6_371_008.8  # mean Earth radius R1, Moritz 2000 "Geodetic Reference System 1980"
# Limits on a stored geofence, Microfleet's choice: under 10 m is inside GPS noise (a phone's fix is
# good to ~5-10 m); over 5 km is a district, not a place; 200 vertices keep point tests cheap.
MIN_RADIUS_M: Final = 10.0
MAX_RADIUS_M: Final = 5_000.0
MIN_VERTICES: Final = 3
MAX_VERTICES: Final = 200


def haversine_m(lat1_deg: float, lon1_deg: float, lat2_deg: float, lon2_deg: float) -> float:
    """Great-circle distance between two WGS84 points, in metres."""
    p1, p2 = math.radians(lat1_deg), math.radians(lat2_deg)
    dp, dl = p2 - p1, math.radians(lon2_deg - lon1_deg)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def hop_m(lat_deg: npt.NDArray[np.float64], lon_deg: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Distance from each fix to the next fix, in metres (length n-1; 0 where a fix is missing)."""
    p = np.radians(lat_deg)
    lam = np.radians(lon_deg)
    dp, dl = np.diff(p), np.diff(lam)
    a = np.sin(dp / 2) ** 2 + np.cos(p[:-1]) * np.cos(p[1:]) * np.sin(dl / 2) ** 2
    d = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    out: npt.NDArray[np.float64] = np.nan_to_num(d, nan=0.0)
    return out


def cumulative_path_m(
    lat_deg: npt.NDArray[np.float64], lon_deg: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Path length from the first record to each record, in metres; records without a fix hold it."""
    n = lat_deg.shape[0]
    out = np.zeros(n)
    if n < 2:
        return out
    has = ~(np.isnan(lat_deg) | np.isnan(lon_deg))
    idx = np.flatnonzero(has)
    if idx.size >= 2:
        steps = hop_m(lat_deg[idx], lon_deg[idx])
        out[idx[1:]] = np.cumsum(steps)
        # Carry the last known length forward over records without a fix.
        filled = np.where(has, np.arange(n), 0)
        np.maximum.accumulate(filled, out=filled)
        out = out[filled]
    return out


@dataclass(frozen=True, slots=True)
class Circle:
    """A circular geofence: centre and radius in metres."""

    lat_deg: float
    lon_deg: float
    radius_m: float

    def contains(self, lat_deg: float, lon_deg: float) -> bool:
        """Whether the point lies inside (or on) the circle."""
        return haversine_m(self.lat_deg, self.lon_deg, lat_deg, lon_deg) <= self.radius_m


@dataclass(frozen=True, slots=True)
class Polygon:
    """A polygonal geofence: vertices as (lat_deg, lon_deg), ring closed implicitly."""

    vertices: tuple[tuple[float, float], ...]

    def contains(self, lat_deg: float, lon_deg: float) -> bool:
        """Whether the point lies inside the polygon (even-odd ray casting in lat/lon)."""
        inside = False
        pts = self.vertices
        j = len(pts) - 1
        for i in range(len(pts)):
            yi, xi = pts[i]
            yj, xj = pts[j]
            if (yi > lat_deg) != (yj > lat_deg) and lon_deg < (xj - xi) * (lat_deg - yi) / (yj - yi) + xi:
                inside = not inside
            j = i
        return inside


class PlaceKind(enum.StrEnum):
    """What a place is to its owner or fleet."""

    HOME = "home"
    WORK = "work"
    DEPOT = "depot"
    CHARGER = "charger"
    DISCOVERED = "discovered"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Place:
    """A named place with a geofence and, optionally, the tariff charging there costs."""

    place_id: str
    name: str
    kind: PlaceKind
    geometry: Circle | Polygon
    tariff_id: str | None = None


def locate(places: Sequence[Place], lat_deg: float, lon_deg: float) -> Place | None:
    """The first place whose geofence holds the point (smaller circles first), or None."""
    if math.isnan(lat_deg) or math.isnan(lon_deg):
        return None
    for place in sorted(places, key=_area_rank):
        if place.geometry.contains(lat_deg, lon_deg):
            return place
    return None


def _area_rank(place: Place) -> float:
    g = place.geometry
    return g.radius_m if isinstance(g, Circle) else math.inf


@dataclass(frozen=True, slots=True)
class PlaceEntered:
    """A vehicle entered a place's geofence at ``ts_ms``."""

    vehicle_id: str
    place_id: str
    ts_ms: int


@dataclass(frozen=True, slots=True)
class PlaceExited:
    """A vehicle left a place's geofence at ``ts_ms``."""

    vehicle_id: str
    place_id: str
    ts_ms: int


def geofence_events(
    vehicle_id: str, places: Sequence[Place], fixes: Iterable[tuple[int, float, float]]
) -> list[PlaceEntered | PlaceExited]:
    """Enter/exit events along time-sorted fixes ``(ts_ms, lat_deg, lon_deg)``; no event for the start."""
    events: list[PlaceEntered | PlaceExited] = []
    inside: set[str] | None = None
    for ts, lat, lon in fixes:
        if math.isnan(lat) or math.isnan(lon):
            continue
        now = {p.place_id for p in places if p.geometry.contains(lat, lon)}
        if inside is not None:
            events += [PlaceExited(vehicle_id, pid, ts) for pid in sorted(inside - now)]
            events += [PlaceEntered(vehicle_id, pid, ts) for pid in sorted(now - inside)]
        inside = now
    return events


@dataclass(frozen=True, slots=True)
class DiscoveredPlace:
    """A place found where vehicles stop often: centre, radius holding its stops, number of visits."""

    lat_deg: float
    lon_deg: float
    radius_m: float
    visits: int


def discover_places(
    stops: Sequence[tuple[float, float]], radius_m: float = 150.0, min_visits: int = 3
) -> list[DiscoveredPlace]:
    """Cluster stop positions (DBSCAN with ``eps = radius_m``) into places visited ``min_visits`` times.

    Neighbours are searched on a grid of ``radius_m`` cells, so the cost is about linear in stops.
    150 m is Microfleet's choice: a car park plus the street around it.
    """
    n = len(stops)
    if n == 0:
        return []
    lat = np.array([s[0] for s in stops])
    lon = np.array([s[1] for s in stops])
    lat0 = float(np.mean(lat))
    y = np.radians(lat) * EARTH_RADIUS_M
    x = np.radians(lon) * EARTH_RADIUS_M * math.cos(math.radians(lat0))
    cells: dict[tuple[int, int], list[int]] = {}
    for i, key in enumerate(
        zip((x // radius_m).astype(int).tolist(), (y // radius_m).astype(int).tolist(), strict=True)
    ):
        cells.setdefault(key, []).append(i)

    def neighbours(i: int) -> list[int]:
        cx, cy = int(x[i] // radius_m), int(y[i] // radius_m)
        out = []
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for j in cells.get((cx + dx, cy + dy), []):
                    if (x[i] - x[j]) ** 2 + (y[i] - y[j]) ** 2 <= radius_m**2:
                        out.append(j)
        return out

    label = np.full(n, -1)
    clusters: list[list[int]] = []
    for i in range(n):
        if label[i] != -1:
            continue
        seed = neighbours(i)
        if len(seed) < min_visits:
            continue
        cid = len(clusters)
        members: list[int] = []
        queue = list(seed)
        label[i] = cid
        members.append(i)
        while queue:
            j = queue.pop()
            if label[j] != -1:
                continue
            label[j] = cid
            members.append(j)
            more = neighbours(j)
            if len(more) >= min_visits:
                queue += [k for k in more if label[k] == -1]
        clusters.append(members)
    found = []
    for members in clusters:
        clat, clon = float(np.mean(lat[members])), float(np.mean(lon[members]))
        spread = max(haversine_m(clat, clon, float(lat[m]), float(lon[m])) for m in members)
        found.append(DiscoveredPlace(clat, clon, max(spread, 50.0), len(members)))
    return sorted(found, key=lambda p: -p.visits)


def check_geometry(geometry: Circle | Polygon) -> None:
    """Refuse a geofence that cannot be stored: coordinates, radius or vertex count out of range."""
    points = (
        [(geometry.lat_deg, geometry.lon_deg)] if isinstance(geometry, Circle) else list(geometry.vertices)
    )
    for lat, lon in points:
        if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
            raise InvalidInputError(f"({lat}, {lon}) is not a WGS84 latitude/longitude in degrees")
    if isinstance(geometry, Circle):
        if not (math.isfinite(geometry.radius_m) and MIN_RADIUS_M <= geometry.radius_m <= MAX_RADIUS_M):
            raise InvalidInputError(
                f"radius_m {geometry.radius_m} is not between {MIN_RADIUS_M:g} and {MAX_RADIUS_M:g} m"
            )
        return
    n = len(geometry.vertices)
    if not MIN_VERTICES <= n <= MAX_VERTICES:
        raise InvalidInputError(f"a polygon has {MIN_VERTICES} to {MAX_VERTICES} vertices, not {n}")
    lons = [lon for _, lon in geometry.vertices]
    if max(lons) - min(lons) > 180:
        raise InvalidInputError("a polygon may not span the antimeridian (longitudes more than 180° apart)")
    # Shoelace area in degrees²: zero means every vertex on one line, a fence that holds nothing.
    doubled = sum(
        a[1] * b[0] - b[1] * a[0]
        for a, b in zip(geometry.vertices, geometry.vertices[1:] + geometry.vertices[:1], strict=True)
    )
    if abs(doubled) < 1e-12:
        raise InvalidInputError("the polygon's vertices enclose no area")


def suggest_places(
    stops: Sequence[tuple[float, float]],
    known: Sequence[Place],
    radius_m: float = 150.0,
    min_visits: int = 3,
) -> list[DiscoveredPlace]:
    """Places found from stops (:func:`discover_places`) whose centre no known place already holds.

    A suggestion's radius is kept within the stored limits, so it can be created as it is.
    """
    out = []
    for found in discover_places(stops, radius_m, min_visits):
        if locate(known, found.lat_deg, found.lon_deg) is not None:
            continue
        radius = min(max(found.radius_m, MIN_RADIUS_M), MAX_RADIUS_M)
        out.append(DiscoveredPlace(found.lat_deg, found.lon_deg, radius, found.visits))
    return out


@dataclass(frozen=True, slots=True)
class StoredPlace:
    """A place with the scope it applies to: one vehicle, one fleet, or (both None) every vehicle."""

    place: Place
    vehicle_id: str | None
    fleet_id: str | None

    @property
    def scope(self) -> Literal["vehicle", "fleet", "global"]:
        """``vehicle``, ``fleet`` or ``global``."""
        return "vehicle" if self.vehicle_id else "fleet" if self.fleet_id else "global"


def new_place_id() -> str:
    """A fresh place id (random, so ids reveal nothing about other accounts' places)."""
    return "pl-" + secrets.token_hex(8)
