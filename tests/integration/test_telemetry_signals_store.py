"""Every protocol-v1 signal survives the store on SQLite and PostgreSQL, in its own column.

``record_to_row`` flattens a record by struct position (tyres into four columns, DTC codes as JSON), so a
signal added to the protocol must land in the column of its name; this checks it for every signal.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from microfleet.bootstrap import Services
from microfleet.domain.telemetry import SIGNAL_NAMES, TelemetryRecord
from microfleet.store.history import HistoryStore
from microfleet.store.migrate import alembic_config, current_revision, upgrade
from microfleet.store.schema import telemetry
from tests.integration.conftest import NOW_MS

EVERY_SIGNAL: dict[str, Any] = {
    "lat_deg": 31.2304,
    "lon_deg": 121.4737,
    "heading_deg": 92.0,
    "gps_hdop": 0.9,
    "altitude_m": 4.5,
    "speed_kmh": 27.5,
    "odometer_km": 12_345.6,
    "gear": "D",
    "ignition_on": True,
    "soc_pct": 81.5,
    "pack_voltage_v": 96.4,
    "pack_current_a": 12.4,
    "pack_temp_c": 21.0,
    "cell_voltage_min_v": 3.281,
    "cell_voltage_max_v": 3.292,
    "bms_soh_pct": 97.0,
    "charger_connected": False,
    "charger_power_kw": 0.0,
    "charger_ac_voltage_v": 0.0,
    "locked": False,
    "doors_open": False,
    "cabin_temp_c": 22.5,
    "ambient_temp_c": 18.0,
    "hvac_on": True,
    "hvac_power_kw": 0.45,
    "tyre_pressure_kpa": [230.0, 231.0, 229.5, 228.0],
    "aux_battery_v": 14.2,
    "dtc_codes": ["P0A80", "U0100"],
    "energy_used_kwh": 4_321.987,
    "energy_recovered_kwh": 1_234.567,
}


def test_the_sample_record_names_every_signal() -> None:
    assert set(EVERY_SIGNAL) == set(SIGNAL_NAMES)


def test_a_record_with_every_signal_round_trips_column_by_column(services: Services) -> None:
    services.admin.add_vehicle("car-all", name="Every signal", model_id=None)
    sent = [
        TelemetryRecord(vehicle_id="car-all", ts_ms=NOW_MS - 10_000, **EVERY_SIGNAL),
        TelemetryRecord(vehicle_id="car-all", ts_ms=NOW_MS - 5_000, energy_used_kwh=4_322.0),
    ]
    report = services.ingest.ingest(
        msgspec.json.encode(sent),
        "application/json",
        credential_vehicle_id="car-all",
        source="test",
        now_ms=NOW_MS,
    )
    assert report.accepted == 2, report
    assert list(services.telemetry.records("car-all", 0, 2**62)) == sent
    with services.engine.connect() as conn:
        row = conn.execute(telemetry.select().where(telemetry.c.ts_ms == NOW_MS - 10_000)).one()._mapping
    assert row["energy_used_kwh"] == pytest.approx(4_321.987)
    assert row["energy_recovered_kwh"] == pytest.approx(1_234.567)
    assert row["aux_battery_v"] == pytest.approx(14.2)
    assert row["tyre_pressure_rr_kpa"] == pytest.approx(228.0)
    latest = services.telemetry.latest_state("car-all")
    assert latest is not None
    assert latest["signals"]["energy_used_kwh"] == {"value": 4_322.0, "ts_ms": NOW_MS - 5_000}
    assert latest["signals"]["energy_recovered_kwh"]["value"] == pytest.approx(1_234.567)
    cols = HistoryStore(services.engine).load_window("car-all", None)
    np.testing.assert_allclose(cols.energy_used_kwh, [4_321.987, 4_322.0])
    assert cols.energy_recovered_kwh[0] == pytest.approx(1_234.567) and np.isnan(cols.energy_recovered_kwh[1])
    # the store is at the newest migration, whichever it is (0004 added the counters)
    head = ScriptDirectory.from_config(alembic_config(services.engine)).get_current_head()
    assert current_revision(services.engine) == head


def test_the_counter_migration_keeps_rows_stored_before_it(tmp_path: Any) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, revision="0003_history_stale")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO vehicles (vehicle_id, name, device_token_sha256, created_at_ms) "
            "VALUES ('v', 'v', 'x', 0)"
        )
        conn.exec_driver_sql(
            "INSERT INTO telemetry (vehicle_id, ts_ms, soc_pct, record_digest, received_at_ms) "
            "VALUES ('v', 1, 50.0, 7, 1)"
        )
    upgrade(engine)
    columns = {c["name"] for c in inspect(engine).get_columns("telemetry")}
    assert {"energy_used_kwh", "energy_recovered_kwh"} <= columns
    with engine.connect() as conn:
        assert conn.exec_driver_sql(
            "SELECT soc_pct, energy_used_kwh, energy_recovered_kwh FROM telemetry"
        ).one() == (50.0, None, None)
    engine.dispose()
