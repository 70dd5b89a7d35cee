"""The GPS-jump walk measured in NumPy passes decides exactly as the walk measuring one pair at a time.

The oracle below is the walk as it was written first (one :func:`hop_m` call per question), kept here
so the faster walk in ``domain/drives.py`` can be checked against it on random fixes: clean drives,
scattered glitches, fixes that jump more often than not (bench/ingest.py's records did until 2026-12-04),
long runs of jumps and a tow (three agreeing jumps move the reference).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from microfleet.domain.drives import MAX_PLAUSIBLE_SPEED_KMH, screen_sequence
from microfleet.domain.pack_energy import MS_PER_H
from microfleet.domain.places import hop_m
from microfleet.domain.vehicle_state import TelemetryColumns

T0 = 1_700_000_000_000


def _plausible(cols: TelemetryColumns, a: int, b: int) -> bool:
    d_m = hop_m(cols.lat_deg[[a, b]], cols.lon_deg[[a, b]])[0]
    dt_h = max(int(cols.ts_ms[b] - cols.ts_ms[a]), 1) / MS_PER_H
    return bool(d_m / 1000 / dt_h <= MAX_PLAUSIBLE_SPEED_KMH)


def oracle_jumps(cols: TelemetryColumns) -> list[tuple[int, str]]:
    """The walk one pair at a time: keep the last plausible fix; three agreeing jumps move it."""
    fix = np.flatnonzero(~(np.isnan(cols.lat_deg) | np.isnan(cols.lon_deg)))
    bad: list[tuple[int, str]] = []
    ref = int(fix[0])
    streak: list[int] = []
    for i in fix[1:].tolist():
        if _plausible(cols, ref, i):
            ref, streak = i, []
            continue
        if streak and _plausible(cols, streak[-1], i):
            streak.append(i)
            if len(streak) >= 3:
                bad = [b for b in bad if b[0] not in streak]
                ref, streak = i, []
            continue
        streak = [i]
        d_km = hop_m(cols.lat_deg[[ref, i]], cols.lon_deg[[ref, i]])[0] / 1000
        dt_s = (cols.ts_ms[i] - cols.ts_ms[ref]) / 1000
        bad.append((i, f"GPS jump of {d_km:.1f} km in {dt_s:.0f} s"))
    return bad


def fixes(seed: int, n: int, jump_share: float, jump_deg: float, tow: bool) -> TelemetryColumns:
    rng = np.random.default_rng(seed)
    ts = T0 + np.cumsum(rng.integers(1_000, 30_000, n)).astype(np.int64)
    lat = 31.2 + np.cumsum(rng.normal(0, 0.0003, n))
    lon = 121.47 + np.cumsum(rng.normal(0, 0.0003, n))
    jumped = rng.random(n) < jump_share
    lat[jumped] += rng.normal(0, jump_deg, int(jumped.sum()))
    lon[jumped] += rng.normal(0, jump_deg, int(jumped.sum()))
    if tow:
        lat[n // 2 :] += 0.5  # 55 km away from here on: the car was towed
    lat[rng.random(n) < 0.05] = np.nan  # no fix
    arrays: dict[str, npt.ArrayLike] = {"ts_ms": ts, "lat_deg": np.round(lat, 6), "lon_deg": np.round(lon, 6)}
    return TelemetryColumns.from_arrays("car", arrays)


def screened_jumps(cols: TelemetryColumns) -> list[tuple[int, str]]:
    _, refused = screen_sequence(cols)
    index = {int(ts): i for i, ts in enumerate(cols.ts_ms.tolist())}
    return [(index[q.ts_ms], q.detail) for q in refused]


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 3_000),
    jump_share=st.sampled_from([0.0, 0.01, 0.2, 0.6, 0.9]),
    jump_deg=st.sampled_from([0.005, 0.05, 1.0]),
    tow=st.booleans(),
)
def test_walk_decides_as_one_pair_at_a_time(
    seed: int, n: int, jump_share: float, jump_deg: float, tow: bool
) -> None:
    cols = fixes(seed, n, jump_share, jump_deg, tow)
    assume(np.isfinite(cols.lat_deg).sum() >= 2)
    assert screened_jumps(cols) == oracle_jumps(cols)


@pytest.mark.parametrize("jump_share", [0.3, 0.85])
def test_long_runs_of_jumps_cross_the_measured_blocks(jump_share: float) -> None:
    """Thousands of jumped fixes: the walk measures several blocks and long-kept references."""
    cols = fixes(7, 6_000, jump_share, 1.0, tow=False)
    expected = oracle_jumps(cols)
    assert len(expected) > 1_000
    assert screened_jumps(cols) == expected
