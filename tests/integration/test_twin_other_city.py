from __future__ import annotations

from pathlib import Path

import numpy as np

from microfleet.sim.engine import Twin
from microfleet.sim.run import run_days
from microfleet.sim.scenario import Scenario

LAT0, LON0, STEP_DEG = 52.37, 4.89, 0.003  # a made-up 8 × 8 grid at Amsterdam, ~300 m apart


def grid_osm(path: Path, n: int = 8) -> None:
    nodes = [
        f'<node id="{r * n + c + 1}" lat="{LAT0 + r * STEP_DEG}" lon="{LON0 + c * STEP_DEG}">'
        + ('<tag k="highway" v="traffic_signals"/>' if (r + c) % 3 == 0 else "")
        + "</node>"
        for r in range(n)
        for c in range(n)
    ]
    ways = []
    for r in range(n):
        refs = "".join(f'<nd ref="{r * n + c + 1}"/>' for c in range(n))
        kind = "primary" if r % 3 == 0 else "residential"
        ways.append(f'<way id="{r + 1}">{refs}<tag k="highway" v="{kind}"/></way>')
    for c in range(n):
        refs = "".join(f'<nd ref="{r * n + c + 1}"/>' for r in range(n))
        ways.append(f'<way id="{100 + c}">{refs}<tag k="highway" v="secondary"/></way>')
    path.write_text('<?xml version="1.0"?><osm version="0.6">' + "".join(nodes + ways) + "</osm>")


def test_another_osm_extract_can_be_dropped_in(tmp_path: Path) -> None:
    city = tmp_path / "grid.osm"
    grid_osm(city)
    twin = Twin(Scenario(vehicles=5, days=1, seed=2, city=str(city), climate_city="Amsterdam"))
    day = next(run_days(twin))
    lat = day.telemetry["lat_deg"].to_numpy()
    lat = lat[~np.isnan(lat)]  # a record without a fix (a tunnel) has no position
    assert lat.size > 0
    assert day.truth["trips"].num_rows > 0
    assert np.all((lat > LAT0 - 0.01) & (lat < LAT0 + 8 * STEP_DEG + 0.01))
