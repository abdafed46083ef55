"""A mistyped phone number at signup is corrected at once: the resend throttle counts the number."""

from __future__ import annotations

from typing import Any

import pytest

from core import clock
from models.accounts import Verification
from tests.factories import GraphQLClient
from tests.sms_gateway import SmsGateway

BEGIN = """
mutation($input: BeginContractorSignupInput!) {
  beginContractorSignup(input: $input) { verificationId userErrors { code message } }
}
"""
VERIFY = """
mutation($input: VerifySignupCodeInput!) { verifySignupCode(input: $input) { ok } }
"""
EMAIL = "casey@example.com"
MISTYPED, CORRECTED = "+15135550111", "+15135550100"


@pytest.fixture
def settings_overrides(sms: SmsGateway) -> dict[str, Any]:
    return {"sms_backend": "http", "sms_http_url": sms.url}


async def begin(gql: GraphQLClient, phone: str) -> dict[str, Any]:
    variables = {"input": {"email": EMAIL, "phone": phone}}
    payload: dict[str, Any] = (await gql(BEGIN, variables))["beginContractorSignup"]
    return payload


async def test_a_corrected_number_gets_its_code_at_once_and_each_number_waits_a_minute(
    gql: GraphQLClient, sms: SmsGateway
) -> None:
    # given a signup begun with a mistyped number
    mistyped = await begin(gql, MISTYPED)
    await sms.wait_for(MISTYPED)
    # when the person corrects it within the minute
    corrected = await begin(gql, "(513) 555-0100")
    [text] = await sms.wait_for(CORRECTED)
    # then the corrected number got its code, and that code works
    assert mistyped["userErrors"] == corrected["userErrors"] == []
    verified = await gql(
        VERIFY, {"input": {"verificationId": corrected["verificationId"], "code": text.code}}
    )
    assert verified["verifySignupCode"]["ok"] is True
    # ... while asking again within the minute, for either number, sends nothing
    sent = await Verification.all().count()
    for phone in (CORRECTED, MISTYPED):
        again = await begin(gql, phone)
        assert [error["code"] for error in again["userErrors"]] == ["TOO_MANY_ATTEMPTS"]
        assert "wait a minute" in again["userErrors"][0]["message"]
    assert await Verification.all().count() == sent
    assert (len(sms.to(MISTYPED)), len(sms.to(CORRECTED))) == (1, 1)
    # a minute later the number may have another code
    clock.travel(61)
    assert (await begin(gql, MISTYPED))["userErrors"] == []
    await sms.wait_for(MISTYPED, 2)
