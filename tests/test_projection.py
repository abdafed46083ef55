"""The agent's listings page built by the database (schema/fast/page_sql.py) answers exactly
what the resolvers answer, on SQLite and on PostgreSQL: the same pages run both ways compare
equal, the statement is really the one that answered, and whatever it does not reproduce is
left to the resolvers."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from tortoise import connections

from core import clock
from models.accounts import Account
from models.grants import Grant
from resolvers.deletion import delete_account
from schema.fast import page_sql
from tests.factories import (
    GraphQLClient,
    both_ways,
    make_agent,
    make_contractor,
    make_grant,
    make_listing,
    make_lockbox,
)

PAGE = """
query Page($first: Int, $after: String, $grants: Int, $grantsAfter: String) {
  me {
    ... on Agent {
      __typename
      homes: listings(first: $first, after: $after) {
        __typename
        totalCount
        pageInfo { __typename hasNextPage hasPreviousPage startCursor endCursor }
        edges {
          __typename
          cursor
          node {
            __typename
            id
            mlsNumber
            status
            source
            where: address { __typename line1 line2 city state postalCode }
            lockbox { __typename id serialNumber model bleCapable onListingSince lastAccessAt }
            grants(first: $grants, after: $grantsAfter) {
              totalCount
              pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
              edges {
                cursor
                node {
                  ...GrantFields
                  grantee { __typename ...Person role company }
                  again: grantee { id }
                }
              }
            }
          }
        }
      }
    }
  }
}
fragment GrantFields on Grant {
  id granteeEmail startsAt endsAt status revocable createdAt revokedAt
}
fragment Person on Account { id firstName lastName }
"""


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The statements the projection ran."""
    ran: list[str] = []
    original = page_sql._run

    async def counted(sql: str, values: list[Any]) -> Any:
        ran.append(sql)
        return await original(sql, values)

    monkeypatch.setattr(page_sql, "_run", counted)
    yield ran


async def portfolio() -> Account:
    """Listings with and without lockboxes and grants, grants in every status, grantees
    that are contractors, agents and nobody yet, awkward text and exact times."""
    agent = await make_agent()
    other_agent = await make_agent()
    people = [
        await make_contractor(first_name="Zoë", last_name='O"Brien \\ \n', company=None),
        await make_contractor(first_name="Ray", phone=None),
    ]
    gone = await make_contractor(company="Gone Ltd")
    now = clock.now()
    for n in range(5):
        listing = await make_listing(
            agent,
            mls_number=None if n == 1 else f"M-{n}",
            line1=f"{n} Ünïcode Way 'quoted'",
            line2="Apt 2" if n == 3 else None,
        )
        if n == 2:
            continue  # no lockbox, no grants
        lockbox = await make_lockbox(
            agent,
            listing=listing,
            last_access_at=now.replace(microsecond=0) if n == 3 else None,
            on_listing_since=now.date() if n != 4 else None,
        )
        await make_grant(agent, listing, lockbox, people[0], starts_in=3600)  # scheduled
        await make_grant(agent, listing, lockbox, people[1], starts_in=-60)  # active
        await make_grant(agent, listing, lockbox, None, starts_in=-7200, hours=1)  # expired
        await make_grant(agent, listing, lockbox, other_agent, starts_in=-30)  # an agent
        await make_grant(agent, listing, lockbox, gone, starts_in=-90)  # deleted since
        revoked = await make_grant(agent, listing, lockbox, people[0], starts_in=600)
        revoked.revoked_at = now - timedelta(seconds=5)
        await revoked.save()
    await delete_account(gone.id)
    # One start on a whole second, one with microseconds.
    first = await Grant.filter(listing__agent_id=agent.id).order_by("id").first()
    assert first is not None
    first.starts_at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    await first.save()
    return agent


async def signed_in_portfolio(gql: GraphQLClient) -> str:
    """The portfolio's agent, signed in: its token."""
    agent = await portfolio()
    return await gql.sign_in(agent.email or "")


async def test_the_page_is_one_statement_and_matches_the_resolvers(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, statements: list[str]
) -> None:
    # given
    token = await signed_in_portfolio(gql)
    # when
    built, resolved = await both_ways(gql, monkeypatch, PAGE, {"first": 3, "grants": 3}, token)
    # then
    assert len(statements) == 1
    assert "errors" not in built, built
    assert built == resolved
    homes = built["data"]["me"]["homes"]
    assert homes["totalCount"] == 5 and homes["pageInfo"]["hasNextPage"] is True
    grants = [g["node"] for e in homes["edges"] for g in e["node"]["grants"]["edges"]]
    assert len(grants) == 6 and {g["status"] for g in grants} == {"ACTIVE", "REVOKED"}


async def test_every_row_and_status_both_ways(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, statements: list[str]
) -> None:
    # given
    token = await signed_in_portfolio(gql)
    # when: all of it (5 grants a listing, under the 20 asked for)
    built, resolved = await both_ways(gql, monkeypatch, PAGE, {"first": 20, "grants": 20}, token)
    # then
    assert len(statements) == 1
    assert built == resolved
    listings = [e["node"] for e in built["data"]["me"]["homes"]["edges"]]
    assert [n["lockbox"] is None for n in listings].count(True) == 1
    grants = [g["node"] for n in listings for g in n["grants"]["edges"]]
    assert {g["status"] for g in grants} == {"SCHEDULED", "ACTIVE", "EXPIRED", "REVOKED"}
    assert any(g["startsAt"] == "2030-01-02T03:04:05+00:00" for g in grants)
    assert any("." in g["createdAt"] for g in grants)  # microseconds kept
    grantees = [g["grantee"] for g in grants]
    assert None in grantees  # nobody yet, and the agent's grant: not a Contractor
    assert any(p and p["lastName"] == 'O"Brien \\ \n' for p in grantees)
    # per listing: nobody yet, an agent and a contractor deleted since have no grantee
    assert grantees.count(None) == len(grantees) // 2
    assert all(p["firstName"] for p in grantees if p)


async def test_on_sqlite_the_page_is_read_on_the_event_loop(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, statements: list[str]
) -> None:
    # given: a client that reads on the event loop (SQLite's, models/sqlite_client.py)
    client = connections.get("default")
    if not hasattr(client, "read_now"):
        pytest.skip("a client that reads nothing on the event loop (PostgreSQL)")
    token = await signed_in_portfolio(gql)
    read: list[tuple[str, bool]] = []
    original = type(client).read_now

    def spied(self: Any, sql: str, params: Any) -> Any:
        rows = original(self, sql, params)
        read.append((sql, rows is not None))
        return rows

    monkeypatch.setattr(type(client), "read_now", spied)
    # when
    built, resolved = await both_ways(gql, monkeypatch, PAGE, {"first": 3, "grants": 3}, token)
    # then: the statement (with its SQL functions) was answered there, not in the
    # database's thread
    assert built == resolved and "errors" not in built, built
    assert len(statements) == 1
    assert (statements[0], True) in read


COUNTS = """
query Counts($first: Int, $after: String) {
  me {
    ... on Agent {
      listings(first: $first, after: $after) {
        totalCount
        pageInfo { hasNextPage hasPreviousPage }
      }
      homes: listings(first: $first) {
        __typename
        edges { node { grants(first: 2) { totalCount pageInfo { __typename } } } }
      }
      messages(first: $first) { totalCount }
    }
  }
}
"""


@pytest.mark.parametrize("first", [0, 1, 3, 20])
async def test_selections_that_read_no_rows_both_ways(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, statements: list[str], first: int
) -> None:
    # given: pages where only counts and page flags are asked for, none of the rows
    agent = await portfolio()
    token = await gql.sign_in(agent.email or "")
    cursor = base64.urlsafe_b64encode(b"k:999999").decode()
    # when
    built, resolved = await both_ways(gql, monkeypatch, COUNTS, {"first": first}, token)
    after, after_resolved = await both_ways(
        gql, monkeypatch, COUNTS, {"first": first, "after": cursor}, token
    )
    # then: one object each, as the resolvers answer
    assert built == resolved and "errors" not in built, built
    assert after == after_resolved and "errors" not in after, after
    assert len(statements) == 6
    listings = built["data"]["me"]["listings"]
    assert listings["totalCount"] == 5
    assert listings["pageInfo"] == {"hasNextPage": first < 5, "hasPreviousPage": False}
    assert after["data"]["me"]["listings"]["pageInfo"]["hasPreviousPage"] is True


async def test_times_given_in_other_offsets_both_ways(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, statements: list[str]
) -> None:
    # given: grants whose times were given (and stored, on SQLite) in other UTC offsets,
    # so that comparing them as written with now would get their status wrong
    agent = await make_agent()
    listing = await make_listing(agent)
    lockbox = await make_lockbox(agent, listing)
    now = clock.now()
    east, west = timezone(timedelta(hours=9)), timezone(timedelta(hours=-5))
    windows = [
        (now + timedelta(minutes=30), now + timedelta(hours=2), west),  # scheduled
        (now - timedelta(hours=2), now - timedelta(minutes=30), east),  # expired
        (now - timedelta(minutes=30), now + timedelta(minutes=30), west),  # active
    ]
    for starts_at, ends_at, zone in windows:
        grant = await make_grant(agent, listing, lockbox)
        grant.starts_at = starts_at.astimezone(zone)
        grant.ends_at = ends_at.replace(microsecond=123456).astimezone(zone)
        await grant.save()
    token = await gql.sign_in(agent.email or "")
    # when
    built, resolved = await both_ways(gql, monkeypatch, PAGE, {"first": 5, "grants": 5}, token)
    # then: the statement answered, as the resolvers do, in UTC and by the real instant
    assert len(statements) == 1
    assert built == resolved and "errors" not in built, built
    (edge,) = built["data"]["me"]["homes"]["edges"]
    grants = [g["node"] for g in reversed(edge["node"]["grants"]["edges"])]
    assert [g["status"] for g in grants] == ["SCHEDULED", "EXPIRED", "ACTIVE"]
    assert all(g["endsAt"].endswith(".123456+00:00") for g in grants)
    assert edge["node"]["lockbox"]["bleCapable"] is True


@pytest.mark.parametrize(("first", "grants"), [(2, 2), (0, 1), (None, None), (100, 0)])
async def test_pages_and_cursors_both_ways(
    gql: GraphQLClient,
    monkeypatch: pytest.MonkeyPatch,
    statements: list[str],
    first: int | None,
    grants: int | None,
) -> None:
    # given
    token = await signed_in_portfolio(gql)
    variables: dict[str, Any] = {"first": first, "grants": grants}
    # when: each page, following the cursors at both levels
    pages = 0
    while pages < 40:
        built, resolved = await both_ways(gql, monkeypatch, PAGE, variables, token)
        assert built == resolved
        assert "errors" not in built, built
        homes = built["data"]["me"]["homes"]
        pages += 1
        inner = homes["edges"][0]["node"]["grants"]["pageInfo"] if homes["edges"] else None
        if inner and inner["hasNextPage"] and inner["endCursor"]:
            variables = {**variables, "grantsAfter": inner["endCursor"]}
            continue
        if not homes["pageInfo"]["hasNextPage"] or not homes["pageInfo"]["endCursor"]:
            break
        variables = {**variables, "after": homes["pageInfo"]["endCursor"], "grantsAfter": None}
    # then
    assert len(statements) == pages


@pytest.mark.parametrize(
    ("variables", "extra"),
    [
        ({"first": 101}, ""),  # the resolver refuses: INVALID_INPUT
        ({"first": -1}, ""),
        ({"after": "not a cursor"}, ""),
        ({"grantsAfter": base64.urlsafe_b64encode(b"x:1").decode()}, ""),
        ({"first": 5}, "search"),
        ({"first": 5}, "status"),
    ],
)
async def test_what_it_does_not_reproduce_is_left_to_the_resolvers(
    gql: GraphQLClient,
    monkeypatch: pytest.MonkeyPatch,
    statements: list[str],
    variables: dict[str, Any],
    extra: str,
) -> None:
    # given
    token = await signed_in_portfolio(gql)
    query = PAGE
    if extra == "search":
        query = query.replace("after: $after)", 'after: $after, search: "Way")')
    if extra == "status":
        query = query.replace("after: $grantsAfter)", "after: $grantsAfter, status: [ACTIVE])")
    # when
    built, resolved = await both_ways(gql, monkeypatch, query, variables, token)
    # then
    assert statements == []
    assert built == resolved
    if not extra:
        assert built["errors"][0]["extensions"]["code"] == "INVALID_INPUT", built
    else:
        assert "errors" not in built and built["data"]["me"]["homes"]["edges"]


async def test_a_field_it_does_not_map_leaves_the_page_to_the_resolvers(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, statements: list[str]
) -> None:
    # given
    token = await signed_in_portfolio(gql)
    query = PAGE.replace("again: grantee { id }", "again: grantee { id } listing { id }")
    # when
    built, resolved = await both_ways(gql, monkeypatch, query, {"first": 2}, token)
    # then
    assert statements == []
    assert built == resolved and "errors" not in built


async def test_another_agents_listings_stay_forbidden(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, statements: list[str]
) -> None:
    # given: a contractor holding a grant, asking for the granting agent's listings
    owner = await portfolio()
    contractor = await Account.filter(first_name="Ray").first()
    assert contractor is not None
    token = await gql.sign_in(contractor.email or "")
    query = """
    query Theirs {
      me { ... on Contractor { grants(first: 1) { edges { node {
        grantedBy { id listings(first: 5) { edges { node { id mlsNumber } } } }
      } } } } }
    }"""
    asked: list[int] = []
    many, allowed = page_sql.ROOTS[("Agent", "listings")]

    def spied(source: Any, context: Any) -> bool:
        asked.append(source.pk)
        return allowed(source, context)

    monkeypatch.setitem(page_sql.ROOTS, ("Agent", "listings"), (many, spied))
    # when
    built, resolved = await both_ways(gql, monkeypatch, query, {}, token)
    # then: the statement was compiled for that field, but never run for someone else
    assert asked == [owner.id]
    assert statements == []
    assert built == resolved
    assert "M-0" not in str(built)
    assert built["errors"][0]["extensions"]["code"] == "FORBIDDEN", built
    assert built["errors"][0]["path"][-1] == "listings"


async def test_a_grantees_own_details_are_left_to_the_resolvers(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, statements: list[str]
) -> None:
    # given: the agent's page asking for what is each grantee's own
    token = await signed_in_portfolio(gql)
    grantees = await Account.filter(first_name__in=["Zoë", "Ray"])
    # (their emails are on the page as each grant's granteeEmail, the agent's own record)
    own = [a.phone for a in grantees if a.phone]
    phone = PAGE.replace("again: grantee { id }", "again: grantee { id phone }")
    contact = PAGE.replace("again: grantee { id }", "again: grantee { id email status }")
    # when
    nulls, nulls_resolved = await both_ways(gql, monkeypatch, phone, {"first": 5}, token)
    refused, resolved = await both_ways(gql, monkeypatch, contact, {"first": 5}, token)
    # then: the statement declines; the resolvers answer null (a nullable field) or FORBIDDEN,
    # the same both ways, and nothing of theirs is in the page
    assert statements == []
    assert nulls == nulls_resolved and "errors" not in nulls, nulls
    listings = [e["node"] for e in nulls["data"]["me"]["homes"]["edges"]]
    again = [g["node"]["again"] for n in listings for g in n["grants"]["edges"]]
    assert {p["phone"] for p in again if p} == {None} and len([p for p in again if p]) == 12
    assert refused["data"] == resolved["data"]
    assert sorted(map(str, refused["errors"])) == sorted(map(str, resolved["errors"]))
    assert {e["extensions"]["code"] for e in refused["errors"]} == {"FORBIDDEN"}
    assert not [value for value in own if value in str(nulls) + str(refused)]


MESSAGES = """
query Inbox($first: Int, $after: String, $unread: Boolean) {
  me {
    __typename
    messages(first: $first, after: $after, unreadOnly: $unread) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges { cursor node { __typename id kind title body createdAt readAt } }
    }
  }
}
"""


async def inbox(account: Account) -> None:
    from models.enums import MessageKind
    from models.messages import Message

    for n in range(7):
        message = await Message.create(
            account=account,
            kind=list(MessageKind)[n % len(MessageKind)],
            title=f"Title {n} «»",
            body='Body with "quotes", \\ and \n a newline' if n == 3 else f"Body {n}",
        )
        if n % 2:
            message.read_at = (
                datetime(2026, 1, 1, 12, 0, 0, n, tzinfo=UTC)
                if n == 1
                else (datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC))
            )
            await message.save()


async def test_the_message_center_both_ways_page_by_page(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, statements: list[str]
) -> None:
    # given: messages read (with and without microseconds) and unread
    contractor = await make_contractor()
    await inbox(contractor)
    await inbox(await make_contractor())  # someone else's, never shown
    token = await gql.sign_in(contractor.email or "")
    variables: dict[str, Any] = {"first": 3}
    # when: every page
    seen: list[str] = []
    while len(statements) < 10:
        built, resolved = await both_ways(gql, monkeypatch, MESSAGES, variables, token)
        assert built == resolved
        assert "errors" not in built, built
        page = built["data"]["me"]["messages"]
        seen += [e["node"]["title"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        variables = {**variables, "after": page["pageInfo"]["endCursor"]}
    # then
    assert len(statements) == 3
    assert seen == [f"Title {n} «»" for n in reversed(range(7))]
    assert page["totalCount"] == 7


async def test_unread_only_and_others_messages_are_left_to_the_resolvers(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, statements: list[str]
) -> None:
    # given: an agent whose grant reaches a contractor with messages
    agent = await portfolio()
    contractor = await Account.filter(first_name="Ray").first()
    assert contractor is not None
    await inbox(contractor)
    token = await gql.sign_in(agent.email or "")
    theirs = """
    query Theirs {
      me { ... on Agent { listings(first: 1) { edges { node { grants(first: 5) { edges { node {
        grantee { messages(first: 5) { edges { node { title } } } }
      } } } } } } } }
    }"""
    # when
    unread, unread_resolved = await both_ways(gql, monkeypatch, MESSAGES, {"unread": True}, token)
    built, resolved = await both_ways(gql, monkeypatch, theirs, {}, token)
    # then: the filter is the resolvers'; another account's messages are FORBIDDEN
    assert statements == []
    assert unread == unread_resolved and "errors" not in unread
    # (errors of concurrent fields come in the order they happened)
    assert built["data"] == resolved["data"]
    assert sorted(map(str, built["errors"])) == sorted(map(str, resolved["errors"]))
    assert "Title" not in str(built)
    assert {e["extensions"]["code"] for e in built["errors"]} == {"FORBIDDEN"}, built


async def test_a_field_with_a_permission_class_is_left_to_its_resolver(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, statements: list[str]
) -> None:
    # given: a mapped field that (from now on) declares a permission class
    from strawberry.permission import BasePermission

    from schema.listings import Listing

    class Anyone(BasePermission):
        def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
            return True

    definition = next(
        f
        for f in Listing.__strawberry_definition__.fields  # type: ignore[attr-defined]
        if f.python_name == "mls_number"
    )
    monkeypatch.setattr(definition, "permission_classes", [Anyone])
    token = await signed_in_portfolio(gql)
    # when
    built, resolved = await both_ways(gql, monkeypatch, PAGE, {"first": 2}, token)
    # then: a statement would skip the check, so the resolvers answer
    assert statements == []
    assert built == resolved and "errors" not in built
