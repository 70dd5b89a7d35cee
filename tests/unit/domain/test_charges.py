"""Charge sessions: one plug-in is one session, energies and losses, AC/DC, cost, idle after full."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from microfleet.domain.charges import charge_windows, summarise_charge
from microfleet.domain.places import Circle, Place, PlaceKind
from microfleet.domain.tariffs import PerKwhTariff
from microfleet.domain.vehicle_state import GEAR_CODES, TelemetryColumns

T0 = 1_700_000_000_000
LAT, LON = 31.2304, 121.4737


def plug_in(power_kw: list[float], plugged: list[float], ac_v: float = 220.0) -> TelemetryColumns:
    """Records one minute apart; pack takes 90 % of the grid power at 350 V."""
    n = len(power_kw)
    p = np.array(power_kw)
    return TelemetryColumns.from_arrays(
        "car-1",
        {
            "ts_ms": T0 + np.arange(n) * 60_000,
            "lat_deg": np.full(n, LAT),
            "lon_deg": np.full(n, LON),
            "soc_pct": np.linspace(40, 60, n),
            "pack_voltage_v": np.full(n, 350.0),
            "pack_current_a": -0.9 * p * 1000 / 350,
            "charger_power_kw": p,
            "charger_connected": np.array(plugged),
            "charger_ac_voltage_v": np.where(p > 0, ac_v, 0.0),
            "gear_code": np.full(n, GEAR_CODES["P"]),
        },
    )


def test_a_pause_while_plugged_is_one_session_and_unplug_ends_it() -> None:
    cols = plug_in([0, 3, 3, 0, 0, 3, 3, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1, 1, 0])  # 2 min pause
    windows = charge_windows(cols, [(1, 3), (5, 7)], np.array([], dtype=np.int64))
    assert [(w.start, w.power_end, w.end, r) for w, r in windows] == [(1, 6, 9, "unplugged")]


def test_session_figures() -> None:
    cols = plug_in([3.0] * 61 + [0.0] * 30, [1] * 90 + [0])
    windows = charge_windows(cols, [(0, 61)], np.array([], dtype=np.int64))
    ((w, reason),) = windows
    place = Place("home", "Home", PlaceKind.HOME, Circle(LAT, LON, 50), tariff_id="t")
    tariff = PerKwhTariff("t", 0.5, "CNY", "test")
    s = summarise_charge(cols, w, reason, [place], {"t": tariff})
    assert s.energy_grid_kwh == pytest.approx(3.0 + 1.5 / 60)  # 60 min at 3 kW + half a minute ramp
    assert s.energy_added_kwh == pytest.approx(0.9 * s.energy_grid_kwh)
    assert s.losses_kwh == pytest.approx(0.1 * s.energy_grid_kwh)
    assert s.peak_power_kw == 3.0
    assert s.current_kind == "AC"
    assert s.cost == pytest.approx(0.5 * s.energy_grid_kwh)
    assert s.currency == "CNY"
    assert s.idle_after_full_s == 30 * 60
    assert s.place_id == "home"
    assert s.soc_from_pct == 40


def test_dc_is_told_by_power_without_mains_voltage() -> None:
    cols = plug_in([30.0] * 10 + [0.0], [1] * 10 + [0], ac_v=0.0)
    ((w, reason),) = charge_windows(cols, [(0, 10)], np.array([], dtype=np.int64))
    assert summarise_charge(cols, w, reason).current_kind == "DC"


def test_driving_off_plugged_ends_the_session() -> None:
    cols = plug_in([3.0] * 5 + [0.0] * 5, [1] * 10)
    ((w, reason),) = charge_windows(cols, [(0, 5)], np.array([int(cols.ts_ms[7])]))
    assert (w.end, reason) == (7, "drove_off")


def test_still_plugged_at_the_end_is_open() -> None:
    cols = plug_in([3.0] * 5, [1] * 5)
    ((w, reason),) = charge_windows(cols, [(0, 5)], np.array([], dtype=np.int64))
    assert (w.power_end, w.end, reason) == (4, 4, "open")


def test_a_long_pause_starts_a_new_session_like_teslamate() -> None:
    power = [3.0] * 5 + [0.0] * 20 + [3.0] * 5 + [0.0, 0.0]
    cols = plug_in(power, [1] * 31 + [0])
    windows = charge_windows(cols, [(0, 5), (25, 30)], np.array([], dtype=np.int64))
    assert [(w.start, w.power_end, w.end, r) for w, r in windows] == [
        (0, 4, 25, "next_charge"),
        (25, 29, 31, "unplugged"),
    ]


def test_a_charge_measures_energy_per_soc_percent() -> None:
    n = 121  # 2 h at 3 kW grid, 2.7 kW into a pack of 0.135 kWh per SoC %: 20 % rise
    cols = plug_in([3.0] * n + [0.0], [1] * n + [0])
    soc = np.floor(40 + np.arange(n + 1) * (2.7 / 60) / 0.135)
    cols = TelemetryColumns.from_arrays(
        "car-1", {**{f: getattr(cols, f) for f in cols.__slots__[1:]}, "soc_pct": soc}
    )
    ((w, reason),) = charge_windows(cols, [(0, n)], np.array([], dtype=np.int64))
    assert summarise_charge(cols, w, reason).kwh_per_soc_pct == pytest.approx(0.135, rel=0.01)


def _recovered(reset_at: int | None = None) -> np.ndarray:
    """The BMS's recovered-energy counter: +2.8 kWh over the hour of flow (records 0-61), then flat."""
    counter = 100.0 + np.minimum(np.arange(91), 61) * 2.8 / 61
    if reset_at is not None:
        counter[reset_at:] -= counter[reset_at]
    return counter


SAMPLED_ADDED_KWH = 0.9 * (3.0 + 1.5 / 60)  # 2.7 kW into the pack for an hour and half a minute of ramp
CHARGE_COUNTER_CASES = [
    ("counters over the session", _recovered(), 2.8),
    ("a car that never sends counters", None, SAMPLED_ADDED_KWH),
    # the minute across the reset (records 29-30) comes from sampled power, 2.7 kW
    ("a counter reset mid-charge", _recovered(reset_at=30), 2.8 - 2.8 / 61 + 2.7 / 60),
]


@pytest.mark.parametrize(
    ("recovered", "added_kwh"),
    [c[1:] for c in CHARGE_COUNTER_CASES],
    ids=[c[0] for c in CHARGE_COUNTER_CASES],
)
def test_energy_added_comes_from_the_bms_counter_when_it_can(
    recovered: np.ndarray | None, added_kwh: float
) -> None:
    cols = plug_in([3.0] * 61 + [0.0] * 30, [1] * 90 + [0])
    if recovered is not None:
        cols = replace(cols, energy_used_kwh=np.full(91, 55.0), energy_recovered_kwh=recovered)
    ((w, reason),) = charge_windows(cols, [(0, 61)], np.array([], dtype=np.int64))
    s = summarise_charge(cols, w, reason)
    assert s.energy_added_kwh == pytest.approx(added_kwh, rel=1e-6)
    assert s.losses_kwh == pytest.approx(s.energy_grid_kwh - added_kwh, rel=1e-6)


def test_the_counter_gets_back_what_the_current_sensor_offset_kept_it_from_counting() -> None:
    # a +0.4 A offset made the BMS see 0.4 A x 350 V = 140 W less charging for 61 minutes
    cols = plug_in([3.0] * 61 + [0.0] * 30, [1] * 90 + [0])
    cols = replace(cols, energy_used_kwh=np.full(91, 55.0), energy_recovered_kwh=_recovered())
    ((w, reason),) = charge_windows(cols, [(0, 61)], np.array([], dtype=np.int64))
    s = summarise_charge(cols, w, reason, current_offset_a=0.4)
    assert s.energy_added_kwh == pytest.approx(2.8 + 0.14 * 61 / 60, rel=1e-6)


def test_a_plug_flag_that_drops_while_power_still_flows_does_not_cut_the_session() -> None:
    # Realistic sensors: the plug flag can read 0 (a lagging or missing flag) while the charger still
    # delivers; the session lasts while power flows, and summarising it must not run past its records.
    cols = plug_in([3.0] * 6 + [0.0] * 3, [1, 1, 1, 0, 0, 0, 0, 0, 0])
    ((w, reason),) = charge_windows(cols, [(0, 6)], np.array([], dtype=np.int64))
    assert (w.power_end, reason) == (5, "unplugged")
    assert w.end >= w.power_end
    s = summarise_charge(cols, w, reason)
    assert s.energy_grid_kwh == pytest.approx(3.0 * 5 / 60 + 1.5 / 60)  # 5 min at 3 kW, half a minute ramp
