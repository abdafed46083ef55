"""The console's search in Chromium: what was searched is said back, a long search never
widens a phone-sized page, and phone numbers read as people write them."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from resolvers.support import QUERY_MAX_LENGTH
from tests import test_console_browser
from tests.factories import make_contractor
from tests.test_console_browser import console_page, shot

pytestmark = pytest.mark.browser

# The real server and Chromium of the console's browser tests.
server = test_console_browser.server
browser = test_console_browser.browser
PHONE_WIDTH = 390


async def page_width(page: Page) -> int:
    width: int = await page.evaluate("document.documentElement.scrollWidth")
    return width


async def test_a_long_search_is_said_back_cut_and_never_widens_a_phone_sized_page(
    server: str, browser: Browser
) -> None:
    # given a support agent on a phone-sized window
    page = await console_page(browser, server, width=PHONE_WIDTH)
    long_text = "x" * 10_000
    # when they paste a long unbroken string into the box (live search)
    await page.locator("#q").fill(long_text)
    # then the box keeps what is searched, the page says it back, and nothing scrolls sideways
    empty = page.locator(".empty")
    await expect(empty).to_contain_text("No account matches")
    await expect(empty).to_contain_text("phone (or its last 4 or 7 digits), Key ID")
    assert len(await page.locator("#q").input_value()) == QUERY_MAX_LENGTH
    assert len(await empty.locator("p").first.inner_text()) < QUERY_MAX_LENGTH + 30
    assert await page_width(page) <= PHONE_WIDTH
    await shot(page, "search-long-input-390")
    # when the same arrives as a link (no maxlength to help): the server cuts it
    await page.goto(f"{server}/console/search?q={long_text}")
    await expect(page.locator(".empty")).to_contain_text("x" * QUERY_MAX_LENGTH)
    assert "x" * (QUERY_MAX_LENGTH + 1) not in await page.locator("main").inner_text()
    assert await page_width(page) <= PHONE_WIDTH


async def test_the_placeholder_and_start_page_name_every_way_to_search(
    server: str, browser: Browser
) -> None:
    # given
    page = await console_page(browser, server, width=1280)
    # when
    await page.goto(f"{server}/console/")
    # then
    assert "Key ID" in (await page.locator("#q").get_attribute("placeholder") or "")
    await expect(page.locator(".empty")).to_contain_text("last 4 or 7 digits")
    await expect(page.locator(".empty")).to_contain_text("@example.com")


async def test_a_caller_found_by_the_last_digits_shows_a_formatted_phone(
    server: str, browser: Browser
) -> None:
    # given
    caller = await make_contractor(first_name="Hank", last_name="Caller", phone="+15135550142")
    page = await console_page(browser, server, width=PHONE_WIDTH)
    # when the agent types the last four digits the caller reads out
    await page.locator("#q").press_sequentially("0142", delay=40)
    row = page.get_by_role("link", name="Hank Caller")
    # then the row shows the number formatted, and so does the account page
    await expect(page.locator("#main")).to_contain_text("(513) 555-0142")
    await row.click()
    await expect(page).to_have_url(f"{server}/console/accounts/{caller.id}")
    await expect(page.locator("main")).to_contain_text("(513) 555-0142")
    assert "+15135550142" not in await page.locator("main").inner_text()
    assert await page_width(page) <= PHONE_WIDTH
    await shot(page, "search-formatted-phone-390")
