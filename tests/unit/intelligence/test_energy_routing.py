"""Energy-aware routing on a hand-made graph: fastest and energy-optimal routes differ as physics says."""

from __future__ import annotations

import numpy as np
import pytest

from microfleet.domain.catalogue import load_catalogue
from microfleet.errors import RouteInputError
from microfleet.intelligence.energy_routing import RoadGraph, edge_costs, plan_route, there_and_back
from microfleet.intelligence.trip_energy import TripEnergyModel, prior_for_model

# A - B - D along an avenue at 60 km/h (2.0 km), A - C - D along side streets at 25 km/h (2.2 km);
# E only leaves (a one-way street out of a dead end): nothing reaches it.
LAT = np.array([31.2300, 31.2390, 31.2300, 31.2480, 31.2200])
LON = np.array([121.4700, 121.4700, 121.4800, 121.4700, 121.4700])
SRC = np.array([0, 1, 0, 2, 4])
DST = np.array([1, 3, 2, 3, 0])
LENGTH_M = np.array([1000.0, 1000.0, 1100.0, 1100.0, 500.0])
SPEED_KMH = np.array([60.0, 60.0, 25.0, 25.0, 30.0])


def graph(chargers: list[int] | None = None) -> RoadGraph:
    return RoadGraph(
        lat_deg=LAT, lon_deg=LON, has_signal=np.zeros(5, dtype=bool), edge_src=SRC, edge_dst=DST,
        edge_length_m=LENGTH_M, edge_class=np.zeros(5, dtype=np.int64), edge_free_speed_kmh=SPEED_KMH,
        chargers=np.array(chargers or [], dtype=np.int64),
        chargers_source="test chargers" if chargers else "none in the map extract",
    )  # fmt: skip


@pytest.fixture(scope="module")
def model() -> TripEnergyModel:
    prior, _ = prior_for_model(load_catalogue(), "wuling-hongguang-mini-ev-gen1-14kwh")
    return TripEnergyModel(prior)


def test_the_fast_avenue_costs_more_energy_than_the_slower_side_streets(model: TripEnergyModel) -> None:
    plan = plan_route(graph(), model, 0, 3, hour=10.0, ambient_temp_c=22.0)
    assert plan.fastest.nodes.tolist() == [0, 1, 3]
    assert plan.energy_optimal.nodes.tolist() == [0, 2, 3]
    # 2.0 km at 60 km/h is 120 s; 2.2 km at 25 km/h is 316.8 s
    assert plan.fastest.time_s == pytest.approx(120.0)
    assert plan.energy_optimal.time_s == pytest.approx(316.8)
    assert plan.minutes_added == pytest.approx((316.8 - 120.0) / 60)
    assert 0.0 < plan.kwh_saved < plan.fastest.energy_kwh
    costs = edge_costs(graph(), model, 10.0, 22.0)
    assert plan.fastest.energy_kwh == pytest.approx(costs.energy_kwh[[0, 1]].sum())


def test_in_deep_cold_time_costs_heat_and_the_fast_route_wins_both(model: TripEnergyModel) -> None:
    # at -10 °C the heater's ~1.5 kW for 3 more minutes outweighs the avenue's drag
    plan = plan_route(graph(), model, 0, 3, hour=10.0, ambient_temp_c=-10.0)
    assert plan.energy_optimal.nodes.tolist() == plan.fastest.nodes.tolist() == [0, 1, 3]
    assert plan.kwh_saved == 0.0


def test_unreachable_same_and_off_map_points_are_refused(model: TripEnergyModel) -> None:
    with pytest.raises(RouteInputError, match="cannot be reached"):
        plan_route(graph(), model, 0, 4, hour=8.0, ambient_temp_c=20.0)
    with pytest.raises(RouteInputError, match="same place"):
        plan_route(graph(), model, 2, 2, hour=8.0, ambient_temp_c=20.0)
    with pytest.raises(RouteInputError, match="off the map"):
        graph().snap(39.9042, 116.4074)
    assert graph().snap(31.2301, 121.4801) == 2


def test_there_and_back_and_the_charger_on_the_way() -> None:
    route = np.array([0, 1, 3])
    ok = there_and_back(graph(), 1.0, soc_pct=50.0, usable_kwh=13.8, route_nodes=route)
    assert ok.possible and ok.available_kwh == pytest.approx(0.45 * 13.8)
    short = there_and_back(graph(), 1.0, soc_pct=10.0, usable_kwh=13.8, route_nodes=route)
    assert (
        not short.possible and short.charger_node is None and "none in the map extract" in short.charger_note
    )
    charged = there_and_back(graph(chargers=[4, 2]), 1.0, soc_pct=10.0, usable_kwh=13.8, route_nodes=route)
    assert charged.charger_node == 2  # C is 0.95 km east of A on the route; E is 1.11 km south of it
    with pytest.raises(RouteInputError):
        there_and_back(graph(), 1.0, soc_pct=120.0, usable_kwh=13.8, route_nodes=route)
