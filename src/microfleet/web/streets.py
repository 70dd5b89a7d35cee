"""The city's streets as GeoJSON, from the OpenStreetMap extract the twin drives on; no tile server.

Map data © OpenStreetMap contributors, ODbL 1.0 (https://www.openstreetmap.org/copyright). The ``.osm``
XML is read with the standard library's ``iterparse``, as ``sim/city.py`` reads it for the road graph; the
map keeps every way tagged ``highway`` that a car or a person walks on, with its class for the line width.
"""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Final

# Drawn, widest first; the twin drives on the first eight (sim/city.py's classes).
STREET_CLASSES: Final = (
    "trunk", "primary", "secondary", "tertiary", "unclassified", "residential", "living_street",
    "service", "trunk_link", "primary_link", "secondary_link", "tertiary_link", "pedestrian",
)  # fmt: skip
COORDINATE_DECIMALS: Final = 6  # 1e-6 degree is 0.11 m of latitude: finer than any street's width


@dataclass(frozen=True, slots=True)
class StreetMap:
    """The streets of one or more extracts as a GeoJSON FeatureCollection (UTF-8 bytes) and its ETag."""

    body: bytes
    etag: str
    way_count: int


def streets_geojson(paths: list[Path]) -> StreetMap:
    """Read every street of the ``.osm`` extracts into one FeatureCollection of LineStrings ([lon, lat])."""
    features: list[dict[str, object]] = []
    for path in paths:
        features.extend(_features(path))
    body = json.dumps(
        {
            "type": "FeatureCollection",
            "attribution": "© OpenStreetMap contributors, ODbL 1.0",
            "features": features,
        },
        separators=(",", ":"),
    ).encode()
    return StreetMap(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"', len(features))


def _features(path: Path) -> list[dict[str, object]]:
    nodes: dict[str, tuple[float, float]] = {}
    out: list[dict[str, object]] = []
    for _event, elem in ET.iterparse(path, events=("end",)):
        if elem.tag == "node":
            lon = round(float(elem.attrib["lon"]), COORDINATE_DECIMALS)
            lat = round(float(elem.attrib["lat"]), COORDINATE_DECIMALS)
            nodes[elem.attrib["id"]] = (lon, lat)
            elem.clear()
        elif elem.tag == "way":
            tags = {t.get("k"): t.get("v") for t in elem.iter("tag")}
            kind = tags.get("highway")
            if kind in STREET_CLASSES:
                line = [nodes[nd.attrib["ref"]] for nd in elem.iter("nd") if nd.attrib["ref"] in nodes]
                if len(line) >= 2:
                    properties: dict[str, object] = {"class": kind}
                    if tags.get("name"):
                        properties["name"] = tags["name"]
                    out.append(
                        {
                            "type": "Feature",
                            "properties": properties,
                            "geometry": {"type": "LineString", "coordinates": line},
                        }
                    )
            elem.clear()
    return out
