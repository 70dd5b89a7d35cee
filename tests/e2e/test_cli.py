"""The ``microfleet`` command as an owner or operator uses it: set up accounts, then run the demo."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.e2e.command import microfleet, microfleet_process


def test_the_installed_command_migrates_a_store_and_refuses_with_exit_code_2(tmp_path: Path) -> None:
    """``python -m microfleet`` as its own process: the entry point, a store it migrates, and a refusal."""
    db = tmp_path / "m.db"
    upgraded = microfleet_process("db", "upgrade", db=db)
    assert upgraded.returncode == 0 and "revision" in upgraded.stdout, upgraded.stderr
    bad_role = microfleet_process("admin", "add-user", "x", "--role", "king", db=db)
    assert bad_role.returncode == 2 and "error (configuration_error): role 'king'" in bad_role.stdout
    unknown = microfleet_process("admin", "no-such-command")
    assert unknown.returncode == 2 and "No such command" in unknown.stderr


def test_admin_commands_set_up_an_owner_who_sees_their_car(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    assert "revision" in microfleet("db", "upgrade", db=db).stdout
    added = microfleet("admin", "add-vehicle", "mini-1", "--name", "My Mini EV", db=db)
    assert added.returncode == 0
    device_token = added.stdout.split()[-1]
    assert device_token.startswith("mfd_")
    user = microfleet("admin", "add-user", "mei", "--role", "owner", db=db)
    user_token = user.stdout.split()[-1]
    assert microfleet("admin", "grant", "mini-1", "--user", "mei", db=db).returncode == 0
    duplicate = microfleet("admin", "add-vehicle", "mini-1", db=db)
    assert duplicate.returncode == 2 and "already exists" in duplicate.stdout
    bad_role = microfleet("admin", "add-user", "x", "--role", "king", db=db)
    assert bad_role.returncode == 2 and "owner, driver, operator, admin" in bad_role.stdout

    from fastapi.testclient import TestClient

    from microfleet.api import create_app
    from microfleet.settings import Settings

    with TestClient(create_app(Settings(database_url=f"sqlite:///{db}"))) as client:
        vehicles = client.get("/api/v1/vehicles", headers={"Authorization": f"Bearer {user_token}"}).json()
        assert [v["name"] for v in vehicles] == ["My Mini EV"]
        posted = client.post(
            "/api/v1/telemetry",
            json=[{"vehicle_id": "mini-1", "ts_ms": 1_700_000_000_000, "soc_pct": 300}],
            headers={"Authorization": f"Bearer {device_token}"},
        )
        assert posted.json()["rejected"] == 1
    listed = microfleet("quarantine", "list", db=db)
    assert "out_of_range" in listed.stdout
    replayed = microfleet("quarantine", "replay", "--reason", "out_of_range", db=db)
    assert "rejected 1" in replayed.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_serves_cars_a_logged_in_owner_can_see(tmp_path: Path) -> None:
    """The demo listens on MICROFLEET_HTTP_PORT like ``serve``; its twin goes on live after catching up."""
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "microfleet",
            "demo",
            "--duration-s",
            "120",
            "--speedup",
            "40000",
            "--database-url",
            f"sqlite:///{tmp_path / 'demo.db'}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "MICROFLEET_HTTP_PORT": str(port)},
    )
    assert process.stdout is not None
    token = password = None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("login token of demo-owner:"):
            token = line.split()[-1]
        if line.startswith("web login of demo-owner:"):
            password = line.split()[-1]
        if token and "caught up with now" in line:
            break
    assert token, "".join(lines)
    assert f"serving http://127.0.0.1:{port}" in "".join(lines)
    assert "drive on in real time" in lines[-1], "".join(lines)
    assert process.poll() is None, "the demo keeps running after its twin caught up"
    vehicles = httpx.get(
        f"http://127.0.0.1:{port}/api/v1/vehicles", headers={"Authorization": f"Bearer {token}"}
    )
    assert len(vehicles.json()) == 3
    detail = httpx.get(
        f"http://127.0.0.1:{port}/api/v1/vehicles/{vehicles.json()[0]['vehicle_id']}",
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert detail["latest"]["signals"]["soc_pct"]["value"] > 0
    # the printed web login works as a browser's would: the session cookie then sees the same cars
    assert f"web app: http://127.0.0.1:{port}/" in "".join(lines)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as browser:
        login = browser.post("/api/v1/session", json={"user_name": "demo-owner", "password": password})
        assert login.status_code == 200, login.text
        assert browser.get("/api/v1/vehicles").json() == vehicles.json()
        assert "<title>Microfleet</title>" in browser.get("/").text
    process.terminate()
    process.communicate(timeout=30)
    assert json.dumps(detail)


def test_drives_of_a_car_are_derived_and_shown(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    device_token = microfleet("admin", "add-vehicle", "mini-2", db=db).stdout.split()[-1]
    from fastapi.testclient import TestClient

    from microfleet.api import create_app
    from microfleet.settings import Settings

    start = 1_764_000_000_000
    records = [
        {
            "vehicle_id": "mini-2",
            "ts_ms": start + i * 5000,
            "gear": "D",
            "speed_kmh": 30.0,
            "odometer_km": 500 + i * 30 * 5 / 3600,
            "soc_pct": 60.0,
            "lat_deg": 31.2 + i * 4e-4,
            "lon_deg": 121.47,
        }
        for i in range(120)
    ] + [
        {
            "vehicle_id": "mini-2",
            "ts_ms": start + 600_000 + i * 60_000,
            "gear": "P",
            "speed_kmh": 0.0,
            "odometer_km": 505.0,
            "soc_pct": 59.0,
        }
        for i in range(10)
    ]
    with TestClient(create_app(Settings(database_url=f"sqlite:///{db}"))) as client:
        posted = client.post(
            "/api/v1/telemetry", json=records, headers={"Authorization": f"Bearer {device_token}"}
        )
        assert posted.json()["accepted"] == 130
    # The server derived the drive when it stopped; rederive must find the same one again.
    assert "1 drives" in microfleet("rederive", "mini-2", db=db).stdout
    shown = microfleet("drives", "mini-2", "--tz", "Asia/Shanghai", db=db)
    assert "Drives of mini-2" in shown.stdout
    assert "5.0" in shown.stdout
    for zone in ("Mars/Olympus", "x" * 5000):  # the second is too long for a file name: OSError inside
        bad_tz = microfleet("drives", "mini-2", "--tz", zone, db=db)
        assert bad_tz.returncode == 2
        assert "unknown time zone" in bad_tz.stdout
