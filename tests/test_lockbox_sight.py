"""What a lockbox shows of its present (where it is, who holds it, its last use) to whoever
reaches it through an older record: a grant, an access event, a One Day Code issued."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest

from core import clock
from core.ids import to_global_id
from models.access import AccessEvent
from models.accounts import Account
from models.enums import AccessMethod, AccessOutcome
from models.grants import Grant, OneDayCodeIssue
from models.listings import Listing, Lockbox
from tests.factories import (
    GraphQLClient,
    both_ways,
    make_agent,
    make_contractor,
    make_grant,
    make_listing,
    make_lockbox,
    make_region,
)

PRESENT = """
fragment Present on Lockbox {
  serialNumber listing { id } assignedTo { firstName } onListingSince region { code } lastAccessAt
}
"""
GRANTEE_READS = (
    """
query Grantee($from: DateTime!, $to: DateTime!) {
  me { ... on Contractor { grants { edges { node { lockbox { ...Present } } } } } }
  accessLog(from: $from, to: $to) { edges { node { lockbox { ...Present } } } }
}
"""
    + PRESENT
)
AGENT_READS = (
    """
query Agent($grant: ID!, $listing: ID!) {
  grant: node(id: $grant) { ... on Grant { lockbox { ...Present } } }
  listing: node(id: $listing) { ... on Listing {
    grants { edges { node { lockbox { ...Present } } } }
    oneDayCodes { edges { node { lockbox { ...Present } } } }
  } }
}
"""
    + PRESENT
)
HOLDER_READS = "query Holder($id: ID!) { node(id: $id) { ...Present } }" + PRESENT
UNASSIGN = """
mutation($id: ID!) { unassignLockbox(input: {lockboxId: $id}) { userErrors { code } } }
"""
ASSIGN = """
mutation($serial: String!) { assignLockbox(input: {serialNumber: $serial}) { userErrors { code } } }
"""
PUT_ON_LISTING = """
mutation($listing: ID!, $lockbox: ID!) {
  assignLockboxToListing(input: {listingId: $listing, lockboxId: $lockbox,
                                 onListingSince: "2031-05-01", regionCode: "DEN"}) {
    userErrors { code }
  }
}
"""
NOTHING = {
    "listing": None,
    "assignedTo": None,
    "onListingSince": None,
    "region": None,
    "lastAccessAt": None,
}


@dataclass
class Scene:
    agent: Account
    contractor: Account
    listing: Listing
    lockbox: Lockbox
    grant: Grant

    @property
    def lockbox_id(self) -> str:
        return to_global_id("Lockbox", self.lockbox.id)


async def make_scene() -> Scene:
    """Alice's contractor visited 12 Elm Street under a grant that is over; Alice also gave
    a One Day Code for the lockbox there."""
    agent = await make_agent(first_name="Alice")
    contractor = await make_contractor(first_name="Cleo")
    listing = await make_listing(agent, line1="12 Elm Street")
    lockbox = await make_lockbox(agent, listing=listing, on_listing_since=date(2030, 1, 2))
    grant = await make_grant(agent, listing, lockbox, contractor, starts_in=-3 * 3600, hours=1)
    visited = clock.now() - timedelta(hours=2, minutes=30)
    await AccessEvent.create(
        lockbox=lockbox,
        listing=listing,
        grant=grant,
        actor=contractor,
        actor_name=contractor.full_name,
        method=AccessMethod.BLE_CREDENTIAL,
        outcome=AccessOutcome.OPENED,
        occurred_at=visited,
    )
    await OneDayCodeIssue.create(
        lockbox=lockbox,
        agent=agent,
        listing_id=listing.id,
        valid_on=clock.now().date() - timedelta(days=2),
    )
    await Lockbox.filter(id=lockbox.id).update(last_access_at=visited)
    return Scene(agent, contractor, listing, lockbox, grant)


async def hand_on(gql: GraphQLClient, s: Scene) -> Account:
    """Alice gives the lockbox up; Bob takes it to his own house and opens it there."""
    alice = await gql.sign_in(s.agent.email or "")
    assert (await gql(UNASSIGN, {"id": s.lockbox_id}, token=alice))["unassignLockbox"] == {
        "userErrors": []
    }
    bob = await make_agent(first_name="Bob")
    his_listing = await make_listing(bob, line1="99 Oak Avenue")
    await make_region("DEN", "America/Denver")
    token = await gql.sign_in(bob.email or "")
    assigned = await gql(ASSIGN, {"serial": s.lockbox.serial_number}, token=token)
    assert assigned["assignLockbox"]["userErrors"] == []
    variables = {"listing": to_global_id("Listing", his_listing.id), "lockbox": s.lockbox_id}
    put = await gql(PUT_ON_LISTING, variables, token=token)
    assert put["assignLockboxToListing"]["userErrors"] == []
    await Lockbox.filter(id=s.lockbox.id).update(last_access_at=clock.now())
    return bob


def presents(data: Any) -> list[dict[str, Any]]:
    """Every lockbox in an answer, whatever the path to it."""
    if isinstance(data, dict):
        if "serialNumber" in data:
            return [{k: v for k, v in data.items() if k != "serialNumber"}]
        return [found for value in data.values() for found in presents(value)]
    if isinstance(data, list):
        return [found for value in data for found in presents(value)]
    return []


def window() -> dict[str, str]:
    return {
        "from": (clock.now() - timedelta(days=1)).isoformat(),
        "to": (clock.now() + timedelta(minutes=1)).isoformat(),
    }


async def test_a_grantee_sees_where_the_lockbox_is_while_it_is_there_and_never_its_uses(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    s = await make_scene()
    token = await gql.sign_in(s.contractor.email or "")
    # when: through the plans and through graphql-core alone
    compiled, general = await both_ways(gql, monkeypatch, GRANTEE_READS, window(), token)
    # then: the grant's own listing and its holder, and not when it was last opened
    assert compiled == general
    assert "errors" not in compiled, compiled
    there = {
        "listing": {"id": to_global_id("Listing", s.listing.id)},
        "assignedTo": {"firstName": "Alice"},
        "onListingSince": "2030-01-02",
        "region": {"code": "CIN"},
        "lastAccessAt": None,
    }
    assert presents(compiled["data"]) == [there, there]  # the grant's, the access event's


async def test_a_lockbox_handed_on_tells_its_old_grantee_nothing_of_where_it_went(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the grant is over; the lockbox now sits at Bob's house and was opened there
    s = await make_scene()
    await hand_on(gql, s)
    token = await gql.sign_in(s.contractor.email or "")
    # when
    compiled, general = await both_ways(gql, monkeypatch, GRANTEE_READS, window(), token)
    # then: not Bob's listing, nor Bob, nor when Bob opened it
    assert compiled == general
    assert "errors" not in compiled, compiled
    assert presents(compiled["data"]) == [NOTHING, NOTHING]
    assert "Bob" not in str(compiled) and "DEN" not in str(compiled)


async def test_a_lockbox_handed_on_tells_its_old_holder_nothing_of_where_it_went(
    gql: GraphQLClient,
) -> None:
    # given
    s = await make_scene()
    await hand_on(gql, s)
    token = await gql.sign_in(s.agent.email or "")
    variables = {
        "grant": to_global_id("Grant", s.grant.id),
        "listing": to_global_id("Listing", s.listing.id),
    }
    # when: Alice reads her listing's history, its grant and the code she gave
    body = await gql.raw(AGENT_READS, variables, token=token)
    # then
    assert "errors" not in body, body
    assert presents(body["data"]) == [NOTHING, NOTHING, NOTHING]


async def test_the_holder_and_the_listings_agent_see_all_of_it(gql: GraphQLClient) -> None:
    # given: Bob now holds the lockbox, on his listing
    s = await make_scene()
    bob = await hand_on(gql, s)
    token = await gql.sign_in(bob.email or "")
    # when
    body = await gql.raw(HOLDER_READS, {"id": s.lockbox_id}, token=token)
    # then
    assert "errors" not in body, body
    [seen] = presents(body["data"])
    assert seen["assignedTo"] == {"firstName": "Bob"}
    assert seen["region"] == {"code": "DEN"} and seen["onListingSince"] == "2031-05-01"
    assert seen["listing"] is not None and seen["lastAccessAt"] is not None
