"""Derived history on real SQLite and PostgreSQL: late data, duplicates, shuffles, idempotency."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import pytest

from microfleet.bootstrap import Services
from microfleet.domain.places import Circle, Place, PlaceKind
from microfleet.services.derivation import HistoryDeriver
from microfleet.store.history import HistoryStore
from tests.integration.test_history_day import DAY0_MS, HOME, body, day_records

FOREVER = (0, 2**62, 100_000)


@pytest.fixture
def car(services: Services) -> tuple[Services, HistoryStore, HistoryDeriver]:
    services.admin.add_vehicle("car-h", name="History test car", model_id=None)
    store = HistoryStore(services.engine, usable_kwh_of_model=lambda _m: 13.8)
    return services, store, HistoryDeriver(store)


def ingest(services: Services, deriver: HistoryDeriver, records: list[Any]) -> None:
    report = services.ingest.ingest(
        body(records),
        "application/json",
        credential_vehicle_id="car-h",
        source="test",
        now_ms=DAY0_MS + 2 * 86_400_000,
    )
    deriver.ingest_landed(report)


def snapshot(store: HistoryStore) -> tuple[list[Any], ...]:
    return (
        store.drives("car-h", *FOREVER),
        store.charges("car-h", *FOREVER),
        store.states("car-h", *FOREVER),
        store.drains("car-h", *FOREVER),
    )


def test_a_day_in_order_gives_two_drives_and_one_charge(
    car: tuple[Services, HistoryStore, HistoryDeriver],
) -> None:
    services, store, deriver = car
    services.places.put(
        Place("home", "Home", PlaceKind.HOME, Circle(*HOME, 100), tariff_id="cn_sh_residential_tou")
    )
    ingest(services, deriver, day_records("car-h"))
    drives, charges, states, drains = snapshot(store)
    assert [round(d.duration_s) for d in drives] == [1200, 1200]
    assert drives[0].start_place_id == "home"
    assert drives[1].end_place_id == "home"
    assert drives[0].energy_used_kwh == pytest.approx(15 * 1195 / 3600, rel=0.01)
    # the store keeps where the energy came from (migration 0010): sampled V x I here, no SoC resolution
    assert [(d.energy_source, d.energy_resolution_kwh) for d in drives] == [("pack_power", None)] * 2
    assert drives[0].distance_odometer_km == pytest.approx(11.95, abs=0.02)
    (charge,) = charges
    assert charge.energy_source == "pack_power"
    assert charge.energy_grid_kwh == pytest.approx(3.3, rel=0.01)
    assert charge.losses_kwh == pytest.approx(0.33, rel=0.02)
    assert charge.idle_after_full_s == pytest.approx(1230, abs=31)
    assert charge.end_ts_ms - charge.start_ts_ms == 4800_000
    assert charge.current_kind == "AC"
    assert charge.end_reason == "unplugged"
    assert charge.place_id is None  # charged away from home: no tariff, no cost
    assert [s["status"] for s in states] == [
        "asleep", "driving", "parked", "charging", "asleep", "parked", "asleep", "driving", "asleep"
    ]  # fmt: skip
    assert any(d["asleep"] for d in drains)


def test_shuffled_duplicated_late_batches_give_the_same_history(
    car: tuple[Services, HistoryStore, HistoryDeriver],
) -> None:
    services, store, deriver = car
    records = day_records("car-h")
    rng = np.random.default_rng(7)
    order = rng.permutation(len(records))
    resent = rng.choice(len(records), size=300)
    stream = [records[i] for i in order] + [records[i] for i in resent]
    for part in np.array_split(np.arange(len(stream)), 25):
        ingest(services, deriver, [stream[i] for i in part])
    incremental = snapshot(store)
    deriver.rederive("car-h")
    assert snapshot(store) == incremental
    assert len(incremental[0]) == 2
    assert len(incremental[1]) == 1


def test_rederiving_changes_nothing(car: tuple[Services, HistoryStore, HistoryDeriver]) -> None:
    services, store, deriver = car
    ingest(services, deriver, day_records("car-h"))
    first = snapshot(store)
    deriver.rederive("car-h")
    deriver.records_landed("car-h", [DAY0_MS + 9 * 3600 * 1000])
    assert snapshot(store) == first


def test_a_late_record_recomputes_only_its_window(car: tuple[Services, HistoryStore, HistoryDeriver]) -> None:
    services, store, deriver = car
    records = day_records("car-h")
    late = records[600]  # a record of the drive home
    ingest(services, deriver, [r for r in records if r.ts_ms != late.ts_ms])
    before = snapshot(store)
    report = services.ingest.ingest(
        body([late]),
        "application/json",
        credential_vehicle_id="car-h",
        source="test",
        now_ms=DAY0_MS + 86_400_000,
    )
    (recompute,) = deriver.ingest_landed(report)
    assert recompute.from_ms is not None
    assert recompute.from_ms <= late.ts_ms
    assert recompute.records < len(records)  # not the whole history
    after = snapshot(store)
    assert after[0][1].record_count == before[0][1].record_count + 1
    assert after[0][0] == before[0][0]
    deriver.rederive("car-h")
    assert snapshot(store) == after


def test_gps_jump_is_excluded_with_a_reason(car: tuple[Services, HistoryStore, HistoryDeriver]) -> None:
    services, store, deriver = car
    records = day_records("car-h")
    import msgspec

    k = 120
    records[k] = msgspec.structs.replace(records[k], lat_deg=(records[k].lat_deg or 0) + 0.45)
    ingest(services, deriver, records)
    (excluded,) = store.excluded("car-h", 10)
    assert excluded["reason"] == "implausible_sequence"
    assert "GPS jump" in excluded["detail"]
    drives = store.drives("car-h", *FOREVER)
    assert drives[0].distance_gps_km < 12.5


def test_the_current_sensor_offset_is_read_asleep_and_taken_off(
    car: tuple[Services, HistoryStore, HistoryDeriver],
) -> None:
    services, store, deriver = car
    ingest(services, deriver, day_records("car-h", offset_a=0.3))  # 0.3 A x 340 V = 102 W: still asleep
    drives, charges, _, _ = snapshot(store)
    assert charges[0].energy_added_kwh == pytest.approx(0.9 * 3.3, rel=0.005)
    assert drives[0].energy_used_kwh == pytest.approx(15 * 1195 / 3600, rel=0.01)


def with_bms_counters(records: list[Any]) -> list[Any]:
    """The records with the BMS's cumulative counters: measured V x I held from one record to the next."""
    used = recovered = 0.0
    out = []
    for k, r in enumerate(records):
        if k:
            prev = records[k - 1]
            kwh = prev.pack_voltage_v * prev.pack_current_a / 1000 * (r.ts_ms - prev.ts_ms) / 3_600_000
            used, recovered = used + max(kwh, 0.0), recovered + max(-kwh, 0.0)
        out.append(
            msgspec.structs.replace(
                r, energy_used_kwh=round(used, 3), energy_recovered_kwh=round(recovered, 3)
            )
        )
    return out


def test_a_car_sending_bms_counters_gets_their_energy_less_the_sensor_offset(
    car: tuple[Services, HistoryStore, HistoryDeriver],
) -> None:
    services, store, deriver = car
    ingest(services, deriver, with_bms_counters(day_records("car-h", offset_a=0.3)))
    drives, charges, _, _ = snapshot(store)
    # 15 kW for the full 20 min (the counters held power to the parked record): sampled power says 1197.5 s
    assert drives[0].energy_used_kwh == pytest.approx(15 * 1200 / 3600, rel=5e-4)
    assert drives[0].regen_kwh == pytest.approx(0.0, abs=1e-3)
    assert charges[0].energy_added_kwh == pytest.approx(0.9 * 3.3, rel=5e-3)
    assert drives[0].energy_source == charges[0].energy_source == "counters"
