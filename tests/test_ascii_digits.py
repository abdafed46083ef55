"""Digits are 0-9: a PIN, a Key ID, a password's digit and a phone number in another
script's digits (which the app's keypad cannot type back) are refused or not taken as one."""

from __future__ import annotations

import pytest

from core.errors import DomainError
from core.security import check_password_policy, check_pin_format
from models.accounts import Account
from resolvers.auth import KEY_ID
from tests.factories import GraphQLClient, make_agent
from tests.rows import table_counts
from tests.test_signup import begin

ARABIC_INDIC = "١٢٣٤"  # 1234 in Arabic-Indic digits: str.isdigit() and \d take them
SET_PIN = """
mutation($pw: String!, $pin: String!) { setPin(input: {password: $pw, newPin: $pin}) { ok userErrors { code field } } }
"""


async def test_a_pin_in_other_digits_is_refused(gql: GraphQLClient) -> None:
    # given an agent choosing its PIN
    agent = await make_agent(pin=None)
    token = await gql.sign_in(agent.email or "")
    # when it is typed in Arabic-Indic digits
    data = await gql(SET_PIN, {"pw": "Secret123", "pin": ARABIC_INDIC}, token=token)
    # then
    assert data["setPin"] == {
        "ok": False,
        "userErrors": [{"code": "INVALID_INPUT", "field": ["input", "newPin"]}],
    }
    assert (await Account.get(id=agent.id)).pin_hash is None


@pytest.mark.parametrize("phone", ["٥١٣٥٥٥٠١٠٠", "(٥١٣) ٥٥٥-٠١٠٠", "+١٥١٣٥٥٥٠١٠٠"])
async def test_a_phone_number_in_other_digits_is_refused(gql: GraphQLClient, phone: str) -> None:
    # given
    before = await table_counts()
    # when
    started = await begin(gql, "casey@example.com", phone)
    # then
    assert [e["code"] for e in started["userErrors"]] == ["INVALID_INPUT"]
    assert await table_counts() == before


def test_a_password_needs_an_ascii_digit() -> None:
    with pytest.raises(DomainError) as refused:
        check_password_policy("Secret" + ARABIC_INDIC[0])
    assert refused.value.code == "WEAK_PASSWORD"
    check_password_policy("Secret1")


def test_pin_and_key_id_patterns_take_ascii_digits_only() -> None:
    with pytest.raises(DomainError):
        check_pin_format(ARABIC_INDIC)
    check_pin_format("1234")
    assert KEY_ID.fullmatch("١٢٣٤٥٦٧٨٩") is None
    assert KEY_ID.fullmatch("123456789") is not None
