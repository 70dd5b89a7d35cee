"""``microfleet demo``: a server on SQLite and a few cars sending telemetry to it over real HTTP.

Until the digital twin drives the demo, the cars replay a built-in, recorded-style trip around
central Shanghai (People's Square → the Bund → Xintiandi), each with its own start time and battery.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from rich.console import Console
from sqlalchemy.engine import make_url

from microfleet.api import create_app
from microfleet.bootstrap import Services, build_services
from microfleet.domain.access import Role
from microfleet.settings import Settings

# Waypoints (lat_deg, lon_deg) along real streets of central Shanghai, read off OpenStreetMap
# (© OpenStreetMap contributors, ODbL): People's Square, Nanjing Rd E, the Bund, Yan'an Rd E, Xintiandi.
TRIP_WAYPOINTS_DEG: tuple[tuple[float, float], ...] = (
    (31.2304, 121.4737),
    (31.2350, 121.4790),
    (31.2386, 121.4856),
    (31.2400, 121.4903),
    (31.2345, 121.4905),
    (31.2290, 121.4880),
    (31.2262, 121.4800),
    (31.2210, 121.4750),
    (31.2190, 121.4700),
    (31.2250, 121.4690),
    (31.2304, 121.4737),
)


LAP_INTERVAL_MS = 20 * 60 * 1000  # one lap takes about 13 minutes at 28 km/h


@dataclass(frozen=True, slots=True)
class DemoCar:
    """A demo car: id, catalogue model, start SoC and its usable pack (kWh), and consumption (Wh/km)."""

    vehicle_id: str
    name: str
    usable_kwh: float
    soc_start_pct: float
    consumption_wh_per_km: float


# Pack sizes from ../shared/data/vehicles/catalogue.csv (Mini EV 13.8, Ami 5.5, QQ Ice Cream 13.9 kWh);
# consumptions are round city figures for the demo only, not model outputs.
DEMO_CARS = (
    DemoCar("demo-mini-ev-1", "Wuling Hongguang Mini EV", 13.8, 82.0, 95.0),
    DemoCar("demo-ami-1", "Citroën Ami", 5.5, 64.0, 70.0),
    DemoCar("demo-qq-1", "Chery QQ Ice Cream", 13.9, 47.0, 100.0),
)


def _haversine_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(h))


def trip_records(car: DemoCar, start_ms: int, period_s: float = 5.0) -> Iterator[dict[str, object]]:
    """The car's records for one lap of the built-in trip at a city pace, one every ``period_s``."""
    soc_pct = car.soc_start_pct
    odometer_km = 1000.0 + 37.0 * len(car.vehicle_id)
    t_ms = start_ms
    for a, b in itertools.pairwise(TRIP_WAYPOINTS_DEG):
        leg_m = _haversine_m(a, b)
        speed_kmh = 28.0
        steps = max(1, int(leg_m / (speed_kmh / 3.6 * period_s)))
        heading = (math.degrees(math.atan2(b[1] - a[1], b[0] - a[0])) + 360) % 360
        for i in range(steps):
            f = i / steps
            step_km = leg_m / steps / 1000
            odometer_km += step_km
            soc_pct -= step_km * car.consumption_wh_per_km / (car.usable_kwh * 10)
            yield {
                "vehicle_id": car.vehicle_id,
                "ts_ms": t_ms,
                "lat_deg": round(a[0] + (b[0] - a[0]) * f, 6),
                "lon_deg": round(a[1] + (b[1] - a[1]) * f, 6),
                "heading_deg": round(heading, 1),
                "speed_kmh": speed_kmh,
                "odometer_km": round(odometer_km, 2),
                "gear": "D",
                "ignition_on": True,
                "soc_pct": round(soc_pct * 2) / 2,  # BMS reports SoC in 0.5 % steps
                "ambient_temp_c": 17.0,
            }
            t_ms += int(period_s * 1000)


def _fresh_demo_store(database_url: str) -> None:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        for suffix in ("", "-wal", "-shm"):
            Path(url.database + suffix).unlink(missing_ok=True)


def _accounts(services: Services) -> tuple[str, dict[str, str]]:
    services.admin.add_fleet("demo", "Demo fleet")
    services.admin.add_user("demo-owner", Role.OWNER, "demo")
    token = services.admin.issue_token("demo-owner", "demo login")
    devices = {}
    for car in DEMO_CARS:
        devices[car.vehicle_id] = services.admin.add_vehicle(car.vehicle_id, name=car.name, fleet_id="demo")
        services.admin.grant(car.vehicle_id, user_name="demo-owner")
    return token, devices


def run_demo(database_url: str, *, port: int, duration_s: float | None, console: Console) -> None:
    """Serve the API and drive the demo cars into it until ``duration_s`` passes or Ctrl-C."""
    _fresh_demo_store(database_url)
    settings = Settings(database_url=database_url, http_port=port)
    services = build_services(settings)
    login_token, device_tokens = _accounts(services)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, services), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise SystemExit(f"the demo server could not start on port {port}")
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    console.print(f"[bold green]Microfleet demo[/bold green] serving {base} (store: {database_url})")
    console.print(f"API docs: {base}/docs    login token for user demo-owner:\n{login_token}")
    console.print(f"try: curl -H 'Authorization: Bearer {login_token}' {base}/api/v1/vehicles")
    deadline = None if duration_s is None else time.monotonic() + duration_s
    # Replay the last day of driving, one 20-minute lap per second, then keep the server up.
    first_lap_ms = time.time_ns() // 1_000_000 - 86_400_000
    try:
        lap = 0
        while deadline is None or time.monotonic() < deadline:
            lap_start_ms = first_lap_ms + lap * LAP_INTERVAL_MS
            if lap_start_ms + LAP_INTERVAL_MS < time.time_ns() // 1_000_000:
                _drive_lap(base, device_tokens, lap, lap_start_ms, console)
                lap += 1
            time.sleep(1.0 if deadline is None else 0.1)
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        services.close()


def _drive_lap(base: str, device_tokens: dict[str, str], lap: int, start_ms: int, console: Console) -> None:
    with httpx.Client(base_url=base, timeout=30) as client:
        for offset, car in enumerate(DEMO_CARS):
            records = list(trip_records(car, start_ms + offset * 7_000))
            response = client.post(
                "/api/v1/telemetry",
                json=records,
                headers={"Authorization": f"Bearer {device_tokens[car.vehicle_id]}"},
            )
            if response.status_code != 200:
                console.print(f"[red]{car.vehicle_id}: server refused the batch: {response.text}[/red]")
                continue
            body = response.json()
            console.print(
                f"lap {lap} {car.vehicle_id}: {body['accepted']} accepted, {body['duplicate']} duplicate, "
                f"{body['rejected']} rejected"
            )
