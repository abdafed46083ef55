"""Contractor signup: invitation, SMS code through a real HTTP gateway, account and pending grants."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from tortoise.transactions import in_transaction

from core import clock
from core.security import new_token, normalize_answer, token_digest, unseal, verify_secret
from models.accounts import Account, AccountEvent, Invitation, SecurityAnswer, Verification
from models.enums import AccountEventKind, AccountKind
from models.grants import Grant
from notify import outbox
from settings import Settings
from tests.factories import GraphQLClient, make_agent, make_contractor, make_listing, make_lockbox
from tests.rows import table_counts
from tests.sms_gateway import SmsGateway
from tests.smtp import SmtpServer, text_body

BEGIN = """
mutation($input: BeginContractorSignupInput!) {
  beginContractorSignup(input: $input) { verificationId userErrors { code field message } }
}
"""
VERIFY = """
mutation($input: VerifySignupCodeInput!) {
  verifySignupCode(input: $input) { ok userErrors { code field message } }
}
"""
COMPLETE = """
mutation($input: CompleteContractorSignupInput!) {
  completeContractorSignup(input: $input) {
    contractor { id firstName lastName email phone status role company }
    userErrors { code field message }
  }
}
"""
ME = """
{ me { id email emailVerified phone ... on Contractor { role company }
       messages { totalCount edges { node { kind title body } } } } }
"""
EMAIL = "casey@example.com"
PHONE = "(513) 555-0100"
E164 = "+15135550100"


@pytest.fixture
def settings_overrides(sms: SmsGateway) -> dict[str, Any]:
    return {"sms_backend": "http", "sms_http_url": sms.url}


async def begin(
    gql: GraphQLClient, email: str = EMAIL, phone: str = PHONE, token: str | None = None
) -> dict[str, Any]:
    variables = {"input": {"email": email, "phone": phone, "invitationToken": token}}
    payload: dict[str, Any] = (await gql(BEGIN, variables))["beginContractorSignup"]
    return payload


async def verify(gql: GraphQLClient, verification_id: str, code: str) -> dict[str, Any]:
    variables = {"input": {"verificationId": verification_id, "code": code}}
    payload: dict[str, Any] = (await gql(VERIFY, variables))["verifySignupCode"]
    return payload


async def complete(gql: GraphQLClient, verification_id: str, **changes: Any) -> dict[str, Any]:
    fields = {
        "verificationId": verification_id,
        "firstName": "Casey",
        "lastName": "Cleaner",
        "role": "CLEANER",
        "company": "Sparkle Ltd",
        "password": "Secret123",
        "pin": "4321",
        "securityAnswers": [{"question": "First pet?", "answer": "  Fluffy  The Cat "}],
        **changes,
    }
    payload: dict[str, Any] = (await gql(COMPLETE, {"input": fields}))["completeContractorSignup"]
    return payload


async def verified_signup(
    gql: GraphQLClient, sms: SmsGateway, email: str = EMAIL, phone: str = PHONE
) -> str:
    """A signup whose SMS code has been entered: the verification id."""
    started = await begin(gql, email, phone)
    assert started["userErrors"] == [], started["userErrors"]
    [text] = await sms.wait_for(E164 if phone == PHONE else phone)
    assert (await verify(gql, started["verificationId"], text.code))["ok"]
    verification_id: str = started["verificationId"]
    return verification_id


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10000:04d}"


async def test_whole_signup_from_an_invitation_links_pending_grants(
    gql: GraphQLClient, sms: SmsGateway, smtp: SmtpServer, app_settings: Settings
) -> None:
    # given an agent's pending grant and invitation to the email, the mail really sent
    agent = await make_agent()
    listing = await make_listing(agent)
    lockbox = await make_lockbox(agent, listing)
    now = clock.now()
    grant = await Grant.create(
        listing=listing,
        lockbox=lockbox,
        granted_by=agent,
        grantee_email=EMAIL,
        starts_at=now + timedelta(days=1),
        ends_at=now + timedelta(days=2),
    )
    invitation_token = new_token()
    async with in_transaction():
        invitation = await Invitation.create(
            token_hash=token_digest(invitation_token), email=EMAIL, invited_by=agent
        )
        await outbox.email(
            EMAIL,
            "invitation",
            {
                "agent_name": "Alice Agent",
                "address": "1 Main Street",
                "starts_at": "tomorrow",
                "ends_at": "the day after",
                "link": f"http://keybin.test/signup?invitation={invitation_token}",
            },
        )
    outbox.wake()
    [mail] = await smtp.wait_for(1)
    match = re.search(r"invitation=([\w-]+)", text_body(mail))
    assert match, text_body(mail)

    # when the person signs up with the token from the mail
    started = await begin(gql, "  Casey@Example.COM ", PHONE, match.group(1))
    assert started["userErrors"] == []
    [text] = await sms.wait_for(E164)
    assert "expires in 10 minutes" in text.body
    first_try = await verify(gql, started["verificationId"], wrong(text.code))
    right_try = await verify(gql, started["verificationId"], text.code)
    done = await complete(gql, started["verificationId"])

    # then
    assert first_try["userErrors"][0]["code"] == "INVALID_CODE"
    assert right_try == {"ok": True, "userErrors": []}
    assert done["userErrors"] == []
    contractor = done["contractor"]
    assert contractor["email"] == EMAIL
    assert contractor["phone"] == E164
    assert (contractor["role"], contractor["company"], contractor["status"]) == (
        "CLEANER",
        "Sparkle Ltd",
        "ACTIVE",
    )
    account = await Account.get(email=EMAIL)
    assert account.kind == AccountKind.CONTRACTOR
    assert verify_secret(account.password_hash, "Secret123")
    assert verify_secret(account.pin_hash, "4321")
    await grant.refresh_from_db()
    assert grant.grantee_id == account.id  # type: ignore[attr-defined]
    await invitation.refresh_from_db()
    assert invitation.accepted_at is not None
    [answer] = await SecurityAnswer.filter(account=account)
    assert answer.question == "First pet?"
    assert verify_secret(answer.answer_hash, normalize_answer("fluffy the cat"))
    assert unseal(app_settings.secret_key, answer.answer_sealed) == "Fluffy  The Cat"
    assert "Fluffy" not in answer.answer_sealed
    kinds = await AccountEvent.filter(account=account).values_list("kind", flat=True)
    assert AccountEventKind.SIGNED_UP.value in kinds

    # and the contractor signs in by email and has a Message Center
    token = await gql.sign_in(EMAIL)
    me = (await gql(ME, token=token))["me"]
    assert me["role"] == "CLEANER"
    assert me["company"] == "Sparkle Ltd"
    # and the grant waiting for the proven address is announced in it
    assert me["emailVerified"] is True
    assert me["messages"]["totalCount"] == 1
    [announced] = me["messages"]["edges"]
    assert announced["node"]["kind"] == "ACCESS_GRANTED"
    assert "granted you access" in announced["node"]["body"]


async def test_signup_without_invitation_stores_code_hashed_and_expiring(
    gql: GraphQLClient, sms: SmsGateway
) -> None:
    # when
    started = await begin(gql, phone="513.555.0100")
    [text] = await sms.wait_for(E164)
    # then
    assert started["userErrors"] == []
    [verification] = await Verification.all()
    assert verification.email == EMAIL
    assert verification.phone == E164
    assert text.code not in verification.code_hash
    assert verify_secret(verification.code_hash, text.code)
    lifetime = verification.expires_at - verification.created_at
    assert timedelta(minutes=9) < lifetime <= timedelta(minutes=10)


@pytest.mark.parametrize(
    ("email", "phone", "code", "field"),
    [
        ("agent@example.com", PHONE, "EMAIL_BELONGS_TO_AGENT", "email"),
        ("taken@example.com", PHONE, "EMAIL_TAKEN", "email"),
        ("not-an-email", PHONE, "INVALID_INPUT", "email"),
        ("two@@example.com", PHONE, "INVALID_INPUT", "email"),
        (EMAIL, "555-0100", "INVALID_INPUT", "phone"),
        (EMAIL, "call me maybe", "INVALID_INPUT", "phone"),
    ],
)
async def test_begin_refusals_change_nothing(
    gql: GraphQLClient, sms: SmsGateway, email: str, phone: str, code: str, field: str
) -> None:
    # given
    await make_agent(email="Agent@Example.com")
    await make_contractor(email="taken@example.com")
    before = await table_counts()
    # when
    payload = await begin(gql, email, phone)
    # then
    assert payload["verificationId"] is None
    assert payload["userErrors"][0]["code"] == code
    assert payload["userErrors"][0]["field"] == ["input", field]
    assert await table_counts() == before


async def test_invitation_token_is_bound_to_its_email(gql: GraphQLClient, sms: SmsGateway) -> None:
    # given
    agent = await make_agent()
    token = new_token()
    await Invitation.create(token_hash=token_digest(token), email=EMAIL, invited_by=agent)
    before = await table_counts()
    # when
    other_email = await begin(gql, "someone.else@example.com", PHONE, token)
    unknown = await begin(gql, EMAIL, PHONE, "no-such-token")
    # then
    for payload in (other_email, unknown):
        assert payload["userErrors"][0]["code"] == "INVALID_TOKEN"
        assert payload["userErrors"][0]["field"] == ["input", "invitationToken"]
    assert await table_counts() == before
    assert (await begin(gql, EMAIL, PHONE, token))["userErrors"] == []


async def test_resend_waits_a_minute_and_stops_after_five_an_hour(
    gql: GraphQLClient, sms: SmsGateway
) -> None:
    # given
    first = await begin(gql)
    await sms.wait_for(E164, 1)
    before = await table_counts()
    # when asked again at once, or for another email on the same phone
    again = await begin(gql)
    other_email = await begin(gql, "other@example.com")
    # then
    assert await table_counts() == before
    for payload in (again, other_email):
        assert payload["userErrors"][0]["code"] == "TOO_MANY_ATTEMPTS"
        assert "wait a minute" in payload["userErrors"][0]["message"]
    # a minute later a resend renews the same verification with a new code
    ids = {first["verificationId"]}
    for count in range(2, 6):
        clock.travel(61)
        resent = await begin(gql)
        assert resent["userErrors"] == []
        ids.add(resent["verificationId"])
        await sms.wait_for(E164, count)
    assert len(ids) == 1
    clock.travel(61)
    sixth = await begin(gql)
    assert sixth["userErrors"][0]["code"] == "TOO_MANY_ATTEMPTS"
    assert "per hour" in sixth["userErrors"][0]["message"]
    # only the latest code works
    codes = [s.code for s in sms.to(E164)]
    assert len(codes) == 5
    if codes[-1] != codes[0]:
        stale = await verify(gql, first["verificationId"], codes[0])
        assert stale["userErrors"][0]["code"] == "INVALID_CODE"
    assert (await verify(gql, first["verificationId"], codes[-1]))["ok"]


async def test_five_wrong_codes_then_even_the_right_one_is_refused(
    gql: GraphQLClient, sms: SmsGateway
) -> None:
    # given
    started = await begin(gql)
    [text] = await sms.wait_for(E164)
    before = await table_counts()
    # when
    answers = [await verify(gql, started["verificationId"], wrong(text.code)) for _ in range(5)]
    last = await verify(gql, started["verificationId"], text.code)
    # then
    assert [a["userErrors"][0]["code"] for a in answers] == ["INVALID_CODE"] * 5
    assert await table_counts() == before
    assert last["ok"] is False
    assert last["userErrors"][0]["code"] == "TOO_MANY_ATTEMPTS"
    verification = await Verification.get()
    assert verification.attempts == 5
    assert verification.verified_at is None


async def test_code_expires_after_ten_minutes(gql: GraphQLClient, sms: SmsGateway) -> None:
    # given
    started = await begin(gql)
    [text] = await sms.wait_for(E164)
    # when
    clock.travel(10 * 60 + 1)
    payload = await verify(gql, started["verificationId"], text.code)
    # then
    assert payload["userErrors"][0]["code"] == "CODE_EXPIRED"
    assert (await Verification.get()).verified_at is None


async def test_unknown_verification_is_not_found(gql: GraphQLClient) -> None:
    for bad in ("garbage", "VmVyaWZpY2F0aW9uOm5vcGU=", "QWdlbnQ6MQ=="):
        payload = await verify(gql, bad, "1234")
        assert payload["userErrors"][0]["code"] == "NOT_FOUND"
        completed = await complete(gql, bad)
        assert completed["userErrors"][0]["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"password": "weak"}, "WEAK_PASSWORD", ["input", "password"]),
        ({"password": "nodigitsHere"}, "WEAK_PASSWORD", ["input", "password"]),
        ({"pin": "12a4"}, "INVALID_INPUT", ["input", "pin"]),
        ({"firstName": "   "}, "INVALID_INPUT", ["input", "firstName"]),
        ({"lastName": "x" * 101}, "INVALID_INPUT", ["input", "lastName"]),
        ({"securityAnswers": []}, "INVALID_INPUT", ["input", "securityAnswers"]),
        (
            {"securityAnswers": [{"question": "Pet?", "answer": " "}]},
            "INVALID_INPUT",
            ["input", "securityAnswers", "0", "answer"],
        ),
        (
            {"securityAnswers": [{"question": "", "answer": "x"}]},
            "INVALID_INPUT",
            ["input", "securityAnswers", "0", "question"],
        ),
        (
            {"securityAnswers": [{"question": f"Q{n}", "answer": "a"} for n in range(6)]},
            "INVALID_INPUT",
            ["input", "securityAnswers"],
        ),
    ],
)
async def test_complete_refusals_change_nothing(
    gql: GraphQLClient,
    sms: SmsGateway,
    changes: dict[str, Any],
    code: str,
    field: list[str],
) -> None:
    # given
    verification_id = await verified_signup(gql, sms)
    before = await table_counts()
    # when
    payload = await complete(gql, verification_id, **changes)
    # then
    assert payload["contractor"] is None
    assert payload["userErrors"][0]["code"] == code
    assert payload["userErrors"][0]["field"] == field
    assert await table_counts() == before
    assert (await complete(gql, verification_id))["userErrors"] == []


async def test_complete_needs_a_verified_code(gql: GraphQLClient, sms: SmsGateway) -> None:
    # given
    started = await begin(gql)
    before = await table_counts()
    # when
    payload = await complete(gql, started["verificationId"])
    # then
    assert payload["userErrors"][0]["code"] == "INVALID_CODE"
    assert await table_counts() == before


async def test_complete_window_closes_after_thirty_minutes(
    gql: GraphQLClient, sms: SmsGateway
) -> None:
    # given
    verification_id = await verified_signup(gql, sms)
    before = await table_counts()
    # when
    clock.travel(30 * 60 + 1)
    payload = await complete(gql, verification_id)
    # then
    assert payload["userErrors"][0]["code"] == "CODE_EXPIRED"
    assert await table_counts() == before


async def test_completing_twice_makes_one_account(gql: GraphQLClient, sms: SmsGateway) -> None:
    # given
    verification_id = await verified_signup(gql, sms)
    assert (await complete(gql, verification_id))["userErrors"] == []
    before = await table_counts()
    # when
    again = await complete(gql, verification_id, firstName="Other")
    # then
    assert again["userErrors"][0]["code"] == "CODE_EXPIRED"
    assert await table_counts() == before
    assert await Account.filter(email=EMAIL).count() == 1


@pytest.mark.parametrize(
    ("kind", "code"), [("agent", "EMAIL_BELONGS_TO_AGENT"), ("contractor", "EMAIL_TAKEN")]
)
async def test_email_taken_while_signing_up(
    gql: GraphQLClient, sms: SmsGateway, kind: str, code: str
) -> None:
    # given a verified signup, then the email gets another owner
    verification_id = await verified_signup(gql, sms)
    if kind == "agent":
        await make_agent(email=EMAIL)
    else:
        await make_contractor(email=EMAIL)
    before = await table_counts()
    # when
    payload = await complete(gql, verification_id)
    # then
    assert payload["userErrors"][0]["code"] == code
    assert await table_counts() == before
