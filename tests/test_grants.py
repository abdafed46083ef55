"""Granting and revoking access: every rule, invitations over real SMTP, history, the Access Log."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core import clock
from core.ids import to_global_id
from core.security import token_digest
from importers.listings import import_listings
from importers.report import ImportReport
from models.access import AccessEvent
from models.accounts import Account, AccountEvent, Invitation
from models.enums import AccessMethod, AccessOutcome, AccountStatus, MessageKind
from models.grants import Grant
from models.listings import Listing, Lockbox
from models.messages import Message
from resolvers.scheduler import StartingNotifier
from tests.factories import (
    GraphQLClient,
    make_agent,
    make_contractor,
    make_grant,
    make_listing,
    make_lockbox,
)
from tests.rows import table_counts
from tests.smtp import SmtpServer, text_body

GRANT_ACCESS = """
mutation($input: GrantAccessInput!) {
  grantAccess(input: $input) {
    grant {
      id granteeEmail status revocable startsAt endsAt createdAt revokedAt
      recurrence { weekdays dailyStart dailyEnd }
      grantee { firstName }
      grantedBy { keyId }
      listing { id }
      lockbox { serialNumber }
      accessEvents { id }
    }
    invitationSent
    userErrors { code field message }
  }
}
"""
REVOKE = """
mutation($id: ID!) {
  revokeAccess(input: {grantId: $id}) {
    grant { id status revocable revokedAt }
    userErrors { code field }
  }
}
"""
MESSAGES = "{ me { messages { edges { node { kind title body grant { id } } } } } }"
NODE_GRANT = """
query($id: ID!) { node(id: $id) { ... on Grant { id granteeEmail listing { id address { line1 } } } } }
"""
NODE = "query($id: ID!) { node(id: $id) { id } }"
LISTING_GRANTS = """
query($id: ID!, $status: [GrantStatus!], $first: Int, $after: String) {
  node(id: $id) {
    ... on Listing {
      grants(first: $first, after: $after, status: $status) {
        totalCount
        pageInfo { hasNextPage endCursor }
        edges { node { id status } }
      }
    }
  }
}
"""
MY_GRANTS = """
query($status: [GrantStatus!]) {
  me { ... on Contractor { grants(status: $status) { totalCount edges { node { id status } } } } }
}
"""
ACCESS_LOG = """
query($from: DateTime!, $to: DateTime!, $first: Int, $after: String) {
  accessLog(from: $from, to: $to, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { id actorName outcome method lockbox { serialNumber } grant { id } } }
  }
}
"""


@dataclass
class Scene:
    agent: Account
    listing: Listing
    lockbox: Lockbox
    token: str

    @property
    def listing_id(self) -> str:
        return to_global_id("Listing", self.listing.id)


async def scene(gql: GraphQLClient, ble: bool = True, with_lockbox: bool = True) -> Scene:
    agent = await make_agent(first_name="Alice", last_name="Agent")
    listing = await make_listing(agent, line1="12 Elm Street")
    lockbox = (
        await make_lockbox(agent, listing=listing, ble=ble)
        if with_lockbox
        else await make_lockbox(agent)
    )
    return Scene(agent, listing, lockbox, await gql.sign_in(agent.email or ""))


def iso(value: datetime) -> str:
    return value.isoformat()


def grant_input(
    listing_id: str, email: str, starts_in: float = 3600, hours: float = 2, **extra: Any
) -> dict[str, Any]:
    starts = clock.now() + timedelta(seconds=starts_in)
    return {
        "input": {
            "listingId": listing_id,
            "granteeEmail": email,
            "startsAt": iso(starts),
            "endsAt": iso(starts + timedelta(hours=hours)),
            "pin": "1234",
            **extra,
        }
    }


async def grant(gql: GraphQLClient, s: Scene, email: str, **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = (
        await gql(GRANT_ACCESS, grant_input(s.listing_id, email, **extra), token=s.token)
    )["grantAccess"]
    return payload


async def test_grant_to_a_contractor_messages_both_sides(gql: GraphQLClient) -> None:
    # given
    s = await scene(gql)
    contractor = await make_contractor(
        email="carl@example.com", first_name="Carl", last_name="Cleaner", phone="+15135550199"
    )
    # when
    payload = await grant(gql, s, "Carl@Example.com ")
    # then
    assert payload["userErrors"] == []
    assert payload["invitationSent"] is False
    made = payload["grant"]
    assert made["granteeEmail"] == "carl@example.com"
    assert made["grantee"] == {"firstName": "Carl"}
    assert made["status"] == "SCHEDULED" and made["revocable"] is True
    assert made["grantedBy"] == {"keyId": s.agent.key_id}
    assert made["listing"] == {"id": s.listing_id}
    assert made["lockbox"] == {"serialNumber": s.lockbox.serial_number}
    assert made["recurrence"] is None and made["revokedAt"] is None
    contractor_token = await gql.sign_in("carl@example.com")
    [theirs] = (await gql(MESSAGES, token=contractor_token))["me"]["messages"]["edges"]
    assert theirs["node"]["kind"] == "ACCESS_GRANTED"
    assert theirs["node"]["title"].startswith("Access")
    assert "12 Elm Street" in theirs["node"]["body"] and "Alice Agent" in theirs["node"]["body"]
    assert theirs["node"]["grant"] == {"id": made["id"]}
    [mine] = (await gql(MESSAGES, token=s.token))["me"]["messages"]["edges"]
    assert mine["node"]["kind"] == "ACCESS_GRANTED"
    assert mine["node"]["title"].startswith("Access")
    text = mine["node"]["title"] + mine["node"]["body"]
    assert "Carl Cleaner" in text
    assert "carl@example.com" not in text.lower() and "5550199" not in text
    granted = (await gql(MY_GRANTS, {}, token=contractor_token))["me"]["grants"]
    assert granted == {
        "totalCount": 1,
        "edges": [{"node": {"id": made["id"], "status": "SCHEDULED"}}],
    }
    assert (await Grant.get()).grantee_id == contractor.id  # type: ignore[attr-defined]


async def test_grant_to_a_new_email_sends_an_invitation(
    gql: GraphQLClient, smtp: SmtpServer
) -> None:
    # given
    s = await scene(gql)
    # when
    payload = await grant(gql, s, "newbie@example.com")
    # then
    assert payload["userErrors"] == []
    assert payload["invitationSent"] is True
    assert payload["grant"]["grantee"] is None
    [mail] = await smtp.wait_for(1)
    assert mail["To"] == "newbie@example.com"
    body = text_body(mail)
    assert "Alice Agent" in body and "12 Elm Street" in body
    match = re.search(r"http://keybin\.test/signup\?invitation=([\w-]+)", body)
    assert match, body
    invitation = await Invitation.get()
    assert invitation.token_hash == token_digest(match.group(1))
    assert invitation.email == "newbie@example.com"
    assert invitation.invited_by_id == s.agent.id  # type: ignore[attr-defined]
    event = await AccountEvent.get(account_id=s.agent.id, kind="INVITED")
    assert event.detail == "invited a contractor"
    [mine] = (await gql(MESSAGES, token=s.token))["me"]["messages"]["edges"]
    assert mine["node"]["kind"] == "ACCESS_GRANTED"
    assert "newbie" not in mine["node"]["title"] + mine["node"]["body"]


async def test_recurrence_is_kept_in_the_regions_weekly_hours(gql: GraphQLClient) -> None:
    s = await scene(gql)
    await make_contractor(email="c@example.com")
    recurrence = {"weekdays": ["TUESDAY", "MONDAY"], "dailyStart": "09:00", "dailyEnd": "12:30"}
    payload = await grant(gql, s, "c@example.com", hours=24 * 7, recurrence=recurrence)
    assert payload["userErrors"] == []
    assert payload["grant"]["recurrence"] == {
        "weekdays": ["MONDAY", "TUESDAY"],
        "dailyStart": "09:00",
        "dailyEnd": "12:30",
    }
    row = await Grant.get()
    assert (row.rec_weekdays, row.rec_start, row.rec_end) == ("1,2", "09:00", "12:30")


async def _other_agents_listing(s: Scene) -> dict[str, Any]:
    other = await make_listing(await make_agent())
    await make_lockbox(listing=other)
    return {"listingId": to_global_id("Listing", other.id)}


async def _suspended(s: Scene) -> dict[str, Any]:
    await Account.filter(id=s.agent.id).update(status=AccountStatus.SUSPENDED)
    return {}


async def _an_agents_email(s: Scene) -> dict[str, Any]:
    await make_agent(email="realtor@example.com")
    return {"granteeEmail": "REALTOR@example.com"}


def _window(starts_in: float, hours: float) -> dict[str, Any]:
    starts = clock.now() + timedelta(seconds=starts_in)
    return {"startsAt": iso(starts), "endsAt": iso(starts + timedelta(hours=hours))}


REFUSALS: list[tuple[str, str, list[str] | None]] = [
    ("other agent's listing", "NOT_FOUND", ["input", "listingId"]),
    ("suspended agent", "ACCOUNT_NOT_ACTIVE", None),
    ("wrong pin", "INVALID_PIN", ["input", "pin"]),
    ("ends before it starts", "INVALID_TIME_WINDOW", ["input", "endsAt"]),
    ("ends in the past", "INVALID_TIME_WINDOW", ["input", "endsAt"]),
    ("starts hours ago", "INVALID_TIME_WINDOW", ["input", "startsAt"]),
    ("starts over a year ahead", "INVALID_TIME_WINDOW", ["input", "startsAt"]),
    ("starts at the end of the calendar", "INVALID_TIME_WINDOW", ["input", "startsAt"]),
    ("longer than 30 days", "INVALID_TIME_WINDOW", ["input", "endsAt"]),
    ("an agent's email", "EMAIL_BELONGS_TO_AGENT", ["input", "granteeEmail"]),
    ("not an email", "INVALID_INPUT", ["input", "granteeEmail"]),
    ("no weekdays", "INVALID_INPUT", ["input", "recurrence", "weekdays"]),
    ("bad start time", "INVALID_INPUT", ["input", "recurrence", "dailyStart"]),
    ("start in other digits", "INVALID_INPUT", ["input", "recurrence", "dailyStart"]),
    ("end in other digits", "INVALID_INPUT", ["input", "recurrence", "dailyEnd"]),
    ("end before start", "INVALID_INPUT", ["input", "recurrence", "dailyEnd"]),
    ("long idempotency key", "INVALID_INPUT", ["input", "idempotencyKey"]),
]


async def _changes_for(case: str, s: Scene) -> dict[str, Any]:
    rec = {"weekdays": ["MONDAY"], "dailyStart": "09:00", "dailyEnd": "12:00"}
    match case:
        case "other agent's listing":
            return await _other_agents_listing(s)
        case "suspended agent":
            return await _suspended(s)
        case "wrong pin":
            return {"pin": "9999"}
        case "ends before it starts":
            return _window(3600, -1)
        case "ends in the past":
            return _window(-7200, 1)
        case "starts hours ago":
            return _window(-3 * 3600, 5)
        case "starts over a year ahead":
            return _window(366 * 24 * 3600, 2)
        case "starts at the end of the calendar":  # in UTC, past year 9999
            return {"startsAt": "9999-12-31T20:00:00-10:00", "endsAt": "9999-12-31T22:00:00-10:00"}
        case "longer than 30 days":
            return _window(3600, 30 * 24 + 1)
        case "an agent's email":
            return await _an_agents_email(s)
        case "not an email":
            return {"granteeEmail": "not-an-email"}
        case "no weekdays":
            return {"recurrence": {**rec, "weekdays": []}}
        case "bad start time":
            return {"recurrence": {**rec, "dailyStart": "9:00"}}
        case "start in other digits":  # Arabic-Indic 9
            return {"recurrence": {**rec, "dailyStart": "0\u0669:00"}}
        case "end in other digits":  # Arabic-Indic 0
            return {"recurrence": {**rec, "dailyEnd": "1\u0660:00"}}
        case "end before start":
            return {"recurrence": {**rec, "dailyEnd": "08:00"}}
        case "long idempotency key":
            return {"idempotencyKey": "k" * 129}
    raise AssertionError(case)


@pytest.mark.parametrize(("case", "code", "field"), REFUSALS, ids=[c for c, _, _ in REFUSALS])
async def test_grant_refusals_change_nothing(
    gql: GraphQLClient, case: str, code: str, field: list[str] | None
) -> None:
    # given
    s = await scene(gql)
    await make_contractor(email="c@example.com")
    variables = grant_input(s.listing_id, "c@example.com")
    variables["input"].update(await _changes_for(case, s))
    before = await table_counts()
    # when
    payload = (await gql(GRANT_ACCESS, variables, token=s.token))["grantAccess"]
    # then
    assert payload["grant"] is None and payload["invitationSent"] is False
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [(code, field)]
    after = await table_counts()
    if code == "INVALID_PIN":  # the miss itself is logged, and nothing else
        before.pop("account_event"), after.pop("account_event")
    assert after == before


@pytest.mark.parametrize(
    ("ble", "code"), [(True, "NO_LOCKBOX_ASSIGNED"), (False, "LOCKBOX_NOT_BLE")]
)
async def test_grant_needs_a_ble_lockbox_on_the_listing(
    gql: GraphQLClient, ble: bool, code: str
) -> None:
    s = await scene(gql, ble=ble, with_lockbox=not ble)
    before = await table_counts()
    payload = await grant(gql, s, "c@example.com")
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        (code, ["input", "listingId"])
    ]
    assert await table_counts() == before


async def test_a_grant_may_start_up_to_a_year_ahead(gql: GraphQLClient) -> None:
    s = await scene(gql)
    await make_contractor(email="c@example.com")
    payload = await grant(gql, s, "c@example.com", starts_in=364 * 24 * 3600)
    assert payload["userErrors"] == [] and payload["grant"]["status"] == "SCHEDULED"


async def test_a_listing_that_moved_to_another_agent_gives_no_keys_to_the_first_agents_lockbox(
    gql: GraphQLClient, tmp_path: Path
) -> None:
    # given: the roster's next listings file names Bob as the listing agent of Alice's
    # listing, with Alice's lockbox still on it
    s = await scene(gql)
    bob = await make_agent(first_name="Bob")
    await make_contractor(email="c@example.com")
    row = {
        "ListingId": s.listing.mls_number,
        "StandardStatus": "Active",
        "UnparsedAddress": s.listing.line1,
        "City": s.listing.city,
        "StateOrProvince": s.listing.state,
        "PostalCode": s.listing.postal_code,
        "ListAgentMlsId": bob.mls_id,
    }
    (tmp_path / "listings.json").write_text(json.dumps({"value": [row]}))
    report = await import_listings(tmp_path / "listings.json", ImportReport())
    assert (report.updated, report.skipped) == (1, [])
    bob_token = await gql.sign_in(bob.email or "")
    before = await table_counts()
    # when: Bob grants access on it
    payload = (
        await gql(GRANT_ACCESS, grant_input(s.listing_id, "c@example.com"), token=bob_token)
    )["grantAccess"]
    # then: the lockbox is Alice's to give keys to, not Bob's
    assert payload["grant"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("NO_LOCKBOX_ASSIGNED", ["input", "listingId"])
    ]
    assert await table_counts() == before


async def test_checks_run_in_order_listing_then_pin_then_lockbox(gql: GraphQLClient) -> None:
    # given a listing without a lockbox
    s = await scene(gql, with_lockbox=False)
    other = await make_listing(await make_agent())
    # when / then: another's listing is NOT_FOUND before the PIN is even looked at
    variables = grant_input(to_global_id("Listing", other.id), "c@example.com", pin="9999")
    first = (await gql(GRANT_ACCESS, variables, token=s.token))["grantAccess"]
    assert first["userErrors"][0]["code"] == "NOT_FOUND"
    assert (await Account.get(id=s.agent.id)).failed_pins == 0
    # a wrong PIN comes before the missing lockbox
    wrong_pin = await grant(gql, s, "c@example.com", pin="9999")
    assert wrong_pin["userErrors"][0]["code"] == "INVALID_PIN"
    right_pin = await grant(gql, s, "c@example.com")
    assert right_pin["userErrors"][0]["code"] == "NO_LOCKBOX_ASSIGNED"


async def test_three_wrong_pins_lock_granting(gql: GraphQLClient) -> None:
    # given
    s = await scene(gql)
    # when
    codes = [
        (await grant(gql, s, "c@example.com", pin="0000"))["userErrors"][0]["code"]
        for _ in range(3)
    ]
    locked = await grant(gql, s, "c@example.com")
    # then
    assert codes == ["INVALID_PIN", "INVALID_PIN", "TOO_MANY_ATTEMPTS"]
    assert locked["userErrors"][0]["code"] == "TOO_MANY_ATTEMPTS"
    assert await Grant.all().count() == 0
    clock.travel(15 * 60 + 1)
    assert (await grant(gql, s, "c@example.com"))["userErrors"] == []


async def test_contractor_cannot_grant(gql: GraphQLClient) -> None:
    s = await scene(gql)
    contractor = await make_contractor()
    token = await gql.sign_in(contractor.email or "")
    body = await gql.raw(GRANT_ACCESS, grant_input(s.listing_id, "x@example.com"), token=token)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await Grant.all().count() == 0


async def test_idempotency_key_returns_the_first_grant(
    gql: GraphQLClient, smtp: SmtpServer
) -> None:
    # given
    s = await scene(gql)
    variables = grant_input(s.listing_id, "newbie@example.com", idempotencyKey="retry-1")
    # when
    first = (await gql(GRANT_ACCESS, variables, token=s.token))["grantAccess"]
    clock.travel(5 * 3600)  # even once the window has passed, the retry answers the same
    second = (await gql(GRANT_ACCESS, variables, token=s.token))["grantAccess"]
    # then
    assert first["userErrors"] == [] and second["userErrors"] == []
    assert second["grant"]["id"] == first["grant"]["id"]
    assert second["invitationSent"] is True
    assert await Grant.all().count() == 1
    assert await Invitation.all().count() == 1
    assert await Message.all().count() == 1
    await smtp.wait_for(1)
    await asyncio.sleep(0.3)
    assert len(smtp.inbox) == 1


async def test_concurrent_retries_with_one_key_make_one_grant(gql: GraphQLClient) -> None:
    # given
    s = await scene(gql)
    await make_contractor(email="c@example.com")
    variables = grant_input(s.listing_id, "c@example.com", idempotencyKey="race")
    # when
    results = await asyncio.gather(*(gql(GRANT_ACCESS, variables, token=s.token) for _ in range(3)))
    # then
    ids = {r["grantAccess"]["grant"]["id"] for r in results}
    assert len(ids) == 1
    assert await Grant.all().count() == 1
    assert await Message.all().count() == 2  # the contractor's and the agent's, once each


async def test_revoke_before_start_messages_the_grantee(gql: GraphQLClient) -> None:
    # given
    s = await scene(gql)
    contractor = await make_contractor()
    made = await make_grant(s.agent, s.listing, s.lockbox, contractor)
    grant_id = to_global_id("Grant", made.id)
    # when
    payload = (await gql(REVOKE, {"id": grant_id}, token=s.token))["revokeAccess"]
    again = (await gql(REVOKE, {"id": grant_id}, token=s.token))["revokeAccess"]
    # then
    assert payload["userErrors"] == []
    assert payload["grant"]["status"] == "REVOKED" and payload["grant"]["revocable"] is False
    assert payload["grant"]["revokedAt"] is not None
    assert again["userErrors"] == [{"code": "GRANT_ALREADY_REVOKED", "field": ["input", "grantId"]}]
    [message] = await Message.filter(account_id=contractor.id)
    assert message.kind == MessageKind.ACCESS_REVOKED and message.title.startswith("Access")


async def test_revoke_is_refused_from_the_start_instant(gql: GraphQLClient) -> None:
    # given two grants starting at the same instant
    s = await scene(gql)
    early = await make_grant(s.agent, s.listing, s.lockbox, starts_in=600)
    late = await Grant.create(
        listing=s.listing,
        lockbox=s.lockbox,
        granted_by=s.agent,
        grantee_email="x@example.com",
        starts_at=early.starts_at,
        ends_at=early.ends_at,
    )
    # when: half a second before the start
    clock.travel((early.starts_at - clock.now()).total_seconds() - 0.5)
    before_start = await gql(REVOKE, {"id": to_global_id("Grant", early.id)}, token=s.token)
    # and at the start
    clock.travel((late.starts_at - clock.now()).total_seconds())
    at_start = await gql(REVOKE, {"id": to_global_id("Grant", late.id)}, token=s.token)
    # then
    assert before_start["revokeAccess"]["userErrors"] == []
    assert at_start["revokeAccess"] == {
        "grant": None,
        "userErrors": [{"code": "GRANT_ALREADY_STARTED", "field": ["input", "grantId"]}],
    }
    assert (await Grant.get(id=late.id)).revoked_at is None


async def test_revoke_someone_elses_grant_is_not_found(gql: GraphQLClient) -> None:
    s = await scene(gql)
    made = await make_grant(s.agent, s.listing, s.lockbox)
    intruder = await make_agent()
    token = await gql.sign_in(intruder.email or "")
    data = await gql(REVOKE, {"id": to_global_id("Grant", made.id)}, token=token)
    assert data["revokeAccess"]["userErrors"] == [
        {"code": "NOT_FOUND", "field": ["input", "grantId"]}
    ]
    assert (await Grant.get(id=made.id)).revoked_at is None


async def test_listing_history_newest_first_with_status_from_the_clock(gql: GraphQLClient) -> None:
    # given
    s = await scene(gql)
    expired = await make_grant(s.agent, s.listing, s.lockbox, starts_in=-7200, hours=1)
    active = await make_grant(s.agent, s.listing, s.lockbox, starts_in=-60)
    revoked = await make_grant(s.agent, s.listing, s.lockbox, revoked_at=clock.now())
    scheduled = await make_grant(s.agent, s.listing, s.lockbox, starts_in=3600)

    async def history(**variables: Any) -> dict[str, Any]:
        data = await gql(LISTING_GRANTS, {"id": s.listing_id, **variables}, token=s.token)
        result: dict[str, Any] = data["node"]["grants"]
        return result

    def pairs(connection: dict[str, Any]) -> list[tuple[str, str]]:
        return [(e["node"]["id"], e["node"]["status"]) for e in connection["edges"]]

    gid = lambda g: to_global_id("Grant", g.id)  # noqa: E731
    # when / then
    assert pairs(await history()) == [
        (gid(scheduled), "SCHEDULED"),
        (gid(revoked), "REVOKED"),
        (gid(active), "ACTIVE"),
        (gid(expired), "EXPIRED"),
    ]
    only_active = await history(status=["ACTIVE"])
    assert pairs(only_active) == [(gid(active), "ACTIVE")] and only_active["totalCount"] == 1
    mixed = await history(status=["SCHEDULED", "EXPIRED"])
    assert pairs(mixed) == [(gid(scheduled), "SCHEDULED"), (gid(expired), "EXPIRED")]
    page1 = await history(first=2)
    page2 = await history(first=2, after=page1["pageInfo"]["endCursor"])
    assert page1["pageInfo"]["hasNextPage"] is True and page1["totalCount"] == 4
    assert [p[0] for p in pairs(page1) + pairs(page2)] == [
        gid(scheduled),
        gid(revoked),
        gid(active),
        gid(expired),
    ]
    clock.travel(3600 + 1)
    assert (await history(status=["ACTIVE"]))["edges"][0]["node"]["id"] == gid(scheduled)


async def test_grant_visibility_through_node(gql: GraphQLClient) -> None:
    # given contractor A's grant, and B another contractor
    s = await scene(gql)
    a, b = await make_contractor(), await make_contractor()
    made = await make_grant(s.agent, s.listing, s.lockbox, a)
    grant_id = to_global_id("Grant", made.id)
    a_token = await gql.sign_in(a.email or "")
    b_token = await gql.sign_in(b.email or "")
    other_agent = await make_agent()
    other_token = await gql.sign_in(other_agent.email or "")
    # when
    as_granter = (await gql(NODE_GRANT, {"id": grant_id}, token=s.token))["node"]
    as_grantee = (await gql(NODE_GRANT, {"id": grant_id}, token=a_token))["node"]
    as_b = (await gql(NODE_GRANT, {"id": grant_id}, token=b_token))["node"]
    as_other_agent = (await gql(NODE_GRANT, {"id": grant_id}, token=other_token))["node"]
    listing_as_grantee = (await gql(NODE, {"id": s.listing_id}, token=a_token))["node"]
    # then
    assert as_granter["id"] == grant_id
    assert as_grantee == {
        "id": grant_id,
        "granteeEmail": a.email,
        "listing": {"id": s.listing_id, "address": {"line1": "12 Elm Street"}},
    }
    assert as_b is None and as_other_agent is None
    assert listing_as_grantee is None


async def test_grantee_cannot_read_the_listings_other_grants(gql: GraphQLClient) -> None:
    s = await scene(gql)
    a, b = await make_contractor(), await make_contractor()
    mine = await make_grant(s.agent, s.listing, s.lockbox, a)
    await make_grant(s.agent, s.listing, s.lockbox, b)
    token = await gql.sign_in(a.email or "")
    query = (
        "query($id: ID!) { node(id: $id) { ... on Grant { listing { grants { totalCount } } } } }"
    )
    body = await gql.raw(query, {"id": to_global_id("Grant", mine.id)}, token=token)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["data"]["node"] is None


async def test_access_starting_is_sent_once_shortly_before_the_start(gql: GraphQLClient) -> None:
    # given
    s = await scene(gql)
    contractor = await make_contractor()
    soon = await make_grant(s.agent, s.listing, s.lockbox, contractor, starts_in=10 * 60)
    later = await make_grant(s.agent, s.listing, s.lockbox, contractor, starts_in=40 * 60)
    await make_grant(
        s.agent, s.listing, s.lockbox, contractor, starts_in=5 * 60, revoked_at=clock.now()
    )
    await make_grant(s.agent, s.listing, s.lockbox, None, starts_in=5 * 60)  # still invited
    one, another = StartingNotifier(), StartingNotifier()  # as on two instances
    # when
    sent = await asyncio.gather(one.run_once(), another.run_once())
    again = await one.run_once()
    # then
    assert sorted(sent) == [0, 1] and again == 0
    [message] = await Message.filter(account_id=contractor.id, kind=MessageKind.ACCESS_STARTING)
    assert message.grant_id == soon.id  # type: ignore[attr-defined]
    assert message.title.startswith("Access")
    # when the later one comes within 15 minutes
    clock.travel(30 * 60)
    assert await another.run_once() == 1
    starting = await Message.filter(account_id=contractor.id, kind=MessageKind.ACCESS_STARTING)
    assert {m.grant_id for m in starting} == {soon.id, later.id}  # type: ignore[attr-defined]


async def _event(
    lockbox: Lockbox, at: datetime, actor: Account | None = None, **fields: Any
) -> AccessEvent:
    return await AccessEvent.create(
        lockbox=lockbox,
        actor=actor,
        actor_name=actor.full_name if actor else "",
        method=fields.pop("method", AccessMethod.BLE_CREDENTIAL),
        outcome=fields.pop("outcome", AccessOutcome.OPENED),
        occurred_at=at,
        **fields,
    )


async def test_access_log_for_agents_and_contractors(gql: GraphQLClient) -> None:
    # given
    s = await scene(gql)
    contractor, other_contractor = await make_contractor(), await make_contractor()
    made = await make_grant(s.agent, s.listing, s.lockbox, contractor, starts_in=-3600)
    elsewhere = await make_lockbox(await make_agent())
    now = clock.now()
    e1 = await _event(
        s.lockbox, now - timedelta(hours=3), contractor, listing=s.listing, grant=made
    )
    e2 = await _event(s.lockbox, now - timedelta(hours=1), other_contractor, listing=s.listing)
    e3 = await _event(
        s.lockbox, now - timedelta(hours=2), contractor, listing=s.listing, grant=made
    )
    await _event(elsewhere, now - timedelta(hours=1), contractor, seq=9)
    await _event(s.lockbox, now - timedelta(days=3), contractor, listing=s.listing)
    window = {"from": iso(now - timedelta(days=1)), "to": iso(now)}
    contractor_token = await gql.sign_in(contractor.email or "")
    eid = lambda e: to_global_id("AccessEvent", e.id)  # noqa: E731
    # when
    agents = (await gql(ACCESS_LOG, window, token=s.token))["accessLog"]
    page1 = (await gql(ACCESS_LOG, {**window, "first": 2}, token=s.token))["accessLog"]
    page2 = (
        await gql(
            ACCESS_LOG,
            {**window, "first": 2, "after": page1["pageInfo"]["endCursor"]},
            token=s.token,
        )
    )["accessLog"]
    contractors = (await gql(ACCESS_LOG, window, token=contractor_token))["accessLog"]
    # then: newest first by when it happened, not by when it was uploaded
    assert [e["node"]["id"] for e in agents["edges"]] == [eid(e2), eid(e3), eid(e1)]
    assert agents["totalCount"] == 3
    assert [e["node"]["id"] for e in page1["edges"] + page2["edges"]] == [eid(e2), eid(e3), eid(e1)]
    assert page2["pageInfo"]["hasNextPage"] is False
    assert contractors["totalCount"] == 3  # their own uses, on any lockbox
    assert agents["edges"][2]["node"]["grant"] == {"id": to_global_id("Grant", made.id)}
    grant_events = await gql(
        "query($id: ID!) { node(id: $id) { ... on Grant { accessEvents { id } } } }",
        {"id": to_global_id("Grant", made.id)},
        token=contractor_token,
    )
    assert grant_events["node"]["accessEvents"] == [{"id": eid(e3)}, {"id": eid(e1)}]
    listing_events = await gql(
        "query($id: ID!) { node(id: $id) { ... on Listing { accessEvents(first: 10) "
        "{ totalCount edges { node { id } } } } } }",
        {"id": s.listing_id},
        token=s.token,
    )
    assert listing_events["node"]["accessEvents"]["totalCount"] == 4


@pytest.mark.parametrize(
    ("start_offset", "end_offset"),
    [
        (timedelta(0), timedelta(0)),
        (timedelta(hours=1), timedelta(0)),
        (timedelta(days=367), timedelta(0)),
    ],
    ids=["empty", "reversed", "too long"],
)
async def test_access_log_window_is_checked(
    gql: GraphQLClient, start_offset: timedelta, end_offset: timedelta
) -> None:
    agent = await make_agent()
    token = await gql.sign_in(agent.email or "")
    now = clock.now()
    variables = {"from": iso(now - start_offset), "to": iso(now - end_offset)}
    if start_offset == timedelta(hours=1):
        variables = {"from": iso(now), "to": iso(now - start_offset)}
    body = await gql.raw(ACCESS_LOG, variables, token=token)
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
