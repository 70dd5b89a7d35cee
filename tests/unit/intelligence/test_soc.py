"""The SoC filter on data from the physics ECM (physics/battery.py), its gate, the baseline and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from microfleet.domain.catalogue import load_catalogue
from microfleet.errors import InvalidInputError
from microfleet.intelligence.soc import coulomb_count, estimate_soc
from microfleet.physics import Battery, VehicleParams

SAMPLE_S = 5


@pytest.fixture(scope="module")
def drive() -> dict[str, np.ndarray | float | int]:
    """Three hours of urban-like power from 95 % down past the LFP knee, with two rests; sampled at 5 s."""
    cat = load_catalogue()
    p = VehicleParams.from_specs([cat.get("wuling-hongguang-mini-ev-gen1-9kwh")], siblings=cat.all())
    rng = np.random.default_rng(3)
    n = 3 * 3600 // SAMPLE_S  # the ECM steps at the sample period (its RC update is exact for any step)
    power = np.convolve(np.clip(rng.normal(3.5, 5.0, n), -4.0, 15.0), np.ones(3) / 3, "same")
    power[480:840] = 0.0
    power[1400:1760] = 0.0
    battery = Battery.from_params(p, soc_pct=95.0, temp_c=20.0)
    cur, volt, soc, temp = (np.empty(n) for _ in range(4))
    for k in range(n):
        st = battery.step(np.array([power[k]]), float(SAMPLE_S))
        cur[k], volt[k], soc[k] = st.pack_current_a[0], st.pack_voltage_v[0], st.soc_pct[0]
        temp[k] = st.pack_temp_c[0]
    # a sample reports the current of the step that follows it, as the estimator counts it
    return {
        "t": np.arange(n) * float(SAMPLE_S), "i": cur, "v": volt, "soc": np.r_[95.0, soc[:-1]], "temp": temp,
        "q": float(battery.capacity_ah[0]), "ns": int(p.cells_in_series[0]),
    }  # fmt: skip


def _sensed(d, *, offset_a=0.0, gain=1.0, seed=0):
    rng = np.random.default_rng(seed)
    i = d["i"] * gain + offset_a + rng.normal(0.0, 0.11, d["i"].size)
    v = d["v"] + rng.normal(0.0, 0.004 * np.sqrt(d["ns"]), d["v"].size)
    return i, v


def _run(d, i, v, **kw):
    return estimate_soc(d["t"], i, v, d["temp"], chemistry="LFP", capacity_ah=d["q"], n_series=d["ns"], **kw)


def test_the_drive_leaves_the_plateau(drive):
    assert drive["soc"][0] > 90.0 and drive["soc"][-1] < 20.0


def test_converges_from_a_start_20_points_wrong(drive):
    i, v = _sensed(drive, offset_a=0.2, gain=1.01)
    track = _run(drive, i, v, initial_soc_pct=float(drive["soc"][0]) - 20.0)
    err = np.abs(track.soc_pct - drive["soc"])
    assert err[0] > 15.0
    assert np.max(err[-20:]) < 2.0  # the last 100 s, down the steep end of the curve
    assert np.all(track.sigma_pct > 0.0)


def test_beats_plain_coulomb_counting_with_a_gain_and_offset_error(drive):
    i, v = _sensed(drive, offset_a=0.4, gain=1.02, seed=1)
    start = float(drive["soc"][0])
    track = _run(drive, i, v, initial_soc_pct=start)
    cc = coulomb_count(drive["t"], i, capacity_ah=drive["q"], initial_soc_pct=start)
    err_f = np.abs(track.soc_pct - drive["soc"])[-200:]
    err_cc = np.abs(cc - drive["soc"])[-200:]
    assert err_cc.max() > 1.0  # the sensor error is big enough to matter
    assert err_f.max() < err_cc.max()


def test_learns_the_sign_of_a_current_offset(drive):
    for offset in (-0.8, 0.8):
        i, v = _sensed(drive, offset_a=offset, seed=2)
        track = _run(drive, i, v, initial_soc_pct=float(drive["soc"][0]))
        # three hours recover only part of it (voltage counts little under load), but the sign and a share
        assert np.sign(track.offset_a) == np.sign(offset)
        assert abs(track.offset_a) > 0.1


def test_gate_refuses_and_counts_spikes_and_dropouts(drive):
    i, v = _sensed(drive, seed=4)
    clean = _run(drive, i, v, initial_soc_pct=float(drive["soc"][0]))
    i_bad, v_bad = i.copy(), v.copy()
    i_bad[[300, 900]] = 20.0 * drive["q"]  # 20 C: outside physics
    i_bad[1300] = -3.0 * drive["q"]  # 3 C of charge in mid-drive that the voltage does not show
    v_bad[[500, 1100]] = 0.0  # voltage dropouts
    v_bad[1700] *= 0.5
    track = _run(drive, i_bad, v_bad, initial_soc_pct=float(drive["soc"][0]))
    assert track.rejected == 6
    assert track.rejected_current == 3 and track.rejected_voltage == 3
    assert np.max(np.abs(track.soc_pct - clean.soc_pct)) < 0.5


def test_clean_data_is_not_refused(drive):
    i, v = _sensed(drive, seed=5)
    assert _run(drive, i, v, initial_soc_pct=float(drive["soc"][0])).rejected == 0


def test_coulomb_counting_integrates_and_skips_sleep():
    t = np.array([0.0, 180.0, 360.0, 360.0 + 7200.0, 360.0 + 7210.0])
    i = np.array([100.0, 100.0, 50.0, -36.0, 0.0])
    out = coulomb_count(t, i, capacity_ah=100.0, initial_soc_pct=80.0)
    # 100 A for 180 s = 5 Ah = 5 % twice; the 2 h gap is a sleeping car: nothing; -36 A for 10 s = +0.1 %
    np.testing.assert_allclose(out, [80.0, 75.0, 70.0, 70.0, 70.1])


@pytest.mark.parametrize(
    ("t", "i", "why"),
    [
        (np.array([0.0]), np.array([1.0]), "at least 2 samples"),
        (np.array([0.0, np.nan]), np.array([1.0, 1.0]), "finite"),
        (np.array([0.0, 5.0]), np.array([1.0, np.nan]), "finite"),
        (np.array([0.0, 0.0]), np.array([1.0, 1.0]), "strictly increasing"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(t, i, why):
    with pytest.raises(InvalidInputError, match=why):
        estimate_soc(
            t,
            i,
            np.full(t.size, 100.0),
            np.full(t.size, 20.0),
            chemistry="LFP",
            capacity_ah=50.0,
            n_series=32,
        )
    with pytest.raises(InvalidInputError, match=why):
        coulomb_count(t, i, capacity_ah=50.0, initial_soc_pct=50.0)


def test_voltage_nan_is_skipped_not_refused(drive):
    i, v = _sensed(drive, seed=6)
    v[100:150] = np.nan
    track = _run(drive, i, v, initial_soc_pct=float(drive["soc"][0]))
    assert np.all(np.isfinite(track.soc_pct)) and track.rejected == 0


def test_non_positive_capacity_is_refused():
    with pytest.raises(InvalidInputError, match="capacity_ah"):
        coulomb_count(np.array([0.0, 1.0]), np.zeros(2), capacity_ah=0.0, initial_soc_pct=50.0)


def test_a_jumpy_coarse_bms_pulls_the_estimate_little(drive):
    i, v = _sensed(drive, seed=7)
    start = float(drive["soc"][0])
    clean = _run(drive, i, v, initial_soc_pct=start)
    bms = np.round(drive["soc"] / 5.0) * 5.0  # a coarse BMS, 5 % steps
    bms[(drive["soc"] > 30.0) & (drive["soc"] < 80.0)] += 15.0  # that jumps 15 points up on the plateau
    track = _run(drive, i, v, initial_soc_pct=start, bms_soc_pct=bms)
    plateau = (drive["soc"] > 30.0) & (drive["soc"] < 80.0)
    assert np.max(np.abs(bms - drive["soc"])[plateau]) > 14.0
    assert (
        np.max(np.abs(track.soc_pct - drive["soc"])[plateau])
        < np.max(np.abs(clean.soc_pct - drive["soc"])[plateau]) + 4.0
    )


def test_a_bms_reading_far_outside_the_gate_is_refused(drive):
    i, v = _sensed(drive, seed=8)
    bms = np.full(drive["soc"].size, np.nan)
    bms[10] = 0.0  # the car reports 0 % at 95 %: garbage
    track = _run(drive, i, v, initial_soc_pct=float(drive["soc"][0]), bms_soc_pct=bms)
    assert track.rejected == 1
    assert abs(track.soc_pct[10] - drive["soc"][10]) < 1.0
