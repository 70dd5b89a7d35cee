"""The web app in a real browser (the system's headless Chromium) against a real server and a live car.

Each test logs in as a person would, through the login form. Screenshots go to this run's temporary folder;
with MICROFLEET_SCREENSHOTS_DIR set (docs/screenshots/ to refresh the README's) they are copied there too.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, WebSocketRoute, expect, sync_playwright
from sqlalchemy import text

from microfleet.domain.access import Role
from tests.e2e.web_world import PASSWORDS, WebWorld, chromium_path, distance_m, serve_world

WAIT_MS = 20_000  # a loaded two-core machine needs several seconds' grace


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebWorld]:
    yield from serve_world(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, timezone_id="Asia/Shanghai")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], "the page's script failed"


def screenshot(page: Page, shots: Path, name: str, *, full_page: bool = False) -> None:
    path = shots / f"{name}.png"
    page.screenshot(path=path, full_page=full_page)
    assert path.stat().st_size > 10_000
    keep = os.environ.get("MICROFLEET_SCREENSHOTS_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(keep) / path.name)


def log_in(page: Page, world: WebWorld, name: str, password: str | None = None, path: str = "/") -> None:
    page.goto(world.base_url + path)
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password or PASSWORDS[name])
    page.get_by_role("button", name="Log in").click()


def cars_listed(page: Page) -> list[str]:
    page.wait_for_selector(".cars li[data-vehicle-id]", timeout=WAIT_MS)
    return page.locator(".cars li[data-vehicle-id]").evaluate_all("els => els.map(e => e.dataset.vehicleId)")


def test_a_wrong_password_is_refused(page: Page, world: WebWorld, shots: Path) -> None:
    log_in(page, world, "ann", "not her password")
    expect(page.get_by_role("alert")).to_have_text("wrong user name or password", timeout=WAIT_MS)
    assert "#/login" in page.url
    assert page.context.cookies() == []
    screenshot(page, shots, "login-refused")


def test_an_owner_sees_only_her_cars(page: Page, world: WebWorld, shots: Path) -> None:
    log_in(page, world, "ann")
    page.wait_for_selector("#live-map[data-ready=true]", timeout=WAIT_MS)
    assert cars_listed(page) == ["car-a"]
    body = page.inner_text("body")
    assert "Mini EV of Ann" in body and "Shared Ami 7" not in body and "Spring of Bob" not in body
    cookie = next(c for c in page.context.cookies() if c["name"] == "microfleet_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    screenshot(page, shots, "map-owner")


def test_an_operator_watches_a_fleet_car_drive_then_charge(page: Page, world: WebWorld, shots: Path) -> None:
    log_in(page, world, "olga")
    page.wait_for_selector("#live-map[data-ready=true]", timeout=WAIT_MS)
    assert cars_listed(page) == ["car-b"]
    car = page.locator('.cars li[data-vehicle-id="car-b"]')
    expect(car).to_have_attribute("data-state", "driving", timeout=WAIT_MS)
    expect(page.locator("#live-map")).to_have_attribute("data-live", "live", timeout=WAIT_MS)
    polls: list[str] = []  # the live feed's WebSocket moves the car: no API request for it
    page.on("request", lambda request: polls.append(request.url) if "/api/v1/" in request.url else None)
    first = (float(car.get_attribute("data-lat") or "nan"), float(car.get_attribute("data-lon") or "nan"))
    expect(car).not_to_have_attribute("data-lat", str(first[0]), timeout=WAIT_MS)
    moved = (float(car.get_attribute("data-lat") or "nan"), float(car.get_attribute("data-lon") or "nan"))
    assert 5 < distance_m(first, moved) < 2_000  # 30 km/h for a few seconds: it moved along, not jumped
    assert polls == []
    screenshot(page, shots, "map-operator")

    world.car.charging.set()  # the car reaches a charger and plugs in
    expect(car).to_have_attribute("data-state", "charging", timeout=WAIT_MS)
    expect(car).to_contain_text("Charging")

    car.get_by_role("button").click()  # the list is the keyboard's way to a car's card
    card = page.locator(".carcard")
    expect(card).to_contain_text("Shared Ami 7")
    expect(card).to_contain_text("Charging")
    card.get_by_role("link", name="Open Shared Ami 7").click()
    expect(page.locator("#state-badge")).to_have_attribute("data-state", "charging", timeout=WAIT_MS)
    expect(page.locator("#live-state")).to_contain_text("yes, 3.3\u00a0kW")
    page.wait_for_selector(".vehicle-map[data-ready=true]", timeout=WAIT_MS)
    screenshot(page, shots, "vehicle-charging")


def test_an_owner_opens_a_drive_and_sees_its_route(page: Page, world: WebWorld, shots: Path) -> None:
    log_in(page, world, "ann", path="/#/vehicles/car-a")
    rows = page.locator("section[aria-labelledby=drives-h] table tbody tr")
    expect(rows).to_have_count(len(world.drive_starts_ms), timeout=WAIT_MS)
    page.wait_for_selector(".vehicle-map[data-ready=true]", timeout=WAIT_MS)
    first = rows.first  # the newest drive
    first.get_by_role("button").click()
    note = page.locator("#route-note")
    expect(note).to_contain_text("Route of the drive")
    assert int(note.get_attribute("data-points") or 0) >= 2  # the route, simplified: a straight run north
    expect(page.locator(".vehicle-map")).to_have_attribute("data-route", str(world.drive_starts_ms[-1]))
    expect(first).to_have_attribute("aria-selected", "true")
    # the time in the browser's zone (Shanghai, UTC+8) and locale (en-US), not the server's UTC
    start = dt.datetime.fromtimestamp(world.drive_starts_ms[-1] / 1000, ZoneInfo("Asia/Shanghai"))
    assert (
        f"{start.hour % 12 or 12}:{start.minute:02d} {'PM' if start.hour >= 12 else 'AM'}"
        in first.inner_text()
    )
    expect(page.get_by_role("link", name="Drives as GeoJSON")).to_be_visible()
    expect(page.get_by_role("link", name="Drives as GPX")).to_be_visible()
    # yesterday's drives give the efficiency chart; the battery panel answers with figures or what it needs
    expect(page.locator("#efficiency-plot canvas")).to_have_count(1)
    expect(page.locator("#battery dl")).to_contain_text("Health", timeout=WAIT_MS)
    expect(page.locator("#maintenance")).to_contain_text("Service due", timeout=WAIT_MS)
    expect(page.locator("#trips")).to_contain_text("more drives needed", timeout=WAIT_MS)  # one day of drives
    screenshot(page, shots, "vehicle-drive", full_page=True)


def test_an_ended_session_returns_to_login_then_to_the_same_page(page: Page, world: WebWorld) -> None:
    log_in(page, world, "ann", path="/#/vehicles/car-a")
    expect(page.locator("#state-badge")).to_be_visible(timeout=WAIT_MS)
    with world.services.engine.begin() as conn:  # the session expires
        conn.execute(text("UPDATE web_sessions SET expires_at_ms = 0"))
    expect(page.get_by_role("heading", name="Log in to Microfleet")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("Your session has ended; log in again.")).to_be_visible()
    page.get_by_label("User name").fill("ann")
    page.get_by_label("Password").fill(PASSWORDS["ann"])
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#state-badge")).to_be_visible(timeout=WAIT_MS)
    assert page.url.endswith("#/vehicles/car-a")


def test_a_phone_in_the_dark(browser: Browser, world: WebWorld, shots: Path) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, color_scheme="dark", is_mobile=True, has_touch=True
    )
    page = context.new_page()
    try:
        log_in(page, world, "ann", path="/#/vehicles/car-a")
        expect(page.locator("#state-badge")).to_be_visible(timeout=WAIT_MS)
        page.wait_for_selector(".vehicle-map[data-ready=true]", timeout=WAIT_MS)
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= 390, f"the page is {width} px wide on a 390 px phone"
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(11, 17, 32)"  # the dark theme's --bg
        screenshot(page, shots, "phone-dark-vehicle", full_page=True)
    finally:
        context.close()


def test_changing_the_password_then_logging_out(page: Page, world: WebWorld) -> None:
    log_in(page, world, "bob")
    assert cars_listed(page) == ["car-c"]
    page.get_by_role("link", name="bob (owner)").click()
    page.get_by_label("Current password").fill(PASSWORDS["bob"])
    page.get_by_label("New password (at least 8 characters)").fill("short")
    page.get_by_label("New password again").fill("short")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("alert")).to_have_text("The new password needs at least 8 characters.")
    page.get_by_label("New password (at least 8 characters)").fill("bob-password-2")
    page.get_by_label("New password again").fill("bob-password-2")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status").last).to_have_text("Password changed. Your other sessions have ended.")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in to Microfleet")).to_be_visible(timeout=WAIT_MS)
    log_in(page, world, "bob", "bob-password-2")
    assert cars_listed(page) == ["car-c"]


def test_an_owner_confirms_a_lock_and_follows_it(page: Page, world: WebWorld, shots: Path) -> None:
    log_in(page, world, "ann", path="/#/vehicles/car-a")
    page.get_by_role("button", name="Unlock").click()
    expect(page.get_by_text("Unlock Mini EV of Ann?")).to_be_visible(timeout=WAIT_MS)
    page.get_by_role("button", name="Cancel").click()  # nothing is sent without a yes
    page.get_by_role("button", name="Lock", exact=True).click()
    page.get_by_role("button", name="Yes, lock").click()
    result = page.locator(".command-result")
    # No MQTT bridge runs in this world, so the command waits, queued, until it expires (docs/web.md).
    expect(result).to_have_attribute("data-status", "queued", timeout=WAIT_MS)
    expect(result).to_contain_text("Lock: waiting to be sent to the car")
    listed = page.request.get(f"{world.base_url}/api/v1/vehicles/car-a/commands").json()["commands"]
    assert [(c["action"], c["issued_by"], c["status"]) for c in listed] == [("lock", "user:ann", "queued")]
    page.wait_for_selector(".vehicle-map[data-ready=true]", timeout=WAIT_MS)
    screenshot(page, shots, "vehicle-command")


def test_the_demo_in_a_browser_a_lock_acknowledged_by_a_twin_car(
    browser: Browser, tmp_path: Path, shots: Path
) -> None:
    """The README's demo: its printed web login works, and a Lock reaches a twin car over MQTT and back."""
    if shutil.which("mosquitto") is None:
        pytest.fail(
            "mosquitto is not on PATH: the demo's cars take commands over MQTT only (install mosquitto)"
        )
    port = _free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "microfleet", "demo", "--duration-s", "300", "--speedup", "40000",
         "--database-url", f"sqlite:///{tmp_path / 'demo.db'}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "MICROFLEET_HTTP_PORT": str(port)},
    )  # fmt: skip
    try:
        assert demo.stdout is not None
        passwords, lines = {}, []
        for line in demo.stdout:
            lines.append(line)
            if line.startswith("web login of "):
                passwords[line.split()[3].rstrip(":")] = line.split()[-1]
            if "caught up with now" in line:
                break
        assert set(passwords) == {"demo-owner", "demo-operator"}, "".join(lines)
        base = f"http://127.0.0.1:{port}"
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(base + "/")
        page.get_by_label("User name").fill("demo-operator")
        page.get_by_label("Password").fill(passwords["demo-operator"])
        page.get_by_role("button", name="Log in").click()
        page.wait_for_selector("#live-map[data-ready=true]", timeout=60_000)
        assert len(cars_listed(page)) == 5  # the demo's car-sharing fleet, none of the owners' cars
        screenshot(page, shots, "demo-map-operator")
        page.get_by_role("link", name="demo-operator (operator)").click()
        page.get_by_role("button", name="Log out").click()

        page.get_by_label("User name").fill("demo-owner")
        page.get_by_label("Password").fill(passwords["demo-owner"])
        page.get_by_role("button", name="Log in").click()
        owned = cars_listed(page)
        assert len(owned) == 3
        page.locator(f'.cars li[data-vehicle-id="{owned[0]}"] button').click()
        page.locator(".carcard a").click()
        page.get_by_role("button", name="Lock", exact=True).click()
        page.get_by_role("button", name="Yes, lock").click()
        result = page.locator(".command-result")
        expect(result).to_have_attribute("data-status", "acknowledged", timeout=60_000)
        expect(result).to_contain_text("the car acknowledged it")
        drives = page.locator("section[aria-labelledby=drives-h] table tbody tr")
        if drives.count():
            drives.first.get_by_role("button").click()
            page.wait_for_selector(".vehicle-map[data-route]", timeout=WAIT_MS)
        screenshot(page, shots, "demo-vehicle-owner", full_page=True)
        context.close()
    finally:
        demo.terminate()
        demo.communicate(timeout=60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_owner_sees_her_cars_alert_and_acknowledges_it(page: Page, world: WebWorld, shots: Path) -> None:
    log_in(page, world, "ann")
    car = page.locator('.cars li[data-vehicle-id="car-a"]')
    expect(car).to_have_attribute("data-state", "alert", timeout=WAIT_MS)  # her soc_low rule, at 58 %
    car.get_by_role("button").click()
    expect(page.locator(".carcard")).to_contain_text("Needs attention")
    page.locator(".carcard a").click()
    alert = page.locator(".alerts li[data-alert-id]")
    expect(alert).to_have_attribute("data-status", "raised", timeout=WAIT_MS)
    expect(page.locator("#state-badge")).to_have_attribute("data-state", "alert")
    alert.get_by_role("button", name="Acknowledge").click()
    page.get_by_role("button", name="Yes, acknowledge").click()  # each lifecycle step asks first
    expect(alert).to_have_attribute("data-status", "acknowledged", timeout=WAIT_MS)
    screenshot(page, shots, "vehicle-alert")


def test_the_keyboard_reaches_a_cars_page_from_the_map(page: Page, world: WebWorld) -> None:
    log_in(page, world, "ann")
    cars_listed(page)
    page.locator('.cars li[data-vehicle-id="car-a"] button').focus()
    page.keyboard.press("Enter")  # the list entry opens the card and hands the focus to its link
    expect(page.locator(".carcard a")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Mini EV of Ann")).to_be_visible(timeout=WAIT_MS)


def test_a_lost_live_feed_says_reconnecting_and_resumes_after_its_last_event(
    page: Page, world: WebWorld
) -> None:
    sockets: list[WebSocketRoute] = []

    def through(ws: WebSocketRoute) -> None:  # the real feed, with a hand on the page's side
        sockets.append(ws)
        ws.connect_to_server()

    page.route_web_socket(re.compile(r".*/api/v1/live.*"), through)
    log_in(page, world, "olga")
    live_map = page.locator("#live-map")
    expect(live_map).to_have_attribute("data-live", "live", timeout=WAIT_MS)
    sockets[0].close(code=4000, reason="the network went away")  # the page's side drops
    expect(page.locator(".connection")).to_have_text("Live updates lost — reconnecting…", timeout=WAIT_MS)
    expect(live_map).to_have_attribute("data-live", "live", timeout=WAIT_MS)
    expect(page.locator(".connection")).to_be_hidden()
    assert "?after=" in sockets[-1].url and len(sockets) == 2


def test_an_operator_sees_her_fleet_then_its_charging_plan(page: Page, world: WebWorld, shots: Path) -> None:
    log_in(page, world, "olga")
    page.wait_for_selector("#live-map[data-ready=true]", timeout=WAIT_MS)
    page.get_by_role("link", name="Fleet", exact=True).click()
    expect(page.get_by_role("heading", name="Fleet city-share")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#fleet-now")).to_be_visible(timeout=WAIT_MS)
    tiles = page.locator("#fleet-now .tile")
    counts = {t.get_attribute("data-state"): int(t.locator(".tile-n").inner_text()) for t in tiles.all()}
    assert sum(counts.values()) == 1  # her fleet's one car; ann's and bob's cars are not counted
    expect(page.get_by_text("No charging plan yet")).to_be_visible()

    # She registers a depot and a charger over the API and asks for a plan now (the worker would soon)
    admin = {"Authorization": f"Bearer {world.services.admin.issue_token('olga', 'plan')}"}
    with httpx.Client(base_url=world.base_url, headers=admin, timeout=30) as client:
        site = {"site_id": "depot-1", "name": "North depot", "power_limit_kw": 22.0}
        client.post("/api/v1/fleets/city-share/charging-sites", json=site).raise_for_status()
        charger = {"charge_point_id": "cp-1", "max_kw": 11.0}
        client.post("/api/v1/charging-sites/depot-1/charge-points", json=charger).raise_for_status()
        client.post("/api/v1/fleets/city-share/charging-plan").raise_for_status()
    page.reload()
    expect(page.get_by_role("heading", name="Charging plan · city-share")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("North depot")).to_be_visible()
    expect(page.locator("#bookings-at-risk")).to_be_visible()
    expect(page.get_by_role("heading", name="Service this week · city-share")).to_be_visible()
    expect(page.get_by_role("heading", name="Drivers · city-share")).to_be_visible()
    screenshot(page, shots, "fleet-operator", full_page=True)


def test_an_owner_has_no_fleet_page_in_her_menu(page: Page, world: WebWorld) -> None:
    log_in(page, world, "ann")
    page.wait_for_selector("#live-map[data-ready=true]", timeout=WAIT_MS)
    expect(page.get_by_role("link", name="Fleet", exact=True)).to_be_hidden()


def test_an_owner_makes_an_api_token_uses_it_then_revokes_it(page: Page, world: WebWorld) -> None:
    bob = next(u for u in world.services.admin.list_users() if u.name == "bob")
    world.services.web_sessions.set_password(bob, PASSWORDS["bob"])  # another test changes it
    log_in(page, world, "bob", path="/#/account")
    expect(page.get_by_role("heading", name="API tokens")).to_be_visible(timeout=WAIT_MS)
    page.get_by_role("button", name="Make a token").click()
    expect(page.get_by_role("alert")).to_contain_text("Say what the token is for")  # checked before sending
    page.get_by_label("What the token is for").fill("bob's garage script")
    page.get_by_role("button", name="Make a token").click()
    token = page.locator(".token-text").inner_text(timeout=WAIT_MS)
    with httpx.Client(base_url=world.base_url, timeout=30) as client:
        mine = {"Authorization": f"Bearer {token}"}
        assert [v["vehicle_id"] for v in client.get("/api/v1/vehicles", headers=mine).json()] == ["car-c"]
        page.on("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Revoke bob's garage script").click()
        expect(page.locator("#tokens")).not_to_contain_text("bob's garage script", timeout=WAIT_MS)
        assert client.get("/api/v1/vehicles", headers=mine).status_code == 401


def test_an_admin_invites_a_person_who_joins_with_her_own_password(browser: Browser, world: WebWorld) -> None:
    admin = world.services.admin
    if not any(u.name == "rita" for u in admin.list_users()):
        admin.add_user("rita", Role.ADMIN, None)
    rita = next(u for u in admin.list_users() if u.name == "rita")
    world.services.web_sessions.set_password(rita, "rita-password-1")
    first = browser.new_context()
    page = first.new_page()
    log_in(page, world, "rita", "rita-password-1", path="/#/account")
    expect(page.get_by_role("heading", name="Invite a person")).to_be_visible(timeout=WAIT_MS)
    page.get_by_label("User name").fill("dora")
    page.get_by_label("Role").select_option("owner")
    page.get_by_role("button", name="Invite").click()
    link = page.locator("#new-invitation .token-text").inner_text(timeout=WAIT_MS)
    expect(page.locator("#invitations")).to_contain_text("dora")
    first.close()

    joining = browser.new_context()  # the invited person, on her own device
    page = joining.new_page()
    page.goto(link)
    expect(page.get_by_role("heading", name="Join Microfleet")).to_be_visible(timeout=WAIT_MS)
    page.get_by_label("Choose a password (at least 8 characters)").fill("dora-password-1")
    page.get_by_label("The password again").fill("dora-password-1")
    page.get_by_role("button", name="Join Microfleet").click()
    expect(page.get_by_role("link", name="dora (owner)")).to_be_visible(timeout=WAIT_MS)
    page.goto(link)  # the link worked once
    page.get_by_label("Choose a password (at least 8 characters)").fill("dora-password-2")
    page.get_by_label("The password again").fill("dora-password-2")
    page.get_by_role("button", name="Join Microfleet").click()
    expect(page.get_by_role("alert")).to_contain_text("already used", timeout=WAIT_MS)
    joining.close()


AXE = Path(__file__).parent / "vendor" / "axe.min.js"  # axe-core 4.14.1 from npm (MPL-2.0), vendored


def axe_violations(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is, one line each (rule: where)."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async () => {
            const result = await axe.run(document, { resultTypes: ["violations"] });
            return result.violations
              .filter((v) => v.impact === "serious" || v.impact === "critical")
              .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
        }"""
    )
    return list(found)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_main_pages_have_no_serious_accessibility_violations(
    browser: Browser, world: WebWorld, scheme: str
) -> None:
    # bypass_csp: the page's CSP (script-src 'self') rightly refuses the injected checker
    context = browser.new_context(
        viewport={"width": 1280, "height": 800},
        color_scheme=scheme,  # type: ignore[arg-type]
        bypass_csp=True,
    )
    page = context.new_page()
    try:
        page.goto(world.base_url + "/#/login")
        expect(page.get_by_role("heading", name="Log in to Microfleet")).to_be_visible(timeout=WAIT_MS)
        found = {"login": axe_violations(page)}
        log_in(page, world, "ann")
        expect(page.locator("#live-map")).to_have_attribute("data-ready", "true", timeout=WAIT_MS)
        found["map"] = axe_violations(page)
        page.goto(world.base_url + "/#/vehicles/car-a")
        expect(page.locator("#state-badge")).to_be_visible(timeout=WAIT_MS)
        found["vehicle"] = axe_violations(page)
        page.goto(world.base_url + "/#/account")
        expect(page.get_by_role("button", name="Log out")).to_be_visible(timeout=WAIT_MS)
        found["account"] = axe_violations(page)
        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_role("heading", name="Log in to Microfleet")).to_be_visible(timeout=WAIT_MS)
        log_in(page, world, "olga", path="/#/fleet")
        expect(page.locator("#fleet-now")).to_be_visible(timeout=WAIT_MS)
        found["fleet"] = axe_violations(page)
    finally:
        context.close()
    assert found == {"login": [], "map": [], "vehicle": [], "account": [], "fleet": []}
