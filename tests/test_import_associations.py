"""One association's members or listings file never writes another association's agents or
listings, nor a listing an agent added by hand: agents are known by MemberMlsId and listings
by ListingId within their association, and a row that names none takes the association the
command line names (a roster row with neither is skipped)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from importers.listings import import_listings
from importers.members import import_members
from importers.report import ImportReport
from models.accounts import Account
from models.enums import ListingSource
from models.listings import Listing
from tests.factories import GraphQLClient, make_agent
from tests.test_imports import cli_env, member, run_keybin, write_json  # noqa: F401
from tests.test_listings import ADD_LISTING, address
from tests.test_upgrade_migrations import empty_database_url, upgraded  # noqa: F401

X, Y = "X MLS", "Y MLS"
MISSING = "OriginatingSystemName is missing: name the association on each row or with --association"
OTHER = "OriginatingSystemName 'X MLS' is another association than 'Y MLS', the one being imported"


def listing(number: str, line1: str, agent_mls_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "ListingId": number,
        "StandardStatus": "Active",
        "UnparsedAddress": line1,
        "City": "Xville",
        "StateOrProvince": "OH",
        "PostalCode": "45000",
        "ListAgentMlsId": agent_mls_id,
        **fields,
    }


async def listings_by_association() -> dict[str, tuple[str, str, str]]:
    """association -> (ListingId, line1, the agent's association), for every listing."""
    rows = await Listing.all().prefetch_related("agent")
    return {
        row.association: (row.mls_number or "", row.line1, row.agent.association) for row in rows
    }


async def test_a_listing_file_of_one_association_leaves_anothers_listing_alone(
    orm: None, tmp_path: Path
) -> None:
    # given agent A1 in two associations, and X's listing 1001
    await import_members(
        write_json(
            tmp_path / "m.json",
            [member("A1", OriginatingSystemName=X), member("A1", OriginatingSystemName=Y)],
        ),
        ImportReport(),
    )
    x_file = write_json(
        tmp_path / "x.json", [listing("1001", "1 X Street", "A1", OriginatingSystemName=X)]
    )
    await import_listings(x_file, ImportReport())
    # when Y's feed has a listing 1001 of its own
    y_file = write_json(
        tmp_path / "y.json", [listing("1001", "9 Y Avenue", "A1", OriginatingSystemName=Y)]
    )
    report = await import_listings(y_file, ImportReport())
    # then it is a listing of Y's agent, and X's listing is as X's file left it
    assert (report.created, report.updated, report.skipped) == (1, 0, [])
    assert await listings_by_association() == {
        X: ("1001", "1 X Street", X),
        Y: ("1001", "9 Y Avenue", Y),
    }
    # and each association's next file updates its own listing only
    x_file.write_text(x_file.read_text().replace("1 X Street", "2 X Street"))
    again = await import_listings(x_file, ImportReport())
    assert (again.created, again.updated) == (0, 1)
    assert await listings_by_association() == {
        X: ("1001", "2 X Street", X),
        Y: ("1001", "9 Y Avenue", Y),
    }


async def test_a_listing_of_one_association_never_goes_to_anothers_agent(
    orm: None, tmp_path: Path
) -> None:
    # given A1 is an agent of X only
    await import_members(
        write_json(tmp_path / "m.json", [member("A1", OriginatingSystemName=X)]), ImportReport()
    )
    # when Y's feed names A1 as the agent of its listing
    y_file = write_json(
        tmp_path / "y.json", [listing("1001", "9 Y Avenue", "A1", OriginatingSystemName=Y)]
    )
    report = await import_listings(y_file, ImportReport())
    # then the row is reported, and X's agent has no listing of Y
    assert report.skipped == [
        (0, "no agent of 'Y MLS' has ListAgentMlsId 'A1': import members first")
    ]
    assert await Listing.all().count() == 0


async def test_a_listing_file_named_on_the_command_line_takes_no_row_of_another(
    orm: None, tmp_path: Path
) -> None:
    # given agents of both associations
    await import_members(
        write_json(
            tmp_path / "m.json",
            [member("A1", OriginatingSystemName=X), member("A1", OriginatingSystemName=Y)],
        ),
        ImportReport(),
    )
    rows = [
        listing("1001", "9 Y Avenue", "A1"),
        listing("1002", "1 X Street", "A1", OriginatingSystemName=X),
    ]
    # when the file is imported as Y's
    report = await import_listings(write_json(tmp_path / "y.json", rows), ImportReport(), Y)
    # then the row naming no association is Y's, the one naming X is refused
    assert report.skipped == [(1, OTHER)]
    assert await listings_by_association() == {Y: ("1001", "9 Y Avenue", Y)}


async def test_a_listing_added_by_hand_is_left_alone_by_an_import(
    gql: GraphQLClient, tmp_path: Path
) -> None:
    # given an agent of X who added listing 1001 by hand
    agent = await make_agent(mls_id="A1", association=X)
    token = await gql.sign_in(agent.email or "")
    added = await gql(ADD_LISTING, {"input": {**address(), "mlsNumber": "1001"}}, token=token)
    assert added["addListing"]["userErrors"] == []
    # when X's feed has a listing 1001
    x_file = write_json(
        tmp_path / "x.json", [listing("1001", "1 X Street", "A1", OriginatingSystemName=X)]
    )
    report = await import_listings(x_file, ImportReport())
    # then the row is reported and the agent's listing is as they wrote it
    assert (report.created, report.updated) == (0, 0)
    assert report.skipped == [
        (0, "ListingId '1001' is a listing its agent added by hand: left alone")
    ]
    [kept] = await Listing.all()
    assert (kept.source, kept.line1, kept.association) == (ListingSource.MANUAL, "12 Elm Street", X)


async def test_a_roster_row_names_its_association_or_is_skipped(orm: None, tmp_path: Path) -> None:
    # given a roster row with no OriginatingSystemName
    row = member("A1")
    del row["OriginatingSystemName"]
    path = write_json(tmp_path / "m.json", [row])
    # when
    report = await import_members(path, ImportReport())
    # then
    assert report.skipped == [(0, MISSING)]
    assert await Account.all().count() == 0


async def test_two_associations_rosters_named_on_the_command_line_stay_apart(
    orm: None, tmp_path: Path
) -> None:
    # given two rosters naming no association, with the same MLS id
    x_row, y_row = member("A1", MemberFirstName="Xena"), member("A1", MemberFirstName="Yuri")
    for row in (x_row, y_row):
        del row["OriginatingSystemName"]
    # when each is imported as its association's
    x = await import_members(write_json(tmp_path / "x.json", [x_row]), ImportReport(), X)
    y = await import_members(write_json(tmp_path / "y.json", [y_row]), ImportReport(), Y)
    # then they are two agents, neither changed by the other's roster
    assert (x.created, y.created, y.updated) == (1, 1, 0)
    agents = await Account.all().order_by("id").values_list("association", "mls_id", "first_name")
    assert agents == [(X, "A1", "Xena"), (Y, "A1", "Yuri")]


async def test_a_roster_named_on_the_command_line_takes_no_row_of_another(
    orm: None, tmp_path: Path
) -> None:
    # given X's agent A1
    await import_members(
        write_json(tmp_path / "x.json", [member("A1", OriginatingSystemName=X)]), ImportReport()
    )
    # when Y's roster carries a row naming X
    path = write_json(
        tmp_path / "y.json", [member("A1", OriginatingSystemName=X, MemberStatus="Inactive")]
    )
    report = await import_members(path, ImportReport(), Y)
    # then it is refused, and X's agent is as X's roster left it
    assert report.skipped == [(0, OTHER)]
    assert await Account.all().values_list("association", "status") == [(X, "ACTIVE")]


def test_the_command_line_names_the_association_of_a_roster(
    cli_env: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    # given a roster naming no association
    row = member("A1")
    del row["OriginatingSystemName"]
    path = write_json(tmp_path / "m.json", [row])
    # when it is imported without --association, then with it
    without = run_keybin(cli_env, "import", "members", str(path))
    named = run_keybin(cli_env, "import", "members", str(path), "--association", X)
    # then the first skips the row and says how to name it, the second imports it
    assert without.returncode == 1, without.stderr
    assert without.stdout.splitlines() == [
        f"index 0: skipped: {MISSING}",
        "created 0, updated 0, skipped 1 (see above)",
    ]
    assert named.returncode == 0, named.stderr
    assert named.stdout.splitlines() == ["created 1, updated 0, skipped 0"]
    helped = run_keybin(cli_env, "import", "--help")
    assert "--association NAME" in helped.stdout
    assert "A roster row names its association" in " ".join(helped.stdout.split())


def test_the_command_line_takes_no_association_for_regions_or_lockboxes(
    cli_env: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    path = tmp_path / "regions.csv"
    path.write_text("code,name,time_zone\nCIN,Cincinnati,America/New_York\n")
    result = run_keybin(cli_env, "import", "regions", str(path), "--association", X)
    assert result.returncode == 2
    assert (
        result.stderr.splitlines()[-1] == "keybin: --association is for members and listings files"
    )
    blank = run_keybin(cli_env, "import", "members", str(path), "--association", " ")
    assert blank.returncode == 2 and "association's name" in blank.stderr


# Two associations' agents, an imported listing of X's agent and one Y's agent added by hand.
LISTINGS_BEFORE = [
    "INSERT INTO account (id, kind, association, mls_id, first_name, last_name, status, "
    "failed_logins, failed_pins, created_at) VALUES "
    "(7, 'AGENT', 'X MLS', 'A1', 'Xena', 'X', 'ACTIVE', 0, 0, '2026-11-01 09:00:00+00:00'), "
    "(8, 'AGENT', 'Y MLS', 'A1', 'Yuri', 'Y', 'ACTIVE', 0, 0, '2026-11-01 09:00:00+00:00')",
    "INSERT INTO listing (id, agent_id, mls_number, source, status, line1, city, state, "
    "postal_code, created_at) VALUES "
    "(3, 7, '1001', 'IMPORTED', 'ACTIVE', '1 X Street', 'Xville', 'OH', '45000', "
    "'2026-11-01 09:00:00+00:00'), "
    "(4, 8, '2002', 'MANUAL', 'ACTIVE', '9 Y Avenue', 'Yburg', 'CO', '80000', "
    "'2026-11-01 09:00:00+00:00')",
]


async def test_listings_there_before_are_their_agents_associations(
    empty_database_url: str,  # noqa: F811
) -> None:
    # given listings as the release before left them, known by number alone
    # when the database is migrated to this release
    [rows] = await upgraded(
        empty_database_url,
        "models.0011_unknown_staff_login",
        LISTINGS_BEFORE,
        ["SELECT id, mls_number, association FROM listing ORDER BY id"],
    )
    # then each is its agent's association's, so that association's next file finds it
    assert [(r["id"], r["mls_number"], r["association"]) for r in rows] == [
        (3, "1001", X),
        (4, "2002", Y),
    ]
