"""The live map in a real browser: the cars are drawn over the streets on a map of their own (basemap.js's
overlay), so a click on a car's dot, after the map was dragged, still opens that car's card; and the list's
entries are updated in place, so the keyboard's focus stays on a car while it moves live.

The same server and people as tests/e2e/test_web.py (web_world.py): ann's car-a is parked at home, olga's
car-b drives at 30 km/h sending one record a second.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.web_world import PASSWORDS, WebWorld, chromium_path, serve_world

WAIT_MS = 20_000  # a loaded two-core machine needs several seconds' grace


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebWorld]:
    yield from serve_world(tmp_path_factory.mktemp("web-live"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, timezone_id="Asia/Shanghai")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], "the page's script failed"


def log_in(page: Page, world: WebWorld, name: str) -> None:
    page.goto(world.base_url + "/")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORDS[name])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector("#live-map[data-ready=true]", timeout=WAIT_MS)


def click_until_card(page: Page, x: float, y: float) -> None:
    """Click the map at (x, y) until a car's card opens (the map fits the cars once their state arrived)."""
    card = page.locator(".maplibregl-popup .carcard")
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        page.mouse.click(x, y)
        try:
            expect(card).to_be_visible(timeout=1_000)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def test_a_click_on_a_cars_dot_opens_its_card_after_the_map_was_dragged(page: Page, world: WebWorld) -> None:
    log_in(page, world, "ann")
    box = page.locator("#live-map").bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    # one car: the map is centred on it; its dot is on the overlay, the click goes to the map under it
    click_until_card(page, cx, cy)
    expect(page.locator(".carcard h3")).to_have_text("Mini EV of Ann")
    # a click a quarter of the map away from the car closes the card and opens none: no car is there
    dx, dy = box["width"] / 4, box["height"] / 5
    page.mouse.click(cx + dx, cy + dy)
    page.wait_for_timeout(500)
    expect(page.locator(".carcard")).to_have_count(0)
    # drag the streets by (dx, dy), holding still before letting go (no inertia): the car follows
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + dx, cy + dy, steps=12)
    page.wait_for_timeout(400)
    page.mouse.up()
    page.wait_for_timeout(300)
    click_until_card(page, cx + dx, cy + dy)
    expect(page.locator(".carcard h3")).to_have_text("Mini EV of Ann")


def test_the_focus_stays_on_a_car_in_the_list_while_it_moves_live(page: Page, world: WebWorld) -> None:
    log_in(page, world, "olga")
    car = page.locator('.cars li[data-vehicle-id="car-b"]')
    expect(car).to_have_attribute("data-state", "driving", timeout=WAIT_MS)
    expect(page.locator("#live-map")).to_have_attribute("data-live", "live", timeout=WAIT_MS)
    button = car.get_by_role("button")
    button.focus()
    first = car.get_attribute("data-lat")
    expect(car).not_to_have_attribute("data-lat", first or "", timeout=WAIT_MS)  # moved, over the feed
    expect(car).not_to_have_attribute("data-lat", car.get_attribute("data-lat") or "", timeout=WAIT_MS)
    expect(button).to_be_focused()  # the entry was updated, not replaced
    page.keyboard.press("Enter")  # and the keyboard still opens the car's card from it
    expect(page.locator(".carcard a")).to_be_focused()
    expect(page.locator(".carcard h3")).to_have_text("Shared Ami 7")
