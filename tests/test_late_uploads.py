"""Records uploaded long after they were made go to the listing and agent of their time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from core import clock
from core.ids import to_global_id
from models.access import AccessEvent
from models.accounts import Account
from models.grants import Grant
from models.listings import Lockbox
from models.messages import Message
from tests.factories import GraphQLClient, make_agent, make_listing, make_region
from tests.test_open_e2e import (
    Scene,
    make_grant,
    report,
    scene,
    sign_in_phone,
    tokens_of,
    visit,
)

__all__ = ["scene"]  # the fixture, shared with the end-to-end opening tests

UNASSIGN = """
mutation Unassign($id: ID!) { unassignLockbox(input: {lockboxId: $id}) { userErrors { code } } }
"""
ASSIGN = """
mutation Assign($serial: String!) {
  assignLockbox(input: {serialNumber: $serial}) { userErrors { code } }
}
"""
PUT_ON_LISTING = """
mutation Put($listing: ID!, $lockbox: ID!) {
  assignLockboxToListing(input: {listingId: $listing, lockboxId: $lockbox,
    onListingSince: "2020-01-01", regionCode: "CIN"}) { userErrors { code } }
}
"""
LISTING_EVENTS = """
query Events($id: ID!) {
  node(id: $id) { ... on Listing { accessEvents { edges { node {
    actorName method grant { id granteeEmail } listing { address { line1 } } } } } } }
}
"""
ACCESS_LOG = """
query Log($from: DateTime!, $to: DateTime!) {
  accessLog(from: $from, to: $to) { edges { node { actorName method listing { id } } } }
}
"""


async def _hand_over(gql: GraphQLClient, scene: Scene, to: Account, line1: str) -> Any:
    """The holder gives the lockbox back; another agent takes it to a listing of theirs."""
    lockbox_id = to_global_id("Lockbox", scene.lockbox.id)
    holder = await gql.sign_in(scene.agent.email or "", device_id="holder-desk")
    listing = await make_listing(to, line1=line1)
    await make_region()
    token = await gql.sign_in(to.email or "", device_id="taker-desk")
    answers = [
        await gql(UNASSIGN, {"id": lockbox_id}, token=holder),
        await gql(ASSIGN, {"serial": scene.lockbox.serial_number}, token=token),
        await gql(
            PUT_ON_LISTING,
            {"listing": to_global_id("Listing", listing.id), "lockbox": lockbox_id},
            token=token,
        ),
    ]
    assert all(not next(iter(answer.values()))["userErrors"] for answer in answers)
    return listing


async def _used_messages(account: Account) -> list[str]:
    rows = await Message.filter(account_id=account.id, kind="ACCESS_USED")
    return [row.body for row in rows]


async def test_records_uploaded_after_the_lockbox_changed_hands_stay_with_their_agent(
    scene: Scene, gql: GraphQLClient
) -> None:
    # given the contractor's visit and the agent's own, neither uploaded
    grant = await make_grant(
        scene.agent, scene.contractor, scene.lockbox, timedelta(hours=-1), timedelta(hours=1)
    )
    contractor = await sign_in_phone(gql, scene.contractor)
    await visit(scene, contractor, await tokens_of(gql, contractor))
    alice = await sign_in_phone(gql, scene.agent, device_id="alice-phone")
    await visit(scene, alice, await tokens_of(gql, alice))
    # and, once the grant is over, the lockbox goes to another agent's listing
    clock.travel(2 * 3600)
    bob = await make_agent(first_name="Bob", last_name="Other")
    oak = await _hand_over(gql, scene, bob, "99 Oak Avenue")
    clock.travel(5)
    # when Bob opens it and his phone uploads everything the lockbox held
    bob_phone = await sign_in_phone(gql, bob, device_id="bob-phone")
    _, records = await visit(scene, bob_phone, await tokens_of(gql, bob_phone))
    uploaded = await report(gql, bob_phone.token, scene.lockbox.serial_number, records)
    # then the contractor's visit is filed under the grant's listing and told to its agent
    assert uploaded["accepted"] == 3
    events = await AccessEvent.filter(lockbox_id=scene.lockbox.id).order_by("seq")
    assert [(e.seq, e.listing_id, e.grant_id) for e in events] == [  # type: ignore[attr-defined]
        (1, scene.listing.id, grant.id),
        # the agent's own key, before Bob held the lockbox: where it was is not known
        (2, None, None),
        (3, oak.id, None),
    ]
    [told] = await _used_messages(scene.agent)
    assert "Carl Cleaner" in told and "12 Elm Street" in told
    assert await _used_messages(bob) == []
    # and Bob's listing and Access Log show only his own visit
    listing_id = to_global_id("Listing", oak.id)
    body = await gql(LISTING_EVENTS, {"id": listing_id}, token=bob_phone.token)
    assert [e["node"] for e in body["node"]["accessEvents"]["edges"]] == [
        {
            "actorName": "Bob Other",
            "method": "AGENT_KEY",
            "grant": None,
            "listing": {"address": {"line1": "99 Oak Avenue"}},
        }
    ]
    window = {
        "from": (clock.now() - timedelta(days=1)).isoformat(),
        "to": (clock.now() + timedelta(hours=1)).isoformat(),
    }
    log = await gql(ACCESS_LOG, window, token=bob_phone.token)
    assert [e["node"]["actorName"] for e in log["accessLog"]["edges"]] == ["Bob Other"]


async def test_the_last_access_a_holder_sees_is_from_their_own_time(
    scene: Scene, gql: GraphQLClient
) -> None:
    serial = scene.lockbox.serial_number
    await make_grant(
        scene.agent, scene.contractor, scene.lockbox, timedelta(hours=-1), timedelta(hours=1)
    )
    # given Alice's visit uploaded, and the contractor's made but not yet uploaded
    alice = await sign_in_phone(gql, scene.agent, device_id="alice-phone")
    _, alice_records = await visit(scene, alice, await tokens_of(gql, alice))
    await report(gql, alice.token, serial, alice_records)
    assert (await Lockbox.get(id=scene.lockbox.id)).last_access_at is not None
    contractor = await sign_in_phone(gql, scene.contractor)
    _, records = await visit(scene, contractor, await tokens_of(gql, contractor))
    # when the lockbox goes to Bob
    clock.travel(2 * 3600)
    bob = await make_agent(first_name="Bob", last_name="Other")
    await _hand_over(gql, scene, bob, "99 Oak Avenue")
    # then the time of Alice's last access went with her
    assert (await Lockbox.get(id=scene.lockbox.id)).last_access_at is None
    # and the contractor's visit, uploaded now, is not Bob's lockbox's last access either
    uploaded = await report(gql, contractor.token, serial, records)
    assert uploaded["accepted"] >= 1
    assert (await Lockbox.get(id=scene.lockbox.id)).last_access_at is None
    # while Bob's own visit is (a moment after he took it: records count whole seconds)
    clock.travel(5)
    bob_phone = await sign_in_phone(gql, bob, device_id="bob-phone")
    _, bob_records = await visit(scene, bob_phone, await tokens_of(gql, bob_phone))
    await report(gql, bob_phone.token, serial, bob_records)
    assert (await Lockbox.get(id=scene.lockbox.id)).last_access_at is not None


async def test_an_events_grant_reads_as_null_to_whom_it_is_not_shown(
    scene: Scene, gql: GraphQLClient
) -> None:
    # given an event filed under another agent's listing though its grant is Alice's (as
    # uploads were filed before), and a grant of Alice's on another listing of hers
    grant = await make_grant(
        scene.agent, scene.contractor, scene.lockbox, timedelta(hours=-1), timedelta(hours=1)
    )
    bob = await make_agent(first_name="Bob", last_name="Other")
    oak = await make_listing(bob, line1="99 Oak Avenue")
    await AccessEvent.create(
        lockbox_id=scene.lockbox.id,
        seq=1,
        listing_id=oak.id,
        grant_id=grant.id,
        actor_id=scene.contractor.id,
        actor_name="Carl Cleaner",
        method="BLE_CREDENTIAL",
        outcome="OPENED",
        occurred_at=clock.now(),
    )
    # when Bob and Alice read that listing's events, or Alice the event itself
    bob_token = await gql.sign_in(bob.email or "", device_id="bob-desk")
    listing_id = to_global_id("Listing", oak.id)
    body = await gql(LISTING_EVENTS, {"id": listing_id}, token=bob_token)
    # then Bob sees the visit but not Alice's grant, its grantee or its address
    [event] = [e["node"] for e in body["node"]["accessEvents"]["edges"]]
    assert event["grant"] is None and event["actorName"] == "Carl Cleaner"
    assert await Grant.filter(id=grant.id).exists()
