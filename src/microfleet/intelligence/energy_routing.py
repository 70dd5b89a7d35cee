"""Energy-optimal and fastest routes on a city's road graph, edge energy from a car's own trip-energy model.

The graph (:class:`RoadGraph`) is built once per city; a query reweighs its edges for one car, hour and
temperature (one vector per objective over the fixed CSR structure) and runs SciPy's Dijkstra from the
origin. An edge's time is its length at the road class's speed for the hour (the free-flow speed times the
car's own learned factor for that hour) plus the expected wait at a signal at its end; its energy is the
car's calibrated components for cruising the edge, the expected stop at that signal, the auxiliaries and
the HVAC for that time. Grade is zero: the shipped extracts carry no elevation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from microfleet.errors import RouteInputError
from microfleet.intelligence.trip_energy import NOMINAL_ACCEL_MPS2, TripEnergyModel, TripQuery

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

EARTH_RADIUS_M: Final = 6_371_000.0
SNAP_MAX_M: Final = 300.0  # a point further than this from every graph node is off the map
RED_LIGHT_P: Final = 0.5  # chance of a stop at a signal (assumed: equal red and green split)
RED_WAIT_MEAN_S: Final = 30.0  # mean wait when stopped (assumed: half of a 60 s red phase)
RESERVE_SOC_PCT: Final = 5.0  # never plan below this SoC (assumed: the BMS's low-SoC cut-back zone)


@dataclass(frozen=True)
class RoadGraph:
    """A directed road graph: node coordinates, signals, and edges with length, class and free-flow speed."""

    lat_deg: FloatArray
    lon_deg: FloatArray
    has_signal: NDArray[np.bool_]
    edge_src: IntArray
    edge_dst: IntArray
    edge_length_m: FloatArray
    edge_class: IntArray
    edge_free_speed_kmh: FloatArray
    chargers: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    chargers_source: str = "none in the map extract"
    _csr: csr_matrix | None = field(default=None, repr=False)
    _slot: IntArray | None = field(default=None, repr=False)

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return int(self.lat_deg.size)

    def structure(self) -> tuple[csr_matrix, IntArray]:
        """The CSR pattern (built once) and, per edge, its slot in the CSR data (parallel edges share one)."""
        if self._csr is None:
            n = self.n_nodes
            keys = self.edge_src.astype(np.int64) * n + self.edge_dst
            uniq = np.unique(keys)
            csr = csr_matrix((np.ones(uniq.size), (uniq // n, uniq % n)), shape=(n, n))
            csr.sort_indices()
            # slot of each unique key in csr.data: CSR orders by (row, col) as np.unique orders keys
            slot = np.searchsorted(uniq, keys)
            object.__setattr__(self, "_csr", csr)
            object.__setattr__(self, "_slot", slot)
        assert self._csr is not None
        assert self._slot is not None
        return self._csr, self._slot

    def snap(self, lat_deg: float, lon_deg: float) -> int:
        """The nearest node to a point; :class:`RouteInputError` if it is off the map."""
        if not (np.isfinite(lat_deg) and np.isfinite(lon_deg)):
            raise RouteInputError("a point needs a finite latitude and longitude")
        dx = np.radians(self.lon_deg - lon_deg) * np.cos(np.radians(lat_deg))
        dy = np.radians(self.lat_deg - lat_deg)
        dist = EARTH_RADIUS_M * np.hypot(dx, dy)
        i = int(np.argmin(dist))
        if dist[i] > SNAP_MAX_M:
            raise RouteInputError(
                f"({lat_deg:.5f}, {lon_deg:.5f}) is off the map: {dist[i]:.0f} m from the nearest road "
                f"(at most {SNAP_MAX_M:.0f} m)"
            )
        return i


@dataclass(frozen=True)
class EdgeCosts:
    """Per-edge expected time (s), energy (kWh) and distance (m) for one car, hour and temperature."""

    time_s: FloatArray
    energy_kwh: FloatArray


def edge_costs(
    graph: RoadGraph, model: TripEnergyModel, hour: float, ambient_temp_c: float, time_factor: float = 1.0
) -> EdgeCosts:
    """Expected time and energy of every edge for this car at this hour and temperature.

    Energy per edge comes from the car's calibrated components of two reference trips per road class
    (cruising one stop spacing, and the same with its stop), so the edge's cost is linear in its length
    and the chance of a stop at its end.
    """
    speed_mps = graph.edge_free_speed_kmh / 3.6 / max(time_factor, 0.2)
    stop_p = np.where(graph.has_signal[graph.edge_dst], RED_LIGHT_P, 0.0)
    cruise_s = graph.edge_length_m / speed_mps
    time_s = cruise_s + stop_p * RED_WAIT_MEAN_S
    theta = model.calibration.theta if model.calibration is not None else model.prior.theta0()
    speeds, inverse = np.unique(np.round(speed_mps, 1), return_inverse=True)
    cruise_per_m, stop_kwh = _speed_costs(model, theta, speeds, ambient_temp_c)
    drive_kwh = cruise_per_m[inverse] * graph.edge_length_m + stop_p * stop_kwh[inverse]
    steady = model.prior.components([TripQuery(1.0, 3600.0, ambient_temp_c, hour)])[0]
    steady_kw = theta[3] + theta[4] * steady[4]  # auxiliaries + HVAC (kW) over a one-hour trip
    energy = np.maximum(drive_kwh, 0.0) + steady_kw * time_s / 3600.0
    return EdgeCosts(time_s=time_s, energy_kwh=np.maximum(energy, 1e-7))


def _speed_costs(
    model: TripEnergyModel, theta: FloatArray, speeds: FloatArray, ambient_temp_c: float
) -> tuple[FloatArray, FloatArray]:
    """Per speed: calibrated traction energy per metre cruising (kWh/m) and per stop and restart (kWh).

    Both from the physics: 60 s at constant speed, and a ramp down to a stop and back up at
    :data:`~microfleet.intelligence.trip_energy.NOMINAL_ACCEL_MPS2` less cruising the same distance.
    """
    a = NOMINAL_ACCEL_MPS2
    ramp = int(np.ceil(speeds.max() / a)) + 1
    t = np.arange(60 + 2 * ramp, dtype=np.float64)[None, :]
    v = speeds[:, None]
    cruise = np.broadcast_to(v, (speeds.size, t.size)).copy()
    dip = np.minimum(np.abs(t - (30 + ramp)) * a, v)
    temp = np.full(speeds.size, ambient_temp_c)
    c_cruise = np.column_stack(model.prior.traction_components(cruise, temp)) @ theta[:3]
    c_dip = np.column_stack(model.prior.traction_components(dip, temp)) @ theta[:3]
    dist_cruise = cruise.sum(axis=1)
    dist_dip = dip.sum(axis=1)
    per_m = c_cruise / np.maximum(dist_cruise, 1e-6)
    stop = c_dip - per_m * dist_dip
    return np.asarray(per_m), np.asarray(np.maximum(stop, 0.0))


@dataclass(frozen=True)
class Route:
    """One route: its nodes, length (m), expected time (s) and energy (kWh, the edge sum)."""

    nodes: IntArray
    edges: IntArray
    length_m: float
    time_s: float
    energy_kwh: float


def shortest(graph: RoadGraph, weights: FloatArray, origin: int, destination: int, costs: EdgeCosts) -> Route:
    """The route from ``origin`` to ``destination`` minimising ``weights`` (one per edge)."""
    csr, slot = graph.structure()
    data = np.full(csr.data.size, np.inf)
    np.minimum.at(data, slot, weights)
    g = csr_matrix((data, csr.indices, csr.indptr), shape=csr.shape)
    dist, pred = dijkstra(g, directed=True, indices=origin, return_predecessors=True)
    if not np.isfinite(dist[destination]):
        raise RouteInputError("the destination cannot be reached from the origin on the road graph")
    nodes = [destination]
    while nodes[-1] != origin:
        nodes.append(int(pred[nodes[-1]]))
    path = np.array(nodes[::-1], dtype=np.int64)
    n = graph.n_nodes
    keys = graph.edge_src.astype(np.int64) * n + graph.edge_dst
    want = path[:-1] * n + path[1:]
    # the cheapest parallel edge of each hop
    order = np.lexsort((weights, keys))
    sorted_keys = keys[order]
    edges = order[np.searchsorted(sorted_keys, want)]
    return Route(
        nodes=path,
        edges=edges,
        length_m=float(graph.edge_length_m[edges].sum()),
        time_s=float(costs.time_s[edges].sum()),
        energy_kwh=float(costs.energy_kwh[edges].sum()),
    )


@dataclass(frozen=True)
class RoutePlan:
    """Fastest and energy-optimal routes and the trade-off between them."""

    fastest: Route
    energy_optimal: Route

    @property
    def kwh_saved(self) -> float:
        """Energy the energy-optimal route saves over the fastest (kWh, ≥ 0)."""
        return self.fastest.energy_kwh - self.energy_optimal.energy_kwh

    @property
    def minutes_added(self) -> float:
        """Minutes the energy-optimal route adds over the fastest (≥ 0)."""
        return (self.energy_optimal.time_s - self.fastest.time_s) / 60.0


def plan_route(
    graph: RoadGraph,
    model: TripEnergyModel,
    origin: int,
    destination: int,
    *,
    hour: float,
    ambient_temp_c: float,
    time_factor: float = 1.0,
) -> RoutePlan:
    """Both routes between two nodes for one car, hour and temperature."""
    if origin == destination:
        raise RouteInputError("origin and destination are the same place on the road graph")
    costs = edge_costs(graph, model, hour, ambient_temp_c, time_factor)
    fastest = shortest(graph, costs.time_s, origin, destination, costs)
    energy = shortest(graph, costs.energy_kwh, origin, destination, costs)
    return RoutePlan(fastest, energy)


@dataclass(frozen=True)
class RoundTrip:
    """Whether a car makes it there and back on its charge, with the P90 energy it needs."""

    possible: bool
    needed_kwh_p90: float
    available_kwh: float
    charger_node: int | None
    charger_note: str


def there_and_back(
    graph: RoadGraph,
    needed_kwh_p90: float,
    soc_pct: float,
    usable_kwh: float,
    route_nodes: IntArray,
) -> RoundTrip:
    """Can the car go and come back above the reserve (P90 energy)? If not, the charger nearest its route."""
    if not (0.0 <= soc_pct <= 100.0):
        raise RouteInputError(f"soc_pct must be within 0..100, got {soc_pct}")
    available = max(soc_pct - RESERVE_SOC_PCT, 0.0) / 100.0 * usable_kwh
    if needed_kwh_p90 <= available:
        return RoundTrip(True, needed_kwh_p90, available, None, "no charge needed")
    if graph.chargers.size == 0:
        note = f"no chargers known: {graph.chargers_source}"
        return RoundTrip(False, needed_kwh_p90, available, None, note)
    lat, lon = graph.lat_deg, graph.lon_deg
    c = graph.chargers
    dx = (lon[c][:, None] - lon[route_nodes][None, :]) * np.cos(np.radians(lat[route_nodes]))[None, :]
    dy = lat[c][:, None] - lat[route_nodes][None, :]
    best = int(c[np.argmin(np.hypot(dx, dy).min(axis=1))])
    return RoundTrip(False, needed_kwh_p90, available, best, f"charge on the way ({graph.chargers_source})")
