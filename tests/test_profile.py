"""My account: info, phone change by SMS code, email change, the PIN lock, support's email edit."""

from __future__ import annotations

from typing import Any

import pytest

from core import clock
from core.errors import DomainError
from models.accounts import Account, AccountEvent
from models.enums import AccountEventKind
from resolvers.auth import check_pin
from resolvers.events import Actor
from resolvers.profile import change_email_by_staff
from settings import Settings
from tests.factories import SIGN_IN, GraphQLClient, make_agent, make_contractor, make_staff
from tests.rows import table_counts
from tests.sms_gateway import SmsGateway

ME = """
{ me { id firstName lastName email phone ... on Contractor { role company } messages { totalCount } } }
"""
UPDATE_INFO = """
mutation($input: UpdateMyInfoInput!) {
  updateMyInfo(input: $input) {
    account { firstName lastName ... on Contractor { role company } }
    userErrors { code field message }
  }
}
"""
BEGIN_PHONE = """
mutation($phone: String!) {
  beginPhoneChange(input: {newPhone: $phone}) { verificationId userErrors { code field message } }
}
"""
CONFIRM_PHONE = """
mutation($id: ID!, $code: String!) {
  confirmPhoneChange(input: {verificationId: $id, code: $code}) {
    account { phone }
    userErrors { code field message }
  }
}
"""
UPDATE_EMAIL = """
mutation($email: String!, $password: String!) {
  updateEmail(input: {newEmail: $email, password: $password}) {
    account { email }
    userErrors { code field message }
  }
}
"""
NEW_PHONE = "+1 (937) 555-0199"
NEW_E164 = "+19375550199"


@pytest.fixture
def settings_overrides(sms: SmsGateway) -> dict[str, Any]:
    return {"sms_backend": "http", "sms_http_url": sms.url}


async def event_kinds(account: Account) -> list[str]:
    return list(await AccountEvent.filter(account=account).values_list("kind", flat=True))


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10000:04d}"


async def test_contractor_signs_in_by_email_and_has_a_message_center(gql: GraphQLClient) -> None:
    # given
    contractor = await make_contractor(email="Carl@Example.com", company="Carl Co")
    # when
    token = await gql.sign_in("carl@example.com")
    me = (await gql(ME, token=token))["me"]
    # then
    assert me["email"] == "carl@example.com"
    assert (me["role"], me["company"]) == ("CLEANER", "Carl Co")
    assert me["messages"] == {"totalCount": 0}
    assert me["phone"] == contractor.phone


async def test_update_my_info_changes_the_given_fields(gql: GraphQLClient) -> None:
    # given
    contractor = await make_contractor()
    token = await gql.sign_in(contractor.email or "")
    # when
    data = await gql(
        UPDATE_INFO,
        {"input": {"firstName": " Carla ", "role": "PHOTOGRAPHER", "company": "Shots"}},
        token=token,
    )
    # then
    payload = data["updateMyInfo"]
    assert payload["userErrors"] == []
    assert payload["account"]["firstName"] == "Carla"
    assert payload["account"]["lastName"] == contractor.last_name
    assert (payload["account"]["role"], payload["account"]["company"]) == ("PHOTOGRAPHER", "Shots")
    [entry] = await AccountEvent.filter(
        account=contractor, kind=AccountEventKind.PROFILE_UPDATED.value
    )
    assert "Carla" not in entry.detail
    # an empty company clears it
    data = await gql(UPDATE_INFO, {"input": {"company": ""}}, token=token)
    assert data["updateMyInfo"]["account"]["company"] is None


@pytest.mark.parametrize(
    ("kind", "fields", "field"),
    [
        ("contractor", {"firstName": ""}, "firstName"),
        ("contractor", {"lastName": "x" * 101}, "lastName"),
        ("contractor", {"company": "c" * 201}, "company"),
        ("agent", {"role": "CLEANER"}, "role"),
        ("agent", {"company": "Realty"}, "company"),
    ],
)
async def test_update_my_info_refusals_change_nothing(
    gql: GraphQLClient, kind: str, fields: dict[str, str], field: str
) -> None:
    # given
    account = await (make_agent() if kind == "agent" else make_contractor())
    token = await gql.sign_in(account.email or "")
    before = await table_counts()
    # when
    data = await gql(UPDATE_INFO, {"input": {"firstName": "Changed", **fields}}, token=token)
    # then
    payload = data["updateMyInfo"]
    assert payload["account"] is None
    assert payload["userErrors"][0]["code"] == "INVALID_INPUT"
    assert payload["userErrors"][0]["field"] == ["input", field]
    assert await table_counts() == before
    assert (await Account.get(id=account.id)).first_name == account.first_name


async def test_agent_updates_their_name(gql: GraphQLClient) -> None:
    agent = await make_agent()
    token = await gql.sign_in(agent.email or "")
    data = await gql(UPDATE_INFO, {"input": {"lastName": "Smith"}}, token=token)
    assert data["updateMyInfo"]["account"]["lastName"] == "Smith"


async def test_phone_change_texts_the_new_number_and_needs_its_code(
    gql: GraphQLClient, sms: SmsGateway
) -> None:
    # given
    contractor = await make_contractor()
    token = await gql.sign_in(contractor.email or "")
    # when
    begun = (await gql(BEGIN_PHONE, {"phone": NEW_PHONE}, token=token))["beginPhoneChange"]
    [text] = await sms.wait_for(NEW_E164)
    bad = await gql(CONFIRM_PHONE, {"id": begun["verificationId"], "code": wrong(text.code)}, token)
    unchanged = (await Account.get(id=contractor.id)).phone
    good = await gql(CONFIRM_PHONE, {"id": begun["verificationId"], "code": text.code}, token)
    # then
    assert begun["userErrors"] == []
    assert sms.to(contractor.phone or "") == []
    assert bad["confirmPhoneChange"]["userErrors"][0]["code"] == "INVALID_CODE"
    assert unchanged == contractor.phone
    assert good["confirmPhoneChange"] == {"account": {"phone": NEW_E164}, "userErrors": []}
    assert AccountEventKind.PHONE_CHANGED.value in await event_kinds(contractor)
    details = await AccountEvent.filter(account=contractor).values_list("detail", flat=True)
    assert not any(NEW_E164 in d or "9375550199" in d for d in details)
    # the code is used up
    again = await gql(CONFIRM_PHONE, {"id": begun["verificationId"], "code": text.code}, token)
    assert again["confirmPhoneChange"]["userErrors"][0]["code"] == "CODE_EXPIRED"


async def test_phone_change_code_limits(gql: GraphQLClient, sms: SmsGateway) -> None:
    # given
    contractor = await make_contractor()
    token = await gql.sign_in(contractor.email or "")
    begun = (await gql(BEGIN_PHONE, {"phone": NEW_PHONE}, token=token))["beginPhoneChange"]
    [text] = await sms.wait_for(NEW_E164)
    # when: five wrong codes, then the right one
    codes = []
    for _ in range(5):
        data = await gql(
            CONFIRM_PHONE, {"id": begun["verificationId"], "code": wrong(text.code)}, token
        )
        codes.append(data["confirmPhoneChange"]["userErrors"][0]["code"])
    last = await gql(CONFIRM_PHONE, {"id": begun["verificationId"], "code": text.code}, token)
    # then
    assert codes == ["INVALID_CODE"] * 5
    assert last["confirmPhoneChange"]["userErrors"][0]["code"] == "TOO_MANY_ATTEMPTS"
    assert (await Account.get(id=contractor.id)).phone == contractor.phone
    # a resend too soon is refused; later a fresh code works until it expires
    soon = (await gql(BEGIN_PHONE, {"phone": NEW_PHONE}, token=token))["beginPhoneChange"]
    assert soon["userErrors"][0]["code"] == "TOO_MANY_ATTEMPTS"
    clock.travel(61)
    renewed = (await gql(BEGIN_PHONE, {"phone": NEW_PHONE}, token=token))["beginPhoneChange"]
    [_, fresh] = await sms.wait_for(NEW_E164, 2)
    clock.travel(10 * 60 + 1)
    late = await gql(CONFIRM_PHONE, {"id": renewed["verificationId"], "code": fresh.code}, token)
    assert late["confirmPhoneChange"]["userErrors"][0]["code"] == "CODE_EXPIRED"


async def test_phone_change_refusals(gql: GraphQLClient, sms: SmsGateway) -> None:
    # given
    alice, bob = await make_contractor(), await make_contractor()
    alice_token = await gql.sign_in(alice.email or "")
    bob_token = await gql.sign_in(bob.email or "")
    before = await table_counts()
    # when
    garbage = await gql(BEGIN_PHONE, {"phone": "12"}, token=alice_token)
    same = await gql(BEGIN_PHONE, {"phone": alice.phone}, token=alice_token)
    # then
    for data in (garbage, same):
        assert data["beginPhoneChange"]["userErrors"][0]["code"] == "INVALID_INPUT"
        assert data["beginPhoneChange"]["userErrors"][0]["field"] == ["input", "newPhone"]
    assert await table_counts() == before
    # Bob cannot confirm Alice's change, even with her code
    begun = await gql(BEGIN_PHONE, {"phone": NEW_PHONE}, token=alice_token)
    [text] = await sms.wait_for(NEW_E164)
    verification_id = begun["beginPhoneChange"]["verificationId"]
    stolen = await gql(CONFIRM_PHONE, {"id": verification_id, "code": text.code}, bob_token)
    assert stolen["confirmPhoneChange"]["userErrors"][0]["code"] == "NOT_FOUND"
    assert (await Account.get(id=bob.id)).phone == bob.phone


async def test_update_email_needs_the_password(gql: GraphQLClient) -> None:
    # given
    contractor = await make_contractor()
    token = await gql.sign_in(contractor.email or "")
    before = await table_counts()
    # when
    refused = await gql(UPDATE_EMAIL, {"email": "new@example.com", "password": "Wrong123"}, token)
    # then
    assert refused["updateEmail"]["userErrors"][0]["code"] == "INVALID_CREDENTIALS"
    assert (await Account.get(id=contractor.id)).email == contractor.email
    after = await table_counts()
    assert after["account_event"] == before["account_event"] + 1  # the failed sign-in is logged
    # when
    done = await gql(UPDATE_EMAIL, {"email": " New@Example.com", "password": "Secret123"}, token)
    # then
    assert done["updateEmail"] == {"account": {"email": "new@example.com"}, "userErrors": []}
    assert AccountEventKind.EMAIL_CHANGED.value in await event_kinds(contractor)
    await gql.sign_in("new@example.com", device_id="device-2")
    old = await gql(
        SIGN_IN,
        {
            "input": {
                "login": contractor.email,
                "password": "Secret123",
                "deviceId": "d",
                "deviceName": "Phone",
            }
        },
    )
    assert old["signIn"]["userErrors"][0]["code"] == "INVALID_CREDENTIALS"


@pytest.mark.parametrize(
    ("caller", "target", "code"),
    [
        ("contractor", "agent", "EMAIL_BELONGS_TO_AGENT"),
        ("contractor", "contractor", "EMAIL_TAKEN"),
        ("agent", "contractor", "EMAIL_TAKEN"),
        ("contractor", "invalid", "INVALID_INPUT"),
    ],
)
async def test_update_email_collisions_change_nothing(
    gql: GraphQLClient, caller: str, target: str, code: str
) -> None:
    # given
    account = await (make_agent() if caller == "agent" else make_contractor())
    other = await (make_agent() if target == "agent" else make_contractor())
    email = "not an email" if target == "invalid" else (other.email or "").upper()
    token = await gql.sign_in(account.email or "")
    before = await table_counts()
    # when
    data = await gql(UPDATE_EMAIL, {"email": email, "password": "Secret123"}, token)
    # then
    assert data["updateEmail"]["account"] is None
    assert data["updateEmail"]["userErrors"][0]["code"] == code
    assert data["updateEmail"]["userErrors"][0]["field"] == ["input", "newEmail"]
    assert await table_counts() == before


async def test_agent_may_share_an_email_with_their_other_agent_account(gql: GraphQLClient) -> None:
    agent, other_agent = await make_agent(), await make_agent()
    token = await gql.sign_in(agent.email or "")
    data = await gql(UPDATE_EMAIL, {"email": other_agent.email, "password": "Secret123"}, token)
    assert data["updateEmail"]["userErrors"] == []


async def test_support_changes_an_email_with_the_same_rules(
    gql: GraphQLClient, app_settings: Settings
) -> None:
    # given
    contractor = await make_contractor()
    agent = await make_agent()
    member = (await make_staff(name="Sam Support")).staff
    staff = Actor(staff_id=member.id, staff_name="Sam Support")
    # when
    await change_email_by_staff(app_settings, contractor.id, "Fixed@Example.com", staff)
    with pytest.raises(DomainError) as refused:
        await change_email_by_staff(app_settings, contractor.id, agent.email or "", staff)
    with pytest.raises(DomainError) as missing:
        await change_email_by_staff(app_settings, 999_999, "x@example.com", staff)
    # then
    changed = await Account.get(id=contractor.id)
    assert changed.email == "fixed@example.com"
    assert changed.email_verified is False  # support's word is not a proof of the mailbox
    assert refused.value.code == "EMAIL_BELONGS_TO_AGENT"
    assert missing.value.code == "NOT_FOUND"
    [entry] = await AccountEvent.filter(
        account=contractor, kind=AccountEventKind.EMAIL_CHANGED.value
    )
    assert (entry.staff_id, entry.staff_name) == (member.id, "Sam Support")
    assert "fixed@example.com" not in entry.detail


async def test_three_wrong_pins_lock_pin_use_for_fifteen_minutes(orm: None) -> None:
    # given
    contractor = await make_contractor(pin="2468")
    # when
    codes = []
    for _ in range(3):
        with pytest.raises(DomainError) as wrong_pin:
            await check_pin(contractor, "0000")
        codes.append(wrong_pin.value.code)
    with pytest.raises(DomainError) as locked:
        await check_pin(contractor, "2468")
    # then
    assert codes == ["INVALID_PIN", "INVALID_PIN", "TOO_MANY_ATTEMPTS"]
    assert locked.value.code == "TOO_MANY_ATTEMPTS"
    assert AccountEventKind.PIN_LOCKED.value in await event_kinds(contractor)
    clock.travel(15 * 60 + 1)
    await check_pin(contractor, "2468")
