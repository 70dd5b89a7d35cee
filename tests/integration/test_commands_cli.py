"""``microfleet command``, ``commands``, ``bookings`` and ``vehicles command-key`` as an administrator runs
them: refusals are exit code 2 with the reason, a driver commands only in their booking, and the audit shows
both the command and the refused attempt."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from microfleet.bootstrap import build_services
from microfleet.domain.access import Role
from microfleet.settings import Settings
from tests.e2e.command import microfleet


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MICROFLEET_COMMAND_KEY_ENCRYPTION_KEY_PATH", str(tmp_path / "kek"))
    path = tmp_path / "m.db"
    services = build_services(Settings(database_url=f"sqlite:///{path}"))
    services.admin.add_vehicle("twizy-1", model_id="renault-twizy-80")
    services.admin.add_vehicle("car-1")
    services.admin.add_user("root", Role.ADMIN)
    services.admin.add_user("dan", Role.DRIVER)
    services.admin.grant("car-1", user_name="dan")
    services.close()
    return path


def test_commands_from_the_terminal_are_checked_authorised_and_audited(db: Path, tmp_path: Path) -> None:
    climate = microfleet("command", "twizy-1", "climate_on", db=db)
    assert climate.returncode == 2 and "cannot climate_on remotely" in climate.stdout
    hot = microfleet("command", "car-1", "climate_on", "--param", "target_c=80", db=db)
    assert hot.returncode == 2 and "target_c 80 is out of range: 16 to 30 degC" in hot.stdout
    bad = microfleet("command", "car-1", "lock", "--param", "nonsense", db=db)
    assert bad.returncode == 2 and "NAME=VALUE" in bad.stdout
    lock = microfleet("command", "twizy-1", "lock", "--expires-in", "30", db=db)
    assert lock.returncode == 0 and "lock for twizy-1 queued, expires in 30 s" in lock.stdout

    outside = microfleet("command", "car-1", "unlock", "--as", "dan", db=db)
    assert outside.returncode == 2 and "only during their own booking" in outside.stdout
    booked = microfleet(
        "bookings", "add", "car-1", "dan", "--from", "2020-01-01T00:00Z", "--to", "2099-01-01T00:00Z", db=db
    )
    assert booked.returncode == 2 and "at most 31 days" in booked.stdout
    booked = microfleet("bookings", "add", "car-1", "dan", "--from", "0", "--to", "9999999999999", db=db)
    assert booked.returncode == 2  # 317 years
    now_ms = time.time_ns() // 1_000_000  # the command runs on the wall clock
    start, end = now_ms - 60_000, now_ms + 3_600_000
    booked = microfleet("bookings", "add", "car-1", "dan", "--from", str(start), "--to", str(end), db=db)
    assert booked.returncode == 0 and "dan" in booked.stdout
    inside = microfleet("command", "car-1", "unlock", "--as", "dan", db=db)
    assert inside.returncode == 0 and "unlock for car-1 queued" in inside.stdout

    audit = microfleet("commands", "car-1", db=db)
    assert audit.returncode == 0
    assert "user:dan" in audit.stdout and "refused_attempt" in audit.stdout and "cli" in audit.stdout
    assert "target_c 80 is out of range" in audit.stdout

    keys = microfleet("vehicles", "command-key", "car-1", db=db)
    rotated = microfleet("vehicles", "command-key", "car-1", "--rotate", db=db)
    assert keys.returncode == rotated.returncode == 0
    assert rotated.stdout.count("yes") == 1 and " no " in rotated.stdout
    listed = microfleet("bookings", "list", "--vehicle", "car-1", db=db)
    cancel = microfleet("bookings", "cancel", "1", db=db)
    assert listed.returncode == cancel.returncode == 0
    again = microfleet("command", "car-1", "lock", "--as", "dan", db=db)
    assert again.returncode == 2 and "booking" in again.stdout
