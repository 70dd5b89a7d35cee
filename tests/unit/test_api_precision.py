"""Numbers leave the API rounded to the precision of what was measured, by the unit in their name."""

from __future__ import annotations

import dataclasses

from microfleet.api.precision import decimals_for, rounded, rounded_row
from microfleet.domain.drives import Drive


def _drive(**changes: object) -> Drive:
    base = {f.name: None for f in dataclasses.fields(Drive)}
    base.update(
        vehicle_id="car-1", start_ts_ms=1, end_ts_ms=2, end_reason="stopped", distance_gps_km=0.0,
        duration_s=0.0, data_gap_s=0.0, record_count=2, route=(),
    )  # fmt: skip
    base.update(changes)
    return Drive(**base)  # type: ignore[arg-type]


def test_a_drive_is_rounded_by_unit_and_keeps_its_integers() -> None:
    d = rounded(
        _drive(
            distance_gps_km=27.600000000000364,
            energy_used_kwh=1.23456789,
            efficiency_wh_per_km=112.34567,
            soc_start_pct=81.456789,
            start_lat_deg=31.230412345678,
            duration_s=1199.999999,
            route=((31.23041234567, 121.47371234567),),
            record_count=7,
        )
    )
    assert d.distance_gps_km == 27.6
    assert d.energy_used_kwh == 1.235
    assert d.efficiency_wh_per_km == 112.3
    assert d.soc_start_pct == 81.46
    assert d.start_lat_deg == 31.230412
    assert d.duration_s == 1200.0
    assert d.route == ((31.230412, 121.473712),)
    assert d.record_count == 7 and d.start_ts_ms == 1


def test_the_most_specific_suffix_wins() -> None:
    assert decimals_for("kwh_per_soc_pct") == 5  # not the 2 places of a plain percentage
    assert decimals_for("efficiency_wh_per_km") == 1  # not the 3 of a distance in km
    assert decimals_for("max_speed_kmh") == 1
    assert decimals_for("vehicle_id") is None


def test_a_summary_row_is_rounded_and_its_text_kept() -> None:
    row = rounded_row({"distance_km": 0.1 + 0.2, "cost": 1 / 3, "currency": "CNY", "drive_count": 3})
    assert row == {"distance_km": 0.3, "cost": 0.3333, "currency": "CNY", "drive_count": 3}
