"""Password reset links: they end when the password or the mailbox changes, a burst of
requests mails one, and a sign-in checked with the old password gets no session after a reset."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from core import clock
from core.security import verify_secret_async
from models.accounts import Account, PasswordReset, Session
from resolvers.events import Actor
from resolvers.profile import change_email_by_staff
from settings import Settings
from tests.factories import PASSWORD, SIGN_IN, GraphQLClient, make_agent, make_staff
from tests.smtp import SmtpServer, text_body

REQUEST_RESET = """
mutation($login: String!) { requestPasswordReset(input: {login: $login}) { ok userErrors { code } } }
"""
RESET = """
mutation($token: String!, $pw: String!) {
  resetPassword(input: {token: $token, newPassword: $pw}) { ok userErrors { code message } }
}
"""
CHANGE_PASSWORD = """
mutation { changePassword(input: {currentPassword: "Secret123", newPassword: "Changed123"}) {
  ok userErrors { code } } }
"""
UPDATE_EMAIL = """
mutation { updateEmail(input: {newEmail: "moved@example.com", password: "Secret123"}) {
  account { email } userErrors { code } } }
"""
ME = "{ me { id } }"
EXPIRED = {
    "ok": False,
    "userErrors": [
        {"code": "INVALID_TOKEN", "message": "This reset link is invalid or has expired."}
    ],
}
Change = Callable[[GraphQLClient, SmtpServer, Account, Settings], Awaitable[None]]


async def reset_link(gql: GraphQLClient, smtp: SmtpServer, login: str) -> str:
    """Ask for a reset and read the token from the mail it sends."""
    sent = len(smtp.inbox)
    await gql(REQUEST_RESET, {"login": login})
    mail = (await smtp.wait_for(sent + 1))[sent]
    match = re.search(r"reset-password\?token=([\w-]+)", text_body(mail))
    assert match, text_body(mail)
    return match.group(1)


def sign_in_variables(login: str, password: str) -> dict[str, Any]:
    return {"input": {"login": login, "password": password, "deviceId": "d", "deviceName": "P"}}


async def change_password(
    gql: GraphQLClient, smtp: SmtpServer, agent: Account, settings: Settings
) -> None:
    token = await gql.sign_in(agent.email or "")
    assert (await gql(CHANGE_PASSWORD, token=token))["changePassword"]["ok"] is True


async def update_email(
    gql: GraphQLClient, smtp: SmtpServer, agent: Account, settings: Settings
) -> None:
    token = await gql.sign_in(agent.email or "")
    changed = (await gql(UPDATE_EMAIL, token=token))["updateEmail"]
    assert changed == {"account": {"email": "moved@example.com"}, "userErrors": []}


async def edit_email_in_the_console(
    gql: GraphQLClient, smtp: SmtpServer, agent: Account, settings: Settings
) -> None:
    member = (await make_staff(name="Sam Support")).staff
    support = Actor(staff_id=member.id, staff_name="Sam Support")
    await change_email_by_staff(settings, agent.id, "moved@example.com", support)


async def use_another_link(
    gql: GraphQLClient, smtp: SmtpServer, agent: Account, settings: Settings
) -> None:
    clock.travel(61)  # past the minute that holds back a second mail
    token = await reset_link(gql, smtp, agent.key_id or "")
    assert (await gql(RESET, {"token": token, "pw": "Chosen123"}))["resetPassword"]["ok"]


@pytest.mark.parametrize(
    "change", [change_password, update_email, edit_email_in_the_console, use_another_link]
)
async def test_a_reset_link_ends_when_the_password_or_the_email_changes(
    gql: GraphQLClient,
    http: httpx.AsyncClient,
    smtp: SmtpServer,
    app_settings: Settings,
    change: Change,
) -> None:
    # given a reset link mailed to the agent's address
    agent = await make_agent(email="old@example.com")
    token = await reset_link(gql, smtp, "old@example.com")
    # when the password or the address changes
    await change(gql, smtp, agent, app_settings)
    # then the link answers as an expired one, in the app and on its page
    assert (await gql(RESET, {"token": token, "pw": "Attacker1"}))["resetPassword"] == EXPIRED
    form = {"token": token, "password": "Attacker1", "confirm": "Attacker1"}
    page = await http.post("/reset-password", data=form)
    assert page.status_code == 400 and "invalid or has expired" in page.text
    refused = (await gql(SIGN_IN, sign_in_variables(agent.key_id or "", "Attacker1")))["signIn"]
    assert [e["code"] for e in refused["userErrors"]] == ["INVALID_CREDENTIALS"]
    # and a new link may be asked for at once, to the address the account has now
    fresh = await reset_link(gql, smtp, agent.key_id or "")
    assert smtp.inbox[-1]["To"] == (await Account.get(id=agent.id)).email
    assert (await gql(RESET, {"token": fresh, "pw": "Fresh1234"}))["resetPassword"]["ok"]


async def test_a_sign_in_checked_before_a_reset_gets_no_session(
    gql: GraphQLClient, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a reset link, and a sign-in with the old password held just after its check
    agent = await make_agent()
    token = await reset_link(gql, smtp, agent.email or "")
    checked, reset_done = asyncio.Event(), asyncio.Event()

    async def held_after_the_check(stored: str | None, value: str) -> bool:
        right = await verify_secret_async(stored, value)
        if value == PASSWORD:
            checked.set()
            await reset_done.wait()
        return right

    monkeypatch.setattr("resolvers.auth.verify_secret_async", held_after_the_check)
    signing_in = asyncio.create_task(gql(SIGN_IN, sign_in_variables(agent.email or "", PASSWORD)))
    await asyncio.wait_for(checked.wait(), 10)
    # when the reset commits meanwhile
    assert (await gql(RESET, {"token": token, "pw": "NewPass1"}))["resetPassword"]["ok"]
    reset_done.set()
    # then the old password's sign-in is refused and leaves no session behind
    signed_in = (await signing_in)["signIn"]
    assert signed_in["token"] is None
    assert [e["code"] for e in signed_in["userErrors"]] == ["INVALID_CREDENTIALS"]
    assert await Session.filter(account_id=agent.id).count() == 0


async def test_a_burst_of_reset_requests_mails_one_link(
    live_gql: GraphQLClient, smtp: SmtpServer
) -> None:
    # given
    agent = await make_agent()
    # when ten requests for the same login arrive at once
    answers = await asyncio.gather(
        *(live_gql(REQUEST_RESET, {"login": agent.email}) for _ in range(10))
    )
    # then each gets the same answer, and one link is made and mailed
    assert all(a["requestPasswordReset"] == {"ok": True, "userErrors": []} for a in answers)
    await smtp.wait_for(1)
    await asyncio.sleep(0.5)
    assert len(smtp.inbox) == 1
    assert await PasswordReset.filter(account_id=agent.id).count() == 1
