"""`import` as an administrator runs it: the twin's Parquet, NDJSON and CSV in, exactly once, then drives."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from microfleet.bootstrap import build_services
from microfleet.domain.telemetry import SIGNALS
from microfleet.settings import Settings
from tests.e2e.command import Ran, microfleet

FIELDS = ["vehicle_id", "ts_ms", *(s.name for s in SIGNALS)]
KIND = {s.name: s.kind for s in SIGNALS}


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny twin's files: 2 cars, 1 day (about 1,400 records, under a second)."""
    out = tmp_path_factory.mktemp("twin")
    done = microfleet("simulate", "--vehicles", "2", "--days", "1", "--seed", "3", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out / "telemetry.parquet"


def _rows(parquet: Path) -> list[dict[str, object]]:
    return [{k: v for k, v in row.items() if v is not None} for row in pq.read_table(parquet).to_pylist()]


def _cell(name: str, value: object) -> str:
    """A value as docs/telemetry.md's CSV writes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return str(value)


def _write_csv(path: Path, rows: list[dict[str, object]], header: list[str] = FIELDS) -> None:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for row in rows:
            writer.writerow([_cell(name, row.get(name)) for name in header])


def _count(db: Path, vehicle_id: str | None = None) -> int:
    services = build_services(Settings(database_url=f"sqlite:///{db}"))
    try:
        return services.telemetry.count(vehicle_id)
    finally:
        services.close()


def _quarantine(db: Path) -> list[tuple[str, str | None, str]]:
    services = build_services(Settings(database_url=f"sqlite:///{db}"))
    try:
        entries = services.quarantine.list(limit=100)
    finally:
        services.close()
    return [(e.reason, e.vehicle_id, e.detail) for e in entries]


def _register(db: Path, *vehicle_ids: str) -> None:
    for vehicle_id in vehicle_ids:
        assert microfleet("admin", "add-vehicle", vehicle_id, db=db).returncode == 0


def _import(db: Path, *args: str) -> Ran:
    done = microfleet("import", *args, db=db)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_the_twins_parquet_is_imported_once_and_derives_drives(tmp_path: Path, twin: Path) -> None:
    db = tmp_path / "m.db"
    rows = _rows(twin)
    cars = sorted({str(r["vehicle_id"]) for r in rows})
    assert cars == ["twin-own-00000", "twin-own-00001"]
    _register(db, *cars)

    first = _import(db, str(twin))
    assert f"{len(rows):,} accepted, 0 duplicate, 0 rejected" in first.stdout, first.stdout
    assert _count(db) == len(rows) == pq.ParquetFile(twin).metadata.num_rows

    again = _import(db, str(twin))
    assert f"0 accepted, {len(rows):,} duplicate, 0 rejected" in again.stdout, again.stdout
    assert _count(db) == len(rows)

    # The same records as protocol-v1 NDJSON and as CSV are the same records: all duplicates.
    ndjson = tmp_path / "export.ndjson"
    ndjson.write_text("".join(json.dumps(r) + "\n" for r in rows))
    as_csv = tmp_path / "export.csv"
    _write_csv(as_csv, rows)
    both = _import(db, str(ndjson), str(as_csv))
    assert f"0 accepted, {2 * len(rows):,} duplicate, 0 rejected" in both.stdout, both.stdout
    assert _count(db) == len(rows) and _quarantine(db) == []

    derived = microfleet("derive", "--interval-s", "0", db=db)
    assert "derived 2 car(s)" in derived.stdout, derived.stdout
    trips = pq.read_table(twin.parent / "truth" / "trips.parquet").column("vehicle_id").to_pylist()
    driver = max(cars, key=trips.count)
    drives = microfleet("drives", driver, db=db)
    assert drives.returncode == 0 and f"Drives of {driver}" in drives.stdout
    shown = [line for line in drives.stdout.splitlines() if line.startswith("│ 2026-")]
    assert len(shown) == trips.count(driver) > 0, drives.stdout  # one drive per true trip


def test_ndjson_and_csv_store_the_same_records_as_parquet(tmp_path: Path, twin: Path) -> None:
    rows = _rows(twin)[:300]
    cars = sorted({str(r["vehicle_id"]) for r in rows})
    ndjson = tmp_path / "a.jsonl"
    ndjson.write_text("".join(json.dumps(r) + "\n" for r in rows))
    as_csv = tmp_path / "a.csv"
    _write_csv(as_csv, rows)
    stored = []
    for name, path in (("ndjson", ndjson), ("csv", as_csv)):
        db = tmp_path / f"{name}.db"
        _register(db, *cars)
        assert "300 accepted" in _import(db, str(path), "--batch-records", "70").stdout
        services = build_services(Settings(database_url=f"sqlite:///{db}"))
        try:
            stored.append([r for car in cars for r in services.telemetry.records(car, 0, 2**62)])
        finally:
            services.close()
    assert stored[0] == stored[1] and len(stored[0]) == 300


def test_a_malformed_csv_row_is_quarantined_and_its_neighbours_stored(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    _register(db, "mini-1")
    ts = 1_764_000_000_000
    header = ["vehicle_id", "ts_ms", "soc_pct", "ignition_on", "tyre_pressure_kpa", "dtc_codes", "note"]
    lines = [
        ",".join(header),
        f"mini-1,{ts},81.5,true,230;231;228;230,,kept out",
        f"mini-1,{ts + 5000},eighty,false,,,",  # not a number: wrong_type
        f"mini-1,{ts + 10000},80.5,,,P0A80;P0562,",
        f"mini-1,{ts + 15000},80,TRUE,,,,surplus",  # one cell too many: malformed
        f"ghost-9,{ts},50,,,,",  # not registered: refused, not stored, not quarantined
        f"mini-1,{ts + 20000},79.5,False,230;231;228,,",  # three tyres: out_of_range
        "",
        f"mini-1,{ts + 25000},79,,,,",
    ]
    path = tmp_path / "other-tool.csv"
    path.write_text("\n".join(lines) + "\n")

    done = _import(db, str(path))
    assert "3 accepted, 0 duplicate, 4 rejected (3 quarantined)" in done.stdout, done.stdout
    for reason in ("wrong_type", "malformed_json", "out_of_range", "unknown_vehicle"):
        assert reason in done.stdout
    assert "dropped column(s) that are not protocol-v1 fields: note" in done.stdout
    assert "not registered, their records refused: ghost-9" in done.stdout
    assert _count(db, "mini-1") == 3 and _count(db, "ghost-9") == 0
    kept = _quarantine(db)
    assert sorted(r for r, _, _ in kept) == ["malformed_json", "out_of_range", "wrong_type"]
    assert all(vehicle == "mini-1" for _, vehicle, _ in kept)
    details = {reason: detail for reason, _, detail in kept}
    assert details["wrong_type"].startswith("line 3: ") and "soc_pct" in details["wrong_type"]
    assert details["malformed_json"].startswith("line 5: 8 cells where the header names 7")

    again = _import(db, str(path))  # exactly once: nothing doubled, the quarantine keeps each row once
    assert "0 accepted, 3 duplicate, 4 rejected" in again.stdout, again.stdout
    assert _count(db, "mini-1") == 3 and len(_quarantine(db)) == 3

    changed = tmp_path / "changed.csv"  # a stored key with other values: quarantined as over HTTP
    changed.write_text(f"vehicle_id,ts_ms,soc_pct\nmini-1,{ts},82.0\nmini-1,{ts + 30000},78.5\n")
    conflict = _import(db, str(changed))
    assert "1 accepted, 0 duplicate, 1 rejected (1 quarantined)" in conflict.stdout, conflict.stdout
    assert "conflicting_duplicate" in conflict.stdout
    assert _count(db, "mini-1") == 4 and len(_quarantine(db)) == 4

    registered = _import(db, str(path), "--register")
    assert "1 accepted" in registered.stdout and "registered 1 vehicle(s): ghost-9" in registered.stdout
    assert _count(db, "ghost-9") == 1


def test_refusals_of_files_it_cannot_read(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    odd = tmp_path / "data.txt"
    odd.write_text("x")
    no_key = tmp_path / "k.csv"
    no_key.write_text("vehicle_id,soc_pct\nmini-1,50\n")
    for args, message in [
        ([str(odd)], "cannot tell the format of data.txt"),
        ([str(odd), "--format", "xml"], "format 'xml' is not one of parquet, ndjson, csv"),
        ([str(tmp_path / "none.csv")], "is not a file"),
        ([str(no_key)], "k.csv has no ts_ms column"),
        ([str(odd), "--format", "parquet"], "data.txt is not a readable Parquet file"),
    ]:
        done = microfleet("import", *args, db=db)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert message in done.stdout, (args, done.stdout)


def test_a_parquet_of_another_tool_drops_columns_by_name_and_reads_nan_as_not_measured(
    tmp_path: Path,
) -> None:
    import pyarrow as pa

    db = tmp_path / "m.db"
    _register(db, "mini-1")
    ts = 1_764_000_000_000
    table = pa.table({
        "vehicle_id": ["mini-1"] * 3,
        "ts_ms": pa.array([ts, ts + 5000, ts + 10000], pa.timestamp("ms", "UTC")),
        "soc_pct": [80.0, float("nan"), 300.0],  # pandas' missing value; then out of range
        "state": ["park", "park", "drive"],  # the twin's truth: not a protocol-v1 signal
        "true_soc_pct": [80.3, 80.2, 80.1],
    })  # fmt: skip
    path = tmp_path / "frame.parquet"
    pq.write_table(table, path)
    done = _import(db, str(path))
    assert "2 accepted, 0 duplicate, 1 rejected (1 quarantined)" in done.stdout, done.stdout
    assert (
        "frame.parquet: dropped column(s) that are not protocol-v1 fields: state, true_soc_pct" in done.stdout
    )
    assert "row 3: Expected `float` <= 100.0" in done.stdout
    services = build_services(Settings(database_url=f"sqlite:///{db}"))
    try:
        stored = list(services.telemetry.records("mini-1", 0, 2**62))
    finally:
        services.close()
    assert [(r.ts_ms, r.soc_pct) for r in stored] == [(ts, 80.0), (ts + 5000, None)]
