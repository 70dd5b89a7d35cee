from __future__ import annotations

import numpy as np

from microfleet.sim.city import load_road_network
from microfleet.sim.reference import data_dir
from microfleet.sim.routing import Router


def test_shanghai_extract_loads_with_oneway_roads_and_routes_connect() -> None:
    net = load_road_network(data_dir() / "osm" / "shanghai_center.osm")
    # osm/README.md: 972 km of road, 584.8 km one-way -> about 972 + (972 - 585) = 1,359 km of directed edges.
    assert 1300 < net.total_length_km() < 1420
    assert net.has_signal.sum() > 1000
    assert net.reachable.mean() > 0.9
    router = Router(net)
    rng = np.random.default_rng(0)
    nodes = rng.choice(np.flatnonzero(net.reachable), 20)
    routes = router.routes(nodes[:10], nodes[10:])
    for o, d, edges in zip(nodes[:10], nodes[10:], routes, strict=True):
        assert net.edge_src[edges[0]] == o
        assert net.edge_dst[edges[-1]] == d
        assert np.array_equal(net.edge_dst[edges[:-1]], net.edge_src[edges[1:]])
