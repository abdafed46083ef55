"""A key given out and the lockbox leaving, at the same moment, over a real server: one of the
two wins whole, and never a live grant or a code to come on a lockbox that left."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

import resolvers.codes
import resolvers.grants
from core import clock
from core.ids import to_global_id
from models.grants import Grant, OneDayCodeIssue
from models.listings import Lockbox
from resolvers import grant_status
from tests.factories import (
    GraphQLClient,
    make_agent,
    make_contractor,
    make_listing,
    make_lockbox,
    make_region,
)

GRANT_ACCESS = """
mutation($input: GrantAccessInput!) {
  grantAccess(input: $input) { grant { id } userErrors { code field } }
}
"""
GENERATE = """
mutation($input: GenerateOneDayCodeInput!) {
  generateOneDayCode(input: $input) { oneDayCode { validOn } userErrors { code field } }
}
"""
UNASSIGN = """
mutation($id: ID!) { unassignLockbox(input: {lockboxId: $id}) { userErrors { code field } } }
"""
MOVE = """
mutation($listing: ID!, $lockbox: ID!) {
  assignLockboxToListing(input: {listingId: $listing, lockboxId: $lockbox,
                                 onListingSince: "2030-01-01", regionCode: "CIN"}) {
    userErrors { code field }
  }
}
"""
# Longer than a request takes on a busy machine: the lockbox leaves while the key is made.
HELD = 0.5


def slowed(monkeypatch: pytest.MonkeyPatch, module: Any) -> asyncio.Event:
    """The lockbox's time zone, looked up slowly: it is read between the lockbox check and
    the write, where the other request could slip in. The event is set once it is asked."""
    real = module.zone_of
    reached = asyncio.Event()

    async def zone_of(lockbox: Any) -> str:
        reached.set()
        await asyncio.sleep(HELD)
        return str(await real(lockbox))

    monkeypatch.setattr(module, "zone_of", zone_of)
    return reached


async def give_key(
    gql: GraphQLClient, kind: str, token: str, listing_id: str, lockbox_id: str
) -> Any:
    if kind == "grant":
        starts = clock.now() + timedelta(hours=1)
        variables = {
            "listingId": listing_id,
            "granteeEmail": "c@example.com",
            "startsAt": starts.isoformat(),
            "endsAt": (starts + timedelta(hours=2)).isoformat(),
            "pin": "1234",
        }
        return (await gql(GRANT_ACCESS, {"input": variables}, token=token))["grantAccess"]
    variables = {"lockboxId": lockbox_id, "date": clock.now().date().isoformat(), "pin": "1234"}
    return (await gql(GENERATE, {"input": variables}, token=token))["generateOneDayCode"]


@pytest.mark.parametrize(
    ("key", "leaving"),
    [("grant", "unassign"), ("grant", "move"), ("code", "unassign"), ("code", "move")],
)
async def test_a_key_given_while_the_lockbox_leaves_keeps_it_where_it_is(
    live_gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, key: str, leaving: str
) -> None:
    # given: the agent's lockbox on a listing, another listing to move it to
    agent = await make_agent()
    await make_region("CIN", "UTC")
    listing = await make_listing(agent, line1="12 Elm Street")
    elsewhere = await make_listing(agent, line1="99 Oak Avenue")
    lockbox = await make_lockbox(agent, listing=listing)
    await make_contractor(email="c@example.com")
    token = await live_gql.sign_in(agent.email or "")
    listing_id, lockbox_id = (
        to_global_id("Listing", listing.id),
        to_global_id("Lockbox", lockbox.id),
    )
    reached = slowed(monkeypatch, resolvers.grants if key == "grant" else resolvers.codes)

    async def leave() -> Any:
        await reached.wait()  # the key's request has read the lockbox and not yet written
        if leaving == "unassign":
            return (await live_gql(UNASSIGN, {"id": lockbox_id}, token=token))["unassignLockbox"]
        variables = {"listing": to_global_id("Listing", elsewhere.id), "lockbox": lockbox_id}
        return (await live_gql(MOVE, variables, token=token))["assignLockboxToListing"]

    # when: both requests at once, each on its own connection
    given, left = await asyncio.gather(
        give_key(live_gql, key, token, listing_id, lockbox_id), leave()
    )
    # then: the key went out first, so the lockbox stays on its listing with its agent
    assert given["userErrors"] == []
    field = ["input", "lockboxId"]
    assert left["userErrors"] == [{"code": "LOCKBOX_UNAVAILABLE", "field": field}]
    row = await Lockbox.get(id=lockbox.id)
    assert (row.assigned_to_id, row.listing_id) == (agent.id, listing.id)  # type: ignore[attr-defined]
    live = Grant.filter(grant_status.not_over(clock.now()), lockbox_id=lockbox.id)
    assert await live.count() == (1 if key == "grant" else 0)
    assert await OneDayCodeIssue.filter(lockbox_id=lockbox.id).count() == (key == "code")
