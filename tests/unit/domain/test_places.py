"""Geofences, enter/exit events and discovering places from stops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from microfleet.domain.places import (
    Circle,
    Place,
    PlaceEntered,
    PlaceExited,
    PlaceKind,
    Polygon,
    check_geometry,
    cumulative_path_m,
    discover_places,
    geofence_events,
    haversine_m,
    locate,
    suggest_places,
)
from microfleet.errors import InvalidInputError

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


@pytest.mark.parametrize(
    ("geometry", "complaint"),
    [
        (Circle(LAT, LON, 9.9), "radius_m"),
        (Circle(LAT, LON, 5000.1), "radius_m"),
        (Circle(LAT, LON, float("nan")), "radius_m"),
        (Circle(91, LON, 100), "latitude"),
        (Circle(LAT, float("inf"), 100), "latitude"),
        (Polygon(((0, 0), (0, 1))), "3 to 200 vertices"),
        (Polygon(tuple((0.0, k / 1000) for k in range(201))), "3 to 200 vertices"),
        (Polygon(((0, 0), (0, 1), (0, 2))), "no area"),
        (Polygon(((0, 179), (1, -179), (1, 179))), "antimeridian"),
    ],
)
def test_geometry_out_of_range_is_refused(geometry: Circle | Polygon, complaint: str) -> None:
    with pytest.raises(InvalidInputError, match=complaint):
        check_geometry(geometry)


def ring(n: int) -> Polygon:
    """A polygon of ``n`` vertices on a circle about 1 km across."""
    return Polygon(
        tuple(
            (LAT + 0.005 * math.sin(2 * math.pi * k / n), LON + 0.005 * math.cos(2 * math.pi * k / n))
            for k in range(n)
        )
    )


@pytest.mark.parametrize(
    ("accepted", "just_outside"),
    [
        (Circle(LAT, LON, 10), Circle(LAT, LON, 9.99)),
        (Circle(LAT, LON, 5000), Circle(LAT, LON, 5000.01)),
        (Circle(-90, 180, 100), Circle(-90.001, 180, 100)),
        (Circle(90, -180, 100), Circle(90, -180.001, 100)),
        (Polygon(((0, 0), (0, 1), (1, 1))), Polygon(((0, 0), (0, 1)))),
        (ring(200), ring(201)),
        (Polygon(((0, -90), (1, 90), (1, -90))), Polygon(((0, -90.001), (1, 90), (1, -90.001)))),
        (Polygon(((0, 0), (0, 1), (1e-6, 1))), Polygon(((0, 0), (0, 1), (0, 2)))),
    ],
)
def test_geometry_in_range_is_accepted(accepted: Circle | Polygon, just_outside: Circle | Polygon) -> None:
    # each limit is inclusive: the geometry on it is accepted and its neighbour just past it refused
    assert check_geometry(accepted) is None
    with pytest.raises(InvalidInputError):
        check_geometry(just_outside)


def test_suggestions_leave_out_places_already_known() -> None:
    rng = np.random.default_rng(2)
    home = [(LAT + rng.normal(0, 0.0002), LON + rng.normal(0, 0.0002)) for _ in range(10)]
    work = [(LAT + 0.05 + rng.normal(0, 0.0002), LON + rng.normal(0, 0.0002)) for _ in range(5)]
    known = [Place("home", "Home", PlaceKind.HOME, Circle(LAT, LON, 200))]
    (found,) = suggest_places(home + work, known)
    assert found.visits == 5
    assert haversine_m(found.lat_deg, found.lon_deg, LAT + 0.05, LON) < 50
    assert found.radius_m >= 50
    assert len(suggest_places(home + work, [])) == 2


def test_a_suggestion_is_never_wider_than_a_place_may_be() -> None:
    chain = [(LAT + k * 0.001, LON) for k in range(100)]  # stops every 111 m along 11 km: one DBSCAN cluster
    (found,) = suggest_places(chain, [], radius_m=150, min_visits=3)
    assert found.radius_m == 5000
    check_geometry(Circle(found.lat_deg, found.lon_deg, found.radius_m))
