"""Text that is not Unicode (a lone surrogate such as \\ud800) is refused at the edge, like NUL."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from models.accounts import Account
from tests.factories import GraphQLClient, make_agent
from tests.rows import table_counts

SIGN_IN = """
mutation($i: SignInInput!) { signIn(input: $i) { token userErrors { code } } }
"""
RESET = """
mutation($i: ResetPasswordInput!) { resetPassword(input: $i) { ok userErrors { code } } }
"""
REQUEST_RESET = """
mutation($i: RequestPasswordResetInput!) { requestPasswordReset(input: $i) { ok userErrors { code } } }
"""
BEGIN_SIGNUP = """
mutation($i: BeginContractorSignupInput!) {
  beginContractorSignup(input: $i) { verificationId userErrors { code } }
}
"""
SET_PIN = """
mutation($pw: String!, $pin: String!) { setPin(input: {password: $pw, newPin: $pin}) { ok userErrors { code } } }
"""
# A lone surrogate: json.dumps writes it as the escape \ud800, which JSON parsers (Python's
# among them) read back as a str no UTF-8 encoder accepts.
LONE = "\ud800"
DEVICE = {"deviceId": "d1", "deviceName": "Phone"}

CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "sign-in login": (SIGN_IN, {"i": {"login": f"a{LONE}@example.com", "password": "x", **DEVICE}}),
    "sign-in password": (SIGN_IN, {"i": {"login": "123456789", "password": LONE, **DEVICE}}),
    "reset token": (RESET, {"i": {"token": LONE, "newPassword": "Abcdef12"}}),
    "reset request": (REQUEST_RESET, {"i": {"login": LONE}}),
    "signup email": (BEGIN_SIGNUP, {"i": {"email": f"a{LONE}@x.com", "phone": "5135550111"}}),
    "nested in a list": (
        SIGN_IN,
        {"i": {"login": "a@example.com", "password": "x", **DEVICE}, "extra": [[LONE]]},
    ),
}


async def post_raw(http: httpx.AsyncClient, body: str, token: str | None = None) -> dict[str, Any]:
    """Posts the JSON text as it is: httpx's `json=` cannot encode a lone surrogate."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = await http.post("/graphql", content=body.encode("ascii"), headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def escaped(query: str, variables: dict[str, Any]) -> str:
    return json.dumps({"query": query, "variables": variables})  # ensure_ascii: \ud800


@pytest.mark.parametrize("settings_overrides", [{"env": "staging"}])
@pytest.mark.parametrize("case", list(CASES))
async def test_a_lone_surrogate_in_the_variables_is_invalid_input_and_changes_nothing(
    http: httpx.AsyncClient, case: str
) -> None:
    # given
    await make_agent(key_id="123456789")
    before = await table_counts()
    query, variables = CASES[case]
    # when
    body = await post_raw(http, escaped(query, variables))
    # then refused like NUL, with a message that says why, not masked as INTERNAL
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "INVALID_INPUT"
    assert error["message"] == "Text must be valid Unicode characters."
    assert await table_counts() == before


@pytest.mark.parametrize("settings_overrides", [{"env": "staging"}])
@pytest.mark.parametrize(
    "literal",
    [
        "\\\\ud800",  # the GraphQL escape \ud800 in the document
        "\\\\u{D800}",  # its variable-width form
        "\\ud800",  # the character itself in the document (a JSON escape)
    ],
)
async def test_a_lone_surrogate_in_the_document_is_invalid_input(
    http: httpx.AsyncClient, literal: str
) -> None:
    # given
    before = await table_counts()
    document = 'mutation { requestPasswordReset(input: {login: "a@LONE.com"}) { ok } }'
    body_text = json.dumps({"query": document}).replace("LONE", literal)
    # when
    body = await post_raw(http, body_text)
    # then
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert await table_counts() == before


async def test_a_lone_surrogate_on_a_signed_in_mutation_changes_nothing(
    http: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    # given an agent without a PIN, signed in
    agent = await make_agent(pin=None)
    token = await gql.sign_in(agent.email or "")
    # when the password to confirm the PIN is not Unicode
    body = await post_raw(http, escaped(SET_PIN, {"pw": LONE, "pin": "1234"}), token=token)
    # then
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert (await Account.get(id=agent.id)).pin_hash is None


async def test_surrogate_pairs_are_ordinary_text(http: httpx.AsyncClient) -> None:
    # given an emoji, which JSON writes as a pair of surrogate escapes
    variables = {"i": {"login": "\U0001f600@example.com"}}
    # when
    body = await post_raw(http, escaped(REQUEST_RESET, variables))
    # then it is text like any other: an unknown login, answered as always
    assert body == {"data": {"requestPasswordReset": {"ok": True, "userErrors": []}}}


async def test_a_lone_surrogate_in_an_input_field_name_is_invalid_input(
    http: httpx.AsyncClient,
) -> None:
    # given an unknown field's name, which GraphQL's error would quote back
    body = json.dumps({"query": REQUEST_RESET, "variables": {"i": {"login": "a@b.co", LONE: 1}}})
    # when
    answer = await post_raw(http, body)
    # then
    assert answer["data"] is None
    assert answer["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert answer["errors"][0]["message"] == "Text must be valid Unicode characters."


@pytest.mark.parametrize("name", [LONE, "\x00"])
async def test_an_operation_name_that_is_not_unicode_is_unknown_like_any_other(
    http: httpx.AsyncClient, name: str
) -> None:
    # given a name no operation can have (GraphQL names are ASCII)
    body = json.dumps({"query": "query A { regions { code } }", "operationName": name})
    # when
    response = await http.post(
        "/graphql", content=body.encode("ascii"), headers={"Content-Type": "application/json"}
    )
    # then refused as an unknown name, not a failure to write the answer
    assert response.status_code == 400
    assert "Unknown operation named" in response.text
