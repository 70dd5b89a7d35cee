"""Speeding against the road's limit: GPS fixes matched to OpenStreetMap ways, speed against ``maxspeed``.

Pure: the roads come in as arrays (:class:`RoadSegments`, read from the OSM extract by an adapter). Every
drivable way is kept, tagged or not, so a fix on an untagged street next to a tagged one is matched to its
own street and gets no limit (most of the shipped extract's ways carry none: 135 of 4,701). Matching is to
the nearest road point within :data:`MATCH_RADIUS_M` (points every :data:`POINT_SPACING_M` along each way);
a fix further from every road is unmatched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from microfleet.intelligence.driving import EARTH_RADIUS_M, DriveSamples

F64 = npt.NDArray[np.float64]

# A fix farther than 25 m from every road is not matched: the twin's urban-canyon GPS error is 15 m,
# 1 sigma, per axis (sim/sensor_errors.py), so 25 m keeps most canyon fixes without reaching a block away.
MATCH_RADIUS_M: Final = 25.0
POINT_SPACING_M: Final = 10.0  # road points every 10 m: a match is at most 5 m along the way off
# Speeding counts only above the limit plus 10 % (assumed: Chinese traffic police commonly warn rather
# than fine under 10 % over the limit; telematics products make this "no fine" buffer configurable, e.g.
# Damoov's speeding levels, docs.damoov.com/docs/driving-events).
SPEEDING_TOLERANCE_SHARE: Final = 0.10


@dataclass(frozen=True, slots=True)
class RoadSegments:
    """Straight pieces of drivable ways: end points (degrees), limit (km/h, NaN = untagged), design speed.

    The design speed of the way's class (km/h) stands in for a route comparison where no limit is tagged.
    """

    lat_a_deg: F64
    lon_a_deg: F64
    lat_b_deg: F64
    lon_b_deg: F64
    maxspeed_kmh: F64
    design_speed_kmh: F64


@dataclass(frozen=True, slots=True)
class SpeedingReport:
    """Time on roads with a known limit, time over it (beyond the tolerance), and the worst excess."""

    limited_s: float
    speeding_s: float
    max_excess_kmh: float

    @property
    def speeding_share(self) -> float | None:
        """Share of the time on limited roads spent speeding (None when no limit was known)."""
        return self.speeding_s / self.limited_s if self.limited_s > 0 else None

    def __add__(self, other: SpeedingReport) -> SpeedingReport:
        """Pool two reports."""
        return SpeedingReport(
            self.limited_s + other.limited_s,
            self.speeding_s + other.speeding_s,
            max(self.max_excess_kmh, other.max_excess_kmh),
        )


NO_SPEEDING: Final = SpeedingReport(0.0, 0.0, 0.0)


class SpeedLimitMap:
    """Road points with their limits, indexed for nearest-point queries (a k-d tree in metres)."""

    def __init__(self, roads: RoadSegments) -> None:
        """Densify the segments into points :data:`POINT_SPACING_M` apart and index them."""
        from scipy.spatial import cKDTree  # heavy import, only when a map is built

        self._lat0 = float(np.mean(roads.lat_a_deg)) if roads.lat_a_deg.size else 0.0
        self._tree = None
        self._limit = self._allowed = np.zeros(0)
        if roads.lat_a_deg.size == 0:  # no extract: no limit is known anywhere
            return
        ax, ay = self._xy(roads.lat_a_deg, roads.lon_a_deg)
        bx, by = self._xy(roads.lat_b_deg, roads.lon_b_deg)
        length = np.hypot(bx - ax, by - ay)
        count = np.maximum(np.ceil(length / POINT_SPACING_M).astype(np.int64), 1) + 1
        seg = np.repeat(np.arange(length.size), count)
        first = np.concatenate([[0], np.cumsum(count)[:-1]])
        frac = (np.arange(seg.size) - np.repeat(first, count)) / np.repeat(count - 1, count)
        px = ax[seg] + (bx - ax)[seg] * frac
        py = ay[seg] + (by - ay)[seg] * frac
        self._limit = roads.maxspeed_kmh[seg]
        allowed = np.where(np.isfinite(roads.maxspeed_kmh), roads.maxspeed_kmh, roads.design_speed_kmh)
        self._allowed = allowed[seg]
        self._tree = cKDTree(np.column_stack([px, py]))

    def _xy(self, lat: F64, lon: F64) -> tuple[F64, F64]:
        x = np.radians(lon) * EARTH_RADIUS_M * np.cos(np.radians(self._lat0))
        return x, np.radians(lat) * EARTH_RADIUS_M

    def limits_kmh(self, lat_deg: F64, lon_deg: F64) -> F64:
        """The limit of the road each fix is on (NaN: untagged road, no road near, or no fix)."""
        return self._lookup(self._limit, lat_deg, lon_deg)

    def allowed_kmh(self, lat_deg: F64, lon_deg: F64) -> F64:
        """The limit of each fix's road, else its class's design speed (NaN: no road near, or no fix)."""
        return self._lookup(self._allowed, lat_deg, lon_deg)

    def _lookup(self, values: F64, lat_deg: F64, lon_deg: F64) -> F64:
        out = np.full(lat_deg.size, np.nan)
        ok = np.isfinite(lat_deg) & np.isfinite(lon_deg)
        if self._tree is None or not ok.any():
            return out
        x, y = self._xy(lat_deg[ok], lon_deg[ok])
        dist, idx = self._tree.query(np.column_stack([x, y]), distance_upper_bound=MATCH_RADIUS_M)
        found = np.isfinite(dist)
        limits = np.full(idx.size, np.nan)
        limits[found] = values[idx[found]]
        out[ok] = limits
        return out


def speeding(
    samples: DriveSamples, limits: SpeedLimitMap, tolerance_share: float = SPEEDING_TOLERANCE_SHARE
) -> SpeedingReport:
    """Seconds on limited roads and seconds over ``limit × (1 + tolerance_share)`` for one drive."""
    t = samples.ts_ms.astype(np.float64) / 1000.0
    if t.size < 2:
        return NO_SPEEDING
    d = np.diff(t)
    w = np.concatenate([[d[0] / 2], (d[:-1] + d[1:]) / 2, [d[-1] / 2]])
    limit = limits.limits_kmh(samples.lat_deg, samples.lon_deg)
    known = np.isfinite(limit) & np.isfinite(samples.speed_kmh)
    excess = np.where(known, samples.speed_kmh - limit, -np.inf)
    over = known & (samples.speed_kmh > limit * (1.0 + tolerance_share))
    return SpeedingReport(
        limited_s=float(w[known].sum()),
        speeding_s=float(w[over].sum()),
        max_excess_kmh=float(max(excess.max(initial=-np.inf), 0.0)),
    )
