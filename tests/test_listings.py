"""Listings and My Lockboxes: adding listings, assigning lockboxes, and who may see what."""

from __future__ import annotations

from datetime import timedelta

from core import clock
from core.ids import to_global_id
from models.enums import ListingSource
from models.grants import Grant
from models.listings import Listing, Lockbox
from tests.factories import (
    GraphQLClient,
    make_agent,
    make_contractor,
    make_listing,
    make_lockbox,
    make_region,
)
from tests.rows import table_counts

ADD_LISTING = """
mutation($input: AddListingInput!) {
  addListing(input: $input) {
    listing {
      id mlsNumber status source onListingSince
      address { line1 line2 city state postalCode }
      agent { keyId }
      lockbox { id }
      region { code }
      grants { totalCount }
      accessEvents { totalCount }
    }
    userErrors { code field message }
  }
}
"""
LISTINGS = """
query($search: String) {
  me { ... on Agent { listings(search: $search) { totalCount edges { node { id mlsNumber } } } } }
}
"""
NODE = "query($id: ID!) { node(id: $id) { id __typename } }"
LOCKBOX_BY_SERIAL = """
query($serial: String!) { lockboxBySerial(serialNumber: $serial) { id serialNumber assignedTo { keyId } } }
"""
ASSIGN = """
mutation($serial: String!) {
  assignLockbox(input: {serialNumber: $serial}) {
    lockbox { id serialNumber bleCapable model assignedTo { keyId } }
    userErrors { code field }
  }
}
"""
UNASSIGN = """
mutation($id: ID!) {
  unassignLockbox(input: {lockboxId: $id}) {
    lockbox { id assignedTo { keyId } listing { id } onListingSince region { code } }
    userErrors { code field }
  }
}
"""
PUT_ON_LISTING = """
mutation($listing: ID!, $lockbox: ID!, $since: Date!, $region: String!) {
  assignLockboxToListing(input: {listingId: $listing, lockboxId: $lockbox,
                                 onListingSince: $since, regionCode: $region}) {
    listing {
      id onListingSince region { code name timeZone }
      lockbox { serialNumber onListingSince listing { id } region { code } }
    }
    userErrors { code field }
  }
}
"""
MY_LOCKBOXES = (
    "{ me { ... on Agent { lockboxes { totalCount edges { node { serialNumber } } } } } }"
)


def address(**changes: str) -> dict[str, object]:
    fields = {"line1": "12 Elm Street", "city": "Cincinnati", "state": "OH", "postalCode": "45202"}
    return {"address": {**fields, **changes}}


async def test_add_listing_by_hand_shows_every_field(gql: GraphQLClient) -> None:
    # given
    agent = await make_agent()
    token = await gql.sign_in(agent.email or "")
    # when
    data = await gql(
        ADD_LISTING,
        {"input": {**address(line2="Unit 3"), "mlsNumber": "CIN123", "status": "COMING_SOON"}},
        token=token,
    )
    # then
    payload = data["addListing"]
    assert payload["userErrors"] == []
    listing = payload["listing"]
    assert listing["source"] == "MANUAL"
    assert listing["status"] == "COMING_SOON"
    assert listing["mlsNumber"] == "CIN123"
    assert listing["address"] == {
        "line1": "12 Elm Street",
        "line2": "Unit 3",
        "city": "Cincinnati",
        "state": "OH",
        "postalCode": "45202",
    }
    assert listing["agent"] == {"keyId": agent.key_id}
    assert listing["lockbox"] is None and listing["region"] is None
    assert listing["onListingSince"] is None
    assert listing["grants"] == {"totalCount": 0}
    assert listing["accessEvents"] == {"totalCount": 0}
    row = await Listing.get(agent_id=agent.id)
    assert row.source == ListingSource.MANUAL


async def test_listings_search_by_address_or_mls_number(gql: GraphQLClient) -> None:
    # given
    agent = await make_agent()
    await make_listing(agent, line1="1 Oak Road", mls_number="A-1")
    await make_listing(agent, line1="2 Pine Road", mls_number="B-2")
    token = await gql.sign_in(agent.email or "")
    # when
    by_street = (await gql(LISTINGS, {"search": "oak"}, token=token))["me"]["listings"]
    by_mls = (await gql(LISTINGS, {"search": "B-2"}, token=token))["me"]["listings"]
    everything = (await gql(LISTINGS, {}, token=token))["me"]["listings"]
    # then
    assert [e["node"]["mlsNumber"] for e in by_street["edges"]] == ["A-1"]
    assert [e["node"]["mlsNumber"] for e in by_mls["edges"]] == ["B-2"]
    assert everything["totalCount"] == 2


async def test_add_listing_refuses_bad_addresses_and_changes_nothing(gql: GraphQLClient) -> None:
    # given
    agent = await make_agent()
    await make_listing(agent, mls_number="TAKEN")
    token = await gql.sign_in(agent.email or "")
    before = await table_counts()
    bad_inputs = [
        (address(line1="   "), ["input", "address", "line1"]),
        (address(city="x" * 101), ["input", "address", "city"]),
        (address(postalCode=""), ["input", "address", "postalCode"]),
        ({**address(), "mlsNumber": "TAKEN"}, ["input", "mlsNumber"]),
    ]
    for variables, field in bad_inputs:
        # when
        data = await gql(ADD_LISTING, {"input": variables}, token=token)
        # then
        payload = data["addListing"]
        assert payload["listing"] is None
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
            ("INVALID_INPUT", field)
        ]
    assert await table_counts() == before


async def test_contractor_cannot_add_a_listing(gql: GraphQLClient) -> None:
    # given
    contractor = await make_contractor()
    token = await gql.sign_in(contractor.email or "")
    # when
    body = await gql.raw(ADD_LISTING, {"input": address()}, token=token)
    # then
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await Listing.all().count() == 0


async def test_listing_node_is_only_the_listing_agents(gql: GraphQLClient) -> None:
    # given
    alice, bob = await make_agent(), await make_agent()
    contractor = await make_contractor()
    listing = await make_listing(alice)
    listing_id = to_global_id("Listing", listing.id)
    alice_token = await gql.sign_in(alice.email or "")
    bob_token = await gql.sign_in(bob.email or "")
    contractor_token = await gql.sign_in(contractor.email or "")
    # when
    mine = (await gql(NODE, {"id": listing_id}, token=alice_token))["node"]
    bobs_view = (await gql(NODE, {"id": listing_id}, token=bob_token))["node"]
    contractors_view = (await gql(NODE, {"id": listing_id}, token=contractor_token))["node"]
    bobs_listings = (await gql(LISTINGS, {}, token=bob_token))["me"]["listings"]
    # then
    assert mine == {"id": listing_id, "__typename": "Listing"}
    assert bobs_view is None
    assert contractors_view is None
    assert bobs_listings["totalCount"] == 0


async def test_lockbox_by_serial_shows_unassigned_or_own_only(gql: GraphQLClient) -> None:
    # given
    alice, bob = await make_agent(), await make_agent()
    free = await make_lockbox(serial_number="FREE0001")
    alices = await make_lockbox(alice, serial_number="ALICE001")
    await make_lockbox(bob, serial_number="BOB00001")
    token = await gql.sign_in(alice.email or "")
    contractor = await make_contractor()
    contractor_token = await gql.sign_in(contractor.email or "")

    async def lookup(serial: str, as_token: str = token) -> object:
        return (await gql(LOCKBOX_BY_SERIAL, {"serial": serial}, token=as_token))["lockboxBySerial"]

    # when / then
    assert await lookup("FREE0001") == {
        "id": to_global_id("Lockbox", free.id),
        "serialNumber": "FREE0001",
        "assignedTo": None,
    }
    assert await lookup(" ALICE001 ") == {
        "id": to_global_id("Lockbox", alices.id),
        "serialNumber": "ALICE001",
        "assignedTo": {"keyId": alice.key_id},
    }
    assert await lookup("BOB00001") is None
    assert await lookup("NOPE") is None
    assert await lookup("FREE0001", contractor_token) is None


async def test_assign_lockbox_by_serial(gql: GraphQLClient) -> None:
    # given
    alice, bob = await make_agent(), await make_agent()
    await make_lockbox(serial_number="FREE0001")
    await make_lockbox(bob, serial_number="BOB00001")
    token = await gql.sign_in(alice.email or "")
    # when
    ok = (await gql(ASSIGN, {"serial": "FREE0001"}, token=token))["assignLockbox"]
    again = (await gql(ASSIGN, {"serial": "FREE0001"}, token=token))["assignLockbox"]
    taken = (await gql(ASSIGN, {"serial": "BOB00001"}, token=token))["assignLockbox"]
    unknown = (await gql(ASSIGN, {"serial": "NOPE"}, token=token))["assignLockbox"]
    # then
    assert ok["userErrors"] == []
    assert ok["lockbox"]["assignedTo"] == {"keyId": alice.key_id}
    assert again["userErrors"] == []
    assert taken == {
        "lockbox": None,
        "userErrors": [{"code": "LOCKBOX_UNAVAILABLE", "field": ["input", "serialNumber"]}],
    }
    assert unknown["userErrors"] == [{"code": "NOT_FOUND", "field": ["input", "serialNumber"]}]
    assert (await Lockbox.get(serial_number="BOB00001")).assigned_to_id == bob.id  # type: ignore[attr-defined]
    mine = (await gql(MY_LOCKBOXES, token=token))["me"]["lockboxes"]
    assert mine == {"totalCount": 1, "edges": [{"node": {"serialNumber": "FREE0001"}}]}


async def test_unassign_refused_while_grants_are_live_then_clears_the_listing(
    gql: GraphQLClient,
) -> None:
    # given a lockbox on a listing with a scheduled grant
    agent = await make_agent()
    listing = await make_listing(agent)
    lockbox = await make_lockbox(agent, listing=listing)
    now = clock.now()
    await Grant.create(
        listing=listing,
        lockbox=lockbox,
        granted_by=agent,
        grantee_email="c@example.com",
        starts_at=now + timedelta(hours=1),
        ends_at=now + timedelta(hours=3),
    )
    token = await gql.sign_in(agent.email or "")
    lockbox_id = to_global_id("Lockbox", lockbox.id)
    before = await table_counts()
    # when
    refused = (await gql(UNASSIGN, {"id": lockbox_id}, token=token))["unassignLockbox"]
    # then
    assert refused == {
        "lockbox": None,
        "userErrors": [{"code": "LOCKBOX_UNAVAILABLE", "field": ["input", "lockboxId"]}],
    }
    assert await table_counts() == before
    assert (await Lockbox.get(id=lockbox.id)).listing_id == listing.id  # type: ignore[attr-defined]
    # when the grant is over
    clock.travel(3 * 3600 + 1)
    done = (await gql(UNASSIGN, {"id": lockbox_id}, token=token))["unassignLockbox"]
    # then
    assert done["userErrors"] == []
    assert done["lockbox"] == {
        "id": lockbox_id,
        "assignedTo": None,
        "listing": None,
        "onListingSince": None,
        "region": None,
    }


async def test_unassign_someone_elses_lockbox_is_not_found(gql: GraphQLClient) -> None:
    alice, bob = await make_agent(), await make_agent()
    lockbox = await make_lockbox(bob)
    token = await gql.sign_in(alice.email or "")
    data = await gql(UNASSIGN, {"id": to_global_id("Lockbox", lockbox.id)}, token=token)
    assert data["unassignLockbox"]["userErrors"] == [
        {"code": "NOT_FOUND", "field": ["input", "lockboxId"]}
    ]
    assert (await Lockbox.get(id=lockbox.id)).assigned_to_id == bob.id  # type: ignore[attr-defined]


async def test_put_lockbox_on_listing_and_move_another_onto_it(gql: GraphQLClient) -> None:
    # given
    agent = await make_agent()
    await make_region("CIN", "America/New_York")
    listing = await make_listing(agent)
    first, second = await make_lockbox(agent), await make_lockbox(agent)
    token = await gql.sign_in(agent.email or "")
    listing_id = to_global_id("Listing", listing.id)

    async def put(lockbox: Lockbox, since: str) -> dict[str, object]:
        variables = {
            "listing": listing_id,
            "lockbox": to_global_id("Lockbox", lockbox.id),
            "since": since,
            "region": "CIN",
        }
        payload: dict[str, object] = (await gql(PUT_ON_LISTING, variables, token=token))[
            "assignLockboxToListing"
        ]
        return payload

    # when
    placed = await put(first, "2026-03-01")
    moved = await put(second, "2026-03-05")
    # then
    assert placed["userErrors"] == []
    assert placed["listing"] == {
        "id": listing_id,
        "onListingSince": "2026-03-01",
        "region": {"code": "CIN", "name": "Region CIN", "timeZone": "America/New_York"},
        "lockbox": {
            "serialNumber": first.serial_number,
            "onListingSince": "2026-03-01",
            "listing": {"id": listing_id},
            "region": {"code": "CIN"},
        },
    }
    assert moved["userErrors"] == []
    assert moved["listing"]["lockbox"]["serialNumber"] == second.serial_number  # type: ignore[index]
    detached = await Lockbox.get(id=first.id)
    assert detached.listing_id is None  # type: ignore[attr-defined]
    assert detached.assigned_to_id == agent.id  # type: ignore[attr-defined]


async def test_put_on_listing_checks_listing_lockbox_and_region(gql: GraphQLClient) -> None:
    # given
    alice, bob = await make_agent(), await make_agent()
    await make_region("CIN")
    mine, bobs_listing = await make_listing(alice), await make_listing(bob)
    my_lockbox, bobs_lockbox = await make_lockbox(alice), await make_lockbox(bob)
    token = await gql.sign_in(alice.email or "")
    before = await table_counts()
    cases = [
        (bobs_listing.id, my_lockbox.id, "CIN", "listingId"),
        (mine.id, bobs_lockbox.id, "CIN", "lockboxId"),
        (mine.id, my_lockbox.id, "NOWHERE", "regionCode"),
    ]
    for listing_pk, lockbox_pk, region, field in cases:
        # when
        variables = {
            "listing": to_global_id("Listing", listing_pk),
            "lockbox": to_global_id("Lockbox", lockbox_pk),
            "since": "2026-03-01",
            "region": region,
        }
        data = await gql(PUT_ON_LISTING, variables, token=token)
        # then
        assert data["assignLockboxToListing"] == {
            "listing": None,
            "userErrors": [{"code": "NOT_FOUND", "field": ["input", field]}],
        }
    assert await table_counts() == before


async def test_lockbox_node_is_only_the_holders(gql: GraphQLClient) -> None:
    alice, bob = await make_agent(), await make_agent()
    lockbox = await make_lockbox(alice)
    lockbox_id = to_global_id("Lockbox", lockbox.id)
    alice_token = await gql.sign_in(alice.email or "")
    bob_token = await gql.sign_in(bob.email or "")
    assert (await gql(NODE, {"id": lockbox_id}, token=alice_token))["node"]["id"] == lockbox_id
    assert (await gql(NODE, {"id": lockbox_id}, token=bob_token))["node"] is None
