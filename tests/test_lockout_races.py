"""Password and PIN lockouts hold against answers sent all at once: at most five passwords (or
three PINs) are checked per lock, however many arrive together, on the real server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ble.b64 import b64url_encode
from ble.jwks import raw_public_key
from core.security import verify_secret_async
from models.accounts import Account, AccountEvent
from models.enums import AccountEventKind
from tests.factories import PASSWORD, PIN, SIGN_IN, GraphQLClient, hash_secret, make_agent

# The per-account rate limit (a later wall) is off: these tests are about the lockouts.
pytestmark = pytest.mark.parametrize(
    "settings_overrides", [{"rate_limit_per_account_per_minute": 0}]
)

CHANGE_PASSWORD = """
mutation($current: String!) {
  changePassword(input: {currentPassword: $current, newPassword: "Changed123"}) {
    ok userErrors { code }
  }
}
"""
UPDATE_EMAIL = """
mutation($current: String!) {
  updateEmail(input: {newEmail: "taken.over@example.com", password: $current}) {
    account { email } userErrors { code }
  }
}
"""
DELETE_ME = """
mutation($current: String!) { deleteMyAccount(input: {password: $current}) { ok userErrors { code } } }
"""
ENABLE_STEP_UP = """
mutation($pin: String!) { enableStepUp(input: {pin: $pin}) { ok userErrors { code } } }
"""


class Checks:
    """Counts the secrets actually checked against one stored hash, and tells when `enough`
    checks have begun."""

    def __init__(self, stored_hash: str, enough: int) -> None:
        self.stored_hash = stored_hash
        self.count = 0
        self.begun = asyncio.Event()
        self._enough = enough

    async def verify(self, stored: str | None, value: str) -> bool:
        if stored == self.stored_hash:
            self.count += 1
            if self.count >= self._enough:
                self.begun.set()
        return await verify_secret_async(stored, value)


def watch_checks(monkeypatch: pytest.MonkeyPatch, secret: str, enough: int) -> Checks:
    checks = Checks(hash_secret(secret), enough)
    monkeypatch.setattr("resolvers.auth.verify_secret_async", checks.verify)
    return checks


async def burst_then_the_right_one(
    checks: Checks,
    send: Callable[[str], Coroutine[Any, Any, dict[str, Any]]],
    wrong: list[str],
    right: str,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Send the wrong answers at once; while they are still being checked, the right one."""
    burst = [asyncio.create_task(send(answer)) for answer in wrong]
    await asyncio.wait_for(checks.begun.wait(), 30)
    right_answer = await send(right)
    return await asyncio.gather(*burst), right_answer


def error_codes(payloads: list[dict[str, Any]]) -> set[str]:
    return {p["userErrors"][0]["code"] for p in payloads}


async def test_a_burst_of_sign_ins_checks_five_passwords_and_locks(
    live_gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an agent, and fourteen wrong passwords sent at once
    agent = await make_agent()
    checks = watch_checks(monkeypatch, PASSWORD, enough=5)

    async def sign_in(password: str) -> dict[str, Any]:
        variables = {
            "input": {
                "login": agent.email,
                "password": password,
                "deviceId": "burst",
                "deviceName": "Phone",
            }
        }
        payload: dict[str, Any] = (await live_gql(SIGN_IN, variables))["signIn"]
        return payload

    wrong = [f"Wrong{n:03d}x" for n in range(14)]
    # when the right password follows while they are being checked
    refused, right = await burst_then_the_right_one(checks, sign_in, wrong, PASSWORD)
    # then five were checked, and neither the burst nor the right password signed in
    assert checks.count == 5
    assert right["token"] is None
    assert [e["code"] for e in right["userErrors"]] == ["ACCOUNT_LOCKED"]
    assert all(p["token"] is None for p in refused)
    assert error_codes(refused) == {"INVALID_CREDENTIALS", "ACCOUNT_LOCKED"}
    kinds = [event.kind for event in await AccountEvent.filter(account_id=agent.id)]
    assert kinds.count(AccountEventKind.SIGN_IN_FAILED.value) == 5
    assert kinds.count(AccountEventKind.ACCOUNT_LOCKED.value) == 1
    assert AccountEventKind.SIGNED_IN.value not in kinds
    assert (await sign_in(PASSWORD))["userErrors"][0]["code"] == "ACCOUNT_LOCKED"


@pytest.mark.parametrize(
    ("mutation", "name"),
    [
        (CHANGE_PASSWORD, "changePassword"),
        (UPDATE_EMAIL, "updateEmail"),
        (DELETE_ME, "deleteMyAccount"),
    ],
)
async def test_a_burst_of_password_confirmed_changes_checks_five_and_changes_nothing(
    live_gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, mutation: str, name: str
) -> None:
    # given a stolen session, and guesses at its password sent at once
    agent = await make_agent(email="owner@example.com")
    token = await live_gql.sign_in(agent.email or "")
    checks = watch_checks(monkeypatch, PASSWORD, enough=5)

    async def confirm(password: str) -> dict[str, Any]:
        body = await live_gql.raw(mutation, {"current": password}, token=token)
        assert "errors" not in body, body["errors"]
        payload: dict[str, Any] = body["data"][name]
        return payload

    wrong = [f"Guess{n:03d}x" for n in range(14)]
    # when the right password follows while they are being checked
    refused, right = await burst_then_the_right_one(checks, confirm, wrong, PASSWORD)
    # then five were checked, and the account is as it was, and locked
    assert checks.count == 5
    assert [e["code"] for e in right["userErrors"]] == ["ACCOUNT_LOCKED"]
    assert error_codes(refused) == {"INVALID_CREDENTIALS", "ACCOUNT_LOCKED"}
    after = await Account.get(id=agent.id)
    assert after.password_hash == hash_secret(PASSWORD)
    assert (after.email, after.deleted_at) == ("owner@example.com", None)
    assert after.locked_until is not None


async def test_a_burst_of_pins_checks_three_and_locks(
    live_gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an agent signed in on a phone with a key, and ten wrong PINs sent at once
    agent = await make_agent()
    key = b64url_encode(raw_public_key(Ed25519PrivateKey.generate().public_key()))
    token = await live_gql.sign_in(agent.email or "", devicePublicKey=key)
    checks = watch_checks(monkeypatch, PIN, enough=3)

    async def enable(pin: str) -> dict[str, Any]:
        payload: dict[str, Any] = (await live_gql(ENABLE_STEP_UP, {"pin": pin}, token=token))[
            "enableStepUp"
        ]
        return payload

    wrong = [f"{n}{n}{n}{n}" for n in range(10)]
    # when the right PIN follows while they are being checked
    refused, right = await burst_then_the_right_one(checks, enable, wrong, PIN)
    # then three were checked, and PIN operations are locked
    assert checks.count == 3
    assert right == {"ok": False, "userErrors": [{"code": "TOO_MANY_ATTEMPTS"}]}
    assert not any(p["ok"] for p in refused)
    assert error_codes(refused) == {"INVALID_PIN", "TOO_MANY_ATTEMPTS"}
    kinds = [event.kind for event in await AccountEvent.filter(account_id=agent.id)]
    assert kinds.count(AccountEventKind.PIN_FAILED.value) == 3
    assert kinds.count(AccountEventKind.PIN_LOCKED.value) == 1
    assert AccountEventKind.STEP_UP_ENABLED.value not in kinds


async def test_a_burst_of_right_passwords_all_sign_in(live_gql: GraphQLClient) -> None:
    # given an agent signing in from one phone eight times at once (an app retrying, say)
    agent = await make_agent()

    async def sign_in(_: int) -> dict[str, Any]:
        variables = {
            "input": {
                "login": agent.email,
                "password": PASSWORD,
                "deviceId": "burst",
                "deviceName": "Phone",
            }
        }
        payload: dict[str, Any] = (await live_gql(SIGN_IN, variables))["signIn"]
        return payload

    answers = await asyncio.gather(*(sign_in(n) for n in range(8)))
    # then each is signed in: right answers counted before their check never lock each other out
    assert [a["userErrors"] for a in answers] == [[]] * 8
    assert all(a["token"] for a in answers)
    assert (await Account.get(id=agent.id)).locked_until is None


async def test_a_burst_of_right_pins_all_pass(live_gql: GraphQLClient) -> None:
    # given an agent's app sending eight PIN-checked operations at once
    agent = await make_agent()
    key = b64url_encode(raw_public_key(Ed25519PrivateKey.generate().public_key()))
    token = await live_gql.sign_in(agent.email or "", devicePublicKey=key)

    async def enable(_: int) -> dict[str, Any]:
        payload: dict[str, Any] = (await live_gql(ENABLE_STEP_UP, {"pin": PIN}, token=token))[
            "enableStepUp"
        ]
        return payload

    answers = await asyncio.gather(*(enable(n) for n in range(8)))
    # then none is refused for a lock the others' counting set
    assert [a["userErrors"] for a in answers] == [[]] * 8
    assert (await Account.get(id=agent.id)).pin_locked_until is None
