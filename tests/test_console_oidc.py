"""Staff sign-in through the company's OpenID Connect provider: npm oidc-provider (a certified
OpenID Provider) on loopback, a real `keybin serve`, Chromium for what staff see, plain HTTP
for the forged and replayed callbacks."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit, urlunsplit

import httpx
import pyotp
import pytest
from playwright.async_api import Browser, Page, expect

from models.enums import StaffAction, StaffRole
from models.staff import ConsoleSession, Staff, StaffAudit
from resolvers import staff_oidc
from settings import ConfigurationError, Settings, from_env
from tests.browser import ROOT, chromium, screenshots_dir
from tests.factories import make_staff
from tests.server import keybin_server
from tests.smtp import free_port

pytestmark = [pytest.mark.browser, pytest.mark.needs("node")]

PROVIDER_JS = ROOT / "tests" / "js" / "oidc"
# Another site than keybin's 127.0.0.1: the way back from the provider is a cross-site
# navigation, as it is in production, so the session cookie's SameSite=Strict is put to the test.
PROVIDER_HOST = "127.0.0.2"
CLIENT_ID = "keybin-console"
CLIENT_SECRET = "s3cret:with%odd&chars"  # form-encoded before HTTP Basic, as RFC 6749 says
BUTTON = "Sign in with Example Corp"
ACCOUNTS = {
    "ada": {
        "email": "ada@corp.example",
        "email_verified": True,
        "name": "Ada Admin",
        "keybin_role": "SYSADMIN",
    },
    "sue": {
        "email": "sue@corp.example",
        "email_verified": True,
        "name": "Sue Support",
        "keybin_role": ["everyone", "SUPPORT"],
    },
    "nora": {"email": "nora@corp.example", "email_verified": True, "name": "Nora Nobody"},
    "gus": {"email": "gus@corp.example", "email_verified": True, "name": "Gus Table"},
    # Gus's old address, now someone else's at the provider.
    "mallory": {
        "email": "gus@corp.example",
        "email_verified": True,
        "name": "Mallory",
        "keybin_role": "SYSADMIN",
    },
    "dora": {
        "email": "dora@corp.example",
        "email_verified": True,
        "name": "Dora Disabled",
        "keybin_role": "SUPPORT",
    },
    "una": {
        "email": "una@corp.example",
        "email_verified": False,
        "name": "Una Unverified",
        "keybin_role": "SUPPORT",
    },
}


def free_port_on(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def provider_script() -> Path:
    """oidc-provider, installed on first use (CI has npm and the registry)."""
    npm = shutil.which("npm")
    assert npm, "npm is needed for the OpenID provider"
    if not (PROVIDER_JS / "node_modules" / "oidc-provider").exists():
        subprocess.run(
            [npm, "install", "--prefix", str(PROVIDER_JS), "--no-audit", "--no-fund"],
            check=True,
            timeout=300,
        )
    return PROVIDER_JS / "provider.mjs"


@pytest.fixture
def keybin_port() -> int:
    return free_port()


@pytest.fixture
def issuer(provider_script: Path, keybin_port: int, tmp_path: Path) -> Iterator[str]:
    """The provider on 127.0.0.2, its one client keybin's console at keybin_port."""
    port = free_port_on(PROVIDER_HOST)
    config = tmp_path / "provider.json"
    redirect = f"http://127.0.0.1:{keybin_port}/console/oidc/callback"
    config.write_text(
        json.dumps(
            {
                "clientId": CLIENT_ID,
                "clientSecret": CLIENT_SECRET,
                "redirectUri": redirect,
                "accounts": ACCOUNTS,
            }
        )
    )
    node = shutil.which("node") or "node"
    log = (tmp_path / "provider.log").open("wb")
    process = subprocess.Popen(
        [node, str(provider_script), PROVIDER_HOST, str(port), str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://{PROVIDER_HOST}:{port}"
    try:
        for _ in range(300):
            assert process.poll() is None, (tmp_path / "provider.log").read_text()
            try:
                httpx.get(f"{url}/.well-known/openid-configuration", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def role_claim() -> str:
    """No role claim: only staff in the table sign in. Parametrize to name one."""
    return ""


@pytest.fixture
def console(
    settings: Settings, orm: None, issuer: str, keybin_port: int, role_claim: str, tmp_path: Path
) -> Iterator[str]:
    """`keybin serve` with the company sign-in configured; its console's base URL."""
    env = {
        "DATABASE_URL": settings.database_url,
        "SECRET_KEY": settings.secret_key,
        "KEYBIN_DATA_DIR": settings.keybin_data_dir,
        "PUBLIC_URL": f"http://127.0.0.1:{keybin_port}",
        "OIDC_ISSUER": issuer,
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_NAME": "Example Corp",
        "OIDC_SCOPES": "openid email profile roles",
        "OIDC_ROLE_CLAIM": role_claim,
    }
    with keybin_server(env, port=keybin_port, log=tmp_path / "keybin.log") as (base, _):
        yield f"{base}/console"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(screenshots_dir() / f"{name}.png"), full_page=True)


async def through_the_provider(page: Page, console: str, login: str) -> None:
    """From the console's login page through the provider's own sign-in and consent pages."""
    await page.goto(f"{console}/login")
    await page.get_by_role("link", name=BUTTON).click()
    await page.locator("input[name=login]").fill(login)
    await page.locator("input[name=password]").fill("any password")
    await page.get_by_role("button", name="Sign-in").click()
    await page.get_by_role("button", name="Continue").click()


async def callback_url(client: httpx.AsyncClient, console: str, login: str) -> str:
    """The same journey with a plain HTTP client, up to the provider's redirect back to the
    console: the callback URL, not yet followed."""
    response = await client.get(f"{console}/oidc/start")
    for _ in range(12):
        if response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            if location.startswith(f"{console}/oidc/callback"):
                return location
            response = await client.get(location)
            continue
        assert response.status_code == 200, response.text
        action = re.search(r'<form[^>]*action="([^"]+)"', response.text)
        prompt = re.search(r'name="prompt" value="(\w+)"', response.text)
        assert action and prompt, response.text
        form = {"prompt": prompt.group(1), "login": login, "password": "any password"}
        response = await client.post(urljoin(str(response.url), action.group(1)), data=form)
    raise AssertionError("the provider never sent the browser back")


def with_state(url: str, state: str) -> str:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    return urlunsplit(parts._replace(query=urlencode({**query, "state": state})))


async def audit_lines(action: StaffAction) -> list[StaffAudit]:
    return await StaffAudit.filter(action=action).order_by("id")


ROLE_CLAIM = pytest.mark.parametrize("role_claim", ["keybin_role"])


@ROLE_CLAIM
async def test_a_sysadmin_signs_in_through_the_company_provider(
    console: str, browser: Browser
) -> None:
    # given a person the provider calls SYSADMIN, with no staff row yet
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    await page.goto(f"{console}/login")
    await expect(page.get_by_role("link", name=BUTTON)).to_be_visible()
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()  # break-glass
    await shot(page, "oidc-01-login")
    # when they sign in at the provider and consent
    await through_the_provider(page, console, "ada")
    # then the console's search page, as a SYSADMIN
    await expect(page).to_have_url(f"{console}/")
    await expect(page.locator("#q")).to_be_visible()
    await expect(page.get_by_role("link", name="Staff")).to_be_visible()
    await expect(page.locator(".me")).to_contain_text("Ada Admin")
    await shot(page, "oidc-02-signed-in")
    staff = await Staff.get(email="ada@corp.example")
    assert (staff.role, staff.oidc_subject) == (StaffRole.SYSADMIN, "ada")
    assert staff.password_hash == "" and staff.must_change_password is False
    [line] = await audit_lines(StaffAction.SIGNED_IN)
    assert (line.staff_id, line.detail) == (staff.id, f"through {PROVIDER_HOST}")
    cookies = {cookie["name"]: cookie for cookie in await context.cookies()}
    assert cookies["keybin_console"]["sameSite"] == "Strict"
    assert "keybin_console_oidc" not in cookies  # spent by the callback
    # and a member made at the company sign-in has no local login (refused, not an error)
    async with httpx.AsyncClient() as client:
        form_page = await client.get(f"{console}/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form_page.text)
        assert token
        form = {
            "csrf_token": token.group(1),
            "email": "ada@corp.example",
            "password": "",
            "code": pyotp.TOTP(staff.totp_secret).now(),
        }
        refused = await client.post(f"{console}/login", data=form)
    assert refused.status_code == 401 and "Wrong email, password or code." in refused.text


async def test_without_a_role_claim_the_staff_table_decides(console: str, browser: Browser) -> None:
    # given a SUPPORT member added with `keybin staff add` (one-time password never changed)
    created = await make_staff(email="gus@corp.example", name="Gus Table")
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    # when they sign in through the provider
    await through_the_provider(page, console, "gus")
    # then the search page as SUPPORT, with no detour to choose a local password
    await expect(page).to_have_url(f"{console}/")
    await expect(page.locator("#q")).to_be_visible()
    await expect(page.locator(".me")).to_contain_text("support")
    await expect(page.get_by_role("link", name="Staff")).to_have_count(0)
    staff = await Staff.get(id=created.staff.id)
    assert (staff.role, staff.oidc_subject) == (StaffRole.SUPPORT, "gus")
    # the one-time password nobody replaced is retired
    assert staff.password_hash == "" and staff.must_change_password is False
    # and the SYSADMIN page stays closed to them
    assert await page.goto(f"{console}/staff") is not None
    await expect(page.get_by_text("This page is for system administrators.")).to_be_visible()


@ROLE_CLAIM
async def test_the_role_claim_decides_at_every_sign_in(console: str) -> None:
    # given a member the table says is SYSADMIN, whom the provider now calls SUPPORT
    created = await make_staff(email="sue@corp.example", name="Sue", role="SYSADMIN")
    async with httpx.AsyncClient() as client:
        # when they sign in through the provider
        signed_in = await client.get(await callback_url(client, console, "sue"))
        # then they are in, as SUPPORT
        assert signed_in.status_code == 200 and "Signed in as Sue" in signed_in.text
        search = await client.get(f"{console}/")
    assert search.status_code == 200 and 'id="q"' in search.text
    staff = await Staff.get(id=created.staff.id)
    assert (staff.role, staff.oidc_subject) == (StaffRole.SUPPORT, "sue")


async def test_a_person_who_is_not_staff_is_refused(console: str, browser: Browser) -> None:
    # given a person the provider knows and keybin's staff table does not
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    # when they sign in through the provider
    await through_the_provider(page, console, "nora")
    # then they are told, and no session, no staff row
    await expect(page.locator("#login-error")).to_have_text(staff_oidc.NOT_STAFF)
    await shot(page, "oidc-03-not-staff")
    await page.goto(f"{console}/")
    await expect(page).to_have_url(f"{console}/login")
    assert await Staff.filter(email="nora@corp.example").count() == 0
    assert await ConsoleSession.all().count() == 0
    [line] = await audit_lines(StaffAction.SIGN_IN_FAILED)
    assert line.staff_label == "nora@corp.example"
    assert line.detail == f"through {PROVIDER_HOST}: not staff"


@ROLE_CLAIM
async def test_a_person_without_a_role_is_refused(console: str) -> None:
    # given a staff row for a person whose provider account carries no role claim
    created = await make_staff(email="nora@corp.example", name="Nora")
    async with httpx.AsyncClient() as client:
        # when they sign in through the provider
        refused = await client.get(await callback_url(client, console, "nora"))
        # then they are told why, and nothing opens
        assert refused.status_code == 403
        assert "gives you no role in the support console" in refused.text
        assert (await client.get(f"{console}/", follow_redirects=False)).status_code == 303
    staff = await Staff.get(id=created.staff.id)
    assert staff.oidc_subject is None and staff.password_hash != ""
    assert await ConsoleSession.all().count() == 0


async def test_a_disabled_member_is_told_why(console: str, browser: Browser) -> None:
    # given a member a SYSADMIN disabled
    created = await make_staff(email="dora@corp.example", name="Dora")
    await Staff.filter(id=created.staff.id).update(disabled=True)
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    # when they sign in through the provider
    await through_the_provider(page, console, "dora")
    # then the reason, and no session
    await expect(page.locator("#login-error")).to_have_text(
        "Your console access has been disabled by a system administrator."
    )
    await shot(page, "oidc-04-disabled")
    assert await ConsoleSession.all().count() == 0
    [line] = await audit_lines(StaffAction.SIGN_IN_FAILED)
    assert line.target_staff_id == created.staff.id and line.detail.endswith("disabled")


@ROLE_CLAIM
async def test_an_address_that_moved_to_someone_else_takes_over_nothing(console: str) -> None:
    # given Gus, bound to his subject at the provider; his old address is now Mallory's there
    created = await make_staff(email="gus@corp.example", name="Gus")
    await Staff.filter(id=created.staff.id).update(oidc_subject="gus")
    async with httpx.AsyncClient() as client:
        # when Mallory signs in through the provider (a SYSADMIN there, with Gus's address)
        refused = await client.get(await callback_url(client, console, "mallory"))
        # then refused: the row belongs to Gus's subject
        assert refused.status_code == 403 and staff_oidc.TAKEN in unescape(refused.text)
        assert (await client.get(f"{console}/", follow_redirects=False)).status_code == 303
    staff = await Staff.get(id=created.staff.id)
    assert (staff.role, staff.oidc_subject) == (StaffRole.SUPPORT, "gus")
    assert await Staff.all().count() == 1
    assert await ConsoleSession.all().count() == 0


async def test_an_unverified_address_matches_nobody(console: str) -> None:
    # given a staff row with the address the provider has not verified for Una
    created = await make_staff(email="una@corp.example", name="Una")
    async with httpx.AsyncClient() as client:
        # when Una signs in through the provider
        refused = await client.get(await callback_url(client, console, "una"))
    # then refused, the row left unbound
    assert refused.status_code == 403 and staff_oidc.UNVERIFIED in refused.text
    assert (await Staff.get(id=created.staff.id)).oidc_subject is None
    assert await ConsoleSession.all().count() == 0


async def test_a_callback_used_again_signs_nobody_in(console: str) -> None:
    # given Gus signed in through the provider, and a copy of his browser's flow cookie
    await make_staff(email="gus@corp.example", name="Gus")
    async with httpx.AsyncClient() as gus:
        callback = await callback_url(gus, console, "gus")
        flow_cookie = gus.cookies.get("keybin_console_oidc")
        assert flow_cookie
        assert (await gus.get(callback)).status_code == 200
        # when the same callback URL is opened again in the same browser
        again = await gus.get(callback)
        # then refused: the flow was spent
        assert again.status_code == 400 and "did not start in this browser" in again.text
    # when another client replays it with the copied flow cookie
    async with httpx.AsyncClient() as thief:
        thief.cookies.set("keybin_console_oidc", flow_cookie, domain="127.0.0.1")
        replayed = await thief.get(callback)
        # then refused: the provider takes a code once
        assert replayed.status_code == 401 and "did not confirm who you are" in replayed.text
        assert (await thief.get(f"{console}/", follow_redirects=False)).status_code == 303
    # and only Gus's own session exists
    assert await ConsoleSession.all().count() == 1
    assert len(await audit_lines(StaffAction.SIGNED_IN)) == 1


async def test_a_forged_callback_signs_nobody_in(console: str) -> None:
    # given a real code from the provider, brought back with a state that is not the browser's
    await make_staff(email="gus@corp.example", name="Gus")
    async with httpx.AsyncClient() as client:
        callback = await callback_url(client, console, "gus")
        # when the state is tampered with
        tampered = await client.get(with_state(callback, "forged-state"))
        # then refused, and the flow is over for this browser: the genuine one fails too
        assert tampered.status_code == 400
        assert (await client.get(callback)).status_code == 400
        assert (await client.get(f"{console}/", follow_redirects=False)).status_code == 303
    # when the callback comes to a browser that never started a sign-in
    async with httpx.AsyncClient() as stranger:
        assert (await stranger.get(callback)).status_code == 400
    # then nobody is signed in and the member is not bound
    assert await ConsoleSession.all().count() == 0
    assert (await Staff.get(email="gus@corp.example")).oidc_subject is None


@ROLE_CLAIM
async def test_the_state_cookie_is_no_use_in_another_browser(
    console: str, browser: Browser
) -> None:
    # given Ada signed in through the provider in her browser, the way back noted
    ada = await browser.new_context()
    ada_page = await ada.new_page()
    callbacks: list[str] = []
    ada_page.on(
        "request",
        lambda request: (
            callbacks.append(request.url) if "/console/oidc/callback" in request.url else None
        ),
    )
    await through_the_provider(ada_page, console, "ada")
    await expect(ada_page.get_by_role("link", name="Staff")).to_be_visible()
    [callback] = callbacks
    # when another browser, with a sign-in of its own started, is sent to Ada's callback URL
    other = await browser.new_context()
    other_page = await other.new_page()
    await other_page.goto(f"{console}/oidc/start")
    await expect(other_page.locator("input[name=login]")).to_be_visible()
    await other_page.goto(callback)
    # then refused at the state, before the code is even tried: only Ada's session exists
    await expect(other_page.locator("#login-error")).to_have_text(re.compile("did not start"))
    await other_page.goto(f"{console}/")
    await expect(other_page).to_have_url(f"{console}/login")
    ada_staff = await Staff.get(email="ada@corp.example")
    assert await ConsoleSession.all().values_list("staff_id", flat=True) == [ada_staff.id]


async def test_break_glass_password_and_code_still_work(console: str, browser: Browser) -> None:
    # given a local account, with the company sign-in configured
    created = await make_staff(name="Break Glass", role="SYSADMIN")
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await page.goto(f"{console}/login")
    await expect(page.get_by_role("link", name=BUTTON)).to_be_visible()
    # when they sign in with email, password and code
    await page.get_by_label("Email").fill(created.staff.email)
    await page.get_by_label("Password").fill(created.password)
    await page.get_by_label("Code").fill(pyotp.TOTP(created.staff.totp_secret).now())
    await page.get_by_role("button", name="Sign in").click()
    # then in, on to choose their own password as always
    await expect(page.get_by_role("heading", name="Choose your password")).to_be_visible()
    assert await ConsoleSession.filter(staff_id=created.staff.id).count() == 1


def test_the_role_rule_reads_strings_and_lists() -> None:
    # given the default values and a claim named "groups"
    rule = staff_oidc.RoleRule("groups")
    # then the higher role wins, anything else is no role
    assert rule.role({"groups": "SUPPORT"}) == StaffRole.SUPPORT
    assert rule.role({"groups": ["SUPPORT", "SYSADMIN"]}) == StaffRole.SYSADMIN
    assert rule.role({"groups": ["sysadmin", "staff"]}) is None  # values are exact
    assert rule.role({"groups": {"SYSADMIN": True}}) is None
    assert rule.role({}) is None


PRODUCTION = {
    "KEYBIN_ENV": "production",
    "SECRET_KEY": "k" * 40,
    "SMTP_HOST": "mail.example",
    "SMS_BACKEND": "http",
    "SMS_HTTP_URL": "https://sms.example/send",
}
CONFIGURED = {"OIDC_CLIENT_ID": "keybin", "OIDC_CLIENT_SECRET": "secret"}


@pytest.mark.parametrize(
    "issuer",
    ["https://login.example.com", "http://127.0.0.1:9000", "http://localhost:9000/realms/x"],
)
def test_production_takes_an_https_or_loopback_issuer(issuer: str) -> None:
    settings = from_env({**PRODUCTION, **CONFIGURED, "OIDC_ISSUER": issuer})
    assert settings.oidc_configured and settings.oidc_issuer == issuer


@pytest.mark.parametrize(
    ("environ", "complaint"),
    [
        ({**PRODUCTION, **CONFIGURED, "OIDC_ISSUER": "http://login.example.com"}, "https"),
        ({**PRODUCTION, **CONFIGURED, "OIDC_ISSUER": "login.example.com"}, "https"),
        ({"OIDC_ISSUER": "https://login.example.com"}, "OIDC_CLIENT_ID, OIDC_CLIENT_SECRET"),
        ({**CONFIGURED, "OIDC_ISSUER": "https://x.example", "OIDC_SCOPES": "email"}, "openid"),
        (
            {**CONFIGURED, "OIDC_ISSUER": "https://x.example", "OIDC_SUPPORT_VALUES": "SYSADMIN"},
            "share",
        ),
    ],
)
def test_a_doubtful_company_sign_in_stops_start_up(
    environ: dict[str, str], complaint: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match=complaint):
        from_env({"KEYBIN_DATA_DIR": str(tmp_path), **environ})
