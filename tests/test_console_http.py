"""The support console over HTTP: staff login with TOTP, CSRF, roles, search and staff actions."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import secrets
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import itsdangerous
import pyotp
import pytest

from console.session import COOKIE
from core import clock
from core.security import hash_secret, seal
from models.accounts import Account, AccountEvent, Device, SecurityAnswer
from models.enums import AccountEventKind
from models.staff import ConsoleSession, Staff
from resolvers import staff as staff_resolvers
from settings import Settings
from tests.factories import make_agent, make_contractor, make_staff
from tests.live import Live

ROOT = Path(__file__).resolve().parent.parent
NEW_PASSWORD = "Console42"
HX = {"HX-Request": "true"}


def csrf_of(html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match, "page without a CSRF token"
    return match.group(1)


def totp_now(secret: str) -> str:
    return pyotp.TOTP(secret).at(clock.now())


async def log_in(http: httpx.AsyncClient, email: str, password: str, code: str) -> httpx.Response:
    page = await http.get("/console/login")
    form = {"email": email, "password": password, "code": code, "csrf_token": csrf_of(page.text)}
    return await http.post("/console/login", data=form)


async def signed_in(
    http: httpx.AsyncClient, role: str = "SUPPORT", name: str = "Sam Support"
) -> Any:
    """A staff member past the first login (password changed); returns the NewStaff."""
    created = await make_staff(name=name, role=role)
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
    response = await http.post("/console/password", data=form)
    assert response.status_code == 303 and response.headers["location"] == "/console/"
    return created


async def token(http: httpx.AsyncClient) -> str:
    return csrf_of((await http.get("/console/")).text)


async def test_pages_need_a_signed_in_staff_member(http: httpx.AsyncClient) -> None:
    # given
    contractor = await make_contractor()
    # when
    pages = [
        "/console/",
        "/console/search?q=carl",
        f"/console/accounts/{contractor.id}",
        "/console/staff",
    ]
    responses = [await http.get(page) for page in pages]
    htmx = await http.get("/console/search?q=carl", headers=HX)
    # then
    for response in responses:
        assert response.status_code == 303
        assert response.headers["location"] == "/console/login"
    assert htmx.headers["HX-Redirect"] == "/console/login"
    assert contractor.email not in htmx.text


async def test_first_login_forces_a_new_password_that_meets_the_policy(
    http: httpx.AsyncClient,
) -> None:
    # given
    created = await make_staff(name="Pat Support")
    # when
    response = await log_in(
        http, created.staff.email, created.password, totp_now(created.staff.totp_secret)
    )
    # then: nothing but the password page until it is changed
    assert response.headers["location"] == "/console/password"
    assert (await http.get("/console/search?q=ab")).headers["location"] == "/console/password"
    page = await http.get("/console/password")
    weak = await http.post(
        "/console/password",
        data={
            "current": created.password,
            "password": "weak",
            "confirmation": "weak",
            "csrf_token": csrf_of(page.text),
        },
    )
    assert weak.status_code == 422
    assert 'id="password-error"' in weak.text and "upper case" in weak.text
    not_the_one_time = await http.post(
        "/console/password",
        data={
            "current": "Guessed42",
            "password": NEW_PASSWORD,
            "confirmation": NEW_PASSWORD,
            "csrf_token": csrf_of(page.text),
        },
    )
    assert not_the_one_time.status_code == 422 and 'id="current-error"' in not_the_one_time.text
    assert (await Staff.get(id=created.staff.id)).must_change_password is True
    done = await http.post(
        "/console/password",
        data={
            "current": created.password,
            "password": NEW_PASSWORD,
            "confirmation": NEW_PASSWORD,
            "csrf_token": csrf_of(page.text),
        },
    )
    assert done.headers["location"] == "/console/"
    home = await http.get("/console/")
    assert home.status_code == 200
    assert "Pat Support" in home.text
    staff = await Staff.get(id=created.staff.id)
    assert staff.must_change_password is False


async def test_unsafe_requests_without_the_csrf_token_are_refused(http: httpx.AsyncClient) -> None:
    # given
    await signed_in(http)
    contractor = await make_contractor(email="before@example.com")
    url = f"/console/accounts/{contractor.id}/email"
    good = await token(http)
    # when
    missing = await http.post(url, data={"email": "after@example.com"})
    wrong_field = await http.post(url, data={"email": "after@example.com", "csrf_token": "x" * 43})
    wrong_header = await http.post(
        url, data={"email": "after@example.com"}, headers={**HX, "X-CSRF-Token": "nope"}
    )
    delete = await http.post(f"/console/accounts/{contractor.id}/delete", data={"confirm": "yes"})
    # then
    assert [r.status_code for r in (missing, wrong_field, wrong_header, delete)] == [403] * 4
    fresh = await Account.get(id=contractor.id)
    assert fresh.email == "before@example.com"
    assert fresh.deleted_at is None
    assert not await AccountEvent.filter(account_id=contractor.id, staff_id__isnull=False).exists()
    # ... and the right token (as htmx sends it) goes through.
    ok = await http.post(
        url, data={"email": "after@example.com"}, headers={**HX, "X-CSRF-Token": good}
    )
    assert ok.status_code == 200
    assert (await Account.get(id=contractor.id)).email == "after@example.com"


async def test_login_form_needs_the_csrf_token_too(http: httpx.AsyncClient) -> None:
    created = await make_staff()
    response = await http.post(
        "/console/login",
        data={
            "email": created.staff.email,
            "password": created.password,
            "code": totp_now(created.staff.totp_secret),
        },
    )
    assert response.status_code == 403
    assert (await http.get("/console/")).headers["location"] == "/console/login"


async def test_support_cannot_manage_staff_but_a_sysadmin_can(
    app_settings: Settings, app: Any
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://keybin.test") as support_http,
        httpx.AsyncClient(transport=transport, base_url="http://keybin.test") as admin_http,
    ):
        # given
        support = await signed_in(support_http, "SUPPORT", "Sue Support")
        await signed_in(admin_http, "SYSADMIN", "Ada Admin")
        # when
        refused = await support_http.get("/console/staff")
        refused_post = await support_http.post(
            f"/console/staff/{support.staff.id}/disable",
            data={"csrf_token": await token(support_http)},
        )
        listing = await admin_http.get("/console/staff")
        disabled = await admin_http.post(
            f"/console/staff/{support.staff.id}/disable",
            data={"csrf_token": await token(admin_http), "confirm": "yes"},
        )
        # then
        assert refused.status_code == 403
        assert refused_post.status_code == 403
        assert listing.status_code == 200
        assert "Sue Support" in listing.text and "Ada Admin" in listing.text
        assert disabled.status_code == 303
        assert (await Staff.get(id=support.staff.id)).disabled is True
        # A disabled member's open session ends at once.
        after = await support_http.get("/console/")
        assert after.headers["location"] == "/console/login"


async def test_five_failed_logins_lock_the_staff_member_for_fifteen_minutes(
    http: httpx.AsyncClient,
) -> None:
    # given
    created = await make_staff()
    email, secret = created.staff.email, created.staff.totp_secret
    # when
    failures = [await log_in(http, email, "Wrong123", totp_now(secret)) for _ in range(5)]
    locked = await log_in(http, email, created.password, totp_now(secret))
    # then
    assert [r.status_code for r in failures] == [401] * 5
    assert "Wrong email, password or code" in failures[0].text
    assert locked.status_code == 401
    assert "Too many failed attempts" in locked.text
    clock.travel(15 * 60 + 1)
    assert (await log_in(http, email, created.password, totp_now(secret))).status_code == 303


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_per_minute": 3}])
async def test_password_spraying_from_one_address_is_held_back(http: httpx.AsyncClient) -> None:
    # given staff members, and an attacker trying a password on each address in turn
    members = [await make_staff(name=f"Member {n}") for n in range(4)]
    # when
    tries = [await log_in(http, m.staff.email, "Spring2026", "000000") for m in members[:3]]
    held = await log_in(
        http, members[3].staff.email, members[3].password, totp_now(members[3].staff.totp_secret)
    )
    # then the fourth attempt within the minute is refused before any check, even a right one
    assert [r.status_code for r in tries] == [401] * 3
    assert held.status_code == 429 and "Too many attempts from this address" in held.text
    assert (await Staff.get(id=members[3].staff.id)).failed_logins == 0
    # and once the last minute's attempts no longer count (two windows), the member signs in
    clock.travel(121)
    again = await log_in(
        http, members[3].staff.email, members[3].password, totp_now(members[3].staff.totp_secret)
    )
    assert again.status_code == 303


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_per_account_per_minute": 2}])
async def test_guessing_one_members_password_is_held_back_per_address_typed(
    http: httpx.AsyncClient,
) -> None:
    # given
    created = await make_staff()
    email = created.staff.email
    # when the same login is tried three times, typed differently
    tries = [await log_in(http, typed, "Wrong123", "000000") for typed in (email, email.upper())]
    held = await log_in(http, f" {email} ", "Wrong123", "000000")
    # then
    assert [r.status_code for r in tries] == [401, 401]
    assert held.status_code == 429 and "Too many attempts for this login" in held.text


async def test_wrong_code_counts_and_a_used_code_cannot_be_replayed(
    http: httpx.AsyncClient,
) -> None:
    # given
    created = await make_staff()
    email, secret = created.staff.email, created.staff.totp_secret
    wrong = "000000" if totp_now(secret) != "000000" else "111111"
    # when
    bad_code = await log_in(http, email, created.password, wrong)
    code = totp_now(secret)
    first = await log_in(http, email, created.password, code)
    http.cookies.clear()
    replay = await log_in(http, email, created.password, code)
    # then
    assert bad_code.status_code == 401
    assert first.status_code == 303
    assert replay.status_code == 401
    assert (await http.get("/console/")).headers["location"] == "/console/login"
    # The next time step's code is accepted.
    clock.travel(30)
    assert (await log_in(http, email, created.password, totp_now(secret))).status_code == 303


async def test_security_headers_and_cookie_flags(http: httpx.AsyncClient) -> None:
    # when
    page = await http.get("/console/login")
    script = await http.get("/console/static/htmx.min.js")
    # then
    csp = page.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
    ):
        assert directive in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["cache-control"] == "no-store"
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    assert "secure" not in cookie  # development over plain HTTP; production adds Secure
    assert "<script" not in re.sub(r'<script src="[^"]+" defer></script>', "", page.text)
    assert 'style="' not in page.text
    assert script.status_code == 200 and "htmx" in script.text
    assert script.headers["content-type"].startswith("text/javascript")


async def test_search_by_partial_name_email_phone_in_any_format_and_key_id(
    http: httpx.AsyncClient,
) -> None:
    # given
    await signed_in(http)
    carla = await make_contractor(
        email="carla.jones@example.com", first_name="Carla", last_name="Jones", phone="+15135550123"
    )
    agent = await make_agent(first_name="Albert", last_name="Brokerman", phone="+15139990000")
    gone = await make_contractor(first_name="Carla", last_name="Gone")
    await Account.filter(id=gone.id).update(deleted_at=clock.now())
    # when / then
    for query in (
        "carl",
        "JONES",
        "carla jo",
        "carla.jones@",
        "(513) 555-01",
        "513.555.0123",
        "+1 513 555 0123",
        "15135550123",
    ):
        response = await http.get("/console/search", params={"q": query}, headers=HX)
        assert f"/console/accounts/{carla.id}" in response.text, query
        assert f"/console/accounts/{gone.id}" not in response.text, query
        assert "<html" not in response.text  # a fragment for htmx
    by_key = await http.get("/console/search", params={"q": agent.key_id})
    assert f"/console/accounts/{agent.id}" in by_key.text
    assert "<html" in by_key.text  # a whole page without htmx
    assert agent.key_id in by_key.text and "Brokerman" in by_key.text
    none = await http.get("/console/search", params={"q": "zzz-nobody"}, headers=HX)
    assert "No account matches" in none.text


async def test_staff_edits_an_email_in_place_with_errors_shown_there(
    http: httpx.AsyncClient,
) -> None:
    # given
    await signed_in(http, name="Sam Support")
    contractor = await make_contractor(email="old@example.com")
    await make_contractor(email="taken@example.com")
    agent = await make_agent(email="agent.only@example.com")
    headers = {**HX, "X-CSRF-Token": await token(http)}
    url = f"/console/accounts/{contractor.id}/email"
    # when
    editor = await http.get(url + "/edit", headers=HX)
    taken = await http.post(url, data={"email": "taken@example.com"}, headers=headers)
    agents = await http.post(url, data={"email": agent.email}, headers=headers)
    saved = await http.post(url, data={"email": "New@Example.com"}, headers=headers)
    # then
    assert 'id="email-input"' in editor.text and "<html" not in editor.text
    assert taken.status_code == 422 and 'class="error"' in taken.text
    assert 'value="taken@example.com"' in taken.text
    assert agents.status_code == 422
    assert saved.status_code == 200
    assert "new@example.com" in saved.text
    assert saved.headers["HX-Trigger"] == '{"accountChanged": true}'
    assert (await Account.get(id=contractor.id)).email == "new@example.com"
    events = await AccountEvent.filter(account_id=contractor.id, kind="EMAIL_CHANGED")
    assert [e.staff_name for e in events] == ["Sam Support"]
    log = await http.get(f"/console/accounts/{contractor.id}/events", headers=HX)
    assert "support: Sam Support" in log.text


async def test_revealing_security_answers_is_logged_with_the_staff_member(
    http: httpx.AsyncClient, app_settings: Settings
) -> None:
    # given
    await signed_in(http, name="Val Verifier")
    contractor = await make_contractor()
    await SecurityAnswer.create(
        account=contractor,
        question="First pet's name?",
        answer_hash=hash_secret("rex"),
        answer_sealed=seal(app_settings.secret_key, "Rex"),
    )
    page = await http.get(f"/console/accounts/{contractor.id}")
    assert "First pet&#39;s name?" in page.text and "Rex" not in page.text
    # when
    revealed = await http.post(
        f"/console/accounts/{contractor.id}/security-answers",
        headers={**HX, "X-CSRF-Token": csrf_of(page.text)},
    )
    # then
    assert revealed.status_code == 200
    assert "Rex" in revealed.text
    event = await AccountEvent.get(
        account_id=contractor.id, kind=AccountEventKind.SECURITY_ANSWERS_VIEWED.value
    )
    assert event.staff_name == "Val Verifier"
    assert event.client_address


async def test_deleting_an_account_needs_the_confirmation(http: httpx.AsyncClient) -> None:
    # given
    await signed_in(http, name="Del Support")
    contractor = await make_contractor(email="leaving@example.com", first_name="Lea")
    confirm_page = await http.get(f"/console/accounts/{contractor.id}/delete")
    form = {"csrf_token": csrf_of(confirm_page.text)}
    # when
    unconfirmed = await http.post(f"/console/accounts/{contractor.id}/delete", data=form)
    confirmed = await http.post(
        f"/console/accounts/{contractor.id}/delete", data={**form, "confirm": "yes"}
    )
    # then
    assert "Delete this account?" in confirm_page.text
    assert unconfirmed.status_code == 422
    assert confirmed.status_code == 303 and confirmed.headers["location"] == "/console/"
    gone = await Account.get(id=contractor.id)
    assert gone.deleted_at is not None and gone.email is None
    deleted = await AccountEvent.get(account_id=contractor.id, kind="DELETED")
    assert deleted.staff_name == "Del Support"
    assert (await http.get(f"/console/accounts/{contractor.id}")).status_code == 404
    search = await http.get("/console/search", params={"q": "leaving@"}, headers=HX)
    assert f"/accounts/{contractor.id}" not in search.text


async def test_agent_page_shows_devices_and_support_removes_one(http: httpx.AsyncClient) -> None:
    # given
    await signed_in(http, name="Dev Support")
    agent = await make_agent(first_name="Dora")
    keep = await Device.create(account=agent, device_id="d-keep", name="Dora's iPad")
    drop = await Device.create(account=agent, device_id="d-drop", name="Old Pixel")
    page = await http.get(f"/console/accounts/{agent.id}")
    assert agent.key_id in page.text and "Old Pixel" in page.text
    assert "Security Questions" not in page.text and "/delete" not in page.text
    # when
    removed = await http.post(
        f"/console/accounts/{agent.id}/devices/{drop.id}/remove",
        headers={**HX, "X-CSRF-Token": csrf_of(page.text)},
    )
    # then
    assert removed.status_code == 200
    assert "Old Pixel" not in removed.text and "Dora&#39;s iPad" in removed.text
    assert await Device.filter(account=agent).values_list("id", flat=True) == [keep.id]
    event = await AccountEvent.get(account_id=agent.id, kind="DEVICE_REMOVED")
    assert event.staff_name == "Dev Support"


async def test_event_log_pages_newest_first(http: httpx.AsyncClient) -> None:
    # given
    await signed_in(http)
    contractor = await make_contractor()
    for n in range(30):
        await AccountEvent.create(account=contractor, kind="SIGNED_IN", detail=f"entry {n:02d}")
    # when
    first = await http.get(f"/console/accounts/{contractor.id}")
    before = re.search(r"events\?before=(\d+)", first.text)
    assert before
    older = await http.get(
        f"/console/accounts/{contractor.id}/events", params={"before": before.group(1)}, headers=HX
    )
    # then
    assert "entry 29" in first.text and "entry 05" in first.text and "entry 04" not in first.text
    assert first.text.index("entry 29") < first.text.index("entry 28")
    assert "entry 04" in older.text and "entry 00" in older.text and "entry 05" not in older.text


@pytest.mark.parametrize("settings_overrides", [{"env": "production"}])
async def test_production_cookie_is_secure(http: httpx.AsyncClient) -> None:
    page = await http.get("/console/login")
    assert "secure" in page.headers["set-cookie"].lower()


async def test_keybin_staff_add_prints_a_password_and_totp_uri_that_sign_in(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    # given
    keybin = [sys.executable, "-c", "import cli; cli.main()"]  # what the `keybin` script runs
    command = [*keybin, "staff", "add", "--email", "Olive@Keybin.test"]
    env = {**os.environ, "DATABASE_URL": settings.database_url, "SECRET_KEY": settings.secret_key}
    # when
    process = await asyncio.create_subprocess_exec(
        *command,
        "--name",
        "Olive Ops",
        "--role",
        "SYSADMIN",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    output = (await process.communicate())[0].decode()
    # then
    assert process.returncode == 0, output
    password = re.search(r"One-time password \(changed at first login\): (\S+)", output)
    uri = re.search(r"(otpauth://totp/\S+)", output)
    assert password and uri
    totp = pyotp.parse_uri(uri.group(1))
    assert isinstance(totp, pyotp.TOTP) and totp.issuer == "keybin"
    assert totp.name == "olive@keybin.test"
    response = await log_in(http, "olive@keybin.test", password.group(1), totp.at(clock.now()))
    assert response.headers["location"] == "/console/password"
    staff = await Staff.get(email="olive@keybin.test")
    assert staff.name == "Olive Ops" and staff.role == "SYSADMIN"


# Console sessions are rows: a copy of the cookie is worth what the row is, and no more.
# Played against a real server (uvicorn on loopback), the way a stolen cookie would be used.


@pytest.fixture
def console_url(live: Live) -> str:
    return live.http_url.removesuffix("/graphql")


def browser(console_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=console_url)


def copy_of(console_url: str, victim: httpx.AsyncClient) -> httpx.AsyncClient:
    """Another machine sending the victim's session cookie, exactly as copied."""
    return cookie_client(console_url, victim.cookies[COOKIE])


def cookie_client(console_url: str, value: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=console_url, headers={"Cookie": f"{COOKIE}={value}"})


async def contractor_with_answer(secret_key: str, answer: str = "Rex") -> Account:
    contractor = await make_contractor(email="caller@example.com")
    await SecurityAnswer.create(
        account=contractor,
        question="First pet's name?",
        answer_hash=hash_secret(answer.lower()),
        answer_sealed=seal(secret_key, answer),
    )
    return contractor


async def reveal(http: httpx.AsyncClient, account: Account, csrf: str) -> httpx.Response:
    return await http.post(
        f"/console/accounts/{account.id}/security-answers",
        headers={**HX, "X-CSRF-Token": csrf},
    )


def signed_out(response: httpx.Response) -> bool:
    """What a visitor who is not signed in gets: sent to the login page."""
    location = response.headers.get("location") or response.headers.get("HX-Redirect")
    return response.status_code in (200, 303) and location == "/console/login"


async def test_a_cookie_copied_before_sign_out_opens_nothing_after_it(
    console_url: str, app_settings: Settings
) -> None:
    # given: a signed-in staff member whose cookie (and a page's CSRF token) was copied
    contractor = await contractor_with_answer(app_settings.secret_key)
    async with browser(console_url) as staff_http:
        created = await signed_in(staff_http)
        page = await staff_http.get(f"/console/accounts/{contractor.id}")
        csrf = csrf_of(page.text)
        async with copy_of(console_url, staff_http) as thief:
            before = await thief.get(f"/console/accounts/{contractor.id}")
            # when
            out = await staff_http.post("/console/logout", data={"csrf_token": csrf})
            account_page = await thief.get(f"/console/accounts/{contractor.id}")
            answers = await reveal(thief, contractor, csrf)
            search = await thief.get("/console/search", params={"q": "caller@"}, headers=HX)
    # then: the copy worked while the session lived, and opens nothing once it ended
    assert before.status_code == 200 and "caller@example.com" in before.text
    assert signed_out(out)
    assert signed_out(account_page) and "caller@example.com" not in account_page.text
    assert signed_out(answers) and "Rex" not in answers.text
    assert signed_out(search) and "caller@example.com" not in search.text
    assert not await AccountEvent.filter(
        account_id=contractor.id, kind=AccountEventKind.SECURITY_ANSWERS_VIEWED.value
    ).exists()
    assert not await ConsoleSession.filter(staff_id=created.staff.id).exists()


async def test_the_session_cookie_is_a_random_token_kept_only_as_its_digest(
    console_url: str,
) -> None:
    # given
    async with browser(console_url) as staff_http:
        created = await make_staff()
        # when
        response = await log_in(
            staff_http, created.staff.email, created.password, totp_now(created.staff.totp_secret)
        )
        value = staff_http.cookies[COOKIE]
    # then
    cookie = response.headers["set-cookie"]
    assert f"{COOKIE}={value}" in cookie
    for flag in ("HttpOnly", "SameSite=Strict", "Path=/console"):
        assert flag in cookie
    session = await ConsoleSession.get(staff_id=created.staff.id)
    assert session.token_hash == hashlib.sha256(value.encode()).hexdigest() != value
    assert session.client_address == "127.0.0.1"
    assert session.expires_at - session.last_seen_at == timedelta(hours=12)


async def test_disabling_ends_every_session_and_enabling_revives_none(console_url: str) -> None:
    async with browser(console_url) as admin_http, browser(console_url) as support_http:
        # given: a support member signed in, with a copy of the cookie elsewhere
        await signed_in(admin_http, "SYSADMIN", "Ada Admin")
        support = await signed_in(support_http, "SUPPORT", "Sue Support")
        async with copy_of(console_url, support_http) as copy:
            assert (await copy.get("/console/")).status_code == 200
            # when: disabled, then enabled again
            for action in ("disable", "enable"):
                done = await admin_http.post(
                    f"/console/staff/{support.staff.id}/{action}",
                    data={"csrf_token": await token(admin_http), "confirm": "yes"},
                )
                assert done.status_code == 303
            # then: neither the cookie nor its copy opens anything
            assert signed_out(await support_http.get("/console/"))
            assert signed_out(await copy.get("/console/search?q=ab"))
    assert (await Staff.get(id=support.staff.id)).disabled is False
    # ... while a fresh sign-in (with the next code) works again.
    clock.travel(30)
    async with browser(console_url) as again:
        code = totp_now(support.staff.totp_secret)
        response = await log_in(again, support.staff.email, NEW_PASSWORD, code)
        assert response.headers["location"] == "/console/"
        assert "Sue Support" in (await again.get("/console/")).text


async def change_password(
    http: httpx.AsyncClient, current: str, new: str, confirmation: str | None = None
) -> httpx.Response:
    page = await http.get("/console/password")
    form = {
        "current": current,
        "password": new,
        "confirmation": new if confirmation is None else confirmation,
        "csrf_token": csrf_of(page.text),
    }
    return await http.post("/console/password", data=form)


async def test_a_password_change_ends_every_session_and_signs_the_changer_in_afresh(
    console_url: str,
) -> None:
    async with browser(console_url) as office, browser(console_url) as laptop:
        # given: one staff member signed in on two browsers, a copy of the office cookie kept
        created = await signed_in(office)
        clock.travel(30)  # the next TOTP code: each one signs in once
        code = totp_now(created.staff.totp_secret)
        assert (await log_in(laptop, created.staff.email, NEW_PASSWORD, code)).status_code == 303
        assert (await laptop.get("/console/")).status_code == 200
        async with copy_of(console_url, office) as copy:
            # when: the office browser changes the password
            changed = await change_password(office, NEW_PASSWORD, "Changed42")
            # then: the laptop and the copy are signed out; the office goes on
            assert changed.headers["location"] == "/console/"
            assert signed_out(await laptop.get("/console/"))
            assert signed_out(await copy.get("/console/"))
        home = await office.get("/console/")
        assert home.status_code == 200 and "Password changed." in home.text
    assert await ConsoleSession.filter(staff_id=created.staff.id).count() == 1


async def test_a_wrong_current_password_changes_nothing_and_counts_toward_the_lockout(
    console_url: str,
) -> None:
    async with browser(console_url) as http:
        # given
        created = await signed_in(http)
        before = await Staff.get(id=created.staff.id)
        # when
        wrong = await change_password(http, "NotMine42", "Changed42")
        # then: refused under the field, nothing changed, the session still open
        assert wrong.status_code == 422
        assert 'id="current-error"' in wrong.text
        assert "Your current password is wrong." in wrong.text
        after = await Staff.get(id=created.staff.id)
        assert after.password_hash == before.password_hash and after.failed_logins == 1
        assert (await http.get("/console/")).status_code == 200
        # when: four more wrong guesses at the open console
        for _ in range(3):
            assert (await change_password(http, "NotMine42", "Changed42")).status_code == 422
        locked = await change_password(http, "NotMine42", "Changed42")
        # then: locked out and signed out, told why on the login page
        assert signed_out(locked)
        login_page = await http.get("/console/login")
        assert "Too many failed attempts" in login_page.text
        assert signed_out(await http.get("/console/"))
        clock.travel(30)  # a code not used yet: only the lockout refuses it
        code = totp_now(created.staff.totp_secret)
        refused = await log_in(http, created.staff.email, NEW_PASSWORD, code)
        assert refused.status_code == 401 and "Too many failed attempts" in refused.text
    assert (await Staff.get(id=created.staff.id)).password_hash == before.password_hash


async def test_thirty_idle_minutes_end_the_session(console_url: str) -> None:
    async with browser(console_url) as http:
        # given
        created = await signed_in(http)
        session = await ConsoleSession.get(staff_id=created.staff.id)
        # when / then: activity keeps it open, written down at most once a minute
        clock.travel(30)
        assert (await http.get("/console/")).status_code == 200
        assert (await ConsoleSession.get(id=session.id)).last_seen_at == session.last_seen_at
        clock.travel(29 * 60)
        assert (await http.get("/console/")).status_code == 200
        seen = (await ConsoleSession.get(id=session.id)).last_seen_at
        assert seen > session.last_seen_at
        clock.travel(29 * 60)
        assert (await http.get("/console/")).status_code == 200
        # ... and thirty minutes without a request end it.
        clock.travel(30 * 60)
        assert signed_out(await http.get("/console/"))
    assert not await ConsoleSession.filter(id=session.id).exists()


async def test_twelve_hours_end_the_session_however_busy(console_url: str) -> None:
    async with browser(console_url) as http:
        # given
        await signed_in(http)
        # when: a request every 25 minutes for 11 hours 40 minutes
        for _ in range(28):
            clock.travel(25 * 60)
            assert (await http.get("/console/")).status_code == 200
        # then: the twelfth hour ends it all the same
        clock.travel(25 * 60)
        assert signed_out(await http.get("/console/"))


async def test_forged_and_unknown_cookies_are_signed_out_visitors(
    console_url: str, app_settings: Settings
) -> None:
    # given: a live session, a contractor with an answer, and cookies an attacker could make
    contractor = await contractor_with_answer(app_settings.secret_key)
    async with browser(console_url) as staff_http:
        created = await signed_in(staff_http)
    stored = await ConsoleSession.get(staff_id=created.staff.id)
    signer = itsdangerous.TimestampSigner(app_settings.secret_key)
    the_old_way = signer.sign(base64.b64encode(json.dumps({"staff_id": created.staff.id}).encode()))
    forged = {
        "unknown token": secrets.token_urlsafe(32),
        "the digest kept in the table": stored.token_hash,
        "signed with the server's key, the way cookies were": the_old_way.decode(),
        "not a token": "x" * 500,
    }
    for what, value in forged.items():
        async with cookie_client(console_url, value) as attacker:
            # when: its page's CSRF token is used, as a copied page would give it
            csrf = csrf_of((await attacker.get("/console/login")).text)
            page = await attacker.get(f"/console/accounts/{contractor.id}")
            answers = await reveal(attacker, contractor, csrf)
        # then
        assert signed_out(page) and "caller@example.com" not in page.text, what
        # (a value that is no token at all gets a new one, so its CSRF token fails first)
        assert signed_out(answers) or answers.status_code == 403, what
        assert "Rex" not in answers.text, what
    assert not await AccountEvent.filter(account_id=contractor.id, staff_id__isnull=False).exists()


async def test_the_csrf_token_belongs_to_one_session(
    console_url: str, app_settings: Settings
) -> None:
    contractor = await contractor_with_answer(app_settings.secret_key)
    async with browser(console_url) as first, browser(console_url) as second:
        # given: the token of the login page, and the token of another staff member's session
        before_sign_in = csrf_of((await first.get("/console/login")).text)
        await signed_in(first, name="Fay First")
        await signed_in(second, name="Sid Second")
        others = await token(second)
        # when
        stale = await reveal(first, contractor, before_sign_in)
        borrowed = await reveal(first, contractor, others)
        own = await reveal(first, contractor, await token(first))
    # then
    assert [stale.status_code, borrowed.status_code] == [403, 403]
    assert own.status_code == 200 and "Rex" in own.text
    events = await AccountEvent.filter(account_id=contractor.id, staff_id__isnull=False)
    assert [event.staff_name for event in events] == ["Fay First"]


async def test_a_member_without_a_console_password_gets_none_from_the_password_form(
    http: httpx.AsyncClient,
) -> None:
    # given a member the company's sign-in made (no local password), signed in
    member = await Staff.create(
        email="provider.only@example.com",
        name="Pat Provider",
        role="SUPPORT",
        password_hash="",
        totp_secret=pyotp.random_base32(),
        must_change_password=False,
    )
    http.headers["Cookie"] = f"{COOKIE}={await staff_resolvers.open_session(member, None)}"
    home = await http.get("/console/")
    # then the top bar offers no password to change
    assert home.status_code == 200 and "Pat Provider" in home.text
    assert 'href="/console/password"' not in home.text
    # and posting the form anyway sets none, says why, and counts no failure
    form = {
        "current": "",
        "password": NEW_PASSWORD,
        "confirmation": NEW_PASSWORD,
        "csrf_token": csrf_of(home.text),
    }
    response = await http.post("/console/password", data=form)
    assert response.status_code == 422
    assert "no console password" in response.text
    await member.refresh_from_db()
    assert member.password_hash == "" and member.failed_logins == 0
