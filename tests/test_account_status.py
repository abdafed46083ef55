"""Account status: an agent or contractor that is not ACTIVE signs in and sees why, and every
operation that grants, opens or adds is refused with the seed's advice, changing nothing;
against a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from core import clock
from core.ids import to_global_id
from importers.members import import_members
from importers.report import ImportReport
from models.accounts import Account
from models.enums import AccountKind, AccountStatus
from tests.factories import (
    GraphQLClient,
    make_agent,
    make_contractor,
    make_grant,
    make_listing,
    make_lockbox,
    make_region,
)
from tests.live import Live, subscribed
from tests.rows import table_counts
from tests.test_revocations import sign_in_phone
from tests.test_session_end import NOT_ACTIVE, closed_with, roster

ME = "{ me { status ... on Agent { keyId } } }"
ADD_LISTING = """
mutation($input: AddListingInput!) {
  addListing(input: $input) { listing { id } userErrors { code field message } }
}
"""
ASSIGN = """
mutation($serial: String!) {
  assignLockbox(input: {serialNumber: $serial}) { lockbox { id } userErrors { code field message } }
}
"""
ASSIGN_TO_LISTING = """
mutation($input: AssignLockboxToListingInput!) {
  assignLockboxToListing(input: $input) { listing { id } userErrors { code field message } }
}
"""
GRANT = """
mutation($input: GrantAccessInput!) {
  grantAccess(input: $input) { grant { id } userErrors { code field message } }
}
"""
ONE_DAY_CODE = """
mutation($input: GenerateOneDayCodeInput!) {
  generateOneDayCode(input: $input) { oneDayCode { code } userErrors { code field message } }
}
"""
SYNC = """
mutation($deviceId: String!) {
  syncCredentials(input: {deviceId: $deviceId}) {
    bundle { credentials { token } } userErrors { code field message }
  }
}
"""
NOT_ACTIVE_STATUSES = [AccountStatus.SUSPENDED, AccountStatus.INACTIVE, AccountStatus.PAST_DUE]
IN_WORDS = {"SUSPENDED": "suspended", "INACTIVE": "inactive", "PAST_DUE": "past due"}


async def agents_mutations(agent: Account, device_id: str) -> dict[str, tuple[str, Any]]:
    """Each refused operation, asked as it would succeed for an ACTIVE agent, except that
    the PIN is wrong: a refusal must come before the PIN is looked at."""
    region = await make_region()
    listing = await make_listing(agent)
    bare_listing = await make_listing(agent)
    await make_lockbox(agent, listing, region=region)
    spare = await make_lockbox(agent)
    unassigned = await make_lockbox()
    starts = clock.now() + timedelta(hours=1)
    wrong_pin = "9999"
    return {
        "addListing": (
            ADD_LISTING,
            {
                "input": {
                    "address": {
                        "line1": "1 New Street",
                        "city": "Cincinnati",
                        "state": "OH",
                        "postalCode": "45202",
                    }
                }
            },
        ),
        "assignLockbox": (ASSIGN, {"serial": unassigned.serial_number}),
        "assignLockboxToListing": (
            ASSIGN_TO_LISTING,
            {
                "input": {
                    "listingId": to_global_id("Listing", bare_listing.id),
                    "lockboxId": to_global_id("Lockbox", spare.id),
                    "onListingSince": date.today().isoformat(),
                    "regionCode": region.code,
                }
            },
        ),
        "grantAccess": (
            GRANT,
            {
                "input": {
                    "listingId": to_global_id("Listing", listing.id),
                    "granteeEmail": "painter@example.com",
                    "startsAt": starts.isoformat(),
                    "endsAt": (starts + timedelta(hours=2)).isoformat(),
                    "pin": wrong_pin,
                }
            },
        ),
        "generateOneDayCode": (
            ONE_DAY_CODE,
            {
                "input": {
                    "lockboxId": to_global_id("Lockbox", spare.id),
                    "date": (clock.now().date() + timedelta(days=1)).isoformat(),
                    "pin": wrong_pin,
                }
            },
        ),
        "syncCredentials": (SYNC, {"deviceId": device_id}),
    }


@pytest.mark.parametrize("status", NOT_ACTIVE_STATUSES, ids=lambda s: s.value)
async def test_an_agent_not_active_signs_in_sees_why_and_changes_nothing(
    live_gql: GraphQLClient, status: AccountStatus
) -> None:
    # given an agent the association has made SUSPENDED, INACTIVE or PAST_DUE
    agent = await make_agent(status=status)
    phone = await sign_in_phone(live_gql, agent, "agent-phone")
    mutations = await agents_mutations(agent, phone.device_id)
    # when the agent signs in and looks
    me = (await live_gql(ME, token=phone.token))["me"]
    # then the status is shown
    assert me == {"status": status.value, "keyId": agent.key_id}
    for name, (mutation, variables) in mutations.items():
        before = await table_counts()
        # when
        payload = (await live_gql(mutation, variables, token=phone.token))[name]
        # then the refusal says what to do, and nothing was written (no PIN try counted)
        [error] = payload["userErrors"]
        assert (error["code"], error["field"]) == ("ACCOUNT_NOT_ACTIVE", None), name
        assert error["message"] == (
            f"Your account is {IN_WORDS[status.value]}. Please contact your Association or "
            "MLS office to find out why and what is needed to activate it."
        )
        assert [value for key, value in payload.items() if key != "userErrors"] == [None], name
        assert await table_counts() == before, name
    refreshed = await Account.get(id=agent.id)
    assert (refreshed.failed_pins, refreshed.pin_locked_until) == (0, None)


async def test_a_contractor_not_active_gets_no_credentials_and_is_told_why(
    live_gql: GraphQLClient,
) -> None:
    # given a contractor with a visit under way, suspended since
    agent = await make_agent()
    listing = await make_listing(agent)
    contractor = await make_contractor()
    await make_grant(agent, listing, await make_lockbox(agent, listing), contractor, starts_in=-60)
    await Account.filter(id=contractor.id).update(status=AccountStatus.SUSPENDED)
    phone = await sign_in_phone(live_gql, contractor, "contractor-phone")
    before = await table_counts()
    # when
    me = (await live_gql(ME, token=phone.token))["me"]
    payload = (await live_gql(SYNC, {"deviceId": phone.device_id}, token=phone.token))[
        "syncCredentials"
    ]
    # then
    assert me == {"status": "SUSPENDED"}
    assert payload == {
        "bundle": None,
        "userErrors": [
            {
                "code": "ACCOUNT_NOT_ACTIVE",
                "field": None,
                "message": "Your account is suspended, so it cannot open lockboxes. Please "
                "contact support to find out why.",
            }
        ],
    }
    assert await table_counts() == before


async def test_the_roster_making_an_agent_past_due_stops_grants_until_paid(
    live: Live, live_gql: GraphQLClient, tmp_path: Path
) -> None:
    # given an active agent with a lockbox on a listing, subscribed from a phone
    agent = await make_agent()
    listing = await make_listing(agent)
    await make_lockbox(agent, listing)
    phone = await sign_in_phone(live_gql, agent, "agent-phone")
    starts = clock.now() + timedelta(hours=1)
    grant = {
        "input": {
            "listingId": to_global_id("Listing", listing.id),
            "granteeEmail": "painter@example.com",
            "startsAt": starts.isoformat(),
            "endsAt": (starts + timedelta(hours=2)).isoformat(),
            "pin": "1234",
        }
    }
    members = tmp_path / "members.json"
    async with subscribed(live, phone.token) as ws:
        await live.wait_for_subscribers(1)
        # when the association's roster says the agent is past due
        members.write_text(json.dumps(roster(agent, "Past Due")))
        report = await import_members(members, ImportReport())
        # then the live subscription closes, and a grant is refused
        assert await closed_with(ws) == NOT_ACTIVE
    assert (report.updated, report.warnings) == (1, [])
    assert (await live_gql(ME, token=phone.token))["me"]["status"] == "PAST_DUE"
    refused = (await live_gql(GRANT, grant, token=phone.token))["grantAccess"]
    assert [e["code"] for e in refused["userErrors"]] == ["ACCOUNT_NOT_ACTIVE"]
    # and once the roster says active again, the same grant goes through
    members.write_text(json.dumps(roster(agent, "ACTIVE")))
    await import_members(members, ImportReport())
    granted = (await live_gql(GRANT, grant, token=phone.token))["grantAccess"]
    assert granted["userErrors"] == [] and granted["grant"]["id"]


def member(mls_id: str, status: str | None) -> dict[str, Any]:
    row = {
        "MemberMlsId": mls_id,
        "MemberFirstName": "Pat",
        "MemberLastName": mls_id,
        "OriginatingSystemName": "Cincinnati MLS",
    }
    return row if status is None else {**row, "MemberStatus": status}


async def test_the_roster_takes_every_status_in_any_spelling_and_reports_unknown_ones(
    orm: None, tmp_path: Path
) -> None:
    # given
    spellings = [
        ("A", "Active", AccountStatus.ACTIVE),
        ("B", "inactive", AccountStatus.INACTIVE),
        ("C", "SUSPENDED", AccountStatus.SUSPENDED),
        ("D", "Past Due", AccountStatus.PAST_DUE),
        ("E", "PAST_DUE", AccountStatus.PAST_DUE),
        ("F", " past-due ", AccountStatus.PAST_DUE),
        ("G", "Retired", AccountStatus.INACTIVE),
        ("H", None, AccountStatus.INACTIVE),
    ]
    path = tmp_path / "members.json"
    path.write_text(json.dumps({"value": [member(m, s) for m, s, _ in spellings]}))
    # when
    report = await import_members(path, ImportReport())
    # then every row lands, with the status it names; the unknown ones are told by index
    assert (report.created, report.skipped) == (8, [])
    statuses = dict(await Account.filter(kind=AccountKind.AGENT).values_list("mls_id", "status"))
    assert statuses == {mls_id: status for mls_id, _, status in spellings}
    known = "(Active, Inactive, Suspended, Past Due): made INACTIVE"
    assert report.warnings == [
        (6, f"MemberStatus 'Retired' is not one keybin knows {known}"),
        (7, f"MemberStatus is missing {known}"),
    ]
