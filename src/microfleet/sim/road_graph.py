"""The routing graph of a city for Microfleet's energy-aware routing, read from the twin's OSM extract.

The same parse as the twin's road network (:func:`microfleet.sim.city.load_road_network`), limited to its
strongly connected part so that every node reaches every other. Chargers would come from OSM
``amenity=charging_station`` nodes; the shipped Shanghai extract is road-only (osm/README.md) and has none.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from microfleet.intelligence.energy_routing import RoadGraph
from microfleet.sim.city import load_road_network


@lru_cache(maxsize=4)
def road_graph(path: Path) -> RoadGraph:
    """The strongly connected road graph of an ``.osm`` extract, renumbered from 0, parsed once a process."""
    net = load_road_network(path)
    keep = net.reachable
    new_id = np.cumsum(keep) - 1
    edges = keep[net.edge_src] & keep[net.edge_dst]
    has_chargers = b"charging_station" in path.read_bytes()
    return RoadGraph(
        lat_deg=net.lat_deg[keep],
        lon_deg=net.lon_deg[keep],
        has_signal=net.has_signal[keep],
        edge_src=new_id[net.edge_src[edges]].astype(np.int64),
        edge_dst=new_id[net.edge_dst[edges]].astype(np.int64),
        edge_length_m=net.edge_length_m[edges],
        edge_class=net.edge_class[edges].astype(np.int64),
        edge_free_speed_kmh=net.edge_free_speed_kmh[edges],
        chargers_source=(
            "amenity=charging_station nodes are not read yet"
            if has_chargers
            else f"none in the map extract {path.name} (a road-only extract)"
        ),
    )
