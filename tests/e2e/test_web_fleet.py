"""The fleet page's views in a real browser: use by hour, places, the charging plan per charger (docs/web.md).

The world is tests/e2e/web_world.py's: olga operates city-share, whose car-b is out driving live; ann's
car-a and bob's car-c are not hers. The tests add what the views need as a person would, over the API (a
place, a depot and its charger) and, for what only a charger says, through the server's own services (a
car plugged in: an OCPP StartTransaction). Screenshots as in test_web.py.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from microfleet.domain.access import Role
from microfleet.domain.charge_points import PointStatus
from microfleet.domain.places import Circle, Place, PlaceKind
from tests.e2e.test_web import WAIT_MS, axe_violations, browser, log_in, page, playwright, screenshot, shots
from tests.e2e.web_world import WebWorld, serve_world

__all__ = ["browser", "page", "playwright", "shots"]  # the fixtures test_web.py defines, shared here

MODEL = "wuling-hongguang-mini-ev-gen1-14kwh"  # a catalogue model: the planner knows its capacity
ZONE = "Asia/Shanghai"  # the browser's zone in test_web.py's page fixture
HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebWorld]:
    yield from serve_world(tmp_path_factory.mktemp("web-fleet"))


def as_user(world: WebWorld, name: str) -> httpx.Client:
    token = world.services.admin.issue_token(name, "fleet page test")
    return httpx.Client(base_url=world.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def history_derived(world: WebWorld) -> None:
    """Wait until "Use by hour" has something to show: an hour of the last 7 days with derived history.

    The page asks for whole hours of the fleet (the request below is the page's) and shows none while every
    hour is at least 99.9 % unknown. The world's car-b starts driving with the world: run alone, or on a busy
    machine, a test could open the page before 3.6 s of its driving were derived.
    """
    deadline = time.monotonic() + WAIT_MS / 1000
    with as_user(world, "olga") as client:
        while time.monotonic() < deadline:
            now_ms = time.time_ns() // 1_000_000
            params = {"from_ms": (now_ms - 7 * 24 * HOUR_MS) // HOUR_MS * HOUR_MS, "to_ms": now_ms,
                      "bucket_s": 3600, "fleet_id": "city-share"}  # fmt: skip
            hours = client.get("/api/v1/fleet/utilisation", params=params).json()
            if any(h["unknown"] < 0.999 for h in hours):  # fleet_views.js utilisationBody's own test
                return
            time.sleep(0.5)
    raise AssertionError(f"no hour of olga's fleet with derived history within {WAIT_MS} ms")


def open_fleet(page: Page, world: WebWorld) -> None:
    history_derived(world)
    log_in(page, world, "olga", path="/#/fleet")
    expect(page.get_by_role("heading", name="Fleet city-share")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#utilisation-summary")).to_be_visible(timeout=WAIT_MS)


def in_use_this_hour(world: WebWorld) -> tuple[int, float, int]:
    """The API's answer to olga for the hour under way: its start, the share in use, the cars counted."""
    now_ms = time.time_ns() // 1_000_000
    with as_user(world, "olga") as client:
        params = {"from_ms": now_ms // HOUR_MS * HOUR_MS, "to_ms": now_ms + 1}
        (hour,) = client.get("/api/v1/fleet/utilisation", params=params).json()
    return hour["start_ms"], hour["in_use"], hour["vehicle_count"]


def test_use_by_hour_counts_her_fleets_car_and_the_keyboard_switches_the_period(
    page: Page, world: WebWorld
) -> None:
    # car-b drives from the world's start: once the history has its drive, the hour under way shows it
    deadline = time.monotonic() + 120
    while (now := in_use_this_hour(world))[1] < 0.03:
        assert time.monotonic() < deadline, f"the hour under way never showed car-b in use: {now}"
        time.sleep(1)
    start_ms, _, cars = now
    assert cars == 1  # city-share's car-b; ann's and bob's cars are not counted
    open_fleet(page, world)
    summary = page.locator("#utilisation-summary")
    expect(summary).to_contain_text("1 car, last 7 days")
    expect(page.locator("#utilisation-hours caption")).to_contain_text(ZONE)
    hour = dt.datetime.fromtimestamp(start_ms / 1000, ZoneInfo(ZONE)).hour  # in the browser's zone
    row = page.locator("#utilisation-hours tbody tr", has_text=f"{hour:02d}:00–{(hour + 1) % 24:02d}:00")
    expect(row).to_have_count(1)
    in_use = row.locator("td").nth(1).inner_text()
    assert in_use.endswith("\u00a0%") and int(in_use.split("\u00a0")[0]) >= 3, in_use
    expect(page.locator("#utilisation-plot canvas").first).to_be_visible()

    day = page.get_by_role("button", name="Last 24 h")
    day.focus()
    page.keyboard.press("Enter")
    expect(day).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("button", name="Last 7 days")).to_have_attribute("aria-pressed", "false")
    expect(summary).to_contain_text("1 car, last 24 h")


def test_places_show_her_cars_there_now_and_never_anothers_place(page: Page, world: WebWorld) -> None:
    open_fleet(page, world)
    expect(page.locator("#places-empty")).to_contain_text("No places yet")
    with as_user(world, "olga") as olga:
        (entry,) = olga.get("/api/v1/fleet/latest", params={"signals": "lat_deg,lon_deg"}).json()
        signals = entry["latest"]["signals"]
        circle = {"type": "circle", "lat_deg": signals["lat_deg"]["value"],
                  "lon_deg": signals["lon_deg"]["value"], "radius_m": 5000}  # fmt: skip
        place = {"name": "Old town", "kind": "depot", "geometry": circle, "fleet_id": "city-share"}
        created = olga.post("/api/v1/places", json=place)
        assert created.status_code == 201, created.text
        place_id = created.json()["place_id"]
    # bob's garage, where car-b also stands now: a place of bob's car, not hers to see (as the admin's CLI)
    garage = Circle(circle["lat_deg"], circle["lon_deg"], 5000)
    world.services.places.add(Place("pl-garage", "Garage of Bob", PlaceKind.HOME, garage), vehicle_id="car-c")
    page.reload()
    row = page.locator(f"#fleet-places tr[data-place='{place_id}']")
    expect(row).to_contain_text("Old town", timeout=WAIT_MS)
    expect(row).to_contain_text("(depot)")
    expect(row.locator("td").first).to_have_text("1")
    expect(row.get_by_role("link", name="Shared Ami 7")).to_be_visible()
    expect(page.locator("#fleet-places")).not_to_contain_text("Garage of Bob")
    expect(page.locator("#fleet-places tr[data-place='outside'] td").first).to_have_text("0")


def test_the_charging_plan_per_charger_against_the_site_limit(
    page: Page, world: WebWorld, shots: Path
) -> None:
    services = world.services
    device = services.admin.add_vehicle("car-d", name="Depot Mini", model_id=MODEL, fleet_id="city-share")
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    record = {"vehicle_id": "car-d", "ts_ms": now_ms - 60_000, "soc_pct": 20.0}  # the car says its charge
    sent = httpx.post(f"{world.base_url}/api/v1/telemetry", json=[record],
                      headers={"Authorization": f"Bearer {device}"}, timeout=30)  # fmt: skip
    assert sent.status_code == 200 and sent.json()["accepted"] == 1, sent.text
    services.admin.add_user("dina", Role.DRIVER, "city-share")
    services.bookings.create("car-d", "dina", now_ms + 3 * 3_600_000, now_ms + 5 * 3_600_000)
    with as_user(world, "olga") as olga:
        site = {"site_id": "depot-1", "name": "North depot", "power_limit_kw": 22.0}
        olga.post("/api/v1/fleets/city-share/charging-sites", json=site).raise_for_status()
        charger = {"charge_point_id": "cp-1", "max_kw": 11.0, "connectors": 2}
        olga.post("/api/v1/charging-sites/depot-1/charge-points", json=charger).raise_for_status()
        services.charge_points.status("cp-1", PointStatus.CHARGING)  # what the charger says over OCPP
        services.charge_points.started("cp-1", 1, "car-d", 0)
        olga.post("/api/v1/fleets/city-share/charging-plan").raise_for_status()
        view = olga.get("/api/v1/fleets/city-share/charging-plan/chargers").json()
    (site_view,) = view["sites"]
    plugged = site_view["connectors"][0]
    assert plugged["vehicle_id"] == "car-d" and sum(plugged["power_kw"]) > 0

    open_fleet(page, world)
    peak = page.locator(".site-peak[data-site='depot-1']")
    expect(peak).to_contain_text("North depot: peak", timeout=WAIT_MS)
    expect(peak).to_contain_text(f"{site_view['planned_peak_kw']:.1f}\u00a0kW of its 22\u00a0kW limit")
    expect(peak).to_contain_text("2 connectors, 1 charging in the plan")
    canvas = page.locator("#site-timeline-0")
    expect(canvas).to_be_visible()
    assert "against the 22\u00a0kW limit" in (canvas.get_attribute("aria-label") or "")
    table = page.locator("#charger-plan-0")
    first, second = table.locator("tbody tr").all()
    expect(first).to_contain_text("cp-1 / 1")
    expect(first.get_by_role("link", name="Depot Mini")).to_be_visible()
    kwh = sum(plugged["power_kw"]) * view["slot_s"] / 3600
    expect(first.locator("td").nth(2)).to_have_text(f"{kwh:.1f}\u00a0kWh")
    expect(second).to_contain_text("cp-1 / 2")
    expect(second).to_contain_text("free")
    expect(page.locator("#plan-cars")).to_contain_text("Depot Mini")  # each car's reason stays listed
    screenshot(page, shots, "fleet-views", full_page=True)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_fleet_page_with_its_views_has_no_serious_accessibility_violations(
    browser: Browser, world: WebWorld, scheme: str
) -> None:
    context = browser.new_context(
        viewport={"width": 1280, "height": 800},
        color_scheme=scheme,  # type: ignore[arg-type]
        timezone_id=ZONE,
        bypass_csp=True,  # the page's CSP rightly refuses the injected checker
    )
    page = context.new_page()
    try:
        open_fleet(page, world)
        expect(page.locator("#fleet-places")).to_be_visible(timeout=WAIT_MS)
        assert axe_violations(page) == []
    finally:
        context.close()
