"""The roster never gives an agent a contractor's email: the agent lands without it, the
report says so, and grants to the contractor go on reaching them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from importers.members import import_members
from importers.report import ImportReport
from models.accounts import Account
from tests.factories import GraphQLClient, make_contractor
from tests.test_grants import grant, scene
from tests.test_imports import member, write_json

LEFT_EMPTY = "MemberEmail is a contractor's sign-in email: left empty"


async def test_a_roster_row_with_a_contractors_email_lands_without_it(
    gql: GraphQLClient, tmp_path: Path
) -> None:
    # given a contractor who signed up, and an agent who grants them access
    contractor = await make_contractor(email="casey.cleaner@example.com")
    s = await scene(gql)
    # when the roster gives a new agent the contractor's email, in other letter case
    roster = [member("NEW77", MemberEmail="Casey.Cleaner@Example.com"), member("NEW78")]
    report = await import_members(write_json(tmp_path / "m.json", roster), ImportReport())
    # then the agent is there without it, and the report says which row
    assert (report.created, report.skipped, report.warnings) == (2, [], [(0, LEFT_EMPTY)])
    agent = await Account.get(mls_id="NEW77")
    assert agent.email is None
    assert (await Account.get(mls_id="NEW78")).email == "new78@example.com"
    # and a grant to the contractor still reaches them
    payload = await grant(gql, s, "casey.cleaner@example.com")
    assert payload["userErrors"] == []
    assert (payload["grant"]["grantee"], payload["invitationSent"]) == (
        {"firstName": "Carl"},
        False,
    )
    await contractor.refresh_from_db()
    assert contractor.email == "casey.cleaner@example.com"


async def test_a_reimport_does_not_move_a_contractors_email_to_an_agent(
    orm: None, tmp_path: Path
) -> None:
    # given an imported agent, and a contractor
    await import_members(write_json(tmp_path / "m.json", [member("R1")]), ImportReport())
    await make_contractor(email="casey.cleaner@example.com")
    # when the roster changes the agent's email to the contractor's
    changed = [member("R1", MemberEmail="casey.cleaner@example.com")]
    report = await import_members(write_json(tmp_path / "m.json", changed), ImportReport())
    # then the agent holds no email, and only the contractor holds that one
    assert (report.updated, report.warnings) == (1, [(0, LEFT_EMPTY)])
    holders: list[Any] = await Account.filter(email="casey.cleaner@example.com").values_list(
        "kind", flat=True
    )
    assert holders == ["CONTRACTOR"]
    assert (await Account.get(mls_id="R1")).email is None
