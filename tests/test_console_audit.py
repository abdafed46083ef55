"""The staff audit trail: every console action recorded, read back by a SYSADMIN (filters,
pages, CSV) and by no one else, and a deleted account found by its tombstone alone."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, expect

from core import clock
from core.security import hash_secret, seal
from models.accounts import Account, AccountEvent, Device, SecurityAnswer
from models.enums import AccountEventKind, StaffAction
from models.staff import Staff, StaffAudit
from resolvers import audit
from settings import Settings
from tests import test_console_browser
from tests.browser import chromium  # noqa: F401  (marks the module as needing Chromium)
from tests.factories import GraphQLClient, make_contractor, make_staff
from tests.test_console_browser import NEW_PASSWORD as BROWSER_PASSWORD
from tests.test_console_browser import shot
from tests.test_console_http import HX, NEW_PASSWORD, csrf_of, log_in, signed_in, token, totp_now

# The browser tests' uvicorn server and Chromium, shared rather than copied.
server = test_console_browser.server
browser = test_console_browser.browser

UPDATE_EMAIL = """
mutation($email: String!, $password: String!) {
  updateEmail(input: {newEmail: $email, password: $password}) { userErrors { code } }
}
"""
DELETE_MY_ACCOUNT = """
mutation($password: String!) { deleteMyAccount(input: {password: $password}) { ok userErrors { code } } }
"""


async def trail(**match: Any) -> list[StaffAudit]:
    return await StaffAudit.filter(**match).order_by("id")


async def actions() -> list[str]:
    return [row.action.value for row in await trail()]


def parsed_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# --- the masking helper -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("john@example.com", "jo**@ex*****.com"),
        ("marcus@example.com", "ma****@ex*****.com"),
        ("ab@x.org", "a*@*.org"),
        ("a@b.co", "*@*.co"),
        ("carla.jones@mail.example.co.uk", "ca*********@ma*************.uk"),
        ("not-an-address", "no************"),
        ("", "(none)"),
        (None, "(none)"),
    ],
)
def test_mask_email_keeps_only_the_first_letters(address: str | None, masked: str) -> None:
    assert audit.mask_email(address) == masked


def test_an_email_change_reads_old_then_new_masked() -> None:
    detail = audit.email_change_detail("john@example.com", "marcus@example.com")
    assert detail == "jo**@ex*****.com -> ma****@ex*****.com"


# --- what is recorded -----------------------------------------------------------------------


async def test_sign_ins_failures_password_change_and_sign_out_are_recorded(
    http: httpx.AsyncClient,
) -> None:
    # given
    created = await make_staff(name="Pat Support")
    email, secret = created.staff.email, created.staff.totp_secret
    # when: a wrong password, an unknown address, then the real sign-in and password change
    await log_in(http, email, "Wrong123x", totp_now(secret))
    await log_in(http, "  Nobody@Example.com ", created.password, "123456")
    await signed_in_as(http, created)
    page = await http.get("/console/")
    await http.post("/console/logout", data={"csrf_token": csrf_of(page.text)})
    # then
    rows = await trail()
    assert [row.action for row in rows] == [
        StaffAction.SIGN_IN_FAILED,
        StaffAction.SIGN_IN_FAILED,
        StaffAction.SIGNED_IN,
        StaffAction.PASSWORD_CHANGED,
        StaffAction.SIGNED_OUT,
    ]
    wrong, unknown, signed, changed, out = rows
    assert (wrong.staff_id, wrong.target_staff_id, wrong.staff_label) == (  # type: ignore[attr-defined]
        None,
        created.staff.id,
        email,
    )
    assert wrong.detail == "wrong credentials"
    assert unknown.staff_label == "Nobody@Example.com" and unknown.target_staff_id is None
    assert unknown.detail == "wrong credentials (unknown address)"
    for row in (signed, changed, out):
        assert row.staff_id == created.staff.id  # type: ignore[attr-defined]
        assert row.staff_label == "Pat Support"
        assert row.client_address == "127.0.0.1"
    # Neither the passwords nor the codes typed are kept anywhere in the trail.
    typed = ["Wrong123x", created.password, NEW_PASSWORD, "123456"]
    for row in rows:
        assert not any(secret_typed in str(vars(row)) for secret_typed in typed)


async def signed_in_as(http: httpx.AsyncClient, created: Any) -> None:
    response = await log_in(
        http, created.staff.email, created.password, totp_now(created.staff.totp_secret)
    )
    assert response.headers["location"] == "/console/password"
    page = await http.get("/console/password")
    form = {
        "current": created.password,
        "password": NEW_PASSWORD,
        "confirmation": NEW_PASSWORD,
        "csrf_token": csrf_of(page.text),
    }
    assert (await http.post("/console/password", data=form)).status_code == 303


async def test_a_lockout_is_recorded_as_locked(http: httpx.AsyncClient) -> None:
    # given
    created = await make_staff()
    email, secret = created.staff.email, created.staff.totp_secret
    # when: five wrong passwords, then the right one while locked
    for _ in range(5):
        await log_in(http, email, "Wrong123", totp_now(secret))
    await log_in(http, email, created.password, totp_now(secret))
    # then
    details = [row.detail for row in await trail(action=StaffAction.SIGN_IN_FAILED)]
    assert details == ["wrong credentials"] * 4 + ["locked", "locked"]


async def test_searches_are_recorded_once_per_result_set(http: httpx.AsyncClient) -> None:
    # given
    staff = await signed_in(http)
    await StaffAudit.all().delete()
    # when: the live box fires for "c" (too short), "carl", a second time for "carl",
    # then "carla", "carl" again, and "carl" once more two minutes later
    for text in ("c", "carl", " carl ", "carla", "carl"):
        assert (await http.get("/console/search", params={"q": text}, headers=HX)).is_success
    clock.travel(120)
    await http.get("/console/search", params={"q": "carl"})
    # then
    rows = await trail()
    assert [row.detail for row in rows] == ["carl", "carla", "carl", "carl"]
    assert {row.action for row in rows} == {StaffAction.SEARCHED}
    assert {row.staff_id for row in rows} == {staff.staff.id}  # type: ignore[attr-defined]


async def test_each_staff_action_on_an_account_is_recorded(
    http: httpx.AsyncClient, app_settings: Settings
) -> None:
    # given
    staff = await signed_in(http, name="Sam Support")
    carla = await make_contractor(email="carla.jones@example.com", first_name="Carla")
    await SecurityAnswer.create(
        account=carla,
        question="First pet?",
        answer_hash=hash_secret("biscuit"),
        answer_sealed=seal(app_settings.secret_key, "Biscuit"),
    )
    device = await Device.create(account=carla, device_id="p8", name="Pixel 8")
    await StaffAudit.all().delete()
    url = f"/console/accounts/{carla.id}"
    # when: the page, its fragments, then each action
    assert (await http.get(url)).status_code == 200
    await http.get(url + "/events", headers=HX)
    await http.get(url + "/email", headers=HX)
    csrf = await token(http)
    headers = {**HX, "X-CSRF-Token": csrf}
    await http.post(url + "/email", data={"email": "marcus@example.org"}, headers=headers)
    await http.post(url + "/security-answers", headers=headers)
    await http.post(f"{url}/devices/{device.id}/remove", headers=headers)
    await http.post(url + "/delete", data={"confirm": "yes", "csrf_token": csrf})
    # then
    rows = await trail()
    assert [row.action for row in rows] == [
        StaffAction.ACCOUNT_VIEWED,
        StaffAction.EMAIL_CHANGED,
        StaffAction.ANSWERS_REVEALED,
        StaffAction.DEVICE_REMOVED,
        StaffAction.ACCOUNT_DELETED,
    ]
    for row in rows:
        assert row.account_id == carla.id
        assert row.staff_id == staff.staff.id  # type: ignore[attr-defined]
        assert row.staff_label == "Sam Support"
        assert row.client_address == "127.0.0.1"
    # The deletion blanked the details of the lines about the account.
    assert [row.detail for row in rows] == ["", "", "", "", "contractor"]


async def test_an_email_change_by_support_is_masked_in_the_log_and_the_trail(
    http: httpx.AsyncClient,
) -> None:
    # given
    await signed_in(http, name="Sam Support")
    carla = await make_contractor(email="carla.jones@example.com")
    # when
    response = await http.post(
        f"/console/accounts/{carla.id}/email",
        data={"email": "marcus@example.org"},
        headers={**HX, "X-CSRF-Token": await token(http)},
    )
    # then
    assert response.status_code == 200
    expected = "ca*********@ex*****.com -> ma****@ex*****.org"
    event = await AccountEvent.get(account_id=carla.id, kind=AccountEventKind.EMAIL_CHANGED.value)
    assert (event.detail, event.staff_name) == (expected, "Sam Support")
    line = await StaffAudit.get(action=StaffAction.EMAIL_CHANGED)
    assert line.detail == expected
    page = await http.get(f"/console/accounts/{carla.id}")
    assert expected.replace(">", "&gt;") in page.text


async def test_an_email_change_in_the_app_is_masked_in_the_log_and_not_in_the_trail(
    gql: GraphQLClient,
) -> None:
    # given
    carla = await make_contractor(email="carla.jones@example.com")
    session = await gql.sign_in("carla.jones@example.com")
    # when
    data = await gql(
        UPDATE_EMAIL, {"email": "marcus@example.org", "password": "Secret123"}, session
    )
    # then
    assert data["updateEmail"]["userErrors"] == []
    event = await AccountEvent.get(account_id=carla.id, kind=AccountEventKind.EMAIL_CHANGED.value)
    assert event.detail == "ca*********@ex*****.com -> ma****@ex*****.org"
    assert event.staff_id is None
    assert not await StaffAudit.filter(action=StaffAction.EMAIL_CHANGED).exists()


async def test_disabling_and_enabling_staff_is_recorded_with_the_target(
    http: httpx.AsyncClient,
) -> None:
    # given
    admin = await signed_in(http, "SYSADMIN", "Ada Admin")
    sue = await make_staff(name="Sue Support")
    csrf = await token(http)
    # when
    await http.post(
        f"/console/staff/{sue.staff.id}/disable", data={"csrf_token": csrf, "confirm": "yes"}
    )
    await http.post(f"/console/staff/{sue.staff.id}/enable", data={"csrf_token": csrf})
    # then
    rows = await trail(target_staff_id=sue.staff.id)
    assert [row.action for row in rows] == [StaffAction.STAFF_DISABLED, StaffAction.STAFF_ENABLED]
    for row in rows:
        assert row.staff_id == admin.staff.id  # type: ignore[attr-defined]
        assert row.detail == "Sue Support"
    assert (await Staff.get(id=sue.staff.id)).disabled is False


# --- who may read it ------------------------------------------------------------------------


async def test_support_staff_and_visitors_cannot_read_or_export_the_trail(
    http: httpx.AsyncClient,
) -> None:
    # given: a line worth hiding, a signed-out visitor and a SUPPORT member
    await audit.record(StaffAction.SEARCHED, None, label="someone", detail="secret search")
    anonymous = [await http.get(path) for path in ("/console/audit", "/console/audit.csv")]
    htmx = await http.get("/console/audit", headers=HX)
    await signed_in(http, "SUPPORT", "Sue Support")
    # when
    page = await http.get("/console/audit")
    export = await http.get("/console/audit.csv")
    home = await http.get("/console/")
    # then
    assert [r.status_code for r in anonymous] == [303, 303]
    assert {r.headers["location"] for r in anonymous} == {"/console/login"}
    assert htmx.headers["HX-Redirect"] == "/console/login"
    assert (page.status_code, export.status_code) == (403, 403)
    assert "secret search" not in page.text + export.text
    assert not await StaffAudit.filter(action=StaffAction.AUDIT_EXPORTED).exists()
    assert 'href="/console/audit"' not in home.text


# --- reading it -----------------------------------------------------------------------------


async def seed_lines() -> dict[str, Any]:
    """Two members' lines over three days, one account's among them."""
    ada = (await make_staff(name="Ada Admin", role="SYSADMIN")).staff
    sam = (await make_staff(name="Sam Support")).staff
    carla = await make_contractor()
    office, home = "198.51.100.20", "203.0.113.45"
    clock.travel(-2 * 86400)
    await audit.record(StaffAction.SEARCHED, sam, detail="two days ago", client_address=home)
    clock.travel(86400)
    await audit.record(StaffAction.ACCOUNT_VIEWED, sam, account_id=carla.id, client_address=office)
    await audit.record(
        StaffAction.STAFF_DISABLED, ada, target_staff_id=sam.id, detail="Sam", client_address=office
    )
    clock.travel(86400)
    await audit.record(StaffAction.SEARCHED, sam, detail="today", client_address=office)
    await audit.record(
        StaffAction.EMAIL_CHANGED, sam, account_id=carla.id, detail="changed", client_address=office
    )
    return {"ada": ada, "sam": sam, "carla": carla}


def details_on(html: str) -> list[str]:
    return re.findall(r'<td data-label="Detail" class="detail">([^<]*)</td>', html)


async def test_a_sysadmin_filters_the_trail_by_staff_account_action_and_dates(
    http: httpx.AsyncClient,
) -> None:
    # given
    seeded = await seed_lines()
    await signed_in(http, "SYSADMIN", "Root Admin")
    sam, carla = seeded["sam"], seeded["carla"]
    today = clock.now().date()
    yesterday = today.fromordinal(today.toordinal() - 1)

    async def shown(**params: Any) -> tuple[list[str], str]:
        page = await http.get("/console/audit", params=params)
        assert page.status_code == 200
        return details_on(page.text), page.text

    # when / then: by staff member (their own lines and the one about them)
    by_sam, _ = await shown(staff=sam.id)
    assert by_sam == ["changed", "today", "Sam", "", "two days ago"]
    # by action
    searched, html = await shown(action="SEARCHED")
    assert searched == ["today", "two days ago"]
    assert "2 lines" in html
    # by account (with the link to its page)
    for_carla, html = await shown(account=str(carla.id))
    assert for_carla == ["changed", ""]
    assert f'href="/console/accounts/{carla.id}"' in html
    # by dates, whole UTC days
    on_yesterday, _ = await shown(**{"from": yesterday.isoformat(), "to": yesterday.isoformat()})
    assert on_yesterday == ["Sam", ""]
    since_yesterday, _ = await shown(staff=sam.id, **{"from": yesterday.isoformat()})
    assert since_yesterday == ["changed", "today", "Sam", ""]
    # nonsense is left out and said so, never a server error
    _, html = await shown(staff="x' OR 1=1", action="DROP", **{"from": "2026-13-40"})
    assert "is not a staff member" in html and "is not an action" in html
    assert "is not a date" in html


async def test_pages_are_keyed_on_id_with_older_and_newer_links_and_no_query_per_row(
    http: httpx.AsyncClient, sql: Any
) -> None:
    # given: 120 searches by one member
    await signed_in(http, "SYSADMIN", "Root Admin")
    sam = (await make_staff(name="Sam Support")).staff
    carla = await make_contractor()
    for n in range(120):
        account = carla.id if n % 2 else None
        await audit.record(StaffAction.SEARCHED, sam, account_id=account, detail=f"search {n}")
    # when
    first = await http.get("/console/audit", params={"staff": sam.id})
    older_link = re.search(r'href="(/console/audit\?[^"]*before=\d+)"', first.text)
    assert older_link
    second = await http.get(older_link.group(1).replace("&amp;", "&"))
    third_link = re.search(r'href="(/console/audit\?[^"]*before=\d+)"', second.text)
    assert third_link
    third = await http.get(third_link.group(1).replace("&amp;", "&"))
    newer_link = re.search(r'href="(/console/audit\?[^"]*after=\d+)"', third.text)
    assert newer_link
    back = await http.get(newer_link.group(1).replace("&amp;", "&"))
    # then
    assert details_on(first.text)[0] == "search 119" and len(details_on(first.text)) == 50
    assert details_on(second.text)[0] == "search 69"
    assert details_on(third.text) == [f"search {n}" for n in range(19, -1, -1)]
    assert "before=" not in third.text.split('class="pager"')[1]  # the last page
    assert details_on(back.text) == details_on(second.text)
    assert "120 lines" in first.text and "120 lines" in third.text
    assert "staff=" in older_link.group(1)  # the filter rides along
    # A full page reads its rows (and their accounts) in one statement, whatever their number.
    await sql.count(http.get("/console/audit", params={"staff": sam.id}))
    big = len(sql.statements)
    await sql.count(http.get("/console/audit", params={"action": "SIGNED_IN"}))
    assert big == len(sql.statements)


async def test_the_csv_export_streams_the_filtered_lines_quoted_and_defused(
    http: httpx.AsyncClient,
) -> None:
    # given: what an attacker types into the sign-in form and staff into the search box
    hostile_login = '=HYPERLINK("http://evil.example","click")'
    await log_in(http, hostile_login, "Whatever1", "000000")
    admin = await signed_in(http, "SYSADMIN", "Ada Admin")
    for text in ("+1 513 555", "-2+3", "@SUM(A1)", 'quote " and, comma', "line\nbreak"):
        await audit.record(StaffAction.SEARCHED, admin.staff, detail=text)
    # when
    response = await http.get("/console/audit.csv")
    only_searches = await http.get("/console/audit.csv", params={"action": "SEARCHED"})
    # then
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(
        r'attachment; filename="keybin-audit-\d{8}-\d{6}\.csv"',
        response.headers["content-disposition"],
    )
    rows = parsed_csv(response.text)
    assert list(rows[0]) == [
        *("id", "when_utc", "staff_id", "staff", "action", "account", "account_state"),
        *("target_staff_id", "detail", "from_address"),
    ]
    by_detail = {row["detail"] for row in rows}
    assert {"'+1 513 555", "'-2+3", "'@SUM(A1)", 'quote " and, comma', "line\nbreak"} <= by_detail
    failed = next(row for row in rows if row["action"] == "SIGN_IN_FAILED")
    assert failed["staff"] == "'" + hostile_login
    assert failed["staff_id"] == ""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", failed["when_utc"])
    # The export is a line of its own (written before streaming, so it is in the file).
    exported = await trail(action=StaffAction.AUDIT_EXPORTED)
    assert [row.detail for row in exported] == ["everything", "action SEARCHED"]
    assert rows[0]["action"] == "AUDIT_EXPORTED"
    assert {row["action"] for row in parsed_csv(only_searches.text)} == {"SEARCHED"}
    assert len(parsed_csv(only_searches.text)) == 5


# --- tombstones -----------------------------------------------------------------------------

FIRST, LAST = "Zebulon", "Quillfeather"
EMAIL, PHONE = "zebulon.q@example.com", "+15135550142"


def personal(text: str) -> list[str]:
    """The deleted person's data found in a page or an export (as shown or typed)."""
    clues = [FIRST, LAST, EMAIL, "zebulon.q", PHONE, PHONE[2:], "555-0142", "5550142"]
    return [clue for clue in clues if clue.lower() in text.lower()]


async def test_app_and_console_deletions_leave_tombstones_without_personal_data(
    http: httpx.AsyncClient, app: Any
) -> None:
    # given: support looked both people up (by name, email, phone, part of a name), viewed,
    # changed an email; one deletes their account in the app, support deletes the other
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 4000))
    by_app = await make_contractor(email=EMAIL, first_name=FIRST, last_name=LAST, phone=PHONE)
    by_support = await make_contractor(
        email="other.person@example.com", first_name="Ottilie", last_name="Brandywine"
    )
    gql = GraphQLClient(http)
    session = await gql.sign_in(EMAIL)
    async with httpx.AsyncClient(transport=transport, base_url="http://keybin.test") as console:
        await signed_in(console, "SUPPORT", "Sam Support")
        for text in (f"{FIRST} {LAST}", EMAIL, "513-555-0142", "quill", "Ottilie Brandywine"):
            await console.get("/console/search", params={"q": text})
        await console.get(f"/console/accounts/{by_app.id}")
        await console.post(
            f"/console/accounts/{by_app.id}/email",
            data={"email": "zebulon.new@example.com", "csrf_token": await token(console)},
        )
        # when
        gone = await gql(DELETE_MY_ACCOUNT, {"password": "Secret123"}, session)
        await console.post(
            f"/console/accounts/{by_support.id}/delete",
            data={"confirm": "yes", "csrf_token": await token(console)},
        )
    assert gone["deleteMyAccount"]["ok"] is True
    await signed_in(http, "SYSADMIN", "Ada Admin")
    app_page = await http.get("/console/audit", params={"account": by_app.id})
    support_page = await http.get("/console/audit", params={"account": by_support.id})
    everything = await http.get("/console/audit")
    export = await http.get("/console/audit.csv")
    app_export = await http.get("/console/audit.csv", params={"account": by_app.id})
    # then: each tombstone says when, how and by whom
    app_deleted = (await Account.get(id=by_app.id)).deleted_at
    assert app_deleted is not None
    assert (
        f"Account #{by_app.id} (contractor) was deleted "
        f"{app_deleted:%Y-%m-%d %H:%M:%S} UTC by the app (its holder)."
    ) in app_page.text
    assert re.search(
        rf"Account #{by_support.id} \(contractor\) was deleted [\d: -]+ UTC "
        r"by support: Sam Support\.",
        support_page.text,
    )
    # The lines about the account are still found by its number, marked deleted, no link.
    assert details_on(app_page.text) == ["", ""]  # the email change, the view
    assert f'href="/console/accounts/{by_app.id}"' not in app_page.text
    assert ">deleted</a>" in support_page.text
    deletion = await StaffAudit.get(action=StaffAction.ACCOUNT_DELETED)
    assert (deletion.account_id, deletion.staff_label) == (by_support.id, "Sam Support")
    assert deletion.client_address == "203.0.113.9"
    app_rows = parsed_csv(app_export.text)
    assert {row["account_state"] for row in app_rows if row["account"]} == {"deleted"}
    # and nothing personal is left: not the names, addresses, phone, nor what was typed
    for text in (app_page.text, support_page.text, everything.text, export.text):
        assert personal(text) == []
        assert "Ottilie" not in text and "Brandywine" not in text
        assert "other.person" not in text
    searched = [row.detail for row in await trail(action=StaffAction.SEARCHED)]
    assert searched == ["[deleted]", "[deleted]", "[deleted]", "quill", "[deleted]"]


# --- in the browser -------------------------------------------------------------------------


@pytest.mark.browser
async def test_a_sysadmin_filters_the_trail_and_downloads_it_in_the_browser(
    server: str, browser: Browser
) -> None:
    # given: a support member's day, and a sysadmin
    seeded = await seed_lines()
    admin = await make_staff(name="Root Admin", role="SYSADMIN")
    page = await browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    policy_errors: list[str] = []
    page.on(
        "console",
        lambda m: policy_errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    await page.goto(f"{server}/console/login")
    await page.get_by_label("Email").fill(admin.staff.email)
    await page.get_by_label("Password").fill(admin.password)
    await page.get_by_label("Code").fill(totp_now(admin.staff.totp_secret))
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_label("Current password").fill(admin.password)
    await page.get_by_label("New password").fill(BROWSER_PASSWORD)
    await page.get_by_label("Repeat it").fill(BROWSER_PASSWORD)
    await page.get_by_role("button", name="Save password").click()
    # when: the Audit link, then a member and an action chosen
    await page.get_by_role("link", name="Audit").click()
    await expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
    await page.get_by_label("Staff member").select_option(label="Sam Support")
    await page.get_by_label("Action").select_option(label="Searched")
    await page.get_by_role("button", name="Filter").click()
    # then
    await expect(page).to_have_url(re.compile(rf"staff={seeded['sam'].id}&.*action=SEARCHED"))
    rows = page.locator("table.audit tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_contain_text("today")
    await expect(rows.first).to_contain_text("198.51.100.20")
    await expect(page.locator("#audit-count")).to_have_text("2 lines")
    await expect(page.get_by_label("Staff member")).to_have_value(str(seeded["sam"].id))
    await shot(page, "console-audit")
    # when: the export
    async with page.expect_download() as waiting:
        await page.get_by_role("link", name="Export CSV").click()
    download = await waiting.value
    # then: the same lines, in a file
    saved = await download.path()
    lines = parsed_csv(saved.read_text(encoding="utf-8"))
    assert [line["detail"] for line in lines] == ["today", "two days ago"]
    assert download.suggested_filename.startswith("keybin-audit-")
    assert await StaffAudit.filter(action=StaffAction.AUDIT_EXPORTED).count() == 1
    assert policy_errors == []
