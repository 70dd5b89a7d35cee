"""Drive cycles: traces match their published figures; bad traces are refused."""

from __future__ import annotations

import numpy as np
import pytest

from microfleet.errors import NotFoundError, PhysicsInputError
from microfleet.physics.cycles import CYCLE_NAMES, DriveCycle, load_cycle, wltc_class_for


@pytest.mark.parametrize("name", [n for n in CYCLE_NAMES if n != "cltc_p"])
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


def test_cltc_p_matches_distance_and_speed_but_not_duration():
    # Pinned on purpose: the only public transcription found runs 1,834 samples against the
    # standard's 1,800 s (README.md here). A corrected trace must change this test.
    cycle = load_cycle("cltc_p")
    assert cycle.distance_km == pytest.approx(14.48, abs=0.01)
    assert cycle.speed_kmh.max() == pytest.approx(114.0)
    assert cycle.duration_s == 1833.0
    # The extra samples are longer idling (453 s vs the standard's 398 s), with 21 s less motion
    # (1,381 s vs 1,402 s): not duplicated time stamps that resampling could remove.
    stopped = cycle.speed_kmh == 0.0
    assert int(stopped.sum()) == 453
    assert int((~stopped).sum()) == 1381
    assert int(np.sum(np.diff(stopped.astype(int)) == 1)) + int(stopped[0]) == 12  # idle periods


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
