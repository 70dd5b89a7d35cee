"""The OSM extract as speed-limit segments: tags parsed, untagged ways kept, the shipped city's limits."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from microfleet.domain.reference_data import reference_data_dir
from microfleet.errors import ConfigurationError
from microfleet.intelligence.speeding import SpeedLimitMap
from microfleet.store.osm_roads import OsmSpeedLimits, load_road_segments, parse_maxspeed_kmh


@pytest.mark.parametrize(
    ("raw", "kmh"),
    [("50", 50.0), ("50 km/h", 50.0), ("30 mph", 30 * 1.609344), ("signals", math.nan), (None, math.nan)],
)
def test_maxspeed_tags(raw: str | None, kmh: float) -> None:
    got = parse_maxspeed_kmh(raw)
    assert (math.isnan(got) and math.isnan(kmh)) or got == pytest.approx(kmh)


def test_the_shipped_extract_has_a_few_signed_roads_among_many_unsigned() -> None:
    osm = reference_data_dir(None) / "osm"
    roads = load_road_segments(sorted(osm.glob("*.osm")))
    signed = np.isfinite(roads.maxspeed_kmh)
    # osm/README.md: 135 of 4,678 ways carry maxspeed (20-60 km/h); every way has a design speed
    assert 0 < signed.sum() < 0.1 * signed.size
    assert set(np.unique(roads.maxspeed_kmh[signed])) <= {20.0, 30.0, 40.0, 50.0, 60.0}
    assert np.all(np.isfinite(roads.design_speed_kmh))
    limits = OsmSpeedLimits(osm).speed_limit_map()
    i = int(np.flatnonzero(signed)[0])
    here = limits.limits_kmh(np.array([roads.lat_a_deg[i]]), np.array([roads.lon_a_deg[i]]))
    assert np.isfinite(here[0])


def test_a_missing_extract_is_named_and_an_empty_folder_knows_no_limit(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        load_road_segments([tmp_path / "none.osm"])
    empty: SpeedLimitMap = OsmSpeedLimits(tmp_path).speed_limit_map()
    assert np.isnan(empty.limits_kmh(np.array([31.2]), np.array([121.4]))[0])
