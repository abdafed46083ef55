"""`keybin serve --demo`: every screen has something to show, loaded once, announced, usable."""

from __future__ import annotations

import argparse
import os
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from cli import serving_settings
from core import clock
from core.ids import to_global_id
from demo import (
    CONTRACTOR_EMAIL,
    INVITEE_EMAIL,
    PASSWORD,
    PIN,
    SECURITY_ANSWERS,
    STAFF_EMAIL,
    Demo,
    load_demo,
)
from models.access import AccessEvent
from models.accounts import Account, Device, Invitation, SecurityAnswer
from models.enums import AccountKind, OutboxChannel
from models.grants import Grant
from models.listings import Listing, Lockbox, Region
from models.messages import Message
from models.outbox import OutboxMessage
from models.staff import Staff
from settings import Settings
from tests.factories import GraphQLClient
from tests.server import keybin_server
from tests.smtp import SmtpServer, free_port, text_body

SIGN_IN = """
mutation($input: SignInInput!) { signIn(input: $input) { token userErrors { code message } } }
"""
ME = """
{ me { ... on Agent {
  keyId messages { totalCount }
  listings { totalCount edges { node { grants { totalCount } accessEvents { totalCount } } } }
} } }
"""
AGENT_SCREENS = """
{ me { ... on Agent {
    messages(first: 50) { edges { node { kind title grant { id } } } }
    listings(first: 50) { edges { node {
      mlsNumber lockbox { serialNumber }
      grants { edges { node { status } } }
      accessEvents { edges { node { outcome method actorName grant { id } } } }
    } } }
} } }
"""
CONTRACTOR_SCREENS = """
{ me { ... on Contractor {
    messages(first: 50) { edges { node { kind title grant { id } } } }
    grants(first: 50) { edges { node { id status listing { mlsNumber } } } }
} } }
"""
GRANT = """
mutation($input: GrantAccessInput!) {
  grantAccess(input: $input) { grant { id } userErrors { code message } }
}
"""
ASSIGN = """
mutation($serial: String!) {
  assignLockbox(input: {serialNumber: $serial}) { lockbox { serialNumber } userErrors { code } }
}
"""
BEGIN_SIGNUP = """
mutation($input: BeginContractorSignupInput!) {
  beginContractorSignup(input: $input) { verificationId userErrors { code message } }
}
"""
NEW_CONSOLE_PASSWORD = "Console42"
HX = {"HX-Request": "true"}


# ---- the real `keybin serve --demo` ------------------------------------------------------


def _serve_demo(env: dict[str, str], log: Path, port: int, mail: bool) -> tuple[str, Any]:
    """Start it: what it printed (and, with `mail`, logged up to the invitation mail), and
    what its first agent sees through the API."""
    with keybin_server(env, "--demo", port=port, log=log) as (base_url, _):
        sent = rf"mail \(no SMTP_HOST\) to {re.escape(INVITEE_EMAIL)}"
        printed = _wait_for(log, sent if mail else r"Try it:")
        seen = _what_the_first_agent_sees(base_url, printed)
        printed = log.read_text()
    return printed, seen


def _wait_for(log: Path, pattern: str, within: float = 30.0) -> str:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if re.search(pattern, text):
            return text
        time.sleep(0.1)
    raise AssertionError(f"the server never printed {pattern!r}:\n{log.read_text()}")


def _what_the_first_agent_sees(base_url: str, printed: str) -> Any:
    key_ids = re.findall(r"Key ID (\d{9})", printed)
    assert len(key_ids) == 3
    variables = {
        "input": {"login": key_ids[0], "password": PASSWORD, "deviceId": "t", "deviceName": "T"}
    }
    signed_in = httpx.post(
        f"{base_url}/graphql", json={"query": SIGN_IN, "variables": variables}, timeout=30
    ).json()["data"]["signIn"]
    assert signed_in["userErrors"] == []
    me = httpx.post(
        f"{base_url}/graphql",
        json={"query": ME},
        headers={"Authorization": f"Bearer {signed_in['token']}"},
        timeout=30,
    ).json()["data"]["me"]
    listings = nodes(me["listings"])
    return {
        "keyId": me["keyId"],
        "listings": {"totalCount": me["listings"]["totalCount"]},
        "messages": me["messages"],
        "grants": sum(listing["grants"]["totalCount"] for listing in listings),
        "accessEvents": sum(listing["accessEvents"]["totalCount"] for listing in listings),
    }


def test_serve_demo_prints_sign_ins_that_work_and_a_second_start_adds_nothing(
    tmp_path: Path, database_url: str
) -> None:
    # given an empty database and no mail relay
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "KEYBIN_SIGNING"))}
    env |= {"DATABASE_URL": database_url, "KEYBIN_DATA_DIR": str(tmp_path), "PUBLIC_URL": base_url}
    # when it starts with --demo, twice
    first, first_seen = _serve_demo(env, tmp_path / "first.log", port, mail=True)
    second, second_seen = _serve_demo(env, tmp_path / "second.log", port, mail=False)
    # then the announcement names the API, the sign-ins and what there is to try
    assert f"{base_url}/graphql" in first and "GraphiQL" in first
    assert f"password {PASSWORD}, PIN {PIN}" in first
    assert CONTRACTOR_EMAIL in first and "alex.morgan@example.com" in first
    assert "curl -s" in first
    for question, answer in SECURITY_ANSWERS:
        assert f"{question} {answer}" in first
    assert "DEMO-1005 (9 Erkenbrecher Ave) has no lockbox" in first
    # ... a console sign-in: one-time password, TOTP secret, its URI and how to get a code
    console = console_sign_in(first)
    assert console["email"] == STAFF_EMAIL
    assert f"otpauth://totp/keybin:sam.support%40example.com?secret={console['secret']}" in first
    assert f"pyotp.TOTP('{console['secret']}').now()" in first
    # ... and the waiting invitation's link, the one in the mail printed to the log
    [link] = set(re.findall(rf"{re.escape(base_url)}/signup\?invitation=[\w-]+", first))
    announced, mailed = first.split(f"mail (no SMTP_HOST) to {INVITEE_EMAIL}", 1)
    assert link in announced and link in mailed
    # ... and what they open is there: four listings, three grants, their messages, the visit
    assert first_seen == {
        "keyId": re.findall(r"Key ID (\d{9})", first)[0],
        "listings": {"totalCount": 4},
        "messages": {"totalCount": 4},
        "grants": 3,
        "accessEvents": 1,
    }
    # the second start shows the same sign-ins and link, and adds nothing
    assert console_sign_in(second) == console
    assert link in second
    assert second_seen == first_seen
    assert f"mail (no SMTP_HOST) to {INVITEE_EMAIL}" not in second
    assert re.findall(r"Key ID (\d{9})", second) == re.findall(r"Key ID (\d{9})", first)


def console_sign_in(printed: str) -> dict[str, str]:
    match = re.search(
        r"staff +(\S+) .*\n +one-time password (\S+) .*\n +TOTP secret ([A-Z2-7]+)", printed
    )
    assert match, printed
    return {"email": match[1], "password": match[2], "secret": match[3]}


def csrf_of(html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match, "page without a CSRF token"
    return match.group(1)


# ---- every screen, through the API -------------------------------------------------------


@pytest.fixture
async def demo(app_settings: Settings, http: httpx.AsyncClient) -> Demo:
    """The demo loaded into the app under test (its mail goes to the test's SMTP server)."""
    return await load_demo(app_settings, announce=False)


async def test_grants_have_their_messages_in_both_message_centers(
    demo: Demo, gql: GraphQLClient
) -> None:
    # when the agent and the contractor look at their screens
    agent = await screens(gql, demo.agents[0].key_id or "", AGENT_SCREENS)
    contractor = await screens(gql, CONTRACTOR_EMAIL, CONTRACTOR_SCREENS)
    # then the contractor has two grants, one open now, each announced
    grants = {grant["listing"]["mlsNumber"]: grant for grant in nodes(contractor["grants"])}
    assert {mls: grant["status"] for mls, grant in grants.items()} == {
        "DEMO-1001": "ACTIVE",
        "DEMO-1002": "SCHEDULED",
    }
    received = [m for m in nodes(contractor["messages"]) if m["kind"] == "ACCESS_GRANTED"]
    assert sorted(m["grant"]["id"] for m in received) == sorted(g["id"] for g in grants.values())
    assert any(
        m["title"] == "Access granted: 412 Walnut Street, Cincinnati, OH 45202" for m in received
    )
    # ... and the agent was told of all three, the invitation among them
    sent = [m["title"] for m in nodes(agent["messages"]) if m["kind"] == "ACCESS_GRANTED"]
    assert sorted(sent) == [
        "Access granted to Casey Cleaner",
        "Access granted to Casey Cleaner",
        "Access granted to a new contractor (invitation sent)",
    ]


async def test_the_simulated_lockbox_left_an_access_event_and_its_message(
    demo: Demo, gql: GraphQLClient
) -> None:
    # when the agent looks at the listing whose grant is open now
    agent = await screens(gql, demo.agents[0].key_id or "", AGENT_SCREENS)
    listing = next(node for node in nodes(agent["listings"]) if node["mlsNumber"] == "DEMO-1001")
    # then the contractor's visit is in its access history, tied to the grant
    [event] = nodes(listing["accessEvents"])
    assert (event["outcome"], event["method"], event["actorName"]) == (
        "OPENED",
        "BLE_CREDENTIAL",
        "Casey Cleaner",
    )
    assert event["grant"] is not None
    used = [m["title"] for m in nodes(agent["messages"]) if m["kind"] == "ACCESS_USED"]
    assert len(used) == 1 and "412 Walnut Street" in used[0]


async def test_a_listing_without_a_lockbox_shows_the_assign_flow(
    demo: Demo, gql: GraphQLClient
) -> None:
    # given the agent's listing with no lockbox
    token = await gql.sign_in(demo.agents[0].key_id or "", password=PASSWORD, device_id="demo")
    agent = (await gql(AGENT_SCREENS, token=token))["me"]
    bare = [node["mlsNumber"] for node in nodes(agent["listings"]) if node["lockbox"] is None]
    assert bare == ["DEMO-1005"]
    listing = await Listing.get(mls_number="DEMO-1005")
    # when the agent grants access on it, then assigns the free lockbox
    variables = {
        "input": {
            "listingId": to_global_id("Listing", listing.id),
            "granteeEmail": CONTRACTOR_EMAIL,
            "startsAt": (clock.now() + timedelta(hours=1)).isoformat(),
            "endsAt": (clock.now() + timedelta(hours=3)).isoformat(),
            "pin": PIN,
        }
    }
    refused = (await gql(GRANT, variables, token=token))["grantAccess"]
    assigned = (await gql(ASSIGN, {"serial": "demo0006"}, token=token))["assignLockbox"]
    # then
    assert [error["code"] for error in refused["userErrors"]] == ["NO_LOCKBOX_ASSIGNED"]
    assert assigned == {"lockbox": {"serialNumber": "DEMO0006"}, "userErrors": []}


async def test_an_invitation_waits_with_its_mail_and_link(
    demo: Demo, gql: GraphQLClient, smtp: SmtpServer
) -> None:
    # given the demo's invitation mail
    mails = [mail for mail in await smtp.wait_for(1) if mail["To"] == INVITEE_EMAIL]
    # then it holds the link the demo announces, and the link starts a signup
    assert demo.invitation_link is not None
    assert demo.invitation_link in text_body(mails[0])
    token = demo.invitation_link.split("invitation=", 1)[1]
    variables = {
        "input": {"email": INVITEE_EMAIL, "phone": "+15135550177", "invitationToken": token}
    }
    started = (await gql(BEGIN_SIGNUP, variables))["beginContractorSignup"]
    assert started["userErrors"] == []


# ---- every console section, over HTTP ----------------------------------------------------


async def test_the_console_sign_in_opens_every_section(
    demo: Demo, http: httpx.AsyncClient, app_settings: Settings
) -> None:
    # given the announced console sign-in
    assert demo.console.password is not None
    code = pyotp.TOTP(demo.console.totp_secret).at(clock.now())
    # when the staff member signs in and chooses a password
    login = await http.get("/console/login")
    form = {
        "email": demo.console.email,
        "password": demo.console.password,
        "code": code,
        "csrf_token": csrf_of(login.text),
    }
    assert (await http.post("/console/login", data=form)).headers["location"] == "/console/password"
    page = await http.get("/console/password")
    form = {
        "current": demo.console.password,
        "password": NEW_CONSOLE_PASSWORD,
        "confirmation": NEW_CONSOLE_PASSWORD,
        "csrf_token": csrf_of(page.text),
    }
    assert (await http.post("/console/password", data=form)).headers["location"] == "/console/"
    # then the search finds the demo contractor, whose page has something in every section
    results = await http.get("/console/search?q=casey", headers=HX)
    contractor = await Account.get(email=CONTRACTOR_EMAIL)
    assert f"/console/accounts/{contractor.id}" in results.text
    page = await http.get(f"/console/accounts/{contractor.id}")
    assert page.status_code == 200
    for section in ("User Information", "Security Questions", "Account Event Log"):
        assert section in page.text
    assert 'Devices <span class="count">1</span>' in page.text
    assert "Demo phone (simulated)" in page.text
    assert 'Accesses Granted <span class="count">2</span>' in page.text
    assert 'Accesses Used <span class="count">1</span>' in page.text
    assert "opened" in page.text
    revealed = await http.post(
        f"/console/accounts/{contractor.id}/security-answers",
        headers={**HX, "X-CSRF-Token": csrf_of(page.text)},
    )
    assert all(answer in revealed.text for _, answer in SECURITY_ANSWERS)
    # ... the agent's page shows the accesses given, the invitation among them
    agent = await http.get(f"/console/accounts/{demo.agents[0].id}")
    assert 'Accesses Given <span class="count">3</span>' in agent.text
    assert INVITEE_EMAIL in agent.text
    # ... and a SYSADMIN sees the staff list
    staff = await http.get("/console/staff")
    assert staff.status_code == 200 and STAFF_EMAIL in staff.text
    # once changed, the password is no longer announced
    again = await load_demo(app_settings, announce=False)
    assert again.console.password is None
    assert again.console.totp_secret == demo.console.totp_secret


# ---- once, and only in development -------------------------------------------------------


async def test_loading_the_demo_twice_duplicates_nothing(orm: None, settings: Settings) -> None:
    # given
    first = await load_demo(settings, announce=False)
    secrets_before = dict(await Lockbox.all().values_list("serial_number", "secret"))
    rows_before = await row_counts()
    # when
    second = await load_demo(settings, announce=False)
    # then
    assert await row_counts() == rows_before
    assert rows_before == {
        "regions": 2,
        "agents": 3,
        "contractors": 1,
        "listings": 7,
        "lockboxes": 6,
        "grants": 3,
        "invitations": 1,
        "messages": 6,  # the contractor's 2 grants; the agent's 3 and the lockbox opened
        "access events": 1,
        "security answers": 2,
        "devices": 1,
        "staff": 1,
        "mails": 1,
    }
    assert dict(await Lockbox.all().values_list("serial_number", "secret")) == secrets_before
    assert second.console == first.console
    assert second.invitation_link == first.invitation_link is not None


async def test_the_demo_lockboxes_know_since_when_they_are_held_and_listed(
    orm: None, settings: Settings
) -> None:
    # Late records are filed, and a holder's last access counted, by these times.
    await load_demo(settings, announce=False)
    for lockbox in await Lockbox.all():
        held, listed = lockbox.assigned_to_id is not None, lockbox.listing_id is not None  # type: ignore[attr-defined]
        assert (lockbox.assigned_at is not None) == held, lockbox.serial_number
        assert (lockbox.listed_at is not None) == listed, lockbox.serial_number
        if listed:
            assert lockbox.assigned_at is not None and lockbox.listed_at is not None
            assert lockbox.assigned_at <= lockbox.listed_at <= clock.now()


async def test_the_demo_has_grants_open_now_tomorrow_and_waiting(
    orm: None, settings: Settings
) -> None:
    # when
    await load_demo(settings, announce=False)
    # then
    now = clock.now()
    grants = await Grant.all().prefetch_related("lockbox", "grantee").order_by("starts_at", "id")
    active, *tomorrow = grants
    assert active.starts_at <= now < active.ends_at
    assert active.grantee is not None and active.grantee.email == CONTRACTOR_EMAIL
    assert [grant.grantee_email for grant in tomorrow] == [CONTRACTOR_EMAIL, INVITEE_EMAIL]
    for grant in tomorrow:
        assert now < grant.starts_at and grant.starts_at.date() > now.date()
    assert all(grant.lockbox.ble for grant in grants)
    emails = await Account.filter(kind=AccountKind.AGENT).values_list("email", flat=True)
    assert len(emails) - len(set(emails)) == 1  # two agent accounts, one person
    assert {True, False} == set(await Lockbox.all().values_list("ble", flat=True))


async def test_the_demo_refuses_a_production_database(orm: None, settings: Settings) -> None:
    with pytest.raises(SystemExit):
        await load_demo(settings.with_(env="production"), announce=False)
    assert await Account.all().count() == 0


# ---- helpers -----------------------------------------------------------------------------


async def screens(gql: GraphQLClient, login: str, query: str) -> dict[str, Any]:
    token = await gql.sign_in(login, password=PASSWORD, device_id="demo")
    me: dict[str, Any] = (await gql(query, token=token))["me"]
    return me


def nodes(connection: dict[str, Any]) -> list[dict[str, Any]]:
    return [edge["node"] for edge in connection["edges"]]


async def row_counts() -> dict[str, int]:
    return {
        "regions": await Region.all().count(),
        "agents": await Account.filter(kind=AccountKind.AGENT).count(),
        "contractors": await Account.filter(kind=AccountKind.CONTRACTOR).count(),
        "listings": await Listing.all().count(),
        "lockboxes": await Lockbox.all().count(),
        "grants": await Grant.all().count(),
        "invitations": await Invitation.all().count(),
        "messages": await Message.all().count(),
        "access events": await AccessEvent.all().count(),
        "security answers": await SecurityAnswer.all().count(),
        "devices": await Device.all().count(),
        "staff": await Staff.all().count(),
        "mails": await OutboxMessage.filter(channel=OutboxChannel.EMAIL).count(),
    }


def test_without_public_url_links_lead_to_the_address_served(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given no PUBLIC_URL
    monkeypatch.delenv("PUBLIC_URL", raising=False)
    settings = Settings()

    def served(host: str, port: int) -> str:
        return serving_settings(argparse.Namespace(host=host, port=port), settings).public_url

    # when / then: the links name the port served, and a wildcard host the loopback address
    assert served("127.0.0.1", 8129) == "http://127.0.0.1:8129"
    assert served("0.0.0.0", 9000) == "http://127.0.0.1:9000"  # noqa: S104
    assert served("::1", 9000) == "http://[::1]:9000"
    # and a PUBLIC_URL given is kept as it is
    monkeypatch.setenv("PUBLIC_URL", "https://keys.example.com")
    assert served("0.0.0.0", 9000) == settings.public_url  # noqa: S104
