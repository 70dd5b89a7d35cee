"""Drive cycles: traces match their published figures; bad traces are refused."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from microfleet.errors import NotFoundError, PhysicsInputError
from microfleet.physics.cycles import CYCLE_NAMES, DriveCycle, _parse, load_cycle, wltc_class_for


@pytest.mark.parametrize("name", CYCLE_NAMES)
def test_trace_matches_published_duration_distance_and_top_speed(name):
    cycle = load_cycle(name)
    ref = cycle.reference
    assert ref is not None
    assert cycle.duration_s == pytest.approx(ref.duration_s, abs=1.0)
    assert cycle.distance_km == pytest.approx(ref.distance_km, rel=0.005)
    assert cycle.speed_kmh.max() == pytest.approx(ref.max_speed_kmh, abs=0.05)
    assert cycle.speed_kmh[0] == 0 and cycle.speed_kmh[-1] == 0
    assert cycle.source


def test_wltc_class1_sum_equals_the_jrc_checksum():
    assert load_cycle("wltc_class1").speed_kmh.sum() == pytest.approx(41_139.6, abs=0.05)
    assert load_cycle("wltc_class2").speed_kmh.sum() == pytest.approx(81_536.9, abs=0.05)


def _phases(speed: np.ndarray, bounds: list[int]) -> list[tuple[float, float]]:
    """(max km/h, km) of each phase [a, b) of a 1 Hz trace."""
    out = []
    for a, b in itertools.pairwise(bounds):
        v = speed[a : b + 1] if b < len(speed) else speed[a:]
        out.append((float(v.max()), float(np.sum(0.5 * (v[1:] + v[:-1])) / 3600.0)))
    return out


def test_cltc_p_is_the_standards_trace():
    # GB/T 38146.1-2019 as published (DieselNet; evkx): 1,800 s, 14.48 km, 114 km/h, phases 674 / 693 /
    # 433 s with maxima 48.1 / 71.2 / 114.0 km/h and 2.45 / 5.91 / 6.12 km, 12 stops.
    cycle = load_cycle("cltc_p")
    assert cycle.speed_kmh.shape[0] == 1800
    assert cycle.distance_km == pytest.approx(14.48, abs=0.005)
    phases = _phases(cycle.speed_kmh, [0, 674, 674 + 693, 1800])
    assert [m for m, _ in phases] == pytest.approx([48.1, 71.2, 114.0])
    assert [km for _, km in phases] == pytest.approx([2.45, 5.91, 6.12], abs=0.01)
    stopped = cycle.speed_kmh == 0.0
    assert int(np.sum(np.diff(stopped.astype(int)) == 1)) + int(stopped[0]) == 12


def test_wmtc_part1_reduced_speed_differs_from_part1_only_where_the_hump_is_capped():
    full = load_cycle("wmtc_part1").speed_kmh[1:]  # the reduced trace is stamped 1-600 s
    reduced = load_cycle("wmtc_part1_reduced_speed").speed_kmh
    # Elsewhere the two sources agree within their 0.1 km/h rounding (carculator truncates; cycle README).
    differ = np.flatnonzero(np.abs(full - reduced) > 0.1 + 1e-9) + 1  # back to seconds
    assert set(differ.tolist()) <= set(range(188, 247)) | set(range(569, 574))
    assert reduced.max() == 50.0
    assert full.max() == 60.0


def test_cycle_file_with_a_time_jump_is_refused():
    with pytest.raises(PhysicsInputError, match="step by 1 s"):
        _parse("bad", "time_s,speed_kmh\n0,0.0\n1,5.0\n3,6.0\n")
    with pytest.raises(PhysicsInputError, match="header"):
        _parse("bad", "t,v\n0,0\n")
    assert _parse("ok", "time_s,speed_kmh\n1,0.0\n2,3.5\n").tolist() == [0.0, 3.5]


def test_unknown_cycle_is_refused():
    with pytest.raises(NotFoundError, match="unknown drive cycle 'ftp75'"):
        load_cycle("ftp75")


@pytest.mark.parametrize(
    ("speed", "message"),
    [
        ([0.0, 10.0, np.nan, 5.0], "gaps"),
        ([0.0, -3.0, 5.0], "negative"),
        ([0.0], "at least 2"),
    ],
)
def test_bad_traces_are_refused(speed, message):
    with pytest.raises(PhysicsInputError, match=message):
        DriveCycle("bad", np.asarray(speed), "test")


def test_wltc_class_from_power_to_mass():
    assert wltc_class_for(12.4) == "wltc_class1"  # Ami: 6 kW / 485 kg
    assert wltc_class_for(30.0) == "wltc_class2"
    assert wltc_class_for(48.8) == "wltc_class3b"
