"""Pack checks of the battery service: a weak cell's growing spread, heating while charging."""

from __future__ import annotations

import msgspec

from microfleet.domain.telemetry import TelemetryRecord
from microfleet.services.battery import pack_checks

T0 = 1_767_225_600_000


def rest(k: int, spread_mv: float) -> TelemetryRecord:
    return TelemetryRecord(
        vehicle_id="car", ts_ms=T0 + k * 600_000, pack_current_a=0.5,
        cell_voltage_min_v=3.30 - spread_mv / 1000, cell_voltage_max_v=3.30,
    )  # fmt: skip


def test_a_spread_growing_by_20_mv_at_rest_is_a_weak_cell_and_a_steady_one_is_not() -> None:
    steady = [rest(k, 8.0) for k in range(100)]
    assert pack_checks(steady)[1] == []
    growing = [rest(k, 8.0 + 0.4 * k) for k in range(100)]
    checks, findings = pack_checks(growing)
    assert [f[0] for f in findings] == ["weak_cell"]
    assert checks["cell_spread_mv"]["last"] - checks["cell_spread_mv"]["first"] >= 20
    # the same spread under load says nothing: cells sag differently while driving
    loaded = [msgspec.structs.replace(r, pack_current_a=80.0) for r in growing]
    assert pack_checks(loaded) == ({}, [])


def test_pack_heating_15_k_above_ambient_while_charging() -> None:
    def charging(k: int, rise: float) -> TelemetryRecord:
        return TelemetryRecord(
            vehicle_id="car", ts_ms=T0 + k * 10_000, pack_current_a=-20.0, charger_power_kw=3.3,
            pack_temp_c=20.0 + rise, ambient_temp_c=20.0,
        )  # fmt: skip

    assert pack_checks([charging(k, 4.0) for k in range(50)])[1] == []
    _, findings = pack_checks([charging(k, k * 0.5) for k in range(50)])
    assert [f[0] for f in findings] == ["charge_temperature_rise"]
