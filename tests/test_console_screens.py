"""The console's main pages at a desktop width and on a 390 px phone: nothing scrolls
sideways, and the screenshots the README shows are taken here (artifacts/screenshots)."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from settings import Settings
from tests import test_console_browser
from tests.browser import screenshots_dir
from tests.test_console_browser import console_page, make_people
from tests.test_console_keyboard import many_events

pytestmark = pytest.mark.browser

server = test_console_browser.server
browser = test_console_browser.browser

SIZES = (("desktop", 1280, 900), ("phone", 390, 844))


@pytest.fixture(autouse=True)
def company_sign_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server is set up for a company provider, so the sign-in page offers it (nothing
    here follows the button: tests/test_console_oidc.py does, against a real provider)."""
    monkeypatch.setenv("OIDC_ISSUER", "http://127.0.0.1:9/company")
    monkeypatch.setenv("OIDC_CLIENT_ID", "keybin-console")
    monkeypatch.setenv("OIDC_CLIENT_SECRET", "not-used-here")
    monkeypatch.setenv("OIDC_NAME", "Example Realty")


async def shot(page: Page, name: str, size: str) -> None:
    # A phone's picture is its first screen, as a person holding it sees the page.
    path = screenshots_dir() / f"{name}-{size}.png"
    await page.screenshot(path=str(path), full_page=size == "desktop")


async def fits(page: Page, width: int) -> None:
    # the page never scrolls sideways at this width
    assert await page.evaluate("document.documentElement.scrollWidth") <= width


async def test_sign_in_search_account_and_audit_pages_fit_desktop_and_phone(
    server: str, browser: Browser, settings: Settings
) -> None:
    # given a contractor with a history, and a system administrator who has worked on it
    people = await make_people(settings.secret_key)
    carla = people["carla"]
    await many_events(carla, 30)
    for size, width, height in SIZES:
        # the sign-in page, signed out
        visitor = await browser.new_page(viewport={"width": width, "height": height})
        await visitor.goto(f"{server}/console/login")
        await expect(visitor.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
        await expect(visitor.get_by_text("Sign in with Example Realty")).to_be_visible()
        await fits(visitor, width)
        await shot(visitor, "console-sign-in", size)
        await visitor.close()

        page = await console_page(browser, server, "SYSADMIN", width=width, height=height)
        # the search page with a live result
        await page.locator("#q").press_sequentially("carl", delay=40)
        await expect(page.get_by_role("link", name="Carla Jones")).to_be_visible()
        await fits(page, width)
        await shot(page, "console-search", size)
        # the account page
        await page.get_by_role("link", name="Carla Jones").click()
        await expect(page.get_by_role("heading", name="Account Event Log")).to_be_visible()
        await fits(page, width)
        await shot(page, "console-account", size)
        # the audit trail, which holds the search and the view just made
        await page.goto(f"{server}/console/audit")
        rows = page.locator("table tbody tr")
        await expect(rows.first).to_be_visible()
        await expect(page.locator("table")).to_contain_text("carl")
        await fits(page, width)
        await shot(page, "console-audit", size)
        await page.close()
