"""The support console in a real browser (Chromium via Playwright) against a real uvicorn server."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from playwright.async_api import Browser, Page, expect

from core import clock
from core.security import hash_secret, seal
from models.access import AccessEvent
from models.accounts import Account, AccountEvent, Device, SecurityAnswer
from models.enums import AccessMethod, AccessOutcome
from models.grants import Grant
from models.staff import Staff
from settings import Settings
from tests.browser import ROOT, chromium, screenshots_dir
from tests.factories import make_agent, make_contractor, make_listing, make_lockbox, make_staff

pytestmark = pytest.mark.browser

NEW_PASSWORD = "Support42"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def server(settings: Settings, tmp_path: Path, orm: None) -> AsyncIterator[str]:
    """uvicorn serving the test database on a free loopback port."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "SECRET_KEY": settings.secret_key,
        "KEYBIN_ENV": "development",
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "uvicorn", "app:app"],
            *["--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client, asyncio.timeout(30):
            while True:
                try:
                    if (await client.get(f"{base}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.returncode is None, log_path.read_text()
                await asyncio.sleep(0.1)
        yield base
    finally:
        process.terminate()
        async with asyncio.timeout(10):
            await process.wait()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(screenshots_dir() / f"{name}.png"), full_page=True)


async def console_page(browser: Browser, server: str, role: str = "SUPPORT", **size: int) -> Page:
    """A browser page signed in as a new staff member, past the first password, on search."""
    created = await make_staff(name="Sam Support", role=role)
    viewport = {"width": size.get("width", 1280), "height": size.get("height", 800)}
    page = await browser.new_page(viewport=viewport)  # type: ignore[arg-type]
    await page.goto(f"{server}/console/login")
    await page.get_by_label("Email").fill(created.staff.email)
    await page.get_by_label("Password").fill(created.password)
    await page.get_by_label("Code").fill(pyotp.TOTP(created.staff.totp_secret).now())
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_label("Current password").fill(created.password)
    await page.get_by_label("New password").fill(NEW_PASSWORD)
    await page.get_by_label("Repeat it").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Save password").click()
    await expect(page.get_by_text("Password changed.")).to_be_visible()
    return page


async def make_people(secret_key: str) -> dict[str, Any]:
    agent = await make_agent(first_name="Dora", last_name="Lister", phone="+15135550199")
    listing = await make_listing(agent, line1="418 Walnut Street")
    lockbox = await make_lockbox(agent, listing)
    carla = await make_contractor(
        email="carla.jones@example.com", first_name="Carla", last_name="Jones", phone="+15135550123"
    )
    await make_contractor(email="taken@example.com", first_name="Tom", last_name="Taken")
    for question, answer in (
        ("First pet's name?", "Biscuit"),
        ("City you were born in?", "Dayton"),
    ):
        await SecurityAnswer.create(
            account=carla,
            question=question,
            answer_hash=hash_secret(answer.lower()),
            answer_sealed=seal(secret_key, answer),
        )
    now = clock.now()
    grant = await Grant.create(
        listing=listing,
        lockbox=lockbox,
        granted_by=agent,
        grantee=carla,
        grantee_email=carla.email,
        starts_at=now - timedelta(hours=2),
        ends_at=now + timedelta(days=2),
    )
    await AccessEvent.create(
        lockbox=lockbox,
        seq=1,
        listing=listing,
        grant=grant,
        actor=carla,
        actor_name=carla.full_name,
        method=AccessMethod.BLE_CREDENTIAL,
        outcome=AccessOutcome.OPENED,
        occurred_at=now - timedelta(hours=1),
    )
    await AccountEvent.create(account=carla, kind="SIGNED_UP")
    await AccountEvent.create(account=carla, kind="SIGNED_IN", detail="device Pixel 8")
    await Device.create(account=agent, device_id="ipad", name="Dora's iPad")
    await Device.create(account=agent, device_id="old", name="Old Galaxy S9")
    return {"agent": agent, "carla": carla}


async def test_support_agent_works_a_case_in_the_browser(
    server: str, browser: Browser, settings: Settings
) -> None:
    # given
    people = await make_people(settings.secret_key)
    carla, agent = people["carla"], people["agent"]
    staff = await make_staff(name="Sam Support")
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    policy_errors: list[str] = []
    page.on(
        "console",
        lambda message: (
            policy_errors.append(message.text)
            if "Content Security Policy" in message.text
            else None
        ),
    )

    # Sign in with the one-time password and a real TOTP code, then choose a password.
    await page.goto(f"{server}/console/")
    await expect(page).to_have_url(f"{server}/console/login")
    await page.get_by_label("Email").fill(staff.staff.email)
    await page.get_by_label("Password").fill(staff.password)
    await page.get_by_label("Code").fill(pyotp.TOTP(staff.staff.totp_secret).now())
    await shot(page, "01-login")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Choose your password")).to_be_visible()
    await page.get_by_label("Current password").fill(staff.password)
    await page.get_by_label("New password").fill(NEW_PASSWORD)
    await page.get_by_label("Repeat it").fill(NEW_PASSWORD)
    await shot(page, "02-choose-password")
    await page.get_by_role("button", name="Save password").click()
    await expect(page.get_by_text("Password changed.")).to_be_visible()

    # Live search: the box has the focus on arrival; rows appear while typing, with no page load.
    await expect(page.locator("#q")).to_be_focused()
    await page.locator("#q").press_sequentially("carl", delay=60)
    row = page.get_by_role("link", name="Carla Jones")
    await expect(row).to_be_visible()
    await expect(page).to_have_url(f"{server}/console/search?q=carl")
    await shot(page, "03-search")

    # The contractor's page: every section of the seed.
    await row.click()
    for heading in (
        "User Information",
        "Security Questions",
        "Accesses Granted",
        "Accesses Used",
        "Account Event Log",
        "Delete Account",
    ):
        await expect(page.get_by_role("heading", name=heading)).to_be_visible()
    await expect(page.locator("#granted")).to_contain_text("418 Walnut Street")
    await expect(page.locator("#used")).to_contain_text("opened")
    await shot(page, "04-contractor")

    # Edit the email in place: a taken address is refused right there, then a new one saved.
    await page.locator("#email-row").get_by_role("link", name="Edit").click()
    email_input = page.locator("#email-input")
    await expect(email_input).to_be_focused()
    await email_input.fill("taken@example.com")
    await page.locator("#email-row").get_by_role("button", name="Save").click()
    await expect(page.locator("#email-error")).to_be_visible()
    await shot(page, "05-email-taken")
    await page.locator("#email-input").fill("carla.new@example.com")
    await page.locator("#email-row").get_by_role("button", name="Save").click()
    await expect(page.locator("#email-value")).to_have_text("carla.new@example.com")

    # Reveal the security answers; the reveal and the email change show in the log with the name.
    await expect(page.locator("#security")).not_to_contain_text("Biscuit")
    await page.get_by_role("button", name="Reveal answers").click()
    await expect(page.locator("#security")).to_contain_text("Biscuit")
    await expect(page.locator("#security")).to_contain_text("Dayton")
    events = page.locator("#events")
    await expect(events).to_contain_text("Security answers viewed")
    await expect(events).to_contain_text("Email changed")
    await expect(events.get_by_text("support: Sam Support").first).to_be_visible()
    await shot(page, "06-answers-and-log")

    # Delete, with the confirmation step.
    await page.get_by_role("link", name="Delete account…").click()
    await expect(page.get_by_role("heading", name="Delete this account?")).to_be_visible()
    await shot(page, "07-delete-confirm")
    await page.get_by_label("The account holder asked for deletion").check()
    await page.get_by_role("button", name="Delete account permanently").click()
    await expect(page.get_by_text("Account deleted.")).to_be_visible()
    await shot(page, "08-deleted")
    gone = await Account.get(id=carla.id)
    assert gone.deleted_at is not None and gone.email is None

    # An agent: look up by Key ID, then remove a device registration (confirm dialog).
    await page.locator("#q").fill(agent.key_id)
    await page.get_by_role("link", name="Dora Lister").click()
    await expect(page.locator("#devices")).to_contain_text("Old Galaxy S9")
    await expect(page.locator("#lockboxes")).to_contain_text("418 Walnut Street")
    await shot(page, "09-agent")
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Remove Old Galaxy S9").click()
    await expect(page.locator("#devices")).not_to_contain_text("Old Galaxy S9")
    await expect(page.locator("#devices")).to_contain_text("Dora's iPad")
    await expect(page.locator("#events")).to_contain_text("Device removed")
    await shot(page, "10-agent-device-removed")
    assert await Device.filter(account_id=agent.id).values_list("name", flat=True) == [
        "Dora's iPad"
    ]

    # A narrow screen stays usable.
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.locator("#q").fill("dora")
    await expect(page.get_by_role("link", name="Dora Lister")).to_be_visible()
    await shot(page, "11-search-phone")
    assert policy_errors == []


async def test_a_sysadmin_lists_and_disables_staff(server: str, browser: Browser) -> None:
    # given
    admin = await make_staff(name="Ada Admin", role="SYSADMIN")
    support = await make_staff(name="Sue Support")
    page = await browser.new_page(viewport={"width": 1280, "height": 720})
    await page.goto(f"{server}/console/login")
    await page.get_by_label("Email").fill(admin.staff.email)
    await page.get_by_label("Password").fill(admin.password)
    await page.get_by_label("Code").fill(pyotp.TOTP(admin.staff.totp_secret).now())
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_label("Current password").fill(admin.password)
    await page.get_by_label("New password").fill(NEW_PASSWORD)
    await page.get_by_label("Repeat it").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Save password").click()
    # when
    await page.get_by_role("link", name="Staff").click()
    row = page.get_by_role("row").filter(has_text="Sue Support")
    await expect(row).to_contain_text("awaiting first login")
    await row.get_by_role("link", name="Disable Sue Support").click()
    await expect(page.get_by_role("heading", name="Disable Sue Support?")).to_be_visible()
    await page.get_by_role("button", name="Disable Sue Support").click()
    # then
    await expect(page.get_by_text("Sue Support disabled.")).to_be_visible()
    await expect(row).to_contain_text("disabled")
    await shot(page, "12-staff")
    assert (await Staff.get(id=support.staff.id)).disabled is True


async def test_a_staff_member_changes_their_password_and_signs_out(
    server: str, browser: Browser
) -> None:
    # given: signed in, past the first password
    created = await make_staff(name="Pat Support")
    page = await browser.new_page(viewport={"width": 1280, "height": 720})
    await page.goto(f"{server}/console/login")
    await page.get_by_label("Email").fill(created.staff.email)
    await page.get_by_label("Password").fill(created.password)
    await page.get_by_label("Code").fill(pyotp.TOTP(created.staff.totp_secret).now())
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_label("Current password").fill(created.password)
    await page.get_by_label("New password").fill(NEW_PASSWORD)
    await page.get_by_label("Repeat it").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Save password").click()
    await expect(page.get_by_text("Password changed.")).to_be_visible()
    # when: a wrong current password
    await page.get_by_role("link", name="Password").click()
    await expect(page.get_by_role("heading", name="Change your password")).to_be_visible()
    await page.get_by_label("Current password").fill("NotMine42")
    await page.get_by_label("New password").fill("Changed42")
    await page.get_by_label("Repeat it").fill("Changed42")
    await page.get_by_role("button", name="Save password").click()
    # then: told under the field; the password is the same
    await expect(page.locator("#current-error")).to_have_text("Your current password is wrong.")
    await shot(page, "13-password-wrong-current")
    assert (await Staff.get(id=created.staff.id)).failed_logins == 1
    # when: signed out from the search page, Back shows no page of the session
    await page.locator("#q").fill("anyone")
    await expect(page).to_have_url(f"{server}/console/search?q=anyone")
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(f"{server}/console/login")
    await page.go_back()
    # then
    await expect(page).to_have_url(f"{server}/console/login")
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
