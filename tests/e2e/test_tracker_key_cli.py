"""``microfleet vehicles tracker-key`` as an administrator uses it: issue a car's key, see it masked, rotate
it (the phone's old key stops at once), revoke it; and a report sent with the key reaches the car."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import build_services
from microfleet.settings import Settings
from tests.e2e.command import microfleet


def _reports(db: Path, key: str, ts_s: int) -> int:
    """The status ``GET /osmand`` answers a report sent with ``key``."""
    settings = Settings(database_url=f"sqlite:///{db}", history_derive_interval_s=0)
    services = build_services(settings)
    try:
        with TestClient(create_app(settings, services)) as client:
            query = urlencode({"id": key, "timestamp": ts_s, "lat": 48.85, "lon": 2.35, "speed": 12})
            return client.get(f"/osmand?{query}").status_code
    finally:
        services.close()


def test_issue_list_rotate_and_revoke(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    assert microfleet("admin", "add-vehicle", "ami-1", db=db).returncode == 0

    issued = microfleet("vehicles", "tracker-key", "issue", "ami-1", db=db)
    assert issued.returncode == 0, issued.stdout
    key = next(word for word in issued.stdout.split() if word.startswith("mft_"))
    assert "Traccar Client" in issued.stdout
    assert _reports(db, key, 1_700_000_000) == 200

    again = microfleet("vehicles", "tracker-key", "issue", "ami-1", db=db)
    assert again.returncode == 2 and "already has a tracker key; rotate it" in again.stdout

    listed = microfleet("vehicles", "tracker-key", "list", db=db).stdout
    assert "ami-1" in listed and f"{key[:8]}…" in listed and key not in listed

    rotated = microfleet("vehicles", "tracker-key", "rotate", "ami-1", db=db)
    new = next(word for word in rotated.stdout.split() if word.startswith("mft_"))
    assert new != key and "the old key has stopped working" in rotated.stdout
    assert _reports(db, key, 1_700_000_001) == 401
    assert _reports(db, new, 1_700_000_001) == 200

    assert microfleet("vehicles", "tracker-key", "revoke", "ami-1", db=db).returncode == 0
    assert _reports(db, new, 1_700_000_002) == 401
    gone = microfleet("vehicles", "tracker-key", "revoke", "ami-1", db=db)
    assert gone.returncode == 2 and "has no tracker key" in gone.stdout
    unknown = microfleet("vehicles", "tracker-key", "issue", "no-such-car", db=db)
    assert unknown.returncode == 2 and "does not exist" in unknown.stdout
