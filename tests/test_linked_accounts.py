"""Agent accounts are linked, signed in to and reset by an email only where it is proven:
an agent that types another agent's address into its own account reaches nothing of theirs."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from importers.members import import_members
from importers.report import ImportReport
from models.accounts import Account, PasswordReset
from resolvers.auth import accounts_for_login
from tests.factories import SIGN_IN, GraphQLClient, make_agent, make_contractor
from tests.smtp import SmtpServer, text_body
from tests.test_email_proof import CONFIRM, UPDATE_EMAIL, mails_to, token_in
from tests.test_imports import member, write_json

VICTIM = "pat@example.com"
LINKED = "{ me { ... on Agent { keyId linkedAccounts { keyId association status } } } }"
REQUEST_RESET = """
mutation($login: String!) { requestPasswordReset(input: {login: $login}) { ok userErrors { code } } }
"""


def sign_in_vars(login: str, password: str = "Secret123") -> dict[str, object]:
    return {"input": {"login": login, "password": password, "deviceId": "d", "deviceName": "P"}}


async def linked_key_ids(gql: GraphQLClient, token: str) -> list[str]:
    me = (await gql(LINKED, token=token))["me"]
    return [linked["keyId"] for linked in me["linkedAccounts"]]


async def test_an_agent_that_takes_another_agents_email_is_not_linked_to_it(
    live_gql: GraphQLClient,
) -> None:
    # given two accounts of one person, linked by their roster address, and another agent
    victim = await make_agent(email=VICTIM, association="North MLS")
    second = await make_agent(email=VICTIM, association="South MLS")
    attacker = await make_agent(email="mallory@example.com", password="Mallory123")
    attacker_token = await live_gql.sign_in(attacker.key_id or "", password="Mallory123")
    victim_token = await live_gql.sign_in(victim.key_id or "")
    # when the attacker puts the victim's address on its own account
    changed = await live_gql(
        UPDATE_EMAIL.replace("Secret123", "Mallory123"), {"email": VICTIM}, token=attacker_token
    )
    # then the change is made, unproven, and links the attacker to nobody, nor anybody to it
    assert changed["updateEmail"] == {
        "account": {"email": VICTIM, "emailVerified": False},
        "userErrors": [],
    }
    assert await linked_key_ids(live_gql, attacker_token) == []
    assert await linked_key_ids(live_gql, victim_token) == [second.key_id]


async def test_a_reset_by_email_reaches_only_the_accounts_that_proved_it(
    live_gql: GraphQLClient, smtp: SmtpServer
) -> None:
    # given an agent whose roster address another agent typed into its own account
    victim = await make_agent(email=VICTIM)
    attacker = await make_agent(email="mallory@example.com")
    await Account.filter(id=attacker.id).update(email=VICTIM, email_verified=False)
    # when the victim asks for a reset by email
    data = await live_gql(REQUEST_RESET, {"login": VICTIM})
    # then one link arrives, for the victim's account only
    assert data["requestPasswordReset"] == {"ok": True, "userErrors": []}
    [mail] = await smtp.wait_for(1)
    await asyncio.sleep(0.3)
    assert len(smtp.inbox) == 1
    assert f"Key ID {victim.key_id}" in text_body(mail)
    assert f"{attacker.key_id}" not in text_body(mail)
    assert await PasswordReset.all().count() == 1
    assert await PasswordReset.filter(account_id=victim.id).count() == 1


async def test_an_unproven_agent_email_does_not_sign_in(live_gql: GraphQLClient) -> None:
    # given an agent that typed another agent's address into its own account
    await make_agent(email=VICTIM, password="Victim123")
    attacker = await make_agent(email="mallory@example.com", password="Mallory123")
    await Account.filter(id=attacker.id).update(email=VICTIM, email_verified=False)
    # when it signs in with that address and its own password
    by_email = await live_gql(SIGN_IN, sign_in_vars(VICTIM, "Mallory123"))
    # then the address names only the account that proved it; the Key ID still signs in
    assert by_email["signIn"]["userErrors"][0]["code"] == "INVALID_CREDENTIALS"
    assert by_email["signIn"]["token"] is None
    await live_gql.sign_in(attacker.key_id or "", password="Mallory123")
    await live_gql.sign_in(VICTIM, password="Victim123")


async def test_an_agent_that_proves_its_new_address_is_linked_and_signs_in_with_it(
    live_gql: GraphQLClient, smtp: SmtpServer
) -> None:
    # given the same person's second account, moving to the first one's address
    first = await make_agent(email=VICTIM)
    second = await make_agent(email="pat.old@example.com", password="Other1234")
    token = await live_gql.sign_in(second.key_id or "", password="Other1234")
    await live_gql(UPDATE_EMAIL.replace("Secret123", "Other1234"), {"email": VICTIM}, token=token)
    [link] = [b for b in await mails_to(smtp, VICTIM, 1) if "confirm-email?token=" in b]
    # when the link mailed to the address is followed
    confirmed = await live_gql(CONFIRM, {"token": token_in(link, "token")})
    # then both accounts are linked, and the address signs in to the account whose password it is
    assert confirmed["confirmEmail"]["userErrors"] == []
    assert await linked_key_ids(live_gql, token) == [first.key_id]
    other = await live_gql.sign_in(VICTIM, password="Secret123")
    assert await linked_key_ids(live_gql, other) == [second.key_id]
    await live_gql.sign_in(VICTIM, password="Other1234")


async def test_a_contractor_signs_in_and_resets_with_its_unproven_email(
    live_gql: GraphQLClient, smtp: SmtpServer
) -> None:
    # given a contractor who has not followed the confirmation link yet: the address is its
    # only login, and no other account may hold it
    contractor = await make_contractor(email="carl@example.com", email_verified=False)
    # when
    await live_gql.sign_in("carl@example.com")
    await live_gql(REQUEST_RESET, {"login": "carl@example.com"})
    # then the reset link reaches it
    [mail] = await smtp.wait_for(1)
    assert mail["To"] == "carl@example.com"
    assert re.search(r"reset-password\?token=[\w-]+", text_body(mail))
    assert await PasswordReset.filter(account_id=contractor.id).count() == 1


async def test_the_rosters_address_is_proven_when_a_reimport_sets_it(
    orm: None, tmp_path: Path
) -> None:
    # given an imported agent who changed its address and never proved the new one
    await import_members(write_json(tmp_path / "m.json", [member("R1")]), ImportReport())
    agent = await Account.get(mls_id="R1")
    roster_email = agent.email or ""
    await Account.filter(id=agent.id).update(email="typo@example.com", email_verified=False)
    # when the roster is imported again, with the association's address
    await import_members(write_json(tmp_path / "m.json", [member("R1")]), ImportReport())
    # then the account has it back, proven: "Forgot password" by email reaches it again
    await agent.refresh_from_db()
    assert (agent.email, agent.email_verified) == (roster_email, True)
    assert [a.id for a in await accounts_for_login(roster_email)] == [agent.id]
