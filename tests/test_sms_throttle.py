"""The SMS throttle (one code a minute per phone number and per account) holds when the
requests arrive all at once, on the real server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from models.accounts import Verification
from models.outbox import OutboxMessage
from tests.factories import GraphQLClient, make_contractor
from tests.sms_gateway import SmsGateway

BEGIN_SIGNUP = """
mutation($input: BeginContractorSignupInput!) {
  beginContractorSignup(input: $input) { verificationId userErrors { code } }
}
"""
BEGIN_PHONE_CHANGE = """
mutation($phone: String!) {
  beginPhoneChange(input: {newPhone: $phone}) { verificationId userErrors { code } }
}
"""
PHONE = "+15135550142"


@pytest.fixture
def settings_overrides(sms: SmsGateway) -> dict[str, Any]:
    return {"sms_backend": "http", "sms_http_url": sms.url}


def outcomes(payloads: list[dict[str, Any]]) -> list[str]:
    return sorted("SENT" if p["verificationId"] else p["userErrors"][0]["code"] for p in payloads)


async def test_signups_for_one_phone_at_once_send_one_code(
    live_gql: GraphQLClient, sms: SmsGateway
) -> None:
    # when fifteen signups with the same phone (and as many emails) arrive at once
    answers = await asyncio.gather(
        *(
            live_gql(BEGIN_SIGNUP, {"input": {"email": f"burst{n}@example.net", "phone": PHONE}})
            for n in range(15)
        )
    )
    # then one is sent a code and the others are told to wait
    assert (
        outcomes([a["beginContractorSignup"] for a in answers])
        == ["SENT"] + ["TOO_MANY_ATTEMPTS"] * 14
    )
    await sms.wait_for(PHONE)
    await asyncio.sleep(0.3)
    assert len(sms.to(PHONE)) == 1
    assert await Verification.filter(phone=PHONE).count() == 1
    assert await OutboxMessage.filter(recipient=PHONE).count() == 1


async def test_phone_changes_of_one_account_at_once_send_one_code(
    live_gql: GraphQLClient, sms: SmsGateway
) -> None:
    # given a contractor
    contractor = await make_contractor()
    token = await live_gql.sign_in(contractor.email or "")
    numbers = [f"+1513555{n:04d}" for n in range(9000, 9010)]
    # when ten phone changes, each to another number, arrive at once
    answers = await asyncio.gather(
        *(live_gql(BEGIN_PHONE_CHANGE, {"phone": number}, token=token) for number in numbers)
    )
    # then one code is sent
    assert (
        outcomes([a["beginPhoneChange"] for a in answers]) == ["SENT"] + ["TOO_MANY_ATTEMPTS"] * 9
    )
    await asyncio.sleep(0.5)
    assert sum(len(sms.to(number)) for number in numbers) == 1
    assert await Verification.filter(account_id=contractor.id).count() == 1
