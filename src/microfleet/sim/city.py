"""The city: a drivable road graph read from an OpenStreetMap extract, and its places.

Map data © OpenStreetMap contributors, ODbL 1.0 (https://www.openstreetmap.org/copyright).
The ``.osm`` XML is read with the standard library's ``iterparse`` rather than pyrosm: pyrosm brings
geopandas, shapely and pandas (≈150 MB) to get what 80 lines give here, and the XML and the PBF of the
shipped extract hold the same 26,487 objects (osm/README.md).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from microfleet.errors import ConfigurationError

EARTH_RADIUS_M: Final = 6_371_000.0

# Road classes the twin drives on and their free-flow speeds. OSM gives maxspeed on 135 of 4,701 ways
# here, so speeds come from the design speeds of China's urban road standard CJJ 37-2012 §3.2.1
# (main roads 40-60, secondary 30-50, branch roads 20-40 km/h), taken at the middle of each range.
ROAD_CLASSES: Final = ("primary", "secondary", "tertiary", "residential", "unclassified", "link")
FREE_FLOW_SPEED_KMH: Final = np.array([50.0, 40.0, 35.0, 30.0, 30.0, 30.0])
_CLASS_OF_HIGHWAY: Final = {
    "primary": 0, "secondary": 1, "tertiary": 2, "residential": 3, "unclassified": 4,
    "primary_link": 5, "secondary_link": 5, "tertiary_link": 5, "trunk": 0, "trunk_link": 5,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class RoadNetwork:
    """Directed road graph: node coordinates and edges with length, class and free-flow speed."""

    lat_deg: npt.NDArray[np.float64]
    lon_deg: npt.NDArray[np.float64]
    has_signal: npt.NDArray[np.bool_]
    edge_src: npt.NDArray[np.int32]
    edge_dst: npt.NDArray[np.int32]
    edge_length_m: npt.NDArray[np.float64]
    edge_class: npt.NDArray[np.int8]
    edge_free_speed_kmh: npt.NDArray[np.float64]
    reachable: npt.NDArray[np.bool_]

    @property
    def n_nodes(self) -> int:
        """Number of graph nodes."""
        return int(self.lat_deg.size)

    def total_length_km(self) -> float:
        """Length of all directed edges, each two-way road counted twice, in km."""
        return float(self.edge_length_m.sum() / 1000.0)

    def distance_m(self, node: int, others: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Straight-line distance from one node to many (equirectangular, fine at city scale), in m."""
        lat0 = np.radians(self.lat_deg[node])
        dx = np.radians(self.lon_deg[others] - self.lon_deg[node]) * np.cos(lat0)
        dy = np.radians(self.lat_deg[others] - self.lat_deg[node])
        return np.asarray(EARTH_RADIUS_M * np.hypot(dx, dy), dtype=np.float64)


def _parse_maxspeed_kmh(raw: str | None) -> float:
    if raw is None:
        return float("nan")
    try:
        return float(raw.split()[0])
    except ValueError:
        return float("nan")


def load_road_network(path: Path) -> RoadNetwork:
    """Read drivable ways of an ``.osm`` XML extract into a directed graph (oneway tags honoured)."""
    if not path.exists():
        raise ConfigurationError(f"road network file not found: {path}")
    node_pos: dict[int, tuple[float, float, bool]] = {}
    ways: list[tuple[list[int], int, int, float]] = []
    for _event, elem in ET.iterparse(path, events=("end",)):
        if elem.tag == "node":
            signal = any(
                t.get("k") == "highway" and t.get("v") == "traffic_signals" for t in elem.iter("tag")
            )
            node_pos[int(elem.attrib["id"])] = (float(elem.attrib["lat"]), float(elem.attrib["lon"]), signal)
            elem.clear()
        elif elem.tag == "way":
            tags = {t.get("k"): t.get("v") for t in elem.iter("tag")}
            cls = _CLASS_OF_HIGHWAY.get(tags.get("highway") or "")
            if cls is not None:
                oneway = {"yes": 1, "true": 1, "1": 1, "-1": -1}.get(tags.get("oneway") or "", 0)
                refs = [int(nd.attrib["ref"]) for nd in elem.iter("nd")]
                ways.append((refs, cls, oneway, _parse_maxspeed_kmh(tags.get("maxspeed"))))
            elem.clear()
    index: dict[int, int] = {}
    src: list[int] = []
    dst: list[int] = []
    cls_list: list[int] = []
    max_list: list[float] = []
    for refs, cls, oneway, maxspeed in ways:
        ids = [index.setdefault(r, len(index)) for r in refs if r in node_pos]
        a, b = ids[:-1], ids[1:]
        if oneway >= 0:
            src += a
            dst += b
        if oneway <= 0:
            src += b
            dst += a
        n = len(a) * (2 if oneway == 0 else 1)
        cls_list += [cls] * n
        max_list += [maxspeed] * n
    if not src:
        raise ConfigurationError(f"no drivable roads in {path}")
    order = sorted(index, key=index.__getitem__)
    lat = np.array([node_pos[i][0] for i in order])
    lon = np.array([node_pos[i][1] for i in order])
    has_signal = np.array([node_pos[i][2] for i in order], dtype=bool)
    s, d = np.array(src, dtype=np.int32), np.array(dst, dtype=np.int32)
    keep = s != d
    s, d = s[keep], d[keep]
    cls_arr = np.array(cls_list, dtype=np.int8)[keep]
    maxspeed_arr = np.array(max_list)[keep]
    lat0 = np.radians(lat[s])
    length = EARTH_RADIUS_M * np.hypot(
        np.radians(lon[d] - lon[s]) * np.cos(lat0), np.radians(lat[d] - lat[s])
    )
    speed = np.where(np.isnan(maxspeed_arr), FREE_FLOW_SPEED_KMH[cls_arr], maxspeed_arr)
    n = lat.size
    graph = csr_matrix((np.ones(s.size), (s, d)), shape=(n, n))
    _, labels = connected_components(graph, directed=True, connection="strong")
    biggest = np.bincount(labels).argmax()
    return RoadNetwork(
        lat_deg=lat, lon_deg=lon, has_signal=has_signal, edge_src=s, edge_dst=d,
        edge_length_m=np.maximum(length, 0.5), edge_class=cls_arr, edge_free_speed_kmh=speed,
        reachable=labels == biggest,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Places:
    """Candidate nodes for each kind of place, all on the strongly connected part of the network."""

    home: npt.NDArray[np.int64]
    work: npt.NDArray[np.int64]
    other: npt.NDArray[np.int64]
    charger_ac: npt.NDArray[np.int64]
    charger_dc: npt.NDArray[np.int64]
    depot: npt.NDArray[np.int64]


def choose_places(net: RoadNetwork, rng: np.random.Generator) -> Places:
    """Pick place nodes: homes on local streets, work on main roads, public chargers and depots spread out."""
    reachable = np.flatnonzero(net.reachable)
    on_local = np.zeros(net.n_nodes, dtype=bool)
    on_local[net.edge_src[np.isin(net.edge_class, (2, 3, 4))]] = True
    on_main = np.zeros(net.n_nodes, dtype=bool)
    on_main[net.edge_src[np.isin(net.edge_class, (0, 1))]] = True
    # An extract without local (or main) roads still gets homes (or workplaces): anywhere reachable.
    local = reachable[on_local[reachable] & ~on_main[reachable]]
    local = local if local.size else reachable
    main = reachable[on_main[reachable]]
    main = main if main.size else reachable
    # Public AC chargers: one per ~1.5 km² of a 100 km² core (assumed density; no cited charger map here).
    return Places(
        home=local,
        work=main,
        other=reachable,
        charger_ac=rng.choice(main, size=min(70, main.size), replace=False),
        charger_dc=rng.choice(main, size=min(8, main.size), replace=False),
        depot=rng.choice(main, size=min(4, main.size), replace=False),
    )
