"""The roads of the OpenStreetMap extracts as :class:`RoadSegments`: where speed limits come from.

Map data © OpenStreetMap contributors, ODbL 1.0 (https://www.openstreetmap.org/copyright). Read with the
standard library's ``iterparse``, as ``sim/city.py`` and ``web/streets.py`` read the same files. Each
drivable way's ``maxspeed`` is kept where it is tagged as a number of km/h ("50", "50 km/h"); "mph" values
are converted; anything else ("signals", "walk", "CN:urban") counts as untagged.
"""

from __future__ import annotations

import itertools
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Final

import numpy as np

from microfleet.errors import ConfigurationError
from microfleet.intelligence.speeding import RoadSegments, SpeedLimitMap

KMH_PER_MPH: Final = 1.609344  # international mile (1959 agreement)
# Design speeds of China's urban road standard CJJ 37-2012 §3.2.1 (main roads 40-60, secondary 30-50,
# branch roads 20-40 km/h) at the middle of each range, as the twin's road graph takes them (sim/city.py).
DESIGN_SPEED_KMH: Final = {
    "trunk": 50.0, "primary": 50.0, "secondary": 40.0, "tertiary": 35.0, "residential": 30.0,
    "unclassified": 30.0, "living_street": 20.0, "trunk_link": 30.0, "primary_link": 30.0,
    "secondary_link": 30.0, "tertiary_link": 30.0,
}  # fmt: skip


def parse_maxspeed_kmh(raw: str | None) -> float:
    """A ``maxspeed`` tag in km/h (NaN when absent or not a number)."""
    if not raw:
        return float("nan")
    text = raw.strip().lower()
    mph = text.endswith("mph")
    number = text.removesuffix("mph").removesuffix("km/h").strip()
    try:
        value = float(number)
    except ValueError:
        return float("nan")
    return value * KMH_PER_MPH if mph else value


def load_road_segments(paths: list[Path]) -> RoadSegments:
    """Every drivable way of the extracts as straight segments with its limit and design speed."""
    cols: dict[str, list[float]] = {k: [] for k in ("la", "oa", "lb", "ob", "max", "design")}
    for path in paths:
        if not path.is_file():
            raise ConfigurationError(f"OpenStreetMap extract not found: {path}")
        nodes: dict[str, tuple[float, float]] = {}
        for _event, elem in ET.iterparse(path, events=("end",)):
            if elem.tag == "node":
                nodes[elem.attrib["id"]] = (float(elem.attrib["lat"]), float(elem.attrib["lon"]))
                elem.clear()
            elif elem.tag == "way":
                tags = {t.get("k"): t.get("v") for t in elem.iter("tag")}
                design = DESIGN_SPEED_KMH.get(tags.get("highway") or "")
                if design is not None:
                    line = [nodes[nd.attrib["ref"]] for nd in elem.iter("nd") if nd.attrib["ref"] in nodes]
                    limit = parse_maxspeed_kmh(tags.get("maxspeed"))
                    for (la, oa), (lb, ob) in itertools.pairwise(line):
                        for key, value in zip(cols, (la, oa, lb, ob, limit, design), strict=True):
                            cols[key].append(value)
                elem.clear()
    arr = {k: np.array(v, dtype=np.float64) for k, v in cols.items()}
    return RoadSegments(arr["la"], arr["oa"], arr["lb"], arr["ob"], arr["max"], arr["design"])


class OsmSpeedLimits:
    """The speed-limit map of every ``*.osm`` extract in a folder, read once on first use."""

    def __init__(self, folder: Path) -> None:
        """Remember the folder; nothing is read until a limit is asked for."""
        self._folder = folder
        self._lock = threading.Lock()
        self._map: SpeedLimitMap | None = None

    def speed_limit_map(self) -> SpeedLimitMap:
        """The map (an empty one when the folder holds no extract: no limit is then known anywhere)."""
        with self._lock:
            if self._map is None:
                paths = sorted(self._folder.glob("*.osm")) if self._folder.is_dir() else []
                self._map = SpeedLimitMap(load_road_segments(paths))
            return self._map
