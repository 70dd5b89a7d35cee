"""The web map's streets: an OSM extract's highways as GeoJSON LineStrings in [lon, lat] order."""

from __future__ import annotations

import json
from pathlib import Path

from microfleet.web.streets import streets_geojson

OSM = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6">
  <node id="1" lat="31.2300001" lon="121.4700004"/>
  <node id="2" lat="31.2310000" lon="121.4710000"/>
  <node id="3" lat="31.2320000" lon="121.4720000"/>
  <node id="4" lat="31.2330000" lon="121.4730000"/>
  <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/>
    <tag k="highway" v="primary"/><tag k="name" v="Main Rd"/></way>
  <way id="11"><nd ref="3"/><nd ref="4"/><tag k="highway" v="residential"/></way>
  <way id="12"><nd ref="1"/><nd ref="4"/><tag k="building" v="yes"/></way>
  <way id="13"><nd ref="2"/><nd ref="99"/><tag k="highway" v="service"/></way>
</osm>
"""


def test_streets_keep_highways_with_their_class_and_name(tmp_path: Path) -> None:
    path = tmp_path / "city.osm"
    path.write_text(OSM)
    found = streets_geojson([path])
    body = json.loads(found.body)
    assert body["type"] == "FeatureCollection"
    assert "OpenStreetMap" in body["attribution"]
    assert [f["properties"] for f in body["features"]] == [{"class": "primary", "name": "Main Rd"},
                                                           {"class": "residential"}]  # fmt: skip
    # [lon, lat], rounded to 1e-6 degree; a building is no street, a way with one known node no line
    assert body["features"][0]["geometry"]["coordinates"][0] == [121.47, 31.23]
    assert found.way_count == 2
    assert found.etag == streets_geojson([path]).etag  # the same map, the same ETag
