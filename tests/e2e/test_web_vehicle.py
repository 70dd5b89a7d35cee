"""A car's page in a real browser: battery health over time, parked drain, charging costs, alerts' lifecycle.

The world is tests/e2e/web_world.py's, plus ann's second car, car-d (a Wuling Mini EV: the catalogue knows its
capacity when new), with twenty days of history over the last two months sent through the ingest and
derived by the server's own deriver: each day a night parked, drives, and an AC charge at a place whose
tariff ann set, its measured capacity a little smaller each time (a fading pack). The battery refit and
the maintenance detectors run through the server's services as their workers would; one maintenance alert
is raised as the 12 V detector would raise it. Dani is a driver allowed car-a. Screenshots as test_web.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
from playwright.sync_api import Browser, Page, expect

from microfleet.domain.access import Role
from microfleet.domain.alerts import Severity
from microfleet.domain.places import Circle, Place, PlaceKind
from microfleet.domain.tariffs import parse_tariff
from microfleet.domain.telemetry import TelemetryRecord
from tests.e2e.test_web import WAIT_MS, axe_violations, browser, log_in, page, playwright, screenshot, shots
from tests.e2e.web_world import DAY_MS, WebWorld, serve_world
from tests.integration.test_history_day import body, day_records

__all__ = ["browser", "page", "playwright", "shots"]  # the fixtures test_web.py defines, shared here

CAR = "car-d"
# A catalogue model whose usable capacity when new (12.8 kWh) the fixture's day fits: each day's charge puts
# 2.97 kWh into the pack over 24 points of SoC, i.e. 12.4 kWh, 97 % of new before it fades.
MODEL = "wuling-hongguang-mini-ev-gen1-14kwh"
DAYS = 20
FADE_PER_DAY = 0.003  # each day's charge moves the SoC 0.3 % more for the same energy: a shrinking pack
ZONE = "Asia/Shanghai"  # the browser's zone in test_web.py's page fixture
DRIVER_PASSWORD = "dani-password-1"


def _asleep_draw(records: list[TelemetryRecord], amps: float) -> list[TelemetryRecord]:
    """The day's records with the parked car drawing ``amps`` from the pack where the fixture draws none."""
    return [
        msgspec.structs.replace(r, pack_current_a=amps)
        if r.pack_current_a == 0.0 and not r.charger_connected and not r.speed_kmh
        else r
        for r in records
    ]


def _faded(records: list[TelemetryRecord], factor: float) -> list[TelemetryRecord]:
    """The day's records with the charge's SoC rise stretched by ``factor`` (and later SoC shifted alike)."""
    start = next(i for i, r in enumerate(records) if r.charger_connected)
    soc0 = records[start].soc_pct or 0.0
    out = records[:start]
    extra = 0.0
    for r in records[start:]:
        if r.charger_connected and r.soc_pct is not None:
            extra = (r.soc_pct - soc0) * (factor - 1)
        soc = None if r.soc_pct is None else round(min(100.0, r.soc_pct + extra), 2)
        out.append(msgspec.structs.replace(r, soc_pct=soc))
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebWorld]:
    for built in serve_world(tmp_path_factory.mktemp("web-vehicle")):
        services = built.services
        admin = services.admin
        admin.add_vehicle(CAR, name="Spring of Ann", model_id=MODEL)
        admin.grant(CAR, user_name="ann")
        admin.add_user("dani", Role.DRIVER, None)
        admin.grant("car-a", user_name="dani")
        dani = next(u for u in admin.list_users() if u.name == "dani")
        services.web_sessions.set_password(dani, DRIVER_PASSWORD)
        first = (time.time_ns() // 1_000_000 // DAY_MS - 3 * DAYS) * DAY_MS
        for k in range(DAYS):
            day0 = first + 3 * k * DAY_MS
            # asleep, 0.08 A at 340 V is 27 W (telematics and BMS); one night 0.3 A (102 W, still under the
            # 120 W the state machine calls asleep): a module that did not sleep, over 3x the car's usual
            amps = 0.3 if k == DAYS - 2 else 0.08
            records = _asleep_draw(_faded(day_records(CAR, day0), 1 + FADE_PER_DAY * k), amps)
            report = services.ingest.ingest(
                body(records), "application/json", credential_vehicle_id=CAR, source="t", now_ms=day0 + DAY_MS
            )
            assert report.accepted == len(records), report
        services.deriver.rederive(CAR)
        charge = services.history.charges(CAR, 0, 2**62, 100)[0]
        assert charge.lat_deg is not None and charge.lon_deg is not None
        # ann's tariff at the place she charges: a flat price per kWh (a test figure, assumed)
        tariff = {"tariff_id": "ann-work", "kind": "per_kwh", "currency": "CNY", "price_per_kwh": 0.6}
        services.tariffs.add(parse_tariff(tariff), vehicle_id=CAR)
        place = Place(
            "ann-work", "Work", PlaceKind.OTHER, Circle(charge.lat_deg, charge.lon_deg, 200), "ann-work"
        )
        services.places.add(place, vehicle_id=CAR)
        services.deriver.rederive(CAR)
        services.battery.refit(CAR)
        services.maintenance.evaluate(CAR)
        services.alerts.raise_external(
            CAR, "maintenance", "12v_battery", Severity.WARNING, "12 V battery weakening",
            "rest voltage 12.1 V, falling 0.05 V a week",
        )  # fmt: skip
        yield built


def api(world: WebWorld, name: str) -> httpx.Client:
    token = world.services.admin.issue_token(name, "vehicle page test")
    return httpx.Client(base_url=world.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def open_car(
    page: Page, world: WebWorld, name: str = "ann", vehicle_id: str = CAR, password: str | None = None
) -> None:
    log_in(page, world, name, password, path=f"/#/vehicles/{vehicle_id}")
    expect(page.locator("#state-badge")).to_be_visible(timeout=WAIT_MS)


def test_the_health_trend_shows_each_week_its_band_and_the_80_percent_forecast(
    page: Page, world: WebWorld, shots: Path
) -> None:
    with api(world, "ann") as client:
        history = client.get(f"/api/v1/vehicles/{CAR}/battery/history").raise_for_status().json()
    assert history["available"] and history["eol_ts_ms"] is not None, history
    assert history["fade_pct_per_year"] < 0  # the fading pack is seen fading
    open_car(page, world)
    trend = page.locator("#health-trend")
    expect(trend).to_have_attribute("data-available", "true", timeout=WAIT_MS)
    expect(page.locator("#health-plot canvas")).to_have_count(1)
    expect(page.locator("#eol-forecast")).to_contain_text("reaches 80\u00a0% of its capacity when new around")
    expect(trend).to_contain_text("90 % band")
    trend.get_by_text("Weekly estimates").click()
    rows = page.locator("#health-table tbody tr")
    expect(rows).to_have_count(min(12, len(history["estimates"])))
    newest = history["estimates"][-1]
    expect(rows.first.locator("td").nth(1)).to_have_text(f"{newest['soh_pct']:.1f}\u00a0%")
    assert rows.first.locator("td").nth(4).inner_text() == str(newest["sessions_used"])
    page.locator("#health-trend-h").scroll_into_view_if_needed()
    screenshot(page, shots, "vehicle-health")


def test_a_car_without_a_known_capacity_says_why_there_is_no_trend(page: Page, world: WebWorld) -> None:
    open_car(page, world, vehicle_id="car-a")  # no model: no capacity when new, never refitted here
    expect(page.locator("#health-trend")).to_have_attribute("data-available", "false", timeout=WAIT_MS)
    expect(page.locator("#health-trend")).to_contain_text("No health trend yet — not fitted yet")
    expect(page.locator("#health-plot")).to_have_count(0)


def test_parked_drain_per_day_and_each_spell_in_the_users_zone(
    page: Page, world: WebWorld, shots: Path
) -> None:
    with api(world, "ann") as client:
        drain = client.get(f"/api/v1/vehicles/{CAR}/parked-drain").raise_for_status().json()
    assert drain["spells"] and drain["soc_pct_per_day"] is not None
    assert drain["flagged"] >= 1  # the night a module stayed awake
    open_car(page, world)
    summary = page.locator("#drain-summary")
    expect(summary).to_contain_text(f"{drain['soc_pct_per_day']:.1f}\u00a0% of charge a day", timeout=WAIT_MS)
    expect(summary).to_contain_text(
        f"of a {drain['usable_kwh']:.1f}\u00a0kWh pack"
    )  # the pack it is a share of
    expect(page.locator("#drain-plot canvas")).to_have_count(1)
    page.locator("#parked-drain").get_by_text("Parked spells").click()
    rows = page.locator("#drain-table tbody tr")
    expect(rows).to_have_count(min(12, len(drain["spells"])))
    expect(page.locator("#drain-table tr[data-flagged=true]").first).to_contain_text("unusual")
    expect(page.locator("#parked-drain")).to_contain_text("drew over 3× the car's usual")
    # the newest spell first, its start written in the browser's zone (as the page's own formatter does)
    newest = drain["spells"][-1]
    shown = page.evaluate(
        "ms => new Intl.DateTimeFormat(undefined, {dateStyle: 'short', timeStyle: 'short'})"
        ".format(new Date(ms))",
        newest["start_ts_ms"],
    )
    assert page.evaluate("() => Intl.DateTimeFormat().resolvedOptions().timeZone") == ZONE
    expect(rows.first.locator("td").first).to_have_text(shown)
    page.locator("#drain-h").scroll_into_view_if_needed()
    screenshot(page, shots, "vehicle-drain")


def test_charging_costs_per_week_then_per_month_with_the_currency(
    page: Page, world: WebWorld, shots: Path
) -> None:
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/charging-costs" in r.url else None)
    open_car(page, world)
    total = page.locator("#costs-total")
    expect(total).to_contain_text("CNY", timeout=WAIT_MS)
    assert asked and all(f"tz={ZONE.replace('/', '%2F')}" in url for url in asked)  # cut in the user's zone
    with api(world, "ann") as client:
        weekly = client.get(f"/api/v1/vehicles/{CAR}/charging-costs?period=week&tz={ZONE}").json()
        monthly = client.get(f"/api/v1/vehicles/{CAR}/charging-costs?period=month&tz={ZONE}").json()
    assert weekly["costed_charges"] == DAYS and weekly["tariff_ids"] == ["ann-work"]
    expect(total).to_contain_text(f"{weekly['total_cost']['CNY']:,.2f}\u00a0CNY")
    expect(page.locator("#costs-plot canvas")).to_have_count(1)
    costs = page.locator("#costs")
    expect(costs).to_have_attribute("data-period", "week")
    page.get_by_role("button", name="Per month").press("Enter")  # the keyboard switches the period
    expect(costs).to_have_attribute("data-period", "month", timeout=WAIT_MS)
    expect(page.get_by_role("button", name="Per month")).to_have_attribute("aria-pressed", "true")
    costs.get_by_text("Per month (").click()
    rows = page.locator("#costs-table tbody tr")
    expect(rows).to_have_count(len(monthly["periods"]))
    shown = sum(
        float(r.split("\u00a0")[0].replace(",", ""))
        for r in rows.locator("td:nth-child(4)").all_inner_texts()
    )
    assert shown == pytest.approx(monthly["total_cost"]["CNY"], abs=0.01 * len(monthly["periods"]))
    page.locator("#costs-h").scroll_into_view_if_needed()
    screenshot(page, shots, "vehicle-costs")


def test_an_owner_acknowledges_then_marks_a_maintenance_alert_a_false_alarm(
    page: Page, world: WebWorld
) -> None:
    open_car(page, world)
    alert = page.locator(".alerts li[data-alert-id]")
    expect(alert).to_have_count(1, timeout=WAIT_MS)
    expect(alert).to_have_attribute("data-status", "raised")
    alert.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("#alert-confirm")).to_contain_text("Acknowledge “12 V battery weakening”?")
    page.get_by_role("button", name="Yes, acknowledge").click()
    expect(alert).to_have_attribute("data-status", "acknowledged", timeout=WAIT_MS)
    expect(alert.get_by_role("button", name="Acknowledge")).to_have_count(0)
    # a false alarm: asked first (Cancel keeps it), then resolved and the detector's thresholds raised
    alert.get_by_role("button", name="False alarm").click()
    page.get_by_role("button", name="Cancel").click()
    expect(alert).to_have_count(1)
    alert.get_by_role("button", name="False alarm").click()
    expect(page.locator("#alert-confirm")).to_contain_text("this detector's thresholds rise")
    page.get_by_role("button", name="Yes, false alarm").click()
    expect(page.locator("#alert-status")).to_contain_text("marked a false alarm", timeout=WAIT_MS)
    expect(page.locator(".alerts li[data-alert-id]")).to_have_count(0)
    with api(world, "ann") as client:
        marks = client.get(f"/api/v1/vehicles/{CAR}/maintenance").json()["false_alarms"]
        alerts = client.get(f"/api/v1/alerts?vehicle_id={CAR}").json()
    assert marks.get("12v_battery") == 1
    assert [(a["status"], a["condition"]) for a in alerts] == [("resolved", "12v_battery")]


def test_a_driver_is_refused_resolving_and_sees_the_servers_sentence(page: Page, world: WebWorld) -> None:
    # ann's rule raises car-a's low-charge alert once the server's alert worker has run (every 0.5 s)
    deadline = time.monotonic() + 30
    with api(world, "dani") as client:
        while not client.get("/api/v1/alerts?vehicle_id=car-a&status=raised&status=acknowledged").json():
            assert time.monotonic() < deadline, "car-a's alert was not raised"
            time.sleep(0.25)
    open_car(page, world, "dani", "car-a", DRIVER_PASSWORD)
    alert = page.locator(".alerts li[data-alert-id]")
    expect(alert).to_have_count(1, timeout=WAIT_MS)
    alert.get_by_role("button", name="Resolve").click()
    page.get_by_role("button", name="Yes, resolve").click()
    expect(page.locator("#alert-problem")).to_have_text(
        "a driver may not resolve alerts; acknowledge it instead"
    )
    expect(alert).to_have_count(1)  # still open
    expect(alert.get_by_role("button", name="False alarm")).to_have_count(
        0
    )  # a rule's alert, not a detector's


def test_the_longer_view_fits_a_phone_in_the_dark(browser: Browser, world: WebWorld, shots: Path) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        color_scheme="dark",
        is_mobile=True,
        has_touch=True,
        timezone_id=ZONE,
    )
    page = context.new_page()
    try:
        open_car(page, world)
        for ready in ("#health-plot canvas", "#drain-plot canvas", "#costs-plot canvas"):
            expect(page.locator(ready)).to_have_count(1, timeout=WAIT_MS)
        for summary in page.locator("details > summary").all():
            summary.click()  # the tables scroll inside their own box, not the page
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= 390, f"the page is {width} px wide on a 390 px phone"
        page.locator("#health-trend-h").scroll_into_view_if_needed()
        screenshot(page, shots, "phone-dark-vehicle-health")
    finally:
        context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_vehicle_page_has_no_serious_accessibility_violations(
    browser: Browser, world: WebWorld, scheme: str
) -> None:
    context = browser.new_context(
        viewport={"width": 1280, "height": 800},
        color_scheme=scheme,
        bypass_csp=True,
        timezone_id=ZONE,  # type: ignore[arg-type]
    )
    page = context.new_page()
    try:
        open_car(page, world)
        for ready in ("#health-plot canvas", "#drain-plot canvas", "#costs-plot canvas"):
            expect(page.locator(ready)).to_have_count(1, timeout=WAIT_MS)
        for summary in page.locator("details > summary").all():
            summary.click()  # the tables too
        found = axe_violations(page)
    finally:
        context.close()
    assert found == []
