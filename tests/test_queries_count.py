"""No N+1: a listings page with lockboxes, grants and grantees costs the same SQL for 2 or 10."""

from __future__ import annotations

from typing import Any, TypeVar

from models.accounts import Account
from tests.factories import (
    GraphQLClient,
    make_agent,
    make_contractor,
    make_grant,
    make_listing,
    make_lockbox,
)
from tests.sql_count import StatementCounter

T = TypeVar("T")

LISTINGS_PAGE = """
{
  me {
    ... on Agent {
      listings(first: 50) {
        edges {
          node {
            lockbox { serialNumber }
            grants(first: 20) { edges { node { grantee { firstName } status } } }
          }
        }
      }
    }
  }
}
"""


async def portfolio(agent: Account, listings: int) -> None:
    contractors = [await make_contractor(first_name=f"C{n}") for n in range(3)]
    for n in range(listings):
        listing = await make_listing(agent)
        lockbox = await make_lockbox(agent, listing=listing)
        for contractor in contractors[: 1 + n % 3]:
            await make_grant(agent, listing, lockbox, contractor, starts_in=3600 * (n - 5))
        await make_grant(agent, listing, lockbox, None)  # an invitation still pending


async def statements_for(
    gql: GraphQLClient, sql: StatementCounter, listings: int
) -> tuple[int, dict[str, Any]]:
    agent = await make_agent()
    await portfolio(agent, listings)
    token = await gql.sign_in(agent.email or "")
    data = await sql.count(gql(LISTINGS_PAGE, token=token))
    return len(sql.statements), data


async def test_listings_page_costs_the_same_for_2_and_10_listings(
    gql: GraphQLClient, sql: StatementCounter
) -> None:
    # given / when
    small, small_data = await statements_for(gql, sql, 2)
    large, large_data = await statements_for(gql, sql, 10)
    # then
    assert len(small_data["me"]["listings"]["edges"]) == 2
    edges = large_data["me"]["listings"]["edges"]
    assert len(edges) == 10
    assert all(e["node"]["lockbox"]["serialNumber"] for e in edges)
    grantees = [g["node"]["grantee"] for e in edges for g in e["node"]["grants"]["edges"]]
    assert None in grantees and {"firstName": "C0"} in grantees
    assert small > 0, "the counter must see the request's statements"
    assert small == large, sql.statements
    assert large <= 8, sql.statements
