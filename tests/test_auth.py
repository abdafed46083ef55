"""Agents signing in: email or Key ID, devices, lockout, password reset over real SMTP."""

from __future__ import annotations

import asyncio
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ble.b64 import b64url_encode
from ble.jwks import raw_public_key
from core import clock
from models.accounts import Account, AccountEvent, Device, PasswordReset
from models.enums import AccountEventKind
from tests.factories import SIGN_IN, GraphQLClient, make_agent
from tests.smtp import SmtpServer, text_body

ME = "{ me { id firstName ... on Agent { keyId devices { id name current } } } }"
REQUEST_RESET = """
mutation($login: String!) { requestPasswordReset(input: {login: $login}) { ok userErrors { code } } }
"""
RESET = """
mutation($token: String!, $pw: String!) {
  resetPassword(input: {token: $token, newPassword: $pw}) { ok userErrors { code field message } }
}
"""
REMOVE_DEVICE = """
mutation($id: ID!) { removeDevice(input: {deviceId: $id}) { ok userErrors { code } } }
"""


def sign_in_vars(login: str, password: str = "Secret123", device: str = "d1") -> dict[str, object]:
    return {
        "input": {"login": login, "password": password, "deviceId": device, "deviceName": "Phone"}
    }


async def test_sign_in_by_email_and_by_key_id(gql: GraphQLClient) -> None:
    # given
    agent = await make_agent(email="Alice@Example.com")
    # when
    by_email = await gql.sign_in("alice@example.com")
    by_key_id = await gql.sign_in(agent.key_id or "")
    # then
    for token in (by_email, by_key_id):
        me = (await gql(ME, token=token))["me"]
        assert me["keyId"] == agent.key_id
        assert me["firstName"] == "Alice"


async def test_no_token_is_unauthenticated_and_me_is_null(gql: GraphQLClient) -> None:
    body = await gql.raw("{ me { id } }")
    assert body["data"]["me"] is None
    body = await gql.raw(
        'mutation { setPin(input: {password: "x", newPin: "1234"}) { ok } }', token="bogus"
    )
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_wrong_password_then_lockout_after_five(gql: GraphQLClient) -> None:
    agent = await make_agent()
    codes = []
    for _ in range(5):
        data = await gql(SIGN_IN, sign_in_vars(agent.email or "", "Wrong123"))
        codes.append(data["signIn"]["userErrors"][0]["code"])
    assert codes == ["INVALID_CREDENTIALS"] * 5
    # The right password is refused while locked ...
    data = await gql(SIGN_IN, sign_in_vars(agent.email or ""))
    assert data["signIn"]["userErrors"][0]["code"] == "ACCOUNT_LOCKED"
    assert data["signIn"]["token"] is None
    # ... and accepted once the 15 minutes have passed.
    clock.travel(15 * 60 + 1)
    data = await gql(SIGN_IN, sign_in_vars(agent.email or ""))
    assert data["signIn"]["userErrors"] == []
    kinds = await AccountEvent.filter(account_id=agent.id).values_list("kind", flat=True)
    assert kinds.count(AccountEventKind.SIGN_IN_FAILED.value) == 5
    assert AccountEventKind.ACCOUNT_LOCKED.value in kinds


async def test_unknown_login_answers_like_a_wrong_password(gql: GraphQLClient) -> None:
    data = await gql(SIGN_IN, sign_in_vars("nobody@example.com"))
    assert data["signIn"]["userErrors"][0]["code"] == "INVALID_CREDENTIALS"
    # longer than any email column holds: the same answer, not an error
    data = await gql(SIGN_IN, sign_in_vars("n" * 300 + "@example.com"))
    assert data["signIn"]["userErrors"][0]["code"] == "INVALID_CREDENTIALS"


@pytest.mark.parametrize("settings_overrides", [{"device_limit": 3}])
async def test_device_limit_then_removal(gql: GraphQLClient) -> None:
    agent = await make_agent()
    tokens = [await gql.sign_in(agent.email or "", device_id=f"d{i}") for i in range(3)]
    data = await gql(SIGN_IN, sign_in_vars(agent.email or "", device="d4"))
    assert data["signIn"]["userErrors"][0]["code"] == "DEVICE_LIMIT_REACHED"
    # A device already registered still signs in.
    await gql.sign_in(agent.email or "", device_id="d1")
    devices = (await gql(ME, token=tokens[0]))["me"]["devices"]
    assert len(devices) == 3
    removable = next(d for d in devices if not d["current"])
    removed = await gql(REMOVE_DEVICE, {"id": removable["id"]}, token=tokens[0])
    assert removed["removeDevice"] == {"ok": True, "userErrors": []}
    await gql.sign_in(agent.email or "", device_id="d4")


async def test_remove_device_of_another_account_is_not_found(gql: GraphQLClient) -> None:
    alice, bob = await make_agent(), await make_agent()
    alice_token = await gql.sign_in(alice.email or "")
    bob_token = await gql.sign_in(bob.email or "")
    bob_device = (await gql(ME, token=bob_token))["me"]["devices"][0]["id"]
    data = await gql(REMOVE_DEVICE, {"id": bob_device}, token=alice_token)
    assert data["removeDevice"]["userErrors"][0]["code"] == "NOT_FOUND"
    assert len((await gql(ME, token=bob_token))["me"]["devices"]) == 1


async def test_password_reset_by_email_link_works_once(
    gql: GraphQLClient, smtp: SmtpServer
) -> None:
    # given an imported agent who never set a password
    agent = await make_agent(password=None)
    # when
    data = await gql(REQUEST_RESET, {"login": agent.key_id})
    assert data["requestPasswordReset"] == {"ok": True, "userErrors": []}
    [mail] = await smtp.wait_for(1)
    # then
    assert mail["To"] == agent.email
    body = text_body(mail)
    match = re.search(r"reset-password\?token=([\w-]+)", body)
    assert match, body
    token = match.group(1)
    first = await gql(RESET, {"token": token, "pw": "NewPass1"})
    assert first["resetPassword"] == {"ok": True, "userErrors": []}
    second = await gql(RESET, {"token": token, "pw": "Other1234"})
    assert second["resetPassword"]["userErrors"][0]["code"] == "INVALID_TOKEN"
    await gql.sign_in(agent.key_id or "", password="NewPass1")


async def test_reset_answer_is_the_same_for_unknown_login(
    gql: GraphQLClient, smtp: SmtpServer
) -> None:
    data = await gql(REQUEST_RESET, {"login": "ghost@example.com"})
    assert data["requestPasswordReset"] == {"ok": True, "userErrors": []}
    await asyncio.sleep(0.3)
    assert smtp.inbox == []


async def test_reset_link_expires_after_an_hour(gql: GraphQLClient, smtp: SmtpServer) -> None:
    agent = await make_agent()
    await gql(REQUEST_RESET, {"login": agent.email})
    [mail] = await smtp.wait_for(1)
    token = re.search(r"token=([\w-]+)", text_body(mail)).group(1)  # type: ignore[union-attr]
    clock.travel(3601)
    data = await gql(RESET, {"token": token, "pw": "NewPass1"})
    assert data["resetPassword"]["userErrors"][0]["code"] == "INVALID_TOKEN"


async def test_weak_password_refused_and_token_kept(gql: GraphQLClient, smtp: SmtpServer) -> None:
    agent = await make_agent()
    await gql(REQUEST_RESET, {"login": agent.email})
    [mail] = await smtp.wait_for(1)
    token = re.search(r"token=([\w-]+)", text_body(mail)).group(1)  # type: ignore[union-attr]
    data = await gql(RESET, {"token": token, "pw": "short"})
    assert data["resetPassword"]["userErrors"][0]["code"] == "WEAK_PASSWORD"
    assert await PasswordReset.filter(used_at__isnull=True).count() == 1


SET_PIN = """
mutation($pw: String!, $pin: String!) { setPin(input: {password: $pw, newPin: $pin}) { ok userErrors { code field } } }
"""


async def test_set_pin_needs_the_password(gql: GraphQLClient) -> None:
    agent = await make_agent(pin=None)
    token = await gql.sign_in(agent.email or "")
    wrong = await gql(SET_PIN, {"pw": "Nope1234", "pin": "4321"}, token=token)
    assert wrong["setPin"]["userErrors"][0]["code"] == "INVALID_CREDENTIALS"
    bad = await gql(SET_PIN, {"pw": "Secret123", "pin": "12a4"}, token=token)
    assert bad["setPin"]["userErrors"][0]["code"] == "INVALID_INPUT"
    assert (await Account.get(id=agent.id)).pin_hash is None
    ok = await gql(SET_PIN, {"pw": "Secret123", "pin": "4321"}, token=token)
    assert ok["setPin"] == {"ok": True, "userErrors": []}
    assert (await Account.get(id=agent.id)).pin_hash is not None


LINKED = "{ me { ... on Agent { keyId linkedAccounts { keyId association status } } } }"


async def test_linked_accounts_share_an_email(gql: GraphQLClient) -> None:
    first = await make_agent(email="pat@example.com", association="North MLS")
    second = await make_agent(email="pat@example.com", association="South MLS")
    token = await gql.sign_in(first.key_id or "")
    me = (await gql(LINKED, token=token))["me"]
    assert me["linkedAccounts"] == [
        {"keyId": second.key_id, "association": "South MLS", "status": "ACTIVE"}
    ]


async def test_healthz(http: object) -> None:
    response = await http.get("/healthz")  # type: ignore[attr-defined]
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_reset_page_from_the_email_link(
    http: object, gql: GraphQLClient, smtp: SmtpServer
) -> None:
    # given an emailed link
    agent = await make_agent()
    await gql(REQUEST_RESET, {"login": agent.email})
    [mail] = await smtp.wait_for(1)
    link = re.search(r"(http://keybin.test/reset-password\?token=[\w-]+)", text_body(mail))
    assert link
    # when the agent opens it and submits a new password
    page = await http.get(link.group(1))  # type: ignore[attr-defined]
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["content-security-policy"]
    token = link.group(1).split("token=")[1]
    form = {"token": token, "password": "Fresh123", "confirm": "Fresh123"}
    done = await http.post("/reset-password", data=form)  # type: ignore[attr-defined]
    # then
    assert done.status_code == 200
    assert "Your password is changed" in done.text
    again = await http.post("/reset-password", data=form)  # type: ignore[attr-defined]
    assert again.status_code == 400
    await gql.sign_in(agent.email or "", password="Fresh123")


async def test_a_second_reset_request_within_a_minute_sends_nothing_while_the_link_is_unused(
    gql: GraphQLClient, smtp: SmtpServer
) -> None:
    # given a reset link mailed and not used
    agent = await make_agent()
    await gql(REQUEST_RESET, {"login": agent.email})
    await smtp.wait_for(1)
    # when asked again at once
    data = await gql(REQUEST_RESET, {"login": agent.email})
    # then the answer is the same, and no second mail goes out
    assert data["requestPasswordReset"] == {"ok": True, "userErrors": []}
    await asyncio.sleep(0.3)
    assert len(smtp.inbox) == 1
    assert await PasswordReset.filter(account_id=agent.id).count() == 1


async def test_a_reset_asked_for_again_after_the_link_was_used_is_mailed_at_once(
    gql: GraphQLClient, smtp: SmtpServer
) -> None:
    # given a reset link mailed and used
    agent = await make_agent()
    await gql(REQUEST_RESET, {"login": agent.email})
    [first] = await smtp.wait_for(1)
    token = re.search(r"token=([\w-]+)", text_body(first)).group(1)  # type: ignore[union-attr]
    assert (await gql(RESET, {"token": token, "pw": "NewPass1"}))["resetPassword"]["ok"] is True
    # when asked again within the minute
    await gql(REQUEST_RESET, {"login": agent.email})
    # then a new link arrives, and it works
    _, second = await smtp.wait_for(2)
    fresh = re.search(r"token=([\w-]+)", text_body(second)).group(1)  # type: ignore[union-attr]
    assert fresh != token
    assert (await gql(RESET, {"token": fresh, "pw": "Newer123"}))["resetPassword"]["ok"] is True
    await gql.sign_in(agent.email or "", password="Newer123")


@pytest.mark.parametrize(
    "key",
    [
        "A" * 100,  # longer than any key
        "not base64 !!",
        "AAAA",  # base64url, but 3 bytes
        "A" * 43 + "=",  # padded
    ],
)
async def test_a_device_key_that_is_no_ed25519_key_is_refused(gql: GraphQLClient, key: str) -> None:
    # given
    agent = await make_agent()
    variables = sign_in_vars(agent.email or "")
    variables["input"]["devicePublicKey"] = key  # type: ignore[index]
    # when
    data = await gql(SIGN_IN, variables)
    # then the app is told which field is wrong, and nothing was written or counted
    assert data["signIn"]["token"] is None
    [error] = data["signIn"]["userErrors"]
    assert (error["code"], error["field"]) == ("INVALID_INPUT", ["input", "devicePublicKey"])
    assert await Device.filter(account_id=agent.id).count() == 0
    assert (await Account.get(id=agent.id)).failed_logins == 0


async def test_a_device_key_is_kept_as_credentials_carry_it(gql: GraphQLClient) -> None:
    # given a raw Ed25519 public key, base64url without padding
    agent = await make_agent()
    key = b64url_encode(raw_public_key(Ed25519PrivateKey.generate().public_key()))
    # when
    await gql.sign_in(agent.email or "", devicePublicKey=key)
    # then
    [device] = await Device.filter(account_id=agent.id)
    assert device.public_key == key
