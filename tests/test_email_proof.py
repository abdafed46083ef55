"""A grant reaches only someone who proved the mailbox it was addressed to: attacks against a
real server (signup with someone else's email, updateEmail to it, two signups at once), the
confirmation link, and the invitation holder who always wins over an unproven claim."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tortoise.exceptions import IntegrityError

from ble.b64 import b64url_encode
from ble.jwks import raw_public_key
from core import clock
from models.accounts import Account
from models.enums import AccountKind
from models.grants import Grant
from resolvers.events import Actor
from resolvers.profile import change_email_by_staff
from settings import Settings
from tests.factories import PASSWORD, GraphQLClient, make_contractor, make_staff
from tests.live import Live
from tests.sms_gateway import SmsGateway
from tests.smtp import SmtpServer, text_body
from tests.test_grants import GRANT_ACCESS, Scene, grant_input, scene
from tests.test_signup import begin, complete, verify

VICTIM = "victim@example.com"
ATTACKER_PHONE = "+15135550111"
VICTIM_PHONE = "+15135550122"

ME = """
{ me { email emailVerified
       ... on Contractor { grants { totalCount edges { node { id granteeEmail } } } }
       messages { edges { node { kind title body } } } } }
"""
SYNC = """
mutation { syncCredentials(input: {deviceId: "phone"}) {
  bundle { credentials { lockboxSerial grant { id } } } userErrors { code } } }
"""
CONFIRM = """
mutation($token: String!) { confirmEmail(input: {token: $token}) {
  account { email emailVerified } userErrors { code field message } } }
"""
UPDATE_EMAIL = """
mutation($email: String!) { updateEmail(input: {newEmail: $email, password: "Secret123"}) {
  account { email emailVerified } userErrors { code field } } }
"""
RESEND = "mutation { requestEmailConfirmation { ok userErrors { code } } }"


@pytest.fixture
def settings_overrides(sms: SmsGateway) -> dict[str, Any]:
    return {"sms_backend": "http", "sms_http_url": sms.url}


async def signup(
    gql: GraphQLClient, sms: SmsGateway, email: str, phone: str, token: str | None = None
) -> dict[str, Any]:
    """The whole signup over the API; the completion payload."""
    started = await begin(gql, email, phone, token)
    assert started["userErrors"] == [], started
    text = (await sms.wait_for(phone))[-1]
    assert (await verify(gql, started["verificationId"], text.code))["ok"]
    return await complete(gql, started["verificationId"], password=PASSWORD)


async def sign_in_with_key(gql: GraphQLClient, email: str) -> str:
    key = Ed25519PrivateKey.generate()
    public_key = b64url_encode(raw_public_key(key.public_key()))
    return await gql.sign_in(email, device_id="phone", devicePublicKey=public_key)


async def grant_to(gql: GraphQLClient, s: Scene, email: str) -> dict[str, Any]:
    payload: dict[str, Any] = (
        await gql(GRANT_ACCESS, grant_input(s.listing_id, email, starts_in=60), token=s.token)
    )["grantAccess"]
    assert payload["userErrors"] == [], payload
    return payload


async def mails_to(smtp: SmtpServer, address: str, count: int) -> list[str]:
    """The text bodies of the mails to one address, once `count` of them have arrived."""
    for _ in range(250):
        bodies = [text_body(m) for m in smtp.inbox if address in m["To"]]
        if len(bodies) >= count:
            return bodies
        await asyncio.sleep(0.02)
    raise AssertionError(f"expected {count} mail(s) to {address}")


def token_in(body: str, name: str) -> str:
    match = re.search(rf"{name}=([\w-]+)", body)
    assert match, body
    return match.group(1)


async def grants_and_credentials(gql: GraphQLClient, token: str) -> tuple[int, int]:
    me = (await gql(ME, token=token))["me"]
    bundle = (await gql(SYNC, token=token))["syncCredentials"]["bundle"]
    return me["grants"]["totalCount"], len(bundle["credentials"])


def titles(me: dict[str, Any]) -> list[str]:
    return [e["node"]["title"] for e in me["messages"]["edges"]]


async def test_signup_with_someone_elses_email_gets_no_grant_and_says_why(
    live_gql: GraphQLClient, sms: SmsGateway, smtp: SmtpServer
) -> None:
    # given an agent's grant to the victim's address (the invitation goes to the victim)
    s = await scene(live_gql)
    await grant_to(live_gql, s, VICTIM)
    # when an attacker signs up with that address, proving only their own phone
    done = await signup(live_gql, sms, VICTIM, ATTACKER_PHONE)
    token = await sign_in_with_key(live_gql, VICTIM)
    # and the agent grants to the address again, now that an account claims it
    again = await grant_to(live_gql, s, VICTIM)
    # then the account exists, unproven, and holds neither grant nor credential
    assert done["userErrors"] == []
    assert await grants_and_credentials(live_gql, token) == (0, 0)
    assert again["invitationSent"] is True and again["grant"]["grantee"] is None
    me = (await live_gql(ME, token=token))["me"]
    assert me["emailVerified"] is False
    assert "Confirm your email address" in titles(me)
    assert "Confirm your email address to receive access" in titles(me)
    assert not any("12 Elm Street" in e["node"]["body"] for e in me["messages"]["edges"])
    # and what was mailed went to the victim's mailbox, never to the attacker
    bodies = await mails_to(smtp, VICTIM, 3)
    assert sum("confirm-email?token=" in b for b in bodies) == 1
    assert await Grant.filter(grantee_id__isnull=False).count() == 0


async def test_following_the_confirmation_link_proves_the_address_and_delivers_the_grants(
    live: Live, live_gql: GraphQLClient, sms: SmsGateway, smtp: SmtpServer
) -> None:
    # given a grant waiting for the address, and its owner signed up without the invitation
    s = await scene(live_gql)
    granted = await grant_to(live_gql, s, VICTIM)
    await signup(live_gql, sms, VICTIM, VICTIM_PHONE)
    token = await sign_in_with_key(live_gql, VICTIM)
    [link] = [b for b in await mails_to(smtp, VICTIM, 2) if "confirm-email?token=" in b]
    confirmation = token_in(link, "token")
    page = f"{live.http_url.removesuffix('/graphql')}/confirm-email"
    async with httpx.AsyncClient() as browser:
        # when the mail's link is opened (a mail scanner does this too) and nothing is pressed
        opened = await browser.get(page, params={"token": confirmation})
        unchanged = (await live_gql(ME, token=token))["me"]["emailVerified"]
        # and the person presses the button
        pressed = await browser.post(page, data={"token": confirmation})
        # and the link is used a second time
        replayed = await browser.post(page, data={"token": confirmation})
    # then only the press proved it, once
    assert opened.status_code == 200 and "Confirm my email address" in opened.text
    assert unchanged is False
    assert pressed.status_code == 200 and "is confirmed" in pressed.text
    assert replayed.status_code == 400 and "invalid, used or expired" in replayed.text
    assert opened.headers["content-security-policy"].startswith("default-src 'none'")
    # and the grant is theirs, announced, with a credential for its lockbox
    me = (await live_gql(ME, token=token))["me"]
    assert me["emailVerified"] is True
    assert [e["node"]["id"] for e in me["grants"]["edges"]] == [granted["grant"]["id"]]
    assert "Access granted: 12 Elm Street" in " ".join(titles(me))
    assert await grants_and_credentials(live_gql, token) == (1, 1)


async def test_the_invitation_holder_wins_over_an_unproven_claim(
    live_gql: GraphQLClient, sms: SmsGateway, smtp: SmtpServer
) -> None:
    # given a grant, its invitation in the victim's mailbox, and an attacker who took the address
    s = await scene(live_gql)
    await grant_to(live_gql, s, VICTIM)
    [invitation] = await mails_to(smtp, VICTIM, 1)
    await signup(live_gql, sms, VICTIM, ATTACKER_PHONE)
    attacker = await sign_in_with_key(live_gql, VICTIM)
    [link] = [b for b in await mails_to(smtp, VICTIM, 2) if "confirm-email?token=" in b]
    # when the victim signs up with the invitation's token
    done = await signup(
        live_gql, sms, VICTIM, VICTIM_PHONE, token=token_in(invitation, "invitation")
    )
    victim = await sign_in_with_key(live_gql, VICTIM)
    # then the victim has the account with the address, proven, and the grant
    assert done["userErrors"] == []
    assert await grants_and_credentials(live_gql, victim) == (1, 1)
    assert (await live_gql(ME, token=victim))["me"]["emailVerified"] is True
    # and the attacker's account lost the address, still works, and is told why
    me = (await live_gql(ME, token=attacker))["me"]
    assert (me["email"], me["emailVerified"]) == ("", False)
    assert "Your email address was removed" in titles(me)
    assert await grants_and_credentials(live_gql, attacker) == (0, 0)
    # and the attacker's pending confirmation link proves nothing any more
    late = (await live_gql(CONFIRM, {"token": token_in(link, "token")}))["confirmEmail"]
    assert late["userErrors"][0]["code"] == "INVALID_TOKEN"
    contractors = await Account.filter(kind=AccountKind.CONTRACTOR).values_list("email", flat=True)
    assert sorted(contractors, key=lambda e: e or "") == [None, VICTIM]


async def test_update_email_to_an_address_with_pending_grants_attaches_nothing(
    live_gql: GraphQLClient, smtp: SmtpServer
) -> None:
    # given a grant waiting for the victim, and an attacker with a proven account of their own
    s = await scene(live_gql)
    await grant_to(live_gql, s, VICTIM)
    await make_contractor(email="attacker@example.com")
    token = await sign_in_with_key(live_gql, "attacker@example.com")
    # when the attacker changes their email to the victim's
    changed = (await live_gql(UPDATE_EMAIL, {"email": VICTIM}, token=token))["updateEmail"]
    # then the change is made but unproven, and nothing addressed to it arrives
    assert changed == {
        "account": {"email": VICTIM, "emailVerified": False},
        "userErrors": [],
    }
    assert await grants_and_credentials(live_gql, token) == (0, 0)
    # and the victim's mailbox gets the link, the old address is told
    bodies = await mails_to(smtp, VICTIM, 2)
    assert sum("confirm-email?token=" in b for b in bodies) == 1
    [told] = await mails_to(smtp, "attacker@example.com", 1)
    assert "email address of your keybin account was changed" in told


async def test_an_invitation_proves_the_address_of_the_signed_in_account_it_was_sent_to(
    live_gql: GraphQLClient, sms: SmsGateway, smtp: SmtpServer
) -> None:
    # given someone who signed up without an invitation, then got one to their address
    await signup(live_gql, sms, VICTIM, VICTIM_PHONE)
    token = await sign_in_with_key(live_gql, VICTIM)
    s = await scene(live_gql)
    await grant_to(live_gql, s, VICTIM)
    [invitation] = [b for b in await mails_to(smtp, VICTIM, 2) if "invitation=" in b]
    other = await make_contractor(email="other@example.com")
    other_token = await sign_in_with_key(live_gql, other.email or "")
    invitation_token = token_in(invitation, "invitation")
    # when another account tries the invitation, then its addressee does
    stolen = await live_gql(CONFIRM, {"token": invitation_token}, token=other_token)
    proven = await live_gql(CONFIRM, {"token": invitation_token}, token=token)
    # then only the addressee's address is proven, and the grant is theirs
    assert stolen["confirmEmail"]["userErrors"][0]["code"] == "INVALID_TOKEN"
    assert await grants_and_credentials(live_gql, other_token) == (0, 0)
    assert proven["confirmEmail"] == {
        "account": {"email": VICTIM, "emailVerified": True},
        "userErrors": [],
    }
    assert await grants_and_credentials(live_gql, token) == (1, 1)


async def test_a_confirmation_link_after_the_address_changed_proves_nothing(
    live_gql: GraphQLClient, smtp: SmtpServer, app_settings: Settings
) -> None:
    # given a contractor who changed their email twice, each change mailing a link
    await make_contractor(email="first@example.com")
    token = await sign_in_with_key(live_gql, "first@example.com")
    await live_gql(UPDATE_EMAIL, {"email": "second@example.com"}, token=token)
    [old_link] = await mails_to(smtp, "second@example.com", 1)
    await live_gql(UPDATE_EMAIL, {"email": "third@example.com"}, token=token)
    # when the link for the earlier address is followed
    late = (await live_gql(CONFIRM, {"token": token_in(old_link, "token")}))["confirmEmail"]
    # then it is refused, and the account's current address stays unproven
    assert late["userErrors"][0]["code"] == "INVALID_TOKEN"
    me = (await live_gql(ME, token=token))["me"]
    assert (me["email"], me["emailVerified"]) == ("third@example.com", False)


async def test_support_email_edit_is_unproven_until_the_link_is_followed(
    live_gql: GraphQLClient, smtp: SmtpServer, app_settings: Settings
) -> None:
    # given a grant waiting for an address, and a contractor whose email support edits to it
    s = await scene(live_gql)
    await grant_to(live_gql, s, VICTIM)
    contractor = await make_contractor(email="old@example.com")
    token = await sign_in_with_key(live_gql, "old@example.com")
    # when
    member = (await make_staff()).staff
    await change_email_by_staff(app_settings, contractor.id, VICTIM, Actor(staff_id=member.id))
    # then nothing attaches until the mailbox's owner confirms
    assert await grants_and_credentials(live_gql, token) == (0, 0)
    [told] = await mails_to(smtp, "old@example.com", 1)
    assert "by keybin support" in told
    [link] = [b for b in await mails_to(smtp, VICTIM, 2) if "confirm-email?token=" in b]
    confirmed = (await live_gql(CONFIRM, {"token": token_in(link, "token")}))["confirmEmail"]
    assert confirmed == {"account": None, "userErrors": []}  # signed out: says nothing
    assert await grants_and_credentials(live_gql, token) == (1, 1)


async def test_asking_for_the_link_again_sends_one_per_minute(
    live_gql: GraphQLClient, smtp: SmtpServer
) -> None:
    # given an unproven contractor
    await make_contractor(email="slow@example.com", email_verified=False)
    token = await sign_in_with_key(live_gql, "slow@example.com")
    # when they ask three times, twice at once and once a minute later
    first = await live_gql(RESEND, token=token)
    await live_gql(RESEND, token=token)
    await mails_to(smtp, "slow@example.com", 1)
    clock.travel(61)
    await live_gql(RESEND, token=token)
    # then two links went out, the later one usable
    assert first["requestEmailConfirmation"] == {"ok": True, "userErrors": []}
    bodies = await mails_to(smtp, "slow@example.com", 2)
    await asyncio.sleep(0.2)
    assert len([m for m in smtp.inbox if "slow@example.com" in m["To"]]) == 2
    confirmed = await live_gql(CONFIRM, {"token": token_in(bodies[1], "token")}, token=token)
    assert confirmed["confirmEmail"]["account"]["emailVerified"] is True


async def test_two_signups_for_one_email_at_once_make_one_account(
    live_gql: GraphQLClient, sms: SmsGateway
) -> None:
    # given two people past the SMS code with the same email
    verifications = []
    for phone in (ATTACKER_PHONE, VICTIM_PHONE):
        started = await begin(live_gql, VICTIM, phone)
        text = (await sms.wait_for(phone))[-1]
        assert (await verify(live_gql, started["verificationId"], text.code))["ok"]
        verifications.append(started["verificationId"])
    # when both complete at the same moment
    results = await asyncio.gather(*(complete(live_gql, v) for v in verifications))
    # then one account, and the other is told the address is taken
    codes = sorted(e["code"] for r in results for e in r["userErrors"])
    assert codes == ["EMAIL_TAKEN"]
    assert await Account.filter(email=VICTIM).count() == 1


async def test_the_database_itself_refuses_a_second_contractor_with_one_email(orm: None) -> None:
    # given
    await make_contractor(email=VICTIM)
    # when / then: a write that skips every check still cannot make two
    with pytest.raises(IntegrityError):
        await make_contractor(email=VICTIM)


async def test_a_start_within_the_clock_skew_is_accepted(live_gql: GraphQLClient) -> None:
    # given
    s = await scene(live_gql)
    await make_contractor(email="c@example.com")
    # when a start two minutes ago arrives (a phone's clock, a slow network)
    variables = grant_input(s.listing_id, "c@example.com", starts_in=-120)
    payload = (await live_gql(GRANT_ACCESS, variables, token=s.token))["grantAccess"]
    # then
    assert payload["userErrors"] == []
    assert payload["grant"]["status"] == "ACTIVE"
