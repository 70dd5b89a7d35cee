"""Geofences, enter/exit events and discovering places from stops."""

from __future__ import annotations

import numpy as np
import pytest

from microfleet.domain.places import (
    Circle,
    Place,
    PlaceEntered,
    PlaceExited,
    PlaceKind,
    Polygon,
    cumulative_path_m,
    discover_places,
    geofence_events,
    haversine_m,
    locate,
)

LAT, LON = 31.2304, 121.4737


def test_haversine_one_degree_of_latitude() -> None:
    assert haversine_m(0, 0, 1, 0) == pytest.approx(111_195, rel=1e-4)


def test_path_holds_over_missing_fixes() -> None:
    lat = np.array([0.0, np.nan, 0.001, 0.002])
    lon = np.zeros(4)
    path = cumulative_path_m(lat, lon)
    assert path[1] == 0.0
    assert path[3] == pytest.approx(222.4, rel=1e-3)


@pytest.mark.parametrize(
    ("geometry", "point", "inside"),
    [
        (Circle(LAT, LON, 100), (LAT + 0.0008, LON), True),
        (Circle(LAT, LON, 100), (LAT + 0.0010, LON), False),
        (Polygon(((0, 0), (0, 1), (1, 1), (1, 0))), (0.5, 0.5), True),
        (Polygon(((0, 0), (0, 1), (1, 1), (1, 0))), (1.5, 0.5), False),
        (Polygon(((0, 0), (0, 2), (1, 2), (1, 1), (2, 1), (2, 0))), (1.5, 1.5), False),
    ],
)
def test_geofence_contains(geometry: Circle | Polygon, point: tuple[float, float], inside: bool) -> None:
    assert geometry.contains(*point) is inside


def test_locate_prefers_the_smaller_circle() -> None:
    big = Place("city", "City", PlaceKind.OTHER, Circle(LAT, LON, 5000))
    home = Place("home", "Home", PlaceKind.HOME, Circle(LAT, LON, 50))
    assert locate([big, home], LAT, LON) == home
    assert locate([big, home], LAT + 0.01, LON) == big
    assert locate([home], float("nan"), LON) is None


def test_enter_and_exit_events() -> None:
    home = Place("home", "Home", PlaceKind.HOME, Circle(LAT, LON, 100))
    fixes = [(0, LAT, LON), (1, LAT + 0.01, LON), (2, LAT + 0.01, LON), (3, LAT, LON)]
    assert geofence_events("car-1", [home], fixes) == [
        PlaceExited("car-1", "home", 1),
        PlaceEntered("car-1", "home", 3),
    ]


def test_discovery_finds_the_places_visited_often() -> None:
    rng = np.random.default_rng(1)
    home = [(LAT + rng.normal(0, 0.0002), LON + rng.normal(0, 0.0002)) for _ in range(20)]
    work = [(LAT + 0.05 + rng.normal(0, 0.0002), LON + rng.normal(0, 0.0002)) for _ in range(8)]
    once = [(LAT - 0.05, LON + 0.05), (LAT - 0.08, LON)]
    found = discover_places(home + work + once, radius_m=150, min_visits=3)
    assert [p.visits for p in found] == [20, 8]
    assert haversine_m(found[0].lat_deg, found[0].lon_deg, LAT, LON) < 30
    assert discover_places([]) == []
