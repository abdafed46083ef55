"""The console from the keyboard and for screen readers: search box, focus and live announcements
after swaps, the event log's pages in the address, staff disabling, favicon."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from core import clock
from models.accounts import Account, AccountEvent, Device
from models.enums import AccountEventKind
from models.staff import Staff
from resolvers import support
from settings import Settings
from tests import test_console_browser
from tests.factories import (
    make_agent,
    make_contractor,
    make_grant,
    make_listing,
    make_lockbox,
    make_region,
    make_staff,
)
from tests.test_console_browser import console_page, make_people, shot
from tests.test_console_http import HX, log_in, signed_in, token, totp_now

ANNOUNCE = "#announce"
# The real server and Chromium of the console's browser tests.
server = test_console_browser.server
browser = test_console_browser.browser


async def focused(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate(
        """() => { const e = document.activeElement;
                   return {id: e.id, tag: e.tagName, text: e.textContent.trim(),
                           section: e.closest("section") ? e.closest("section").id : null}; }"""
    )
    return result


async def many_events(account: Account, count: int) -> None:
    await AccountEvent.bulk_create(
        [AccountEvent(account=account, kind="SIGNED_IN", detail=f"visit {n}") for n in range(count)]
    )


# ---- in the browser ---------------------------------------------------------------------------


async def test_the_search_box_is_focused_and_enter_opens_the_single_result(
    server: str, browser: Browser
) -> None:
    # given
    carla = await make_contractor(first_name="Carla", last_name="Jones")
    await make_contractor(first_name="Tom", last_name="Taken")
    # when: signed in, arrived on search
    page = await console_page(browser, server)
    # then: typing goes straight into the box; Enter right after typing opens the one match
    await expect(page.locator("#q")).to_be_focused()
    await page.keyboard.type("carla jo", delay=20)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{server}/console/accounts/{carla.id}")
    await expect(page.get_by_role("heading", name="Carla Jones")).to_be_visible()
    # ... where the box is not focused, and "/" goes back to it.
    await expect(page.locator("#q")).not_to_be_focused()
    await page.keyboard.press("/")
    await expect(page.locator("#q")).to_be_focused()


async def test_arrows_highlight_a_result_and_enter_opens_it(server: str, browser: Browser) -> None:
    # given: three matches
    await make_contractor(first_name="Carl", last_name="Adams")
    second = await make_contractor(first_name="Carla", last_name="Brown")
    await make_contractor(first_name="Carlos", last_name="Cruz")
    page = await console_page(browser, server)
    search = page.locator("#q")
    await search.fill("carl")
    await expect(page.locator("#results .row-link")).to_have_count(3)
    await expect(page.locator(ANNOUNCE)).to_have_text(re.compile("3 accounts found"))
    # when: Enter with several and none chosen
    await search.press("Enter")
    # then: it says how to choose, and the page stays
    await expect(page.locator(ANNOUNCE)).to_have_text(re.compile("press the Down arrow"))
    await expect(page).to_have_url(f"{server}/console/search?q=carl")
    # when: Down, Down, Up, Down (the box keeps the focus; the highlight is its active descendant)
    for key in ("ArrowDown", "ArrowDown", "ArrowUp", "ArrowDown"):
        await search.press(key)
    # then
    await expect(search).to_be_focused()
    await expect(search).to_have_attribute("aria-activedescendant", f"result-{second.id}")
    await expect(page.locator("tr.highlighted")).to_contain_text("Carla Brown")
    await search.press("Enter")
    await expect(page).to_have_url(f"{server}/console/accounts/{second.id}")


async def test_tab_goes_from_the_search_box_into_the_results_before_the_header_links(
    server: str, browser: Browser
) -> None:
    # given
    first = await make_contractor(first_name="Carl", last_name="Adams")
    await make_contractor(first_name="Carla", last_name="Brown")
    page = await console_page(browser, server, role="SYSADMIN")
    await page.locator("#q").fill("carl")
    await expect(page.locator("#results .row-link")).to_have_count(2)
    # when
    await page.locator("#q").press("Tab")
    # then: the first result, not "Staff" or "Password" in the top bar (which is still on top)
    assert (await focused(page))["id"] == f"result-{first.id}"
    await page.keyboard.press("Tab")
    assert (await focused(page))["text"] == "Carla Brown"
    bar = await page.locator(".topbar").bounding_box()
    staff_link = await page.locator(".who").get_by_role("link", name="Staff").bounding_box()
    assert bar and staff_link and staff_link["y"] < bar["y"] + bar["height"]


async def test_focus_and_announcements_after_email_edits_and_the_reveal(
    server: str, browser: Browser, settings: Settings
) -> None:
    # given
    people = await make_people(settings.secret_key)
    page = await console_page(browser, server)
    await page.goto(f"{server}/console/accounts/{people['carla'].id}")
    row = page.locator("#email-row")
    # when: Edit, then Cancel
    await row.get_by_role("link", name="Edit").click()
    await expect(page.locator("#email-input")).to_be_focused()
    await expect(page.locator(ANNOUNCE)).to_have_text("Editing the email address.")
    await row.get_by_role("link", name="Cancel").click()
    # then: back on the Edit link, told so
    await expect(page.locator(ANNOUNCE)).to_have_text("Email edit cancelled.")
    await expect(row.get_by_role("link", name="Edit")).to_be_focused()
    # when: Edit, type, Enter
    await row.get_by_role("link", name="Edit").click()
    await expect(page.locator("#email-input")).to_be_focused()  # the form is htmx's by then
    await page.locator("#email-input").fill("carla.new@example.com")
    await page.locator("#email-input").press("Enter")
    # then
    await expect(page.locator("#email-value")).to_have_text("carla.new@example.com")
    await expect(page.locator(ANNOUNCE)).to_have_text("Email changed.")
    await expect(row.get_by_role("link", name="Edit")).to_be_focused()
    # ... and the event log's own refresh (it follows the change) took neither focus nor voice.
    await expect(page.locator("#events")).to_contain_text("Email changed")
    await expect(row.get_by_role("link", name="Edit")).to_be_focused()
    await expect(page.locator(ANNOUNCE)).to_have_text("Email changed.")
    # when: reveal the answers
    await page.get_by_role("button", name="Reveal answers").click()
    # then: the focus is on the answers, which are said to be revealed
    await expect(page.locator("#answers")).to_be_focused()
    await expect(page.locator("#answers")).to_contain_text("Biscuit")
    await expect(page.locator(ANNOUNCE)).to_have_text(re.compile("Security answers revealed"))


async def test_removing_devices_moves_focus_to_the_list_and_says_so(
    server: str, browser: Browser, settings: Settings
) -> None:
    # given: an agent with two devices
    people = await make_people(settings.secret_key)
    agent = people["agent"]
    page = await console_page(browser, server)
    await page.goto(f"{server}/console/accounts/{agent.id}")
    page.on("dialog", lambda dialog: dialog.accept())
    # when
    await page.get_by_role("button", name="Remove Old Galaxy S9").click()
    # then
    devices = page.locator("#devices")
    await expect(devices).not_to_contain_text("Old Galaxy S9")
    await expect(page.locator(ANNOUNCE)).to_have_text(
        "Device registration removed. 1 device registered."
    )
    await expect(devices.get_by_role("heading", name="Devices")).to_be_focused()
    # when: the other one is removed meanwhile (by the user, elsewhere), then removed here
    await Device.filter(account_id=agent.id).delete()
    await page.get_by_role("button", name="Remove Dora's iPad").click()
    # then: the list is refreshed, with the reason
    await expect(devices).to_contain_text("No registered devices.")
    await expect(page.locator(ANNOUNCE)).to_have_text(
        "That device was already removed. 0 devices registered."
    )
    await expect(page.locator("#notice")).to_be_hidden()


async def test_event_log_pages_are_in_the_address_and_back_returns_to_them(
    server: str, browser: Browser
) -> None:
    # given: 60 entries
    contractor = await make_contractor(first_name="Lou", last_name="Logged")
    await many_events(contractor, 60)
    page = await console_page(browser, server)
    account_url = f"{server}/console/accounts/{contractor.id}"
    await page.goto(account_url)
    events = page.locator("#events")
    await expect(events).to_contain_text("Entries 1–25 of 60")
    # when: Older, twice
    await events.get_by_role("link", name="Older entries").click()
    await expect(events).to_contain_text("Entries 26–50 of 60")
    # then: the heading has the focus, the page is said and is in the address
    await expect(
        events.get_by_role("heading", name=re.compile("Account Event Log"))
    ).to_be_focused()
    await expect(page.locator(ANNOUNCE)).to_have_text("Account event log: entries 26–50 of 60.")
    assert re.fullmatch(rf"{account_url}\?events_before=\d+#events", page.url)
    second_page = page.url
    await events.get_by_role("link", name="Older entries").click()
    await expect(events).to_contain_text("Entries 51–60 of 60")
    # when: Back
    await page.go_back()
    # then: the same second page, from the server
    await expect(page).to_have_url(second_page)
    await expect(page.locator("#events")).to_contain_text("Entries 26–50 of 60")
    # when: Newer, from there
    await page.locator("#events").get_by_role("link", name="Newer entries").click()
    # then
    await expect(page.locator("#events")).to_contain_text("Entries 1–25 of 60")
    await expect(page).to_have_url(f"{account_url}#events")


async def test_the_sticky_bar_does_not_cover_a_section_jumped_to(
    server: str, browser: Browser, settings: Settings
) -> None:
    people = await make_people(settings.secret_key)
    await many_events(people["carla"], 30)
    for width, height in ((1280, 800), (390, 844)):
        # given
        page = await console_page(browser, server, width=width, height=height)
        await page.goto(f"{server}/console/accounts/{people['carla'].id}")
        # when: the section link
        await page.locator(".jump").get_by_role("link", name="Event log").click()
        # then
        await expect(page).to_have_url(re.compile("#events$"))
        bar = await page.locator(".topbar").bounding_box()
        heading = await page.locator("#events h2").bounding_box()
        assert bar and heading
        assert bar["y"] == 0 and heading["y"] >= bar["height"], (width, bar, heading)
        assert await page.evaluate("window.scrollY") > 0
        await page.close()


async def test_account_page_screenshots_desktop_and_phone(
    server: str, browser: Browser, settings: Settings
) -> None:
    people = await make_people(settings.secret_key)
    await many_events(people["carla"], 30)
    for name, width, height in (("desktop", 1280, 900), ("phone", 390, 844)):
        page = await console_page(browser, server, width=width, height=height)
        await page.goto(f"{server}/console/accounts/{people['carla'].id}")
        await expect(page.get_by_role("heading", name="Account Event Log")).to_be_visible()
        # no sideways scrolling, and the top bar's pieces do not overlap
        assert await page.evaluate("document.documentElement.scrollWidth") <= width
        brand = await page.locator(".brand").bounding_box()
        who = await page.locator(".who").bounding_box()
        search = await page.locator("#q").bounding_box()
        assert brand and who and search
        assert brand["x"] + brand["width"] <= who["x"]
        assert (
            search["x"] + search["width"] <= who["x"] or search["y"] >= who["y"] + who["height"]
        ), (search, who)
        await shot(page, f"console-account-{name}")
        await page.close()


# ---- over HTTP (both databases) ---------------------------------------------------------------


async def test_disabling_staff_asks_first_without_javascript_too(
    app_settings: Settings, app: Any
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://keybin.test") as admin_http,
        httpx.AsyncClient(transport=transport, base_url="http://keybin.test") as support_http,
    ):
        # given
        await signed_in(admin_http, "SYSADMIN", "Ada Admin")
        support = await signed_in(support_http, "SUPPORT", "Sue Support")
        url = f"/console/staff/{support.staff.id}/disable"
        # when: the list's Disable link, and a bare POST as an old form would send it
        listing = await admin_http.get("/console/staff")
        asked = await admin_http.get(url)
        bare = await admin_http.post(url, data={"csrf_token": await token(admin_http)})
        # then: both ask; nothing changed yet
        assert f'href="{url}"' in listing.text
        assert "System administrator" in listing.text
        for page in (asked, bare):
            assert page.status_code == 200
            assert "Disable Sue Support?" in page.text
            assert 'name="confirm" value="yes"' in page.text
        assert (await Staff.get(id=support.staff.id)).disabled is False
        # when: a support member tries the confirmation page, or to confirm
        refused_page = await support_http.get(f"/console/staff/{support.staff.id}/disable")
        refused = await support_http.post(
            url, data={"csrf_token": await token(support_http), "confirm": "yes"}
        )
        no_csrf = await admin_http.post(url, data={"confirm": "yes"})
        # then
        assert [refused_page.status_code, refused.status_code, no_csrf.status_code] == [403] * 3
        assert (await Staff.get(id=support.staff.id)).disabled is False
        # when: confirmed
        done = await admin_http.post(
            url, data={"csrf_token": await token(admin_http), "confirm": "yes"}
        )
        # then
        assert done.status_code == 303 and done.headers["location"] == "/console/staff"
        assert (await Staff.get(id=support.staff.id)).disabled is True
        assert (await admin_http.get("/console/staff/999999/disable")).status_code == 404


async def test_a_disabled_member_is_told_why_only_with_the_right_password_and_code(
    http: httpx.AsyncClient,
) -> None:
    # given
    created = await make_staff(name="Dee Disabled")
    await Staff.filter(id=created.staff.id).update(disabled=True)
    email, secret = created.staff.email, created.staff.totp_secret
    # when
    wrong_password = await log_in(http, email, "Wrong123", totp_now(secret))
    unknown = await log_in(http, "nobody@keybin.test", created.password, totp_now(secret))
    wrong_code = await log_in(http, email, created.password, "000000")
    clock.travel(30)
    right = await log_in(http, email, created.password, totp_now(secret))
    # then: the reason only after both secrets; no session either way
    for refused in (wrong_password, unknown, wrong_code):
        assert refused.status_code == 401
        assert "Wrong email, password or code." in refused.text
        assert "disabled" not in refused.text
    assert right.status_code == 401
    assert "Your console access has been disabled by a system administrator." in right.text
    assert (await http.get("/console/")).headers["location"] == "/console/login"


async def test_removing_an_already_removed_device_refreshes_the_list(
    http: httpx.AsyncClient,
) -> None:
    # given
    await signed_in(http)
    agent = await make_agent()
    kept = await Device.create(account=agent, device_id="ipad", name="Kept iPad")
    gone = await Device.create(account=agent, device_id="old", name="Gone Phone")
    await gone.delete()
    url = f"/console/accounts/{agent.id}/devices/{gone.id}/remove"
    csrf = await token(http)
    # when
    swapped = await http.post(url, headers={**HX, "X-CSRF-Token": csrf})
    plain = await http.post(url, data={"csrf_token": csrf})
    # then: htmx gets the list as it is, with the reason; no log refresh (nothing changed)
    assert swapped.status_code == 200
    assert 'id="devices"' in swapped.text and "Kept iPad" in swapped.text
    assert "That device was already removed." in swapped.text
    assert "HX-Trigger" not in swapped.headers
    assert plain.status_code == 303
    assert plain.headers["location"] == f"/console/accounts/{agent.id}#devices"
    page = await http.get(plain.headers["location"])
    assert "That device was already removed." in page.text
    assert await Device.filter(id=kept.id).exists()
    assert not await AccountEvent.filter(
        account_id=agent.id, kind=AccountEventKind.DEVICE_REMOVED.value
    ).exists()
    # ... and another account's device is not removed through this one.
    other = await make_agent()
    theirs = await Device.create(account=other, device_id="x", name="Theirs")
    crossed = await http.post(
        f"/console/accounts/{agent.id}/devices/{theirs.id}/remove",
        headers={**HX, "X-CSRF-Token": csrf},
    )
    assert "That device was already removed." in crossed.text
    assert await Device.filter(id=theirs.id).exists()


async def test_the_favicon_is_served_and_linked(http: httpx.AsyncClient) -> None:
    # when
    login = await http.get("/console/login")
    icon = await http.get("/console/favicon.ico")
    svg = await http.get("/console/static/favicon.svg")
    # then
    assert '<link rel="icon" href="/console/static/favicon.svg"' in login.text
    for response in (icon, svg):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("image/svg+xml")
        assert response.text.startswith("<svg")


async def test_the_event_log_page_is_in_the_address_with_count_zone_and_seconds(
    http: httpx.AsyncClient,
) -> None:
    # given: an agent with lockboxes in Chicago (two) and New York (one), 30 entries
    await signed_in(http)
    agent = await make_agent()
    chicago = await make_region("CHI", "America/Chicago")
    new_york = await make_region("NYC", "America/New_York")
    for region in (chicago, new_york, chicago):
        await make_lockbox(agent, region=region)
    await many_events(agent, 30)
    newest = await AccountEvent.filter(account_id=agent.id).order_by("-id").first()
    assert newest is not None
    # when
    first = await http.get(f"/console/accounts/{agent.id}")
    match = re.search(r'href="/console/accounts/\d+\?events_before=(\d+)#events"', first.text)
    assert match, "no Older link"
    second = await http.get(f"/console/accounts/{agent.id}?events_before={match.group(1)}")
    fragment = await http.get(
        f"/console/accounts/{agent.id}/events?before={match.group(1)}", headers=HX
    )
    plain = await http.get(f"/console/accounts/{agent.id}/events?before={match.group(1)}")
    # then
    assert "Entries 1–25 of 30 · times in America/Chicago" in first.text
    local = newest.created_at.astimezone(ZoneInfo("America/Chicago"))
    assert local.strftime("%Y-%m-%d %H:%M:%S %Z") in first.text
    assert "Entries 26–30 of 30" in second.text and "Newer entries" in second.text
    assert "Entries 26–30 of 30" in fragment.text and "<html" not in fragment.text
    assert f'hx-push-url="/console/accounts/{agent.id}?events_before=' in first.text
    assert plain.status_code == 303
    assert plain.headers["location"] == (
        f"/console/accounts/{agent.id}?events_before={match.group(1)}#events"
    )
    # ... and a made-up position is just a position.
    odd = await http.get(f"/console/accounts/{agent.id}?events_before=abc")
    assert odd.status_code == 200 and "Entries 1–25 of 30" in odd.text


async def test_actions_by_a_system_administrator_are_labelled_in_the_event_log(
    http: httpx.AsyncClient,
) -> None:
    # given: one change by a sysadmin, one by a support member
    await signed_in(http)
    admin = await make_staff(name="Ada Admin", role="SYSADMIN")
    helper = await make_staff(name="Hal Helper")
    contractor = await make_contractor()
    for who in (admin.staff, helper.staff):
        await AccountEvent.create(
            account=contractor, kind="EMAIL_CHANGED", staff_id=who.id, staff_name=who.name
        )
    # when
    page = await http.get(f"/console/accounts/{contractor.id}")
    # then
    assert "System administrator: Ada Admin" in page.text
    assert "support: Hal Helper" in page.text
    assert "System administrator: Hal Helper" not in page.text


async def test_an_accounts_time_zone_comes_from_its_lockboxes_or_grants(orm: None) -> None:
    # given
    chicago = await make_region("CHI", "America/Chicago")
    denver = await make_region("DEN", "America/Denver")
    agent = await make_agent()
    await make_lockbox(agent, region=denver)
    for _ in range(3):
        await make_lockbox(agent, region=chicago)
    listing = await make_listing(agent)
    old_box = await make_lockbox(agent, listing, region=denver)
    contractor = await make_contractor()
    await make_grant(agent, listing, old_box, contractor, starts_in=60)
    await make_grant(agent, listing, await make_lockbox(region=chicago), contractor, starts_in=60)
    nobody = await make_contractor()
    # when / then: the agent's most common region, the contractor's latest grant's, else UTC
    assert await support.account_time_zone(agent) == "America/Chicago"
    assert await support.account_time_zone(contractor) == "America/Chicago"
    assert await support.account_time_zone(nobody) == "UTC"
    assert await support.account_time_zone(await make_agent()) == "UTC"


@pytest.mark.parametrize("count", [0, 1])
async def test_event_log_counts_an_empty_or_single_page(orm: None, count: int) -> None:
    contractor = await make_contractor()
    await many_events(contractor, count)
    page = await support.event_log(contractor.id)
    assert (page.first, page.total, page.next_before, page.newer_before) == (
        count,
        count,
        None,
        None,
    )
