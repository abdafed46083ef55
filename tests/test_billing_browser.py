"""The agent page's Billing section in Chromium, under the console's strict CSP: support reads
the balance out and sends the link in place (htmx), at a desktop width and on a phone."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests import test_console_browser
from tests.browser import screenshots_dir
from tests.stripe_server import StripeServer
from tests.test_billing import billed_agent
from tests.test_console_browser import console_page

pytestmark = pytest.mark.browser

server = test_console_browser.server
browser = test_console_browser.browser


@pytest.fixture(autouse=True)
def billing_on(monkeypatch: pytest.MonkeyPatch, stripe_server: StripeServer) -> None:
    """The served keybin (a process of its own) bills through Stripe on loopback."""
    monkeypatch.setenv("STRIPE_SECRET_KEY", stripe_server.secret_key)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", stripe_server.webhook_secret)
    monkeypatch.setenv("STRIPE_API_BASE", stripe_server.url)
    monkeypatch.setenv("BILLING_PRICES", "*=2500")


@pytest.mark.parametrize(("size", "width", "height"), [("desktop", 1280, 900), ("phone", 390, 844)])
async def test_support_sends_a_payment_link_from_the_agent_page(
    server: str, browser: Browser, stripe_server: StripeServer, size: str, width: int, height: int
) -> None:
    # given an agent owing this month, found by Key ID
    agent = await billed_agent(first_name="Dora", last_name="Lister", phone="+15135550199")
    page = await console_page(browser, server, width=width, height=height)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await page.locator("#q").press_sequentially(agent.key_id or "", delay=30)
    await page.get_by_role("link", name="Dora Lister").click()
    # when support opens the Billing section and sends the link by SMS
    billing = page.locator("#billing")
    await expect(billing).to_contain_text("$25.00")
    await page.get_by_role("link", name="Billing").click()
    await page.get_by_role("button", name="Send payment link").click()
    # then the section says it was sent, in place, and the page still fits the screen
    await expect(page.locator("#announce")).to_have_text("Payment link for $25.00 sent by SMS.")
    await expect(page.locator("#events")).to_contain_text("Payment link sent")
    assert await page.evaluate("document.documentElement.scrollWidth") <= width
    await billing.screenshot(path=str(screenshots_dir() / f"console-billing-{size}.png"))
    assert len(stripe_server.sessions) == 1
    assert errors == []
