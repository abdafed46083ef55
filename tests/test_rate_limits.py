"""Rate limits played as an attacker against a real `keybin serve`: spoofed X-Forwarded-For,
a trusted proxy, two instances on one PostgreSQL database, one account from many addresses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from models.accounts import Account, AccountEvent, Verification
from models.enums import AccountEventKind
from settings import Settings
from tests.conftest import POSTGRES_URL
from tests.factories import PASSWORD, make_agent
from tests.server import keybin_server

WRONG_PASSWORD = "Wrong1234"
SIGN_IN = """
mutation($input: SignInInput!) { signIn(input: $input) { token userErrors { code message } } }
"""
REQUEST_RESET = """
mutation($login: String!) { requestPasswordReset(input: {login: $login}) { ok userErrors { code } } }
"""
BEGIN_SIGNUP = """
mutation($email: String!, $phone: String!) {
  beginContractorSignup(input: {email: $email, phone: $phone}) {
    verificationId userErrors { code message }
  }
}
"""
SET_PIN = """
mutation($pw: String!, $pin: String!) { setPin(input: {password: $pw, newPin: $pin}) { ok userErrors { code } } }
"""


@contextmanager
def serving(settings: Settings, **env: str) -> Iterator[str]:
    """`keybin serve` on this test's database with the given settings; yields its base URL."""
    full_env = {
        "DATABASE_URL": settings.database_url,
        "SECRET_KEY": settings.secret_key,
        "KEYBIN_DATA_DIR": settings.keybin_data_dir,
        **env,
    }
    with keybin_server(full_env) as (base, _):
        yield base


def _sign_in_variables(login: str, password: str = WRONG_PASSWORD) -> dict[str, Any]:
    return {"input": {"login": login, "password": password, "deviceId": "d", "deviceName": "P"}}


async def _post(
    base: str,
    query: str,
    variables: dict[str, Any],
    forwarded_for: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            f"{base}/graphql", json={"query": query, "variables": variables}, headers=headers
        )
    body = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def _post_over_websocket(
    base: str, query: str, variables: dict[str, Any], forwarded_for: str
) -> dict[str, Any]:
    """The same operation sent over graphql-transport-ws, the handshake carrying the header."""
    url = base.replace("http://", "ws://") + "/graphql"
    async with connect(
        url,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        additional_headers={"X-Forwarded-For": forwarded_for},
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        payload = {"query": query, "variables": variables}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        message = json.loads(await ws.recv())
    assert message["type"] == "next", message
    data: dict[str, Any] = message["payload"]["data"]
    return data


def _outcome(payload: dict[str, Any]) -> str:
    """The first userError's code, or OK."""
    errors = payload["userErrors"]
    return str(errors[0]["code"]) if errors else "OK"


async def sign_in_outcome(
    base: str, login: str, forwarded_for: str | None = None, password: str = WRONG_PASSWORD
) -> str:
    data = await _post(base, SIGN_IN, _sign_in_variables(login, password), forwarded_for)
    return _outcome(data["signIn"])


async def _failed_sign_ins(account: Account) -> list[AccountEvent]:
    return await AccountEvent.filter(
        account_id=account.id, kind=AccountEventKind.SIGN_IN_FAILED.value
    ).order_by("id")


async def test_spoofed_forwarded_addresses_share_one_bucket_without_trusted_proxies(
    settings: Settings, orm: None
) -> None:
    # given a server with no TRUSTED_PROXIES and three attempts a minute per address
    agent = await make_agent()
    with serving(settings, RATE_LIMIT_PER_MINUTE="3") as base:
        # when each attempt claims another address in X-Forwarded-For, over HTTP and WebSocket
        outcomes = [
            await sign_in_outcome(base, agent.email or "", forwarded_for="203.0.113.1"),
            await sign_in_outcome(base, "someone@example.com", forwarded_for="203.0.113.2"),
            await sign_in_outcome(base, "other@example.com", forwarded_for="203.0.113.3"),
        ]
        over_websocket = await _post_over_websocket(
            base, SIGN_IN, _sign_in_variables("fourth@example.com"), forwarded_for="203.0.113.4"
        )
        outcomes.append(_outcome(over_websocket["signIn"]))
        outcomes.append(await sign_in_outcome(base, "fifth@example.com", "203.0.113.5"))
    # then they all counted against the one real peer, and the log names the peer
    assert outcomes == ["INVALID_CREDENTIALS"] * 3 + ["TOO_MANY_ATTEMPTS"] * 2
    [failed] = await _failed_sign_ins(agent)
    assert failed.client_address == "127.0.0.1"


async def test_a_trusted_proxy_names_the_client(settings: Settings, orm: None) -> None:
    # given a server behind a trusted proxy on loopback, two attempts a minute per address
    agent = await make_agent()
    with serving(settings, TRUSTED_PROXIES="127.0.0.1", RATE_LIMIT_PER_MINUTE="2") as base:
        # when one client uses up its attempts, then another client tries, then the agent's
        # sign-in fails from a third address
        first = [await sign_in_outcome(base, f"a{n}@example.com", "203.0.113.1") for n in range(3)]
        over_websocket = await _post_over_websocket(
            base, SIGN_IN, _sign_in_variables("b@example.com"), forwarded_for="203.0.113.1"
        )
        second = await sign_in_outcome(base, "c@example.com", "203.0.113.2")
        failed_for_agent = await sign_in_outcome(base, agent.email or "", "198.51.100.7")
    # then each forwarded address has its own bucket, and the log names the client
    assert first == ["INVALID_CREDENTIALS", "INVALID_CREDENTIALS", "TOO_MANY_ATTEMPTS"]
    assert _outcome(over_websocket["signIn"]) == "TOO_MANY_ATTEMPTS"
    assert second == "INVALID_CREDENTIALS"
    assert failed_for_agent == "INVALID_CREDENTIALS"
    [failed] = await _failed_sign_ins(agent)
    assert failed.client_address == "198.51.100.7"


@pytest.mark.skipif(not POSTGRES_URL, reason="several instances share PostgreSQL: `postgres` env")
async def test_two_instances_count_the_same_attempts(settings: Settings) -> None:
    # given two instances on one database, four attempts a minute per address
    env = {"RATE_LIMIT_PER_MINUTE": "4"}
    with serving(settings, **env) as base_a, serving(settings, **env) as base_b:
        # when one client alternates between them
        outcomes = [
            await sign_in_outcome(base, f"x{n}@example.com")
            for n, base in enumerate([base_a, base_b, base_a, base_b, base_a, base_b])
        ]
    # then both counted together: four in all, not four on each
    assert outcomes == ["INVALID_CREDENTIALS"] * 4 + ["TOO_MANY_ATTEMPTS"] * 2


async def test_one_login_from_many_addresses_hits_a_wall(settings: Settings, orm: None) -> None:
    # given three attempts a minute per login, however many addresses
    agent, other = await make_agent(), await make_agent()
    login = agent.email or ""
    env = {"TRUSTED_PROXIES": "127.0.0.1", "RATE_LIMIT_PER_ACCOUNT_PER_MINUTE": "3"}
    with serving(settings, **env) as base:
        # when an attacker tries one login from a new address each time (the case changed last)
        outcomes = [await sign_in_outcome(base, login, f"203.0.113.{n}") for n in range(1, 4)]
        outcomes.append(await sign_in_outcome(base, login.upper(), "203.0.113.4"))
        # and the same for a login nobody has
        unknown = [
            await _post(base, SIGN_IN, _sign_in_variables("nobody@example.com"), f"198.51.100.{n}")
            for n in range(1, 5)
        ]
        refused = await _post(base, SIGN_IN, _sign_in_variables(login), "203.0.113.5")
        # and another agent signs in meanwhile
        served = await sign_in_outcome(base, other.email or "", "203.0.113.9", password=PASSWORD)
    # then the fourth attempt is refused, for a real login and a made-up one alike
    assert outcomes == ["INVALID_CREDENTIALS"] * 3 + ["TOO_MANY_ATTEMPTS"]
    assert [_outcome(u["signIn"]) for u in unknown] == outcomes
    assert refused["signIn"] == unknown[-1]["signIn"]
    assert served == "OK"
    # and a refused attempt recorded nothing: three failures counted, not four
    await agent.refresh_from_db()
    assert agent.failed_logins == 3
    assert len(await _failed_sign_ins(agent)) == 3


async def test_reset_requests_for_one_login_hit_a_wall(settings: Settings, orm: None) -> None:
    # given two reset requests a minute per login
    agent = await make_agent()
    env = {"TRUSTED_PROXIES": "127.0.0.1", "RATE_LIMIT_PER_ACCOUNT_PER_MINUTE": "2"}
    with serving(settings, **env) as base:
        # when one login is asked for from three addresses, then another login
        outcomes = [
            _outcome(
                (await _post(base, REQUEST_RESET, {"login": agent.email}, f"203.0.113.{n}"))[
                    "requestPasswordReset"
                ]
            )
            for n in range(1, 4)
        ]
        other = await _post(base, REQUEST_RESET, {"login": "other@example.com"}, "203.0.113.9")
    # then the third request is refused and the other login is still served
    assert outcomes == ["OK", "OK", "TOO_MANY_ATTEMPTS"]
    assert other["requestPasswordReset"] == {"ok": True, "userErrors": []}


async def test_signup_codes_per_phone_and_per_email_hit_a_wall(
    settings: Settings, orm: None
) -> None:
    # given one signup code a minute per phone number and per email (below the signup's own
    # resend throttle, so this wall is the one hit)
    env = {"TRUSTED_PROXIES": "127.0.0.1", "RATE_LIMIT_PER_ACCOUNT_PER_MINUTE": "1"}
    with serving(settings, **env) as base:

        async def begin(email: str, phone: str, address: str) -> str:
            variables = {"email": email, "phone": phone}
            data = await _post(base, BEGIN_SIGNUP, variables, address)
            errors = data["beginContractorSignup"]["userErrors"]
            return f"{errors[0]['code']}: {errors[0]['message']}" if errors else "OK"

        # when one phone number is texted for two emails from two addresses (typed two ways)
        one_phone = [
            await begin("p1@example.com", "+15135550100", "203.0.113.1"),
            await begin("p2@example.com", "(513) 555-0100", "203.0.113.2"),
        ]
        # and one email is tried with two phone numbers from two more addresses
        one_email = [
            await begin("e@example.com", "+15135550200", "198.51.100.1"),
            await begin("e@example.com", "+15135550201", "198.51.100.2"),
        ]
        fresh = await begin("fresh@example.com", "+15135550300", "192.0.2.1")
    # then the second of each is refused and texts nothing, while someone else is served
    refused = "TOO_MANY_ATTEMPTS: Too many attempts for this {}: wait a minute."
    assert one_phone == ["OK", refused.format("phone number")]
    assert one_email == ["OK", refused.format("email address")]
    assert fresh == "OK"
    assert await Verification.filter(phone="+15135550100").count() == 1
    assert await Verification.filter(phone="+15135550201").count() == 0


async def test_pin_checks_per_account_hit_a_wall(settings: Settings, orm: None) -> None:
    # given two PIN checks a minute per account
    agent, other = await make_agent(), await make_agent()
    env = {"TRUSTED_PROXIES": "127.0.0.1", "RATE_LIMIT_PER_ACCOUNT_PER_MINUTE": "2"}
    with serving(settings, **env) as base:
        tokens = []
        for account in (agent, other):
            signed_in = await _post(
                base, SIGN_IN, _sign_in_variables(account.email or "", PASSWORD)
            )
            tokens.append(signed_in["signIn"]["token"])
        variables = {"pw": PASSWORD, "pin": "4321"}
        # when one account checks its PIN from three addresses, then the other account
        outcomes = [
            _outcome((await _post(base, SET_PIN, variables, f"203.0.113.{n}", tokens[0]))["setPin"])
            for n in range(1, 4)
        ]
        other_outcome = await _post(base, SET_PIN, variables, "203.0.113.9", tokens[1])
    # then the third check is refused, and the other account is still served
    assert outcomes == ["OK", "OK", "TOO_MANY_ATTEMPTS"]
    assert other_outcome["setPin"] == {"ok": True, "userErrors": []}
