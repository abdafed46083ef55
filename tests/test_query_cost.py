"""A query whose answer could hold more objects than MAX_COST is refused before it runs, with
INVALID_INPUT: pages inside pages multiply, whether their sizes are literals, variables or
defaults, spread through fragments, asked once more on the admitted path, or subscribed
to; the pages an app asks are answered as before. Against a real server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from graphql import parse
from websockets.asyncio.client import connect

from bench.cases.nested import QUERY as NESTED_PAGE
from core.ids import to_global_id
from schema.cost import MAX_COST, plan
from schema.schema import build_schema
from settings import Settings
from tests.factories import GraphQLClient, make_agent, make_grant, make_listing, make_lockbox
from tests.live import Live

PAGES_IN_PAGES = """
query($id: ID!, $outer: Int!, $inner: Int!) {
  node(id: $id) {
    ... on Listing {
      grants(first: $outer) { edges { node { listing { grants(first: $inner) {
        edges { node { id listing { id } } }
      } } } } }
    }
  }
}
"""
THROUGH_FRAGMENTS = """
query($id: ID!) { node(id: $id) { ...Outer } }
fragment Outer on Listing { grants(first: 100) { edges { node { listing { ...Inner } } } } }
fragment Inner on Listing { grants(first: 100) { edges { node { id } } } }
"""
SUBSCRIBED = """
subscription { messageAdded { grant { listing {
  grants(first: 100) { edges { node { listing { grants(first: 100) { edges { node { id } } } } } } }
} } } }
"""


def refused(body: dict[str, Any]) -> None:
    assert body.get("data") is None, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "INVALID_INPUT"
    assert f"more than {MAX_COST}" in error["message"]


async def a_listing_with_grants(gql: GraphQLClient) -> tuple[str, str]:
    agent = await make_agent()
    listing = await make_listing(agent)
    lockbox = await make_lockbox(agent, listing)
    for _ in range(3):
        await make_grant(agent, listing, lockbox)
    token = await gql.sign_in(agent.email or "")
    return token, to_global_id("Listing", listing.id)


async def test_pages_inside_pages_are_refused_and_small_ones_answered(
    live_gql: GraphQLClient,
) -> None:
    token, listing = await a_listing_with_grants(live_gql)
    # the pages an app asks: answered
    small = {"id": listing, "outer": 20, "inner": 20}
    data = await live_gql(PAGES_IN_PAGES, small, token)
    assert len(data["node"]["grants"]["edges"]) == 3
    # 100 grants, each with its listing's 100 grants: refused
    refused(await live_gql.raw(PAGES_IN_PAGES, {**small, "outer": 100, "inner": 100}, token))


async def test_a_document_admitted_with_small_pages_is_refused_with_large_ones(
    live_gql: GraphQLClient,
) -> None:
    # given a document answered cleanly (so admitted: it skips the pipeline from then on)
    token, listing = await a_listing_with_grants(live_gql)
    small = {"id": listing, "outer": 10, "inner": 10}
    for _ in range(3):
        await live_gql(PAGES_IN_PAGES, small, token)
    # when the same text comes with page sizes whose product is over the limit: refused
    refused(await live_gql.raw(PAGES_IN_PAGES, {**small, "outer": 100, "inner": 100}, token))
    # and the small pages are still answered
    assert (await live_gql(PAGES_IN_PAGES, small, token))["node"] is not None


async def test_fragments_count_where_they_are_spread(live_gql: GraphQLClient) -> None:
    token, listing = await a_listing_with_grants(live_gql)
    refused(await live_gql.raw(THROUGH_FRAGMENTS, {"id": listing}, token))


async def test_a_subscription_that_could_send_too_much_is_refused(
    live: Live, live_gql: GraphQLClient
) -> None:
    token, _ = await a_listing_with_grants(live_gql)
    async with connect(live.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        init = {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBED}})
        )
        async with asyncio.timeout(5):
            frame = json.loads(await ws.recv())
    assert frame["type"] == "error", frame
    assert frame["payload"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert live.app.state.pubsub.subscriber_count() == 0


def test_a_page_of_fifty_listings_with_twenty_grants_each_is_within_the_limit() -> None:
    schema = build_schema(Settings())._schema
    tree = plan(schema, parse(NESTED_PAGE), None)
    cost = sum(child.cost({"first": 50}) for child in tree.children)
    assert 50 * 20 < cost <= MAX_COST
    # and each page multiplies what is under it
    assert sum(child.cost({"first": 100}) for child in tree.children) > 1.9 * cost
