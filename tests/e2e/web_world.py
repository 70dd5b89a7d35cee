"""A real Microfleet server for the browser tests: SQLite, uvicorn in a thread, people with passwords,
a car's yesterday sent over HTTP and derived into drives, and a twin car sending telemetry live.

ann owns car-a (yesterday: drives and a charge, today: parked at home); olga operates city-share, whose
car-b is out driving now (the live car); bob owns car-c, which neither of the others may see.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import msgspec
import pytest
import uvicorn

from microfleet.api import create_app
from microfleet.bootstrap import Services, build_services
from microfleet.domain.access import Role
from microfleet.settings import Settings
from tests.integration.test_history_day import day_records

CHROMIUM = os.environ.get("MICROFLEET_CHROMIUM", "/usr/bin/chromium")
PASSWORDS = {"ann": "ann-password-1", "olga": "olga-password-1", "bob": "bob-password-1"}
DAY_MS = 86_400_000
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def chromium_path() -> str:
    """The system's Chromium; a clear failure (never a skip) when it is missing."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(
            f"Chromium is not at {CHROMIUM}: the web app's tests drive the system's Chromium. Install it "
            "(Debian: apt-get install -y chromium; scripts/setup and .ci/run do when run as root) or point "
            "MICROFLEET_CHROMIUM at one."
        )
    return CHROMIUM


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveCar:
    """The twin's car-b: drives north along a street at 30 km/h, one record per second; can start charging."""

    base_url: str
    device_token: str
    lat_deg: float = 31.2250
    lon_deg: float = 121.4690
    soc_pct: float = 64.0
    charging: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    sent: int = 0

    def record(self, ts_ms: int) -> dict[str, object]:
        if self.charging.is_set():
            self.soc_pct = min(100.0, self.soc_pct + 0.05)
            return {
                "vehicle_id": "car-b", "ts_ms": ts_ms, "lat_deg": self.lat_deg, "lon_deg": self.lon_deg,
                "speed_kmh": 0.0, "gear": "P", "ignition_on": False, "soc_pct": round(self.soc_pct, 2),
                "charger_connected": True, "charger_power_kw": 3.3, "pack_current_a": -9.5, "locked": True,
            }  # fmt: skip
        self.lat_deg += 30 / 3.6 / 111_195  # 30 km/h north, one second
        self.soc_pct -= 0.01
        return {
            "vehicle_id": "car-b", "ts_ms": ts_ms, "lat_deg": round(self.lat_deg, 7),
            "lon_deg": self.lon_deg, "speed_kmh": 30.0, "gear": "D", "ignition_on": True,
            "soc_pct": round(self.soc_pct, 2), "pack_current_a": 20.0, "locked": True,
            "charger_connected": False, "charger_power_kw": 0.0,
        }  # fmt: skip

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.device_token}"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=10) as client:
            while not self.stop.is_set():
                response = client.post("/api/v1/telemetry", json=[self.record(time.time_ns() // 1_000_000)])
                response.raise_for_status()
                self.sent += 1
                self.stop.wait(1.0)


@dataclass
class WebWorld:
    """The running server, its services, and the live car."""

    base_url: str
    services: Services
    car: LiveCar
    drive_starts_ms: list[int]


def _send_yesterday(client: httpx.Client, token: str, day0_ms: int) -> None:
    records = day_records("car-a", day0_ms)
    response = client.post(
        "/api/v1/telemetry",
        content=msgspec.json.encode(records),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    response.raise_for_status()
    assert response.json()["accepted"] == len(records), response.text


def serve_world(tmp_path: Path) -> Iterator[WebWorld]:
    """Start the server with its people and cars; stop everything afterwards."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'web.db'}",
        history_derive_interval_s=0.5,
        alerts_interval_s=0.5,
        auth_failure_burst=5,
        auth_failure_per_minute=6.0,
    )
    services = build_services(settings)
    admin = services.admin
    admin.add_fleet("city-share", "City car-sharing")
    devices = {
        "car-a": admin.add_vehicle("car-a", name="Mini EV of Ann"),
        "car-b": admin.add_vehicle("car-b", name="Shared Ami 7", fleet_id="city-share"),
        "car-c": admin.add_vehicle("car-c", name="Spring of Bob"),
    }
    for name, role, fleet in [("ann", Role.OWNER, None), ("olga", Role.OPERATOR, "city-share"),
                              ("bob", Role.OWNER, None)]:  # fmt: skip
        admin.add_user(name, role, fleet)
    admin.grant("car-a", user_name="ann")
    admin.grant("car-c", user_name="bob")
    for user in admin.list_users():
        services.web_sessions.set_password(user, PASSWORDS[user.name])
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, services), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    base_url = f"http://127.0.0.1:{port}"
    now_ms = time.time_ns() // 1_000_000
    day0_ms = (now_ms // DAY_MS - 1) * DAY_MS  # yesterday, 00:00 UTC
    car = LiveCar(base_url, devices["car-b"])
    car_thread = threading.Thread(target=car.run, daemon=True)
    try:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            # ann's rule: tell her when car-a's charge is below 60 % (it will be, once parked at home)
            rule = {"kind": "soc_low", "params": {"below_pct": 60}, "vehicle_id": "car-a"}
            headers = {"Authorization": f"Bearer {admin.issue_token('ann', 'rules')}"}
            client.post("/api/v1/alert-rules", json=rule, headers=headers).raise_for_status()
            _send_yesterday(client, devices["car-a"], day0_ms)
            # car-a parked at home since last night; car-c somewhere of its own
            home = {"vehicle_id": "car-a", "ts_ms": now_ms - 60_000, "lat_deg": 31.2304,
                    "lon_deg": 121.4737, "speed_kmh": 0.0, "soc_pct": 58.0, "locked": False}  # fmt: skip
            other = {"vehicle_id": "car-c", "ts_ms": now_ms - 60_000, "lat_deg": 31.2200,
                     "lon_deg": 121.4800, "speed_kmh": 0.0, "soc_pct": 80.0}  # fmt: skip
            for record, vehicle_id in ((home, "car-a"), (other, "car-c")):
                headers = {"Authorization": f"Bearer {devices[vehicle_id]}"}
                client.post("/api/v1/telemetry", json=[record], headers=headers).raise_for_status()
        car_thread.start()
        drives = _wait_for_drives(services, day0_ms)
        yield WebWorld(base_url, services, car, drives)
    finally:
        car.stop.set()
        if car_thread.is_alive():
            car_thread.join(10)
        server.should_exit = True
        thread.join(10)
        services.close()


def _wait_for_drives(services: Services, day0_ms: int) -> list[int]:
    """Wait for the server's deriver to turn yesterday into drives (it runs every 0.5 s)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        drives = services.history.drives("car-a", day0_ms, day0_ms + DAY_MS, 100)
        if drives:
            return [d.start_ts_ms for d in drives]
        time.sleep(0.25)
    raise AssertionError("the server derived no drives from yesterday's records within 60 s")


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Metres between two (lat, lon) points (equirectangular: fine over a street)."""
    dx = math.radians(b[1] - a[1]) * math.cos(math.radians(a[0]))
    dy = math.radians(b[0] - a[0])
    return 6_371_000.0 * math.hypot(dx, dy)
