"""How a car moves along its route, second by second: cruise per road, red lights, smooth accelerations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from microfleet.sim.city import RoadNetwork

F64 = npt.NDArray[np.float64]

RED_LIGHT_P: Final = 0.5  # chance of stopping at a signal (assumed: equal red/green split)
RED_WAIT_MAX_S: Final = 60.0  # wait up to one minute at a red light (assumed cycle ~90-120 s)
EDGE_SPEED_SPREAD: Final = 0.15  # road-to-road spread of the traffic speed, ±15% (assumed)


@dataclass(frozen=True, slots=True)
class DriveTrace:
    """A drive sampled every second from departure: position, speed and acceleration."""

    dist_m: F64
    speed_mps: F64
    accel_mps2: F64
    lat_deg: F64
    lon_deg: F64

    @property
    def duration_s(self) -> int:
        """Seconds from departure to arrival."""
        return int(self.speed_mps.size)


def drive_trace(
    net: RoadNetwork,
    edges: npt.NDArray[np.int64],
    congestion: float,
    aggressiveness: float,
    top_speed_kmh: float,
    rng: np.random.Generator,
) -> DriveTrace:
    """Simulate one drive along ``edges`` at the traffic speed of the departure hour.

    Parameters
    ----------
    net
        The road network.
    edges
        Route as edge ids of the road network.
    congestion
        Travel-time multiplier of the hour (≥ 1).
    aggressiveness
        0 (gentle) … 1 (aggressive): speeding up to +15% and harder accelerations.
    top_speed_kmh
        The model's top speed (km/h).
    rng
        Random source (signal phases, road-to-road speed spread).

    Returns
    -------
    The drive, one sample per second.

    """
    length_m = net.edge_length_m[edges]
    speeding = 0.95 + 0.20 * aggressiveness
    spread = rng.uniform(1.0 - EDGE_SPEED_SPREAD, 1.0 + EDGE_SPEED_SPREAD, edges.size)
    speed_kmh = np.minimum(net.edge_free_speed_kmh[edges] * speeding * spread / congestion, top_speed_kmh)
    run_s = length_m / (speed_kmh / 3.6)
    red = net.has_signal[net.edge_dst[edges]] & (rng.random(edges.size) < RED_LIGHT_P)
    wait_s = np.where(red, rng.uniform(5.0, RED_WAIT_MAX_S, edges.size), 0.0)
    wait_s[-1] = 0.0
    end_s = np.cumsum(run_s + wait_s) - wait_s
    start_s = end_s - run_s
    cum_m = np.concatenate([[0.0], np.cumsum(length_m)])
    knot_t = np.empty(2 * edges.size)
    knot_s = np.empty(2 * edges.size)
    knot_t[0::2], knot_t[1::2] = start_s, end_s
    knot_s[0::2], knot_s[1::2] = cum_m[:-1], cum_m[1:]
    total_s = int(np.ceil(end_s[-1])) + 1
    s_raw = np.interp(np.arange(total_s, dtype=np.float64), knot_t, knot_s)
    v_raw = np.diff(s_raw, prepend=0.0)
    # A box filter turns steps in speed into ramps: 10 s (≈1 m/s² from 40 km/h) gentle, 4 s aggressive.
    window = max(2, round(10 - 6 * aggressiveness))
    padded = np.concatenate([v_raw, np.zeros(window)])
    speed = np.convolve(padded, np.ones(window) / window)[: padded.size]
    speed[-1] = 0.0
    dist = np.cumsum(speed)
    dist *= cum_m[-1] / max(dist[-1], 1e-9)
    nodes = np.concatenate([[net.edge_src[edges[0]]], net.edge_dst[edges]])
    return DriveTrace(
        dist_m=dist,
        speed_mps=speed,
        accel_mps2=np.diff(speed, prepend=0.0),
        lat_deg=np.interp(dist, cum_m, net.lat_deg[nodes]),
        lon_deg=np.interp(dist, cum_m, net.lon_deg[nodes]),
    )
