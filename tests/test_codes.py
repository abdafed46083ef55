"""One Day Codes: the code the lockbox computes offline, for a local date in its region's zone."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from ble.onedaycode import check_one_day_code, one_day_code
from core import clock
from core.ids import to_global_id
from models.enums import AccessOutcome
from models.grants import OneDayCodeIssue
from tests.factories import (
    TEST_SECRET,
    GraphQLClient,
    make_agent,
    make_contractor,
    make_listing,
    make_lockbox,
    make_region,
)
from tests.rows import table_counts

GENERATE = """
mutation($input: GenerateOneDayCodeInput!) {
  generateOneDayCode(input: $input) {
    oneDayCode { code validOn validFrom validUntil issuedTo lockbox { serialNumber } }
    userErrors { code field }
  }
}
"""


def local_today(zone: str) -> date:
    return clock.now().astimezone(ZoneInfo(zone)).date()


async def test_code_for_a_date_opens_that_day_from_8_to_22_local(gql: GraphQLClient) -> None:
    # given
    agent = await make_agent()
    region = await make_region("LA", "America/Los_Angeles")
    lockbox = await make_lockbox(agent, listing=await make_listing(agent), region=region, ble=False)
    token = await gql.sign_in(agent.email or "")
    day = local_today("America/Los_Angeles") + timedelta(days=1)
    # when
    data = await gql(
        GENERATE,
        {
            "input": {
                "lockboxId": to_global_id("Lockbox", lockbox.id),
                "date": day.isoformat(),
                "pin": "1234",
                "issuedTo": " Pat Painter, 513-555-0100 ",
            }
        },
        token=token,
    )
    # then
    payload = data["generateOneDayCode"]
    assert payload["userErrors"] == []
    code = payload["oneDayCode"]
    assert code["code"] == one_day_code(TEST_SECRET, day) and len(code["code"]) == 8
    assert code["validOn"] == day.isoformat()
    assert code["issuedTo"] == "Pat Painter, 513-555-0100"
    assert code["lockbox"] == {"serialNumber": lockbox.serial_number}
    opens = datetime.fromisoformat(code["validFrom"]).astimezone(ZoneInfo("America/Los_Angeles"))
    closes = datetime.fromisoformat(code["validUntil"]).astimezone(ZoneInfo("America/Los_Angeles"))
    assert (opens.date(), opens.hour, closes.hour) == (day, 8, 22)
    # The lockbox, offline, agrees.
    noon = opens + timedelta(hours=4)
    assert check_one_day_code(TEST_SECRET, code["code"], noon, "America/Los_Angeles") == (
        AccessOutcome.OPENED
    )
    issue = await OneDayCodeIssue.get()
    assert issue.issued_to == "Pat Painter, 513-555-0100" and issue.valid_on == day
    assert issue.agent_id == agent.id  # type: ignore[attr-defined]


async def test_lockbox_without_a_region_uses_utc(gql: GraphQLClient) -> None:
    agent = await make_agent()
    lockbox = await make_lockbox(agent)
    token = await gql.sign_in(agent.email or "")
    day = local_today("UTC")
    variables = {"lockboxId": to_global_id("Lockbox", lockbox.id), "date": day.isoformat()}
    data = await gql(GENERATE, {"input": {**variables, "pin": "1234"}}, token=token)
    code = data["generateOneDayCode"]["oneDayCode"]
    assert datetime.fromisoformat(code["validFrom"]) == datetime.fromisoformat(
        f"{day.isoformat()}T08:00:00+00:00"
    )
    assert code["issuedTo"] is None


async def test_refusals_change_nothing(gql: GraphQLClient) -> None:
    # given
    agent, other = await make_agent(), await make_agent()
    region = await make_region("HI", "Pacific/Honolulu")
    mine = await make_lockbox(agent, region=region)
    theirs = await make_lockbox(other)
    unassigned = await make_lockbox()
    token = await gql.sign_in(agent.email or "")
    today = local_today("Pacific/Honolulu")
    cases = [
        (theirs.id, today, "1234", "NOT_FOUND", ["input", "lockboxId"]),
        (unassigned.id, today, "1234", "NOT_FOUND", ["input", "lockboxId"]),
        (mine.id, today - timedelta(days=1), "1234", "INVALID_INPUT", ["input", "date"]),
        # a code cannot be taken back: none for a day past the horizon, or past any calendar
        (mine.id, today + timedelta(days=31), "1234", "INVALID_INPUT", ["input", "date"]),
        (mine.id, date(9999, 12, 31), "1234", "INVALID_INPUT", ["input", "date"]),
        (mine.id, today, "4321", "INVALID_PIN", ["input", "pin"]),
    ]
    for lockbox_pk, day, pin, code, field in cases:
        before = await table_counts()
        # when
        variables = {
            "lockboxId": to_global_id("Lockbox", lockbox_pk),
            "date": day.isoformat(),
            "pin": pin,
        }
        data = await gql(GENERATE, {"input": variables}, token=token)
        # then
        assert data["generateOneDayCode"] == {
            "oneDayCode": None,
            "userErrors": [{"code": code, "field": field}],
        }
        after = await table_counts()
        if code == "INVALID_PIN":
            before.pop("account_event"), after.pop("account_event")
        assert after == before
    assert await OneDayCodeIssue.all().count() == 0


async def test_contractor_cannot_generate_codes(gql: GraphQLClient) -> None:
    contractor = await make_contractor()
    lockbox = await make_lockbox()
    token = await gql.sign_in(contractor.email or "")
    variables = {
        "lockboxId": to_global_id("Lockbox", lockbox.id),
        "date": local_today("UTC").isoformat(),
        "pin": "1234",
    }
    body = await gql.raw(GENERATE, {"input": variables}, token=token)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_code_is_for_a_day_up_to_max_grant_days_ahead(gql: GraphQLClient) -> None:
    # given
    agent = await make_agent()
    lockbox = await make_lockbox(agent, listing=await make_listing(agent))
    token = await gql.sign_in(agent.email or "")
    last = local_today("America/New_York") + timedelta(days=30)  # MAX_GRANT_DAYS
    variables = {"lockboxId": to_global_id("Lockbox", lockbox.id), "pin": "1234"}
    # when
    data = await gql(GENERATE, {"input": {**variables, "date": last.isoformat()}}, token=token)
    # then
    assert data["generateOneDayCode"]["userErrors"] == []
    assert data["generateOneDayCode"]["oneDayCode"]["validOn"] == last.isoformat()


UNASSIGN = """
mutation($id: ID!) {
  unassignLockbox(input: {lockboxId: $id}) { lockbox { id } userErrors { code field message } }
}
"""
MOVE = """
mutation($listing: ID!, $lockbox: ID!) {
  assignLockboxToListing(input: {listingId: $listing, lockboxId: $lockbox,
                                 onListingSince: "2030-01-01", regionCode: "HI"}) {
    userErrors { code field }
  }
}
"""


async def test_a_lockbox_stays_with_its_agent_and_listing_until_its_codes_day_is_over(
    gql: GraphQLClient,
) -> None:
    # given: a code given for a showing in three days, in Honolulu
    agent = await make_agent()
    region = await make_region("HI", "Pacific/Honolulu")
    lockbox = await make_lockbox(agent, listing=await make_listing(agent), region=region)
    other_listing = await make_listing(agent)
    token = await gql.sign_in(agent.email or "")
    lockbox_id = to_global_id("Lockbox", lockbox.id)
    day = local_today("Pacific/Honolulu") + timedelta(days=3)
    variables = {"lockboxId": lockbox_id, "date": day.isoformat(), "pin": "1234"}
    issued = await gql(GENERATE, {"input": variables}, token=token)
    assert issued["generateOneDayCode"]["userErrors"] == []
    move = {"listing": to_global_id("Listing", other_listing.id), "lockbox": lockbox_id}
    before = await table_counts()
    # when: the agent gives it up, or takes it to another house
    unassigned = (await gql(UNASSIGN, {"id": lockbox_id}, token=token))["unassignLockbox"]
    moved = (await gql(MOVE, move, token=token))["assignLockboxToListing"]
    # then: the code would open it there, for someone else: refused, nothing changed
    assert unassigned["lockbox"] is None
    assert [(e["code"], e["field"]) for e in unassigned["userErrors"]] == [
        ("LOCKBOX_UNAVAILABLE", ["input", "lockboxId"])
    ]
    assert day.isoformat() in unassigned["userErrors"][0]["message"]
    assert moved["userErrors"] == [{"code": "LOCKBOX_UNAVAILABLE", "field": ["input", "lockboxId"]}]
    assert await table_counts() == before
    # when the code's day is over where the lockbox is
    midnight = datetime.combine(day + timedelta(days=1), datetime.min.time())
    clock.travel(
        (midnight.replace(tzinfo=ZoneInfo("Pacific/Honolulu")) - clock.now()).total_seconds()
    )
    # then
    done = (await gql(UNASSIGN, {"id": lockbox_id}, token=token))["unassignLockbox"]
    assert done == {"lockbox": {"id": lockbox_id}, "userErrors": []}
