"""The Message Center: a keyset-paged feed, unread counts, marking read and deleting."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from core import clock
from core.ids import to_global_id
from models.accounts import Account
from models.enums import MessageKind
from models.messages import Message
from resolvers.notifications import post_message
from tests.conftest import POSTGRES_URL
from tests.factories import (
    GraphQLClient,
    both_ways,
    make_agent,
    make_contractor,
    make_grant,
    make_listing,
    make_lockbox,
)

FEED = """
query($first: Int, $after: String, $unread: Boolean) {
  me {
    unreadMessageCount
    messages(first: $first, after: $after, unreadOnly: $unread) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { node { id title readAt } }
    }
  }
}
"""
MARK_READ = """
mutation($ids: [ID!]!) { markMessagesRead(input: {ids: $ids}) { count userErrors { code } } }
"""
DELETE = """
mutation($ids: [ID!]!) { deleteMessages(input: {ids: $ids}) { count userErrors { code } } }
"""


async def post(account: Account, title: str) -> Message:
    return await post_message(account.id, MessageKind.ACCOUNT, title, "body")


def mid(message: Message) -> str:
    return to_global_id("Message", message.id)


async def feed(gql: GraphQLClient, token: str, **variables: Any) -> dict[str, Any]:
    me: dict[str, Any] = (await gql(FEED, variables, token=token))["me"]
    return me


async def test_feed_is_newest_first_and_pages_do_not_shift(gql: GraphQLClient) -> None:
    # given
    agent = await make_agent()
    for n in range(3):
        await post(agent, f"m{n}")
    token = await gql.sign_in(agent.email or "")
    # when
    first_page = await feed(gql, token, first=2)
    await post(agent, "arrives while reading")
    second_page = await feed(
        gql, token, first=2, after=first_page["messages"]["pageInfo"]["endCursor"]
    )
    # then
    assert [e["node"]["title"] for e in first_page["messages"]["edges"]] == ["m2", "m1"]
    assert [e["node"]["title"] for e in second_page["messages"]["edges"]] == ["m0"]
    assert second_page["messages"]["pageInfo"]["hasNextPage"] is False
    assert second_page["unreadMessageCount"] == 4


async def test_mark_read_counts_only_the_callers_messages(gql: GraphQLClient) -> None:
    # given
    alice, bob = await make_agent(), await make_agent()
    mine = [await post(alice, f"a{n}") for n in range(3)]
    theirs = await post(bob, "b")
    token = await gql.sign_in(alice.email or "")
    ids = [mid(mine[0]), mid(mine[1]), mid(theirs), "bm90LWFuLWlk", to_global_id("Grant", 1)]
    # when
    marked = (await gql(MARK_READ, {"ids": ids}, token=token))["markMessagesRead"]
    again = (await gql(MARK_READ, {"ids": ids}, token=token))["markMessagesRead"]
    # then
    assert marked == {"count": 2, "userErrors": []}
    assert again == {"count": 0, "userErrors": []}
    me = await feed(gql, token, unread=True)
    assert me["unreadMessageCount"] == 1
    assert [e["node"]["title"] for e in me["messages"]["edges"]] == ["a2"]
    assert me["messages"]["totalCount"] == 1
    assert (await Message.get(id=theirs.id)).read_at is None


async def test_delete_counts_only_the_callers_messages(gql: GraphQLClient) -> None:
    # given
    alice, bob = await make_agent(), await make_agent()
    mine = [await post(alice, f"a{n}") for n in range(2)]
    theirs = await post(bob, "b")
    token = await gql.sign_in(alice.email or "")
    # when
    deleted = (await gql(DELETE, {"ids": [mid(mine[0]), mid(theirs)]}, token=token))[
        "deleteMessages"
    ]
    # then
    assert deleted == {"count": 1, "userErrors": []}
    assert await Message.filter(id=theirs.id).exists()
    assert [e["node"]["title"] for e in (await feed(gql, token))["messages"]["edges"]] == ["a1"]


async def test_too_many_ids_at_once_is_invalid_input(gql: GraphQLClient) -> None:
    agent = await make_agent()
    message = await post(agent, "keep")
    token = await gql.sign_in(agent.email or "")
    data = await gql(DELETE, {"ids": [mid(message)] * 101}, token=token)
    assert data["deleteMessages"] == {"count": 0, "userErrors": [{"code": "INVALID_INPUT"}]}
    assert await Message.filter(id=message.id).exists()


async def test_another_accounts_message_center_is_forbidden(gql: GraphQLClient) -> None:
    # given an agent who granted access to a contractor with messages of their own
    agent = await make_agent()
    listing = await make_listing(agent)
    contractor = await make_contractor()
    await post(contractor, "private")
    made = await make_grant(agent, listing, await make_lockbox(agent, listing=listing), contractor)
    token = await gql.sign_in(agent.email or "")
    # when
    body = await gql.raw(
        "query($id: ID!) { node(id: $id) { ... on Grant { grantee { "
        "unreadMessageCount messages { totalCount } } } } }",
        {"id": to_global_id("Grant", made.id)},
        token=token,
    )
    # then
    assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}
    assert "private" not in str(body)


FEED_BY_KIND = """
query Feed($first: Int, $after: String, $unread: Boolean, $kind: [MessageKind!]) {
  me {
    messages(first: $first, after: $after, unreadOnly: $unread, kind: $kind) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { node { kind title } }
    }
  }
}
"""


async def titles_of_kinds(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, token: str, **variables: Any
) -> tuple[list[str], dict[str, Any]]:
    """Titles of a page, checked the same through compiled execution (on PostgreSQL, the
    one-statement page wherever it answers) and through graphql-core alone."""
    compiled, general = await both_ways(gql, monkeypatch, FEED_BY_KIND, variables, token)
    assert compiled == general
    assert "errors" not in compiled, compiled
    page: dict[str, Any] = compiled["data"]["me"]["messages"]
    return [edge["node"]["title"] for edge in page["edges"]], page


async def test_messages_of_the_kinds_asked_for_page_by_the_keyset_cursor(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an agent's Message Center with every kind of message
    agent = await make_agent()
    kinds = [MessageKind.ACCESS_GRANTED, MessageKind.ACCOUNT, MessageKind.ACCESS_USED]
    for n in range(6):
        await post_message(agent.id, kinds[n % 3], f"{kinds[n % 3].value} {n}", "body")
    token = await gql.sign_in(agent.email or "")
    # when an app shows its "access granted" notices, two at a time
    first, page = await titles_of_kinds(gql, monkeypatch, token, first=1, kind=["ACCESS_GRANTED"])
    await post_message(agent.id, MessageKind.ACCESS_GRANTED, "arrives while reading", "body")
    second, last = await titles_of_kinds(
        gql,
        monkeypatch,
        token,
        first=2,
        after=page["pageInfo"]["endCursor"],
        kind=["ACCESS_GRANTED"],
    )
    # then only that kind, newest first, and a new one does not shift the next page
    assert first == ["ACCESS_GRANTED 3"]
    assert (page["totalCount"], page["pageInfo"]["hasNextPage"]) == (2, True)
    assert second == ["ACCESS_GRANTED 0"]
    assert (last["totalCount"], last["pageInfo"]["hasNextPage"]) == (3, False)
    # and several kinds, unread ones only, or none asked for (every kind)
    await Message.filter(account_id=agent.id, title="ACCOUNT 4").update(read_at=clock.now())
    several, _ = await titles_of_kinds(gql, monkeypatch, token, kind=["ACCOUNT", "ACCESS_USED"])
    assert several == ["ACCESS_USED 5", "ACCOUNT 4", "ACCESS_USED 2", "ACCOUNT 1"]
    unread, page = await titles_of_kinds(gql, monkeypatch, token, kind=["ACCOUNT"], unread=True)
    assert (unread, page["totalCount"]) == (["ACCOUNT 1"], 1)
    every, page = await titles_of_kinds(gql, monkeypatch, token, kind=[])
    assert (len(every), page["totalCount"]) == (7, 7)
    revoked, page = await titles_of_kinds(gql, monkeypatch, token, kind=["ACCESS_REVOKED"])
    assert (revoked, page["totalCount"]) == ([], 0)


@pytest.mark.parametrize("settings_overrides", [{"answer_cache": True}])
async def test_kept_answers_follow_the_kinds_asked_for(
    gql: GraphQLClient, http: httpx.AsyncClient, app: Starlette
) -> None:
    # given an answer kept for the ACCOUNT messages
    agent = await make_agent()
    await post_message(agent.id, MessageKind.ACCOUNT, "welcome", "body")
    await post_message(agent.id, MessageKind.ACCESS_GRANTED, "granted", "body")
    token = await gql.sign_in(agent.email or "")

    async def titles(kind: str) -> list[str]:
        data = await gql(FEED_BY_KIND, {"kind": [kind]}, token=token)
        return [edge["node"]["title"] for edge in data["me"]["messages"]["edges"]]

    assert [await titles("ACCOUNT") for _ in range(2)] == [["welcome"], ["welcome"]]
    hits = app.state.answers.hits
    # when the same document asks for another kind, then for the first again
    granted = await titles("ACCESS_GRANTED")
    account = await titles("ACCOUNT")
    # then each answer is its own kind's; the repeated one may come from memory
    assert (granted, account) == (["granted"], ["welcome"])
    if not POSTGRES_URL:  # the snapshot moves with any commit in the cluster
        assert app.state.answers.hits == hits + 1
