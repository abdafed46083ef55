"""One Day Codes in the listing's access history: who issued which day's code to whom, read
by the listing's agent alone, never the code itself, paged with a keyset cursor."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from core import clock
from core.ids import to_global_id
from models.accounts import Account
from models.grants import OneDayCodeIssue
from models.listings import Listing, Lockbox
from tests.factories import (
    GraphQLClient,
    make_agent,
    make_contractor,
    make_grant,
    make_listing,
    make_lockbox,
)
from tests.sql_count import StatementCounter
from tests.test_codes import GENERATE, local_today

HISTORY = """
query($id: ID!, $first: Int, $after: String) {
  node(id: $id) {
    ... on Listing {
      oneDayCodes(first: $first, after: $after) {
        totalCount
        pageInfo { hasNextPage hasPreviousPage endCursor }
        edges {
          node {
            id issuedAt validOn issuedTo
            issuedBy { firstName lastName }
            lockbox { serialNumber }
            listing { id }
          }
        }
      }
    }
  }
}
"""
ISSUE_NODE = """
query($id: ID!) { node(id: $id) { ... on OneDayCodeIssue { validOn issuedTo } } }
"""
THROUGH_GRANT = """
query($id: ID!) {
  node(id: $id) {
    ... on Grant { listing { oneDayCodes { totalCount edges { node { issuedTo } } } } }
  }
}
"""
ISSUERS_KEY_ID = """
query($id: ID!) {
  node(id: $id) { ... on Listing { oneDayCodes { edges { node { issuedBy { keyId } } } } } }
}
"""


async def issue(
    gql: GraphQLClient, token: str, lockbox: Lockbox, day: date, issued_to: str | None
) -> str:
    variables = {
        "lockboxId": to_global_id("Lockbox", lockbox.id),
        "date": day.isoformat(),
        "pin": "1234",
        "issuedTo": issued_to,
    }
    payload = (await gql(GENERATE, {"input": variables}, token=token))["generateOneDayCode"]
    assert payload["userErrors"] == []
    code: str = payload["oneDayCode"]["code"]
    return code


async def history(
    gql: GraphQLClient, token: str, listing: Listing, **variables: Any
) -> dict[str, Any]:
    data = await gql(HISTORY, {"id": to_global_id("Listing", listing.id), **variables}, token)
    codes: dict[str, Any] = data["node"]["oneDayCodes"]
    return codes


async def agent_with_listing(first_name: str = "Alice") -> tuple[Account, Listing, Lockbox]:
    agent = await make_agent(first_name=first_name, last_name="Archer")
    listing = await make_listing(agent)
    return agent, listing, await make_lockbox(agent, listing, ble=False)


async def test_the_listing_agent_reads_who_got_which_days_code_but_never_the_code(
    gql: GraphQLClient,
) -> None:
    # given two codes issued for the listing's lockbox
    agent, listing, lockbox = await agent_with_listing()
    token = await gql.sign_in(agent.email or "")
    today = local_today("America/New_York")
    codes = [
        await issue(gql, token, lockbox, today + timedelta(days=2), " Pat Painter "),
        await issue(gql, token, lockbox, today, None),
    ]
    # when
    page = await history(gql, token, listing)
    # then newest first, with who, for whom and which day
    assert page["totalCount"] == 2
    nodes = [edge["node"] for edge in page["edges"]]
    assert [(n["validOn"], n["issuedTo"]) for n in nodes] == [
        (today.isoformat(), None),
        ((today + timedelta(days=2)).isoformat(), "Pat Painter"),
    ]
    for node in nodes:
        assert node["issuedBy"] == {"firstName": "Alice", "lastName": "Archer"}
        assert node["lockbox"] == {"serialNumber": lockbox.serial_number}
        assert node["listing"] == {"id": to_global_id("Listing", listing.id)}
        issued_at = datetime.fromisoformat(node["issuedAt"])
        assert abs((issued_at - clock.now()).total_seconds()) < 60
    # and the code itself is nowhere in the history
    for code in codes:
        assert code not in str(page)
    # and each entry is a node the agent can fetch again
    again = await gql(ISSUE_NODE, {"id": nodes[1]["id"]}, token=token)
    assert again["node"] == {"validOn": nodes[1]["validOn"], "issuedTo": "Pat Painter"}


async def test_pages_follow_the_cursor_and_new_codes_do_not_shift_them(
    gql: GraphQLClient,
) -> None:
    # given three codes
    agent, listing, lockbox = await agent_with_listing()
    token = await gql.sign_in(agent.email or "")
    today = local_today("America/New_York")
    for n in range(3):
        await issue(gql, token, lockbox, today, f"visitor {n}")
    # when a page of two is read, a code is issued, and the next page is read
    first = await history(gql, token, listing, first=2)
    await issue(gql, token, lockbox, today, "arrives while reading")
    second = await history(gql, token, listing, first=2, after=first["pageInfo"]["endCursor"])
    # then
    assert [e["node"]["issuedTo"] for e in first["edges"]] == ["visitor 2", "visitor 1"]
    assert first["pageInfo"]["hasNextPage"] is True
    assert [e["node"]["issuedTo"] for e in second["edges"]] == ["visitor 0"]
    assert second["pageInfo"]["hasNextPage"] is False
    assert second["pageInfo"]["hasPreviousPage"] is True
    assert second["totalCount"] == 4


async def test_no_one_but_the_listings_agent_reads_its_code_history(
    live_gql: GraphQLClient,
) -> None:
    # given a listing whose codes were issued to a named visitor, and a contractor with a
    # grant on it; then the listing passed to another agent (a roster import can do that),
    # so the agent who granted and issued still reaches it through their grant
    first_agent, listing, lockbox = await agent_with_listing("Fran")
    first_token = await live_gql.sign_in(first_agent.email or "")
    await issue(live_gql, first_token, lockbox, local_today("America/New_York"), "Secret Sam")
    contractor = await make_contractor()
    grant = await make_grant(first_agent, listing, lockbox, contractor)
    new_agent = await make_agent(first_name="Nora")
    await Listing.filter(id=listing.id).update(agent_id=new_agent.id)
    issue_id = to_global_id("OneDayCodeIssue", (await OneDayCodeIssue.get()).id)
    readers = {
        "the contractor": await live_gql.sign_in(contractor.email or ""),
        "the agent the listing was taken from": first_token,
        "an agent with nothing to do with it": await live_gql.sign_in(
            (await make_agent()).email or ""
        ),
    }
    for who, token in readers.items():
        # when
        through_grant = await live_gql.raw(
            THROUGH_GRANT, {"id": to_global_id("Grant", grant.id)}, token=token
        )
        by_id = await live_gql.raw(ISSUE_NODE, {"id": issue_id}, token=token)
        by_listing = await live_gql.raw(
            HISTORY, {"id": to_global_id("Listing", listing.id)}, token=token
        )
        # then
        assert through_grant["data"] == {"node": None}, who
        if who != "an agent with nothing to do with it":  # it reaches no grant at all
            codes = {e["extensions"]["code"] for e in through_grant["errors"]}
            assert codes == {"FORBIDDEN"}, who
        assert by_id == {"data": {"node": None}}, who
        assert by_listing == {"data": {"node": None}}, who
        for answer in (through_grant, by_id, by_listing):
            assert "Secret Sam" not in str(answer), who
    # and the listing's agent now reads it, naming who issued the code
    new_token = await live_gql.sign_in(new_agent.email or "")
    page = await history(live_gql, new_token, listing)
    [entry] = page["edges"]
    assert entry["node"]["issuedTo"] == "Secret Sam"
    assert entry["node"]["issuedBy"]["firstName"] == "Fran"
    # but not the issuing agent's Key ID, which is theirs alone, as anywhere else
    body = await live_gql.raw(
        ISSUERS_KEY_ID, {"id": to_global_id("Listing", listing.id)}, new_token
    )
    assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}
    assert first_agent.key_id not in str(body)


LISTINGS_WITH_CODES = """
query($codes: Int) {
  me {
    ... on Agent {
      listings(first: 50) {
        edges {
          node {
            lockbox { serialNumber }
            oneDayCodes(first: $codes) {
              totalCount
              edges { node { validOn issuedTo issuedBy { firstName } lockbox { serialNumber } } }
            }
          }
        }
      }
    }
  }
}
"""


async def statements_for(
    gql: GraphQLClient, sql: StatementCounter, listings: int, codes: int, first: int
) -> tuple[int, dict[str, Any]]:
    """The agent's listings page with each listing's code history: its statement count."""
    agent = await make_agent()
    today = clock.now().date()
    for _ in range(listings):
        listing = await make_listing(agent)
        lockbox = await make_lockbox(agent, listing, ble=False)
        for n in range(codes):
            await OneDayCodeIssue.create(
                lockbox=lockbox,
                agent=agent,
                listing_id=listing.id,
                valid_on=today,
                issued_to=f"visitor {n}",
            )
    token = await gql.sign_in(agent.email or "")
    data = await sql.count(gql(LISTINGS_WITH_CODES, {"codes": first}, token=token))
    return len(sql.statements), data


async def test_the_code_history_costs_the_same_sql_whatever_the_page_size(
    gql: GraphQLClient, sql: StatementCounter
) -> None:
    # given / when: 2 listings with pages of 2 codes, then 10 listings with pages of 20
    small, small_data = await statements_for(gql, sql, listings=2, codes=3, first=2)
    large, large_data = await statements_for(gql, sql, listings=10, codes=25, first=20)
    # then
    small_edges = small_data["me"]["listings"]["edges"]
    assert [len(e["node"]["oneDayCodes"]["edges"]) for e in small_edges] == [2, 2]
    large_edges = large_data["me"]["listings"]["edges"]
    assert [len(e["node"]["oneDayCodes"]["edges"]) for e in large_edges] == [20] * 10
    assert {e["node"]["oneDayCodes"]["totalCount"] for e in large_edges} == {25}
    first_page = large_edges[0]["node"]["oneDayCodes"]["edges"]
    assert [e["node"]["issuedTo"] for e in first_page[:2]] == ["visitor 24", "visitor 23"]
    assert small > 0, "the counter must see the request's statements"
    assert small == large, sql.statements
