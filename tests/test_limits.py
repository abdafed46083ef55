"""GraphQL limits, bad input at the edge, masked errors, and per-address rate limits."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from models.accounts import Account
from resolvers import messages
from tests.factories import SIGN_IN, GraphQLClient, make_agent

ME_MESSAGES = "{ me { unreadMessageCount } }"
SET_PIN = """
mutation($pw: String!, $pin: String!) { setPin(input: {password: $pw, newPin: $pin}) { ok userErrors { code } } }
"""


def nested(depth: int) -> str:
    inner = "id"
    for _ in range(depth):
        inner = f"grant {{ {inner} }}"
    return "{ me { messages { edges { node { " + inner + " } } } } }"


async def test_depth_limit(gql: GraphQLClient) -> None:
    agent = await make_agent()
    token = await gql.sign_in(agent.email or "")
    body = await gql.raw(
        "{ me { ... on Agent { listings { edges { node { lockbox { listing { lockbox { listing {"
        " lockbox { listing { lockbox { listing { lockbox { listing { lockbox { listing { id }"
        " } } } } } } } } } } } } } } } } }",
        token=token,
    )
    assert "exceeds maximum operation depth" in body["errors"][0]["message"]


async def test_alias_limit(gql: GraphQLClient) -> None:
    query = "{ " + " ".join(f"a{i}: regions {{ code }}" for i in range(31)) + " }"
    body = await gql.raw(query)
    assert "aliases" in body["errors"][0]["message"].lower()
    ok = await gql.raw("{ " + " ".join(f"a{i}: regions {{ code }}" for i in range(30)) + " }")
    assert "errors" not in ok


async def test_token_limit(gql: GraphQLClient) -> None:
    query = "{ regions { " + " ".join(["code"] * 5001) + " } }"
    body = await gql.raw(query)
    assert "token" in body["errors"][0]["message"].lower()


async def test_first_over_100_is_invalid_input(gql: GraphQLClient) -> None:
    agent = await make_agent()
    token = await gql.sign_in(agent.email or "")
    body = await gql.raw("{ me { messages(first: 101) { totalCount } } }", token=token)
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


async def test_no_get_queries_and_no_batching(http: httpx.AsyncClient) -> None:
    get = await http.get("/graphql", params={"query": "{ regions { code } }"})
    assert "regions" not in get.text
    assert get.status_code in {400, 405}
    batch = await http.post("/graphql", json=[{"query": "{ regions { code } }"}] * 2)
    assert batch.status_code == 400


@pytest.mark.parametrize("bad", ["nul\x00byte", "x" * 10_001])
async def test_bad_text_is_invalid_input_and_changes_nothing(gql: GraphQLClient, bad: str) -> None:
    agent = await make_agent(pin=None)
    token = await gql.sign_in(agent.email or "")
    body = await gql.raw(SET_PIN, {"pw": bad, "pin": "1234"}, token=token)
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert body["data"] is None
    assert (await Account.get(id=agent.id)).pin_hash is None


async def test_nul_escape_in_a_literal_is_refused(gql: GraphQLClient) -> None:
    body = await gql.raw('mutation { requestPasswordReset(input: {login: "a\\u0000b"}) { ok } }')
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


async def test_bad_date_is_an_error_not_a_crash(gql: GraphQLClient) -> None:
    agent = await make_agent()
    token = await gql.sign_in(agent.email or "")
    body = await gql.raw(
        "query($f: DateTime!) { accessLog(from: $f, to: $f) { totalCount } }",
        {"f": "not-a-date"},
        token=token,
    )
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


async def test_requests_graphql_refuses_carry_invalid_input(gql: GraphQLClient) -> None:
    for query in ("{ regions { code ", "{ regions { nope } }", "{ regions(first: 1) { code } }"):
        body = await gql.raw(query)
        assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT", query


@pytest.mark.parametrize("settings_overrides", [{"env": "staging"}])
async def test_unexpected_errors_are_masked_outside_development(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = await make_agent()
    token = await gql.sign_in(agent.email or "")

    async def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("secret database detail")

    monkeypatch.setattr(messages, "count", broken)
    body = await gql.raw(ME_MESSAGES, token=token)
    error = body["errors"][0]
    assert error["message"] == "Unexpected error"
    assert error["extensions"]["code"] == "INTERNAL"
    assert "secret" not in str(body)
    # Access errors keep their code.
    body = await gql.raw(SET_PIN, {"pw": "x", "pin": "1234"})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    "settings_overrides",
    [{"env": "production", "secret_key": "p" * 40}],
)
async def test_production_turns_off_introspection(http: httpx.AsyncClient) -> None:
    response = await http.post("/graphql", json={"query": "{ __schema { types { name } } }"})
    body = response.json()
    assert body["data"] is None
    assert "introspection" in body["errors"][0]["message"].lower()
    page = await http.get("/graphql", headers={"accept": "text/html"})
    assert "graphiql" not in page.text.lower()


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_per_minute": 3}])
async def test_sign_in_rate_limit_per_address(gql: GraphQLClient) -> None:
    variables = {
        "input": {
            "login": "x@example.com",
            "password": "Bad12345",
            "deviceId": "d",
            "deviceName": "P",
        }
    }
    codes = [(await gql(SIGN_IN, variables))["signIn"]["userErrors"][0]["code"] for _ in range(4)]
    assert codes == ["INVALID_CREDENTIALS"] * 3 + ["TOO_MANY_ATTEMPTS"]


BEGIN_SIGNUP = """
mutation($email: String!, $phone: String!) { beginContractorSignup(input: {email: $email, phone: $phone}) { verificationId userErrors { code } } }
"""


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_per_minute": 2}])
async def test_signup_codes_and_pin_checks_are_rate_limited(gql: GraphQLClient) -> None:
    codes = [
        (await gql(BEGIN_SIGNUP, {"email": f"new{i}@example.com", "phone": f"+1513555010{i}"}))[
            "beginContractorSignup"
        ]
        for i in range(3)
    ]
    assert [c["userErrors"] for c in codes[:2]] == [[], []]
    assert codes[2]["userErrors"][0]["code"] == "TOO_MANY_ATTEMPTS"
    agent = await make_agent()
    token = await gql.sign_in(agent.email or "")
    results = [
        (await gql(SET_PIN, {"pw": "Secret123", "pin": "4321"}, token=token))["setPin"]
        for _ in range(3)
    ]
    assert [r["ok"] for r in results] == [True, True, False]
    assert results[2]["userErrors"][0]["code"] == "TOO_MANY_ATTEMPTS"
