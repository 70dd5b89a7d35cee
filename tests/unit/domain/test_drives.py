"""Drive figures and the sequence checks that quarantine impossible records."""

from __future__ import annotations

import numpy as np
import pytest

from microfleet.domain.drives import screen_sequence, simplify_route, soc_anchored_kwh, summarise_drive
from microfleet.domain.places import Circle, Place, PlaceKind
from microfleet.domain.telemetry import RejectionReason
from microfleet.domain.vehicle_state import GEAR_CODES, TelemetryColumns

T0 = 1_700_000_000_000
LAT, LON = 31.2304, 121.4737


def drive_window(n: int = 121, dt_s: float = 5.0, **over: object) -> TelemetryColumns:
    """A straight drive north at 36 km/h (10 m/s): 50 m per 5 s record, 20 kW out, 350 V."""
    i = np.arange(n, dtype=float)
    arrays: dict[str, object] = {
        "ts_ms": T0 + (i * dt_s * 1000).astype(np.int64),
        "lat_deg": LAT + i * 50 / 111_195,
        "lon_deg": np.full(n, LON),
        "speed_kmh": np.full(n, 36.0),
        "odometer_km": 1000 + i * 0.05,
        "soc_pct": np.linspace(80, 78, n),
        "pack_voltage_v": np.full(n, 350.0),
        "pack_current_a": np.full(n, 20_000 / 350),
        "altitude_m": np.where(i < n / 2, 10 + i, 10 + (n - i)),
        "ambient_temp_c": np.full(n, 21.0),
        "gear_code": np.full(n, GEAR_CODES["D"]),
    }
    arrays.update(over)
    return TelemetryColumns.from_arrays("car-1", arrays)  # type: ignore[arg-type]


def test_drive_figures_from_its_window() -> None:
    home = Place("home", "Home", PlaceKind.HOME, Circle(LAT, LON, 100))
    d = summarise_drive(drive_window(), "stopped", usable_kwh=13.8, places=[home])
    assert d.duration_s == 600
    assert d.distance_odometer_km == pytest.approx(6.0)
    assert d.distance_gps_km == pytest.approx(6.0, rel=1e-3)
    assert d.energy_used_kwh == pytest.approx(20 * 600 / 3600)  # 20 kW for 10 min
    assert d.regen_kwh == pytest.approx(0.0)
    assert d.energy_soc_kwh == pytest.approx(0.02 * 13.8)
    assert d.efficiency_wh_per_km == pytest.approx(3333.3 / 6.0, rel=1e-3)
    # the profile climbs 10 -> 70 m over records 0-60, then falls 70 -> 11 m: 60 m up, 59 m down, of which
    # the last 1 m (12 -> 11) stays inside the 2 m noise band and is not counted
    assert d.ascent_m == pytest.approx(60.0)
    assert d.descent_m == pytest.approx(58.0)
    assert d.start_place_id == "home"
    assert d.end_place_id is None
    assert d.route[0] == (round(LAT, 6), LON)
    assert len(d.route) == 2  # a straight line simplifies to its two ends


def test_regen_is_counted_and_net_energy_drops() -> None:
    current = np.where(np.arange(121) % 2 == 0, 60.0, -30.0)
    d = summarise_drive(drive_window(pack_current_a=current), "stopped", usable_kwh=None)
    # 350 V x (+60 A, -30 A) alternating every 5 s record: +21 kW and -10.5 kW, each 5 s step averaging
    # their midpoint over 10 min; regen is the negative half, 10.5 kW averaged with 0 kW over the same time
    assert d.energy_used_kwh == pytest.approx((21.0 - 10.5) / 2 * 600 / 3600)
    assert d.regen_kwh == pytest.approx(10.5 / 2 * 600 / 3600)
    assert d.energy_used_kwh < 20 * 600 / 3600  # less than the same drive at a steady 20 kW
    assert d.energy_soc_kwh is None


def test_gps_jump_is_quarantined_and_not_counted() -> None:
    lat = LAT + np.arange(121) * 50 / 111_195
    lat[60] += 0.45  # 50 km north for one 5 s record
    cols = drive_window(lat_deg=lat)
    cleaned, refused = screen_sequence(cols)
    assert [q.ts_ms for q in refused] == [int(cols.ts_ms[60])]
    assert refused[0].reason is RejectionReason.IMPLAUSIBLE_SEQUENCE
    assert "GPS jump" in refused[0].detail
    unscreened = summarise_drive(cols, "stopped", None)
    assert unscreened.data_gap_s > 0  # even unscreened, the jump is a gap, not 100 km of driving
    assert unscreened.distance_gps_km < 6.1
    assert summarise_drive(cleaned, "stopped", None).distance_gps_km == pytest.approx(6.0, rel=1e-3)
    assert np.isnan(cleaned.lat_deg[60])
    assert cleaned.gear_code[60] == GEAR_CODES["D"]  # the record's other signals still count


def test_a_real_relocation_is_accepted_after_three_agreeing_fixes() -> None:
    lat = LAT + np.arange(121) * 50 / 111_195
    lat[60:] += 0.45
    _, refused = screen_sequence(drive_window(lat_deg=lat))
    assert refused == []


def test_odometer_going_back_is_quarantined() -> None:
    odo = 1000 + np.arange(121) * 0.05
    odo[70] = 990.0
    cleaned, refused = screen_sequence(drive_window(odometer_km=odo))
    assert np.isnan(cleaned.odometer_km[70])
    assert summarise_drive(cleaned, "stopped", None).distance_odometer_km == pytest.approx(6.0)
    assert len(refused) == 1
    assert "odometer" in refused[0].detail


def test_odometer_spike_blames_the_spike_not_the_next_record() -> None:
    odo = 1000 + np.arange(121) * 0.05
    odo[70] = 5000.0
    cols = drive_window(odometer_km=odo)
    _, refused = screen_sequence(cols)
    assert [q.ts_ms for q in refused] == [int(cols.ts_ms[70])]


def test_soc_rising_while_driving_without_regen_is_quarantined() -> None:
    soc = np.linspace(80, 78, 121)
    soc[50] = 90.0
    _, refused = screen_sequence(drive_window(soc_pct=soc))
    assert [q.detail for q in refused] == ["SoC rose while driving without regeneration"]


def test_a_record_with_two_implausible_readings_is_excluded_once() -> None:
    lat = LAT + np.arange(121) * 50 / 111_195
    lat[50] += 0.45  # its position jumps 50 km ...
    soc = np.linspace(80, 78, 121)
    soc[50] = 90.0  # ... and its SoC rises while driving
    cleaned, refused = screen_sequence(drive_window(lat_deg=lat, soc_pct=soc))
    (only,) = refused  # the store keeps one excluded row per record: two would collide
    assert only.ts_ms == int(cleaned.ts_ms[50])
    assert "GPS jump" in only.detail and "SoC rose" in only.detail
    assert np.isnan(cleaned.lat_deg[50]) and np.isnan(cleaned.soc_pct[50])


def test_clean_drive_passes_the_screen() -> None:
    cols = drive_window()
    cleaned, refused = screen_sequence(cols)
    assert cleaned is cols
    assert refused == []


def test_route_keeps_a_corner() -> None:
    lat = np.array([LAT, LAT + 0.001, LAT + 0.002, LAT + 0.002, LAT + 0.002])
    lon = np.array([LON, LON, LON, LON + 0.001, LON + 0.002])
    route = simplify_route(lat, lon, 10.0)
    assert route == ((LAT, LON), (round(LAT + 0.002, 6), LON), (round(LAT + 0.002, 6), round(LON + 0.002, 6)))


def test_soc_steps_anchor_the_energy_between_samples() -> None:
    # 1 s truth: power swings with a 7 s period, which 5 s samples alias; the BMS floors SoC to 1 %.
    t_s = np.arange(1200)
    power_kw = 5 + 4 * np.sin(2 * np.pi * t_s / 7)
    cum_kwh = np.cumsum(power_kw) / 3600
    truth_kwh = float(cum_kwh[-1])
    soc = np.floor(80 - np.r_[0, cum_kwh[:-1]] / 0.14)
    k = np.arange(0, 1200, 5)
    cols = drive_window(
        n=k.size, pack_voltage_v=np.full(k.size, 100.0), pack_current_a=power_kw[k] * 10, soc_pct=soc[k]
    )
    sampled = summarise_drive(cols, "stopped", None).energy_used_kwh
    anchored = soc_anchored_kwh(cols, 0.14)
    assert sampled is not None
    assert anchored is not None
    assert abs(anchored - truth_kwh) < abs(sampled - truth_kwh)
    assert anchored == pytest.approx(truth_kwh, rel=0.01)
    assert summarise_drive(cols, "stopped", None, kwh_per_soc_pct=0.14).energy_used_kwh == anchored
    # a calibration that disagrees with the current sensor is not trusted
    assert summarise_drive(cols, "stopped", None, kwh_per_soc_pct=0.5).energy_used_kwh == sampled


def _counter(n: int = 121, kwh: float = 3.5, start: float = 812.0) -> np.ndarray:
    return start + np.linspace(0.0, kwh, n)


def _reset_counter(at: int) -> np.ndarray:
    used = _counter()
    used[at:] -= used[at]  # the BMS restarts counting from zero at record ``at``
    return used


# drive_window samples 20 kW for 10 min = 3.333 kWh; the counters say 3.5 kWh used, 0.2 kWh recovered.
COUNTER_CASES = [
    ("counters over the whole drive", {}, 3.5 - 0.2, 0.2),
    ("a car that never sends counters", {"energy_used_kwh": None}, 20 * 600 / 3600, 0.0),
    # across the reset (records 60-61) neither counter is read: those 5 s come from sampled power (20 kW)
    (
        "a counter reset mid-drive",
        {"energy_used_kwh": _reset_counter(61)},
        (3.5 - 3.5 / 120) + 20 * 5 / 3600 - (0.2 - 0.2 / 120),
        0.2 - 0.2 / 120,
    ),
    (
        "counters on the last third only",
        {"energy_used_kwh": np.r_[np.full(80, np.nan), _counter(41)]},
        20 * 600 / 3600,
        0.0,
    ),
]


@pytest.mark.parametrize(
    ("over", "used_kwh", "regen_kwh"), [c[1:] for c in COUNTER_CASES], ids=[c[0] for c in COUNTER_CASES]
)
def test_drive_energy_comes_from_the_bms_counters_when_it_can(
    over: dict[str, object], used_kwh: float, regen_kwh: float
) -> None:
    arrays: dict[str, object] = {
        "energy_used_kwh": _counter(),
        "energy_recovered_kwh": _counter(kwh=0.2, start=301.0),
    }
    arrays.update(over)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    d = summarise_drive(drive_window(**arrays), "stopped", usable_kwh=13.8)
    assert d.energy_used_kwh == pytest.approx(used_kwh, rel=1e-6)
    assert d.regen_kwh == pytest.approx(regen_kwh, abs=1e-9)
    assert d.efficiency_wh_per_km == pytest.approx(used_kwh * 1000 / 6.0, rel=1e-3)


def test_counted_energy_loses_what_the_current_sensor_offset_added() -> None:
    # the BMS counted 0.5 A x 350 V = 175 W too much for 10 min: 29.2 Wh that never left the pack
    w = drive_window(energy_used_kwh=_counter(), energy_recovered_kwh=np.full(121, 301.0))
    d = summarise_drive(w, "stopped", usable_kwh=13.8, current_offset_a=0.5)
    assert d.energy_used_kwh == pytest.approx(3.5 - 0.175 / 6, rel=1e-6)
