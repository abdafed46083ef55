"""Global ids no row can have: node(id:) answers null and mutations NOT_FOUND, never an error."""

from __future__ import annotations

import base64

import pytest

from core.ids import MAX_PK, pk_of
from tests.factories import GraphQLClient, make_agent, make_grant, make_listing, make_lockbox

NODE = "query($id: ID!) { node(id: $id) { id } }"
REVOKE = """
mutation($id: ID!) {
  revokeAccess(input: {grantId: $id}) { grant { id } userErrors { code field } }
}
"""
UNASSIGN = """
mutation($id: ID!) {
  unassignLockbox(input: {lockboxId: $id}) { lockbox { id } userErrors { code field } }
}
"""

# Keys that look like numbers to str.isdigit() or int(), or that no id column can hold.
ODD_KEYS = [
    "\u00b2",  # superscript two: isdigit(), yet int() refuses it
    "\u0661",  # Arabic-Indic one: int() reads it as 1
    "\uff11",  # fullwidth one
    str(MAX_PK + 1),  # past PostgreSQL's int4
    "9223372036854775808",  # past SQLite's INTEGER
    "99999999999999999999999",
    " 1",
    "+1",
    "1_0",
]


def global_id(type_name: str, key: str) -> str:
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


@pytest.mark.parametrize("key", ODD_KEYS)
def test_only_ascii_digits_within_the_id_column_name_a_row(key: str) -> None:
    assert pk_of(key) is None


def test_ascii_digits_name_a_row_up_to_the_largest_id() -> None:
    assert (pk_of("1"), pk_of(str(MAX_PK))) == (1, MAX_PK)


@pytest.mark.parametrize("type_name", ["Grant", "Listing", "Lockbox", "Message", "Agent"])
async def test_node_of_an_id_no_row_can_have_is_null(gql: GraphQLClient, type_name: str) -> None:
    # given: a row with pk 1 exists, so a key read as 1 would find something
    agent = await make_agent()
    listing = await make_listing(agent)
    await make_grant(agent, listing, await make_lockbox(agent, listing=listing))
    token = await gql.sign_in(agent.email or "")
    for key in ODD_KEYS:
        # when
        body = await gql.raw(NODE, {"id": global_id(type_name, key)}, token=token)
        # then: the same as an id that exists nowhere
        assert body == {"data": {"node": None}}, (key, body)


@pytest.mark.parametrize(
    ("mutation", "name", "field"),
    [(REVOKE, "revokeAccess", "grantId"), (UNASSIGN, "unassignLockbox", "lockboxId")],
)
async def test_mutations_answer_not_found_for_an_id_no_row_can_have(
    gql: GraphQLClient, mutation: str, name: str, field: str
) -> None:
    # given
    agent = await make_agent()
    listing = await make_listing(agent)
    await make_grant(agent, listing, await make_lockbox(agent, listing=listing))
    token = await gql.sign_in(agent.email or "")
    type_name = "Grant" if name == "revokeAccess" else "Lockbox"
    for key in ODD_KEYS:
        # when
        body = await gql.raw(mutation, {"id": global_id(type_name, key)}, token=token)
        # then
        assert "errors" not in body, (key, body)
        assert body["data"][name]["userErrors"] == [
            {"code": "NOT_FOUND", "field": ["input", field]}
        ], key


MESSAGES_AFTER = "query($after: String) { me { messages(first: 5, after: $after) { totalCount } } }"
MARK_READ = """
mutation($ids: [ID!]!) { markMessagesRead(input: {ids: $ids}) { count userErrors { code } } }
"""


async def test_a_cursor_no_row_can_have_is_refused_as_not_valid(gql: GraphQLClient) -> None:
    agent = await make_agent()
    token = await gql.sign_in(agent.email or "")
    for key in ODD_KEYS:
        cursor = base64.urlsafe_b64encode(f"k:{key}".encode()).decode()
        body = await gql.raw(MESSAGES_AFTER, {"after": cursor}, token=token)
        [error] = body["errors"]
        assert error["message"] == "The cursor is not valid.", (key, error)
        assert error["extensions"]["code"] == "INVALID_INPUT"
    # a cursor of ASCII digits is one
    cursor = base64.urlsafe_b64encode(b"k:1").decode()
    assert "errors" not in await gql.raw(MESSAGES_AFTER, {"after": cursor}, token=token)


async def test_message_ids_no_row_can_have_mark_nothing(gql: GraphQLClient) -> None:
    agent = await make_agent()
    token = await gql.sign_in(agent.email or "")
    ids = [global_id("Message", key) for key in ODD_KEYS]
    body = await gql.raw(MARK_READ, {"ids": ids}, token=token)
    assert body == {"data": {"markMessagesRead": {"count": 0, "userErrors": []}}}


def test_numbers_read_from_settings_and_addresses_are_ascii_digits() -> None:
    from ble.socket_transport import parse_address
    from settings import ConfigurationError, parse_prices

    assert parse_prices("*=2500") == (("*", 2500),)
    for amount in ("\u00b2", "\u0661\u0660\u0660", "-5", "0"):
        with pytest.raises(ConfigurationError):
            parse_prices(f"*={amount}")
    assert parse_address("127.0.0.1:9000").port == 9000
    for port in ("\u00b2", "\u0669\u0660", "70000"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_address(f"127.0.0.1:{port}")
