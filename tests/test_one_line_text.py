"""Text shown or mailed on one line (names, listing addresses) holds no line break or other
control character, whether typed into the API or imported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from importers.listings import import_listings
from importers.members import import_members
from importers.report import ImportReport
from models.accounts import Account
from models.listings import Listing
from tests.factories import GraphQLClient, make_agent
from tests.rows import table_counts

ADD_LISTING = """
mutation($input: AddListingInput!) {
  addListing(input: $input) { listing { id } userErrors { code field } }
}
"""
# What would end a mail header or a one-line display, or hide in one.
BREAKS = ["\r\nBcc: attacker@evil.example", "\n", "\r", "\t", "\x0b", "\x85", "\u2028", "\x1b[2J"]
FIELDS = ["line1", "line2", "city", "state", "postalCode"]


def address(**changes: str) -> dict[str, str]:
    return {
        "line1": "7 Elm St",
        "line2": "Unit 2",
        "city": "Cincinnati",
        "state": "OH",
        "postalCode": "45202",
        **changes,
    }


def write_json(path: Path, rows: list[dict[str, Any]]) -> Path:
    rows = [{"OriginatingSystemName": "Cincinnati MLS", **row} for row in rows]
    path.write_text(json.dumps({"value": rows}))
    return path


@pytest.mark.parametrize("brk", BREAKS, ids=repr)
async def test_add_listing_refuses_a_line_break_or_control_character_in_any_address_field(
    gql: GraphQLClient, brk: str
) -> None:
    # given
    agent = await make_agent()
    token = await gql.sign_in(agent.email or "")
    before = await table_counts()
    for name in FIELDS:
        # when a field holds the character inside its text
        changed = address(**{name: f"4520{brk}2" if name == "postalCode" else f"Elm{brk}x"})
        data = await gql(ADD_LISTING, {"input": {"address": changed}}, token=token)
        # then it is bad input on that field, and nothing is stored
        assert data["addListing"] == {
            "listing": None,
            "userErrors": [{"code": "INVALID_INPUT", "field": ["input", "address", name]}],
        }
    data = await gql(
        ADD_LISTING, {"input": {"address": address(), "mlsNumber": f"A{brk}1"}}, token=token
    )
    assert data["addListing"]["userErrors"] == [
        {"code": "INVALID_INPUT", "field": ["input", "mlsNumber"]}
    ]
    assert await table_counts() == before


async def test_add_listing_still_takes_accents_and_surrounding_spaces(gql: GraphQLClient) -> None:
    # given
    agent = await make_agent()
    token = await gql.sign_in(agent.email or "")
    # when
    changed = address(line1="  12 Rue de l'Église  ", city="Montréal")
    data = await gql(ADD_LISTING, {"input": {"address": changed}}, token=token)
    # then
    assert data["addListing"]["userErrors"] == []
    listing = await Listing.get(agent_id=agent.id)
    assert (listing.line1, listing.city) == ("12 Rue de l'Église", "Montréal")


async def test_a_roster_name_with_a_line_break_skips_the_row(orm: None, tmp_path: Path) -> None:
    # given a roster whose second row's last name holds a header of its own
    rows = [
        {"MemberMlsId": "A1", "MemberFirstName": "Pat", "MemberLastName": "Lee"},
        {
            "MemberMlsId": "A2",
            "MemberFirstName": "Sam",
            "MemberLastName": "Ray\r\nBcc: x@evil.example",
        },
        {"MemberMlsId": "A3", "MemberFirstName": "Jo\u2028Ann", "MemberLastName": "Kim"},
    ]
    # when
    report = await import_members(write_json(tmp_path / "members.json", rows), ImportReport())
    # then the row is reported and not imported; the others land
    assert report.skipped == [
        (1, "MemberLastName contains a line break or another control character"),
        (2, "MemberFirstName contains a line break or another control character"),
    ]
    assert [agent.mls_id for agent in await Account.all()] == ["A1"]


async def test_a_listing_address_with_a_line_break_skips_the_row(orm: None, tmp_path: Path) -> None:
    # given an agent, and a listing file whose second row's city spans two lines
    members = [{"MemberMlsId": "A1", "MemberFirstName": "Pat", "MemberLastName": "Lee"}]
    await import_members(write_json(tmp_path / "members.json", members), ImportReport())
    listing = {
        "StandardStatus": "Active",
        "UnparsedAddress": "1 Oak St",
        "City": "Cincinnati",
        "StateOrProvince": "OH",
        "PostalCode": "45202",
        "ListAgentMlsId": "A1",
    }
    rows = [
        {**listing, "ListingId": "L1"},
        {**listing, "ListingId": "L2", "City": "Cincinnati\nSubject: free keys"},
        {**listing, "ListingId": "L3", "UnparsedAddress": "2 Oak St\x00"},
    ]
    # when
    report = await import_listings(write_json(tmp_path / "listings.json", rows), ImportReport())
    # then
    assert report.skipped == [
        (1, "City contains a line break or another control character"),
        (2, "UnparsedAddress contains a line break or another control character"),
    ]
    assert [listing.mls_number for listing in await Listing.all()] == ["L1"]


UPDATE_MY_INFO = """
mutation($input: UpdateMyInfoInput!) { updateMyInfo(input: $input) { userErrors { code field } } }
"""


@pytest.mark.parametrize("brk", BREAKS, ids=repr)
async def test_a_name_holds_no_line_break_or_control_character(
    gql: GraphQLClient, brk: str
) -> None:
    agent = await make_agent(first_name="Alice")
    token = await gql.sign_in(agent.email or "")
    data = await gql(UPDATE_MY_INFO, {"input": {"firstName": f"Al{brk}ice"}}, token=token)
    assert data["updateMyInfo"]["userErrors"] == [
        {"code": "INVALID_INPUT", "field": ["input", "firstName"]}
    ]
    assert (await Account.get(id=agent.id)).first_name == "Alice"


async def test_a_device_name_is_kept_on_one_line(gql: GraphQLClient) -> None:
    from models.accounts import Device

    agent = await make_agent()
    await gql.sign_in(agent.email or "", deviceName="Casey's\r\nBcc: x@evil.example\u2028 phone")
    [device] = await Device.filter(account_id=agent.id)
    assert device.name == "Casey's Bcc: x@evil.example phone"
