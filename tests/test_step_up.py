"""Confirming grants and One Day Codes with the device's key (Face ID, fingerprint) instead of
the PIN: the one-time challenge, what it is bound to, and the lockout it shares with the PIN."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ble.b64 import b64url_encode
from ble.jwks import raw_public_key
from core import clock
from core.ids import to_global_id
from models.accounts import Account, AccountEvent, StepUpChallenge, StepUpKey
from models.grants import Grant, OneDayCodeIssue
from tests.factories import GraphQLClient, make_agent, make_contractor, make_listing, make_lockbox
from tests.rows import table_counts

ENABLE = """
mutation($pin: String!) {
  enableStepUp(input: {pin: $pin}) { ok userErrors { code field message } }
}
"""
BEGIN = """
mutation($operation: StepUpOperation!) {
  beginStepUp(input: {operation: $operation}) {
    challenge { challengeId nonce operation expiresAt signingInput }
    userErrors { code field message }
  }
}
"""
GRANT_ACCESS = """
mutation($input: GrantAccessInput!) {
  grantAccess(input: $input) {
    grant { id granteeEmail status }
    userErrors { code field message }
  }
}
"""
GENERATE = """
mutation($input: GenerateOneDayCodeInput!) {
  generateOneDayCode(input: $input) {
    oneDayCode { code validOn }
    userErrors { code field message }
  }
}
"""
DELETE_ME = """
mutation($password: String!) { deleteMyAccount(input: {password: $password}) { ok } }
"""
GRANTEE = "carl@example.com"


@dataclass
class Phone:
    """An app installation: its session and the key Face ID or a fingerprint unlocks."""

    gql: GraphQLClient
    token: str
    key: Ed25519PrivateKey

    async def enable(self, pin: str = "1234") -> dict[str, Any]:
        payload: dict[str, Any] = (await self.gql(ENABLE, {"pin": pin}, token=self.token))[
            "enableStepUp"
        ]
        return payload

    async def begin(self, operation: str = "GRANT_ACCESS") -> dict[str, Any]:
        payload = (await self.gql(BEGIN, {"operation": operation}, token=self.token))["beginStepUp"]
        assert payload["userErrors"] == [], payload["userErrors"]
        challenge: dict[str, Any] = payload["challenge"]
        return challenge

    def sign(self, challenge: dict[str, Any], text: str | None = None) -> dict[str, str]:
        signed = (text or challenge["signingInput"]).encode()
        return {
            "challengeId": challenge["challengeId"],
            "signature": b64url_encode(self.key.sign(signed)),
        }

    async def step_up(self, operation: str = "GRANT_ACCESS") -> dict[str, str]:
        return self.sign(await self.begin(operation))


async def phone_of(
    gql: GraphQLClient, account: Account, device_id: str = "phone", enable: bool = True
) -> Phone:
    key = Ed25519PrivateKey.generate()
    public_key = b64url_encode(raw_public_key(key.public_key()))
    token = await gql.sign_in(account.email or "", device_id=device_id, devicePublicKey=public_key)
    phone = Phone(gql, token, key)
    if enable:
        assert (await phone.enable())["ok"] is True
    return phone


@dataclass
class Office:
    agent: Account
    listing_id: str
    lockbox_id: str
    phone: Phone

    async def grant(self, confirm: dict[str, Any], token: str | None = None) -> dict[str, Any]:
        starts = clock.now() + timedelta(hours=1)
        variables = {
            "input": {
                "listingId": self.listing_id,
                "granteeEmail": GRANTEE,
                "startsAt": starts.isoformat(),
                "endsAt": (starts + timedelta(hours=2)).isoformat(),
                **confirm,
            }
        }
        data = await self.phone.gql(GRANT_ACCESS, variables, token=token or self.phone.token)
        payload: dict[str, Any] = data["grantAccess"]
        return payload

    async def one_day_code(self, confirm: dict[str, Any]) -> dict[str, Any]:
        day = clock.now().date() + timedelta(days=1)
        variables = {"input": {"lockboxId": self.lockbox_id, "date": day.isoformat(), **confirm}}
        data = await self.phone.gql(GENERATE, variables, token=self.phone.token)
        payload: dict[str, Any] = data["generateOneDayCode"]
        return payload


async def office(gql: GraphQLClient) -> Office:
    """An agent with a BLE lockbox on a listing, signed in on a phone that confirms by key."""
    agent = await make_agent()
    listing = await make_listing(agent)
    lockbox = await make_lockbox(agent, listing=listing)
    await make_contractor(email=GRANTEE)
    return Office(
        agent,
        to_global_id("Listing", listing.id),
        to_global_id("Lockbox", lockbox.id),
        await phone_of(gql, agent),
    )


def codes(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def failed_pins(account: Account) -> int:
    return (await Account.get(id=account.id)).failed_pins


async def test_agent_grants_access_confirming_with_the_device(gql: GraphQLClient) -> None:
    # given an agent whose phone confirms by key
    s = await office(gql)
    # when the app asks for a challenge, signs it after Face ID, and grants without a PIN
    challenge = await s.phone.begin("GRANT_ACCESS")
    payload = await s.grant({"stepUp": s.phone.sign(challenge)})
    # then the grant is made
    assert payload["userErrors"] == []
    assert payload["grant"]["granteeEmail"] == GRANTEE
    assert await Grant.filter(granted_by_id=s.agent.id).count() == 1
    # and the text signed is the documented one, which an app can build itself
    assert challenge["operation"] == "GRANT_ACCESS"
    assert challenge["signingInput"] == (
        f"keybin-step-up:{challenge['challengeId']}:{challenge['nonce']}:grantAccess"
    )
    assert len(challenge["nonce"]) == 43  # 32 bytes, base64url without padding
    expires = clock.now() + timedelta(minutes=2)
    assert abs((expires - datetime.fromisoformat(challenge["expiresAt"])).total_seconds()) < 5


async def test_one_day_code_confirmed_with_the_device(gql: GraphQLClient) -> None:
    # given
    s = await office(gql)
    # when the app sends an empty PIN beside the signature, as a form with the field may
    payload = await s.one_day_code(
        {"pin": "", "stepUp": await s.phone.step_up("GENERATE_ONE_DAY_CODE")}
    )
    # then
    assert payload["userErrors"] == []
    assert len(payload["oneDayCode"]["code"]) == 8
    assert await OneDayCodeIssue.filter(agent_id=s.agent.id).count() == 1


REFUSED_SIGNATURES = [
    "signed by another key",
    "signature over another challenge",
    "challenge for another operation",
    "signature naming another operation",
    "challenge of another device",
    "challenge of another account",
    "expired challenge",
    "replayed challenge",
    "signature not base64url",
    "unknown challenge",
]


async def _refused_step_up(case: str, gql: GraphQLClient, s: Office) -> dict[str, str]:
    match case:
        case "signed by another key":
            challenge = await s.phone.begin()
            return Phone(gql, s.phone.token, Ed25519PrivateKey.generate()).sign(challenge)
        case "signature over another challenge":
            first, second = await s.phone.begin(), await s.phone.begin()
            return {**s.phone.sign(first), "challengeId": second["challengeId"]}
        case "challenge for another operation":
            # signed as if it had been asked for a grant: the challenge itself says otherwise
            challenge = await s.phone.begin("GENERATE_ONE_DAY_CODE")
            text = challenge["signingInput"].replace(":generateOneDayCode", ":grantAccess")
            return s.phone.sign(challenge, text)
        case "signature naming another operation":
            challenge = await s.phone.begin()
            text = challenge["signingInput"].replace(":grantAccess", ":generateOneDayCode")
            return s.phone.sign(challenge, text)
        case "challenge of another device":
            # the agent's tablet asked for it; the phone signs and sends it
            return s.phone.sign(await (await phone_of(gql, s.agent, device_id="tablet")).begin())
        case "challenge of another account":
            return s.phone.sign(await (await phone_of(gql, await make_agent())).begin())
        case "expired challenge":
            signed = await s.phone.step_up()
            clock.travel(2 * 60 + 1)
            return signed
        case "replayed challenge":
            signed = await s.phone.step_up()
            assert (await s.grant({"stepUp": signed}))["userErrors"] == []
            return signed
        case "signature not base64url":
            return {**await s.phone.step_up(), "signature": "not base64url!"}
        case "unknown challenge":
            return {**await s.phone.step_up(), "challengeId": str(uuid.uuid4())}
    raise AssertionError(case)


@pytest.mark.parametrize("case", REFUSED_SIGNATURES)
async def test_refused_signature_changes_nothing_and_counts_as_a_wrong_pin(
    gql: GraphQLClient, case: str
) -> None:
    # given
    s = await office(gql)
    step_up = await _refused_step_up(case, gql, s)
    grants = await Grant.all().count()
    before = await table_counts()
    # when
    payload = await s.grant({"stepUp": step_up})
    # then
    assert payload["grant"] is None
    assert codes(payload) == [("INVALID_PIN", ["input", "stepUp"])]
    assert "PIN" not in payload["userErrors"][0]["message"]
    after = await table_counts()
    assert after.pop("account_event") == before.pop("account_event") + 1  # the miss, logged
    assert after == before
    assert await Grant.all().count() == grants
    assert await failed_pins(s.agent) == 1
    event = await AccountEvent.filter(account_id=s.agent.id).order_by("-id").first()
    assert event is not None and event.kind == "PIN_FAILED"


async def test_three_refusals_lock_pin_operations_then_nothing_confirms(
    gql: GraphQLClient,
) -> None:
    # given a challenge the phone already holds
    s = await office(gql)
    held = await s.phone.step_up()
    stranger = Phone(gql, s.phone.token, Ed25519PrivateKey.generate())
    # when a wrong signature, a wrong PIN and a wrong signature follow one another
    answers = [
        await s.grant({"stepUp": stranger.sign(await s.phone.begin())}),
        await s.grant({"pin": "0000"}),
        await s.grant({"stepUp": stranger.sign(await s.phone.begin())}),
    ]
    # then the third locks PIN operations, whichever way they are confirmed
    assert [codes(a)[0][0] for a in answers] == ["INVALID_PIN", "INVALID_PIN", "TOO_MANY_ATTEMPTS"]
    before = await table_counts()
    assert codes(await s.grant({"stepUp": held})) == [("TOO_MANY_ATTEMPTS", ["input", "stepUp"])]
    assert codes(await s.grant({"pin": "1234"})) == [("TOO_MANY_ATTEMPTS", ["input", "pin"])]
    assert codes(await s.one_day_code({"pin": "1234"}))[0][0] == "TOO_MANY_ATTEMPTS"
    begun = await gql(BEGIN, {"operation": "GRANT_ACCESS"}, token=s.phone.token)
    assert begun["beginStepUp"]["challenge"] is None
    assert codes(begun["beginStepUp"])[0][0] == "TOO_MANY_ATTEMPTS"
    assert await table_counts() == before
    assert await Grant.all().count() == 0
    # and fifteen minutes later the device confirms again
    clock.travel(15 * 60 + 1)
    assert (await s.grant({"stepUp": await s.phone.step_up()}))["userErrors"] == []


async def test_a_confirmation_is_needed_and_only_one(gql: GraphQLClient) -> None:
    # given
    s = await office(gql)
    signed = await s.phone.step_up()
    before = await table_counts()
    # when neither a PIN nor a signature is given, or both
    neither = await s.grant({})
    empty = await s.one_day_code({"pin": ""})
    both = await s.grant({"pin": "1234", "stepUp": signed})
    # then the app is told what to send, and nothing counts as a wrong PIN
    assert codes(neither) == [("INVALID_INPUT", ["input", "pin"])]
    assert "PIN" in neither["userErrors"][0]["message"]
    assert "Face ID" in neither["userErrors"][0]["message"]
    assert codes(empty) == [("INVALID_INPUT", ["input", "pin"])]
    assert codes(both) == [("INVALID_INPUT", ["input", "stepUp"])]
    assert await table_counts() == before
    assert await failed_pins(s.agent) == 0
    # and the challenge was not spent by the refusal
    assert (await s.grant({"stepUp": signed}))["userErrors"] == []


async def test_confirming_by_device_is_turned_on_with_the_pin(gql: GraphQLClient) -> None:
    # given an agent signed in with a key, and one signed in without
    agent = await make_agent()
    phone = await phone_of(gql, agent, enable=False)
    keyless = await gql.sign_in(agent.email or "", device_id="old-phone")
    # when / then: no challenge before it is turned on
    begun = (await gql(BEGIN, {"operation": "GRANT_ACCESS"}, token=phone.token))["beginStepUp"]
    assert codes(begun) == [("DEVICE_NOT_REGISTERED", None)]
    assert "PIN" in begun["userErrors"][0]["message"]
    # a wrong PIN does not turn it on, and counts
    assert codes(await phone.enable("9999")) == [("INVALID_PIN", ["input", "pin"])]
    assert await failed_pins(agent) == 1
    # a device without a key cannot turn it on
    no_key = (await gql(ENABLE, {"pin": "1234"}, token=keyless))["enableStepUp"]
    assert no_key["ok"] is False and codes(no_key) == [("DEVICE_NOT_REGISTERED", None)]
    # the right PIN does, and the account's log says so
    assert await phone.enable() == {"ok": True, "userErrors": []}
    assert await failed_pins(agent) == 0
    kinds = await AccountEvent.filter(account_id=agent.id).values_list("kind", flat=True)
    assert "STEP_UP_ENABLED" in kinds
    assert (await phone.begin())["operation"] == "GRANT_ACCESS"


async def test_the_password_alone_never_confirms(live_gql: GraphQLClient) -> None:
    """Against the real server: someone who learnt the password signs in on their own phone,
    then on the agent's own device id with their key."""
    # given an agent whose phone confirms by key
    s = await office(live_gql)
    # when the intruder signs in on another phone with its own key
    intruder = await phone_of(live_gql, s.agent, device_id="intruder", enable=False)
    begun = await live_gql(BEGIN, {"operation": "GRANT_ACCESS"}, token=intruder.token)
    # then it gets no challenge
    assert codes(begun["beginStepUp"]) == [("DEVICE_NOT_REGISTERED", None)]
    # when it signs in under the agent's own device id with its key, holding a challenge the
    # agent's phone was given
    held = await s.phone.begin()
    intruder = Phone(live_gql, "", Ed25519PrivateKey.generate())
    public_key = b64url_encode(raw_public_key(intruder.key.public_key()))
    intruder.token = await live_gql.sign_in(
        s.agent.email or "", device_id="phone", devicePublicKey=public_key
    )
    # then the device no longer confirms with any key, until the PIN turns it on again
    refused = await s.grant({"stepUp": intruder.sign(held)}, token=intruder.token)
    assert codes(refused) == [("INVALID_PIN", ["input", "stepUp"])]
    begun = await live_gql(BEGIN, {"operation": "GRANT_ACCESS"}, token=intruder.token)
    assert codes(begun["beginStepUp"]) == [("DEVICE_NOT_REGISTERED", None)]
    assert await Grant.all().count() == 0
    assert await failed_pins(s.agent) == 1


async def test_two_concurrent_uses_of_one_challenge_one_wins(live_gql: GraphQLClient) -> None:
    # given a signed challenge, against the real server
    s = await office(live_gql)
    signed = await s.phone.step_up()
    # when it is sent twice at once
    answers = await asyncio.gather(*(s.grant({"stepUp": signed}) for _ in range(2)))
    # then one grant is made and the other use is refused as a replay
    made = [a for a in answers if a["grant"] is not None]
    refused = [codes(a) for a in answers if a["grant"] is None]
    assert len(made) == 1
    assert refused == [[("INVALID_PIN", ["input", "stepUp"])]]
    assert await Grant.all().count() == 1


async def test_deleting_the_account_or_device_removes_its_challenges(gql: GraphQLClient) -> None:
    # given an agent with a challenge on each of two phones
    s = await office(gql)
    other = await make_agent()
    other_phone = await phone_of(gql, other)
    await s.phone.begin()
    await other_phone.begin()
    # when the other agent deletes its account
    assert (await gql(DELETE_ME, {"password": "Secret123"}, token=other_phone.token))[
        "deleteMyAccount"
    ]["ok"]
    # then its challenges and its device key are gone, the first agent's stay
    assert await StepUpChallenge.filter(account_id=other.id).count() == 0
    assert await StepUpKey.filter(device__account_id=other.id).count() == 0
    assert await StepUpChallenge.filter(account_id=s.agent.id).count() == 1
    assert await StepUpKey.filter(device__account_id=s.agent.id).count() == 1
