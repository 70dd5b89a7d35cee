"""`drives` and `charges` as a person reads them: where a drive began and ended, by the places' names."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from microfleet.bootstrap import build_services
from microfleet.settings import Settings
from tests.e2e.command import microfleet

START_MS = 1_764_000_000_000
HOME = (31.2000, 121.4700)
OFFICE = (31.2476, 121.4700)  # where 120 samples at 30 km/h, 4e-4° apart, end


def _day() -> list[dict[str, object]]:
    """Parked at home, a 10-minute drive to the office, parked there, then 40 minutes on a charger."""
    parked_home = [
        {"vehicle_id": "mini-2", "ts_ms": START_MS - 600_000 + i * 60_000, "gear": "P", "speed_kmh": 0.0,
         "odometer_km": 500.0, "soc_pct": 60.0, "lat_deg": HOME[0], "lon_deg": HOME[1]}
        for i in range(10)
    ]  # fmt: skip
    driving = [
        {"vehicle_id": "mini-2", "ts_ms": START_MS + i * 5000, "gear": "D", "speed_kmh": 30.0,
         "odometer_km": 500 + i * 30 * 5 / 3600, "soc_pct": 60.0, "lat_deg": HOME[0] + i * 4e-4,
         "lon_deg": HOME[1]}
        for i in range(120)
    ]  # fmt: skip
    parked_office = [
        {"vehicle_id": "mini-2", "ts_ms": START_MS + 600_000 + i * 60_000, "gear": "P", "speed_kmh": 0.0,
         "odometer_km": 505.0, "soc_pct": 59.0, "lat_deg": OFFICE[0], "lon_deg": OFFICE[1]}
        for i in range(10)
    ]  # fmt: skip
    charging = [
        {"vehicle_id": "mini-2", "ts_ms": START_MS + 1_200_000 + i * 60_000, "gear": "P", "speed_kmh": 0.0,
         "odometer_km": 505.0, "soc_pct": 59.0 + i * 0.5, "lat_deg": OFFICE[0], "lon_deg": OFFICE[1],
         "charger_connected": True, "charger_power_kw": 3.3, "pack_voltage_v": 105.0,
         "pack_current_a": -30.0}
        for i in range(40)
    ]  # fmt: skip
    return parked_home + driving + parked_office + charging


def _place_id(added: str) -> str:
    match = re.search(r"place (\S+) \(", added)
    assert match, added
    return match.group(1)


def test_drives_and_charges_show_places_by_name_and_a_deleted_place_by_its_id(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    assert microfleet("admin", "add-vehicle", "mini-2", db=db).returncode == 0
    home = microfleet("places", "add", "Home", "--lat", str(HOME[0]), "--lon", str(HOME[1]), db=db)
    office = microfleet(
        "places", "add", "Office Tower", "--lat", str(OFFICE[0]), "--lon", str(OFFICE[1]),
        "--vehicle", "mini-2", db=db,
    )  # fmt: skip
    assert home.returncode == 0 and office.returncode == 0, (home.stdout, office.stdout)
    office_id = _place_id(office.stdout)

    services = build_services(Settings(database_url=f"sqlite:///{db}"))
    try:
        report = services.ingest.ingest(
            msgspec.json.encode(_day()),
            "application/json",
            credential_vehicle_id="mini-2",
            source="test",
            now_ms=START_MS + 86_400_000,
        )
    finally:
        services.close()
    assert report.accepted == 180, report.results[:3]
    assert "1 drives, 1 charges" in microfleet("rederive", "mini-2", db=db).stdout

    drives = microfleet("drives", "mini-2", db=db)
    assert drives.returncode == 0, drives.stdout
    row = next(line for line in drives.stdout.splitlines() if "2025-11-24" in line)
    assert "Home" in row and "Office Tower" in row, drives.stdout
    assert office_id not in drives.stdout
    charges = microfleet("charges", "mini-2", db=db)
    assert "Office Tower" in charges.stdout, charges.stdout

    # A place deleted since the drive was derived: the stored drive still names it, by its id.
    assert microfleet("places", "delete", office_id, db=db).returncode == 0
    after = microfleet("drives", "mini-2", db=db).stdout
    assert office_id in after and "Office Tower" not in after and "Home" in after, after
