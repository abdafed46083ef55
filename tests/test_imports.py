"""`keybin import`: regions, members, listings and lockboxes from files, idempotently."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tortoise import connections

from core import clock
from importers.listings import import_listings
from importers.lockboxes import import_lockboxes
from importers.members import import_members
from importers.regions import import_regions
from importers.report import ImportFileError, ImportReport
from models.accounts import Account, AccountEvent
from models.enums import AccountKind, AccountStatus, ListingSource, ListingStatus
from models.listings import Listing, Lockbox, Region
from tests.factories import make_agent

DATA = Path(__file__).parent / "data"
KEYBIN = Path(sys.executable).parent / "keybin"


def write_json(path: Path, rows: list[Any]) -> Path:
    path.write_text(json.dumps({"value": rows}))
    return path


def member(mls_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "MemberMlsId": mls_id,
        "MemberFirstName": "Pat",
        "MemberLastName": f"Agent {mls_id}",
        "MemberEmail": f"{mls_id.lower()}@example.com",
        "MemberMobilePhone": "513-555-0100",
        "MemberStatus": "Active",
        "OriginatingSystemName": "Cincinnati MLS",
        **fields,
    }


async def test_regions_land_then_a_reimport_updates_them(orm: None, tmp_path: Path) -> None:
    # given
    first = await import_regions(DATA / "regions.csv", ImportReport())
    changed = tmp_path / "regions.csv"
    changed.write_text(
        "code,name,time_zone\nCIN,Cincinnati and Northern Kentucky,America/New_York\n"
        "PHX,Phoenix Valley,America/Phoenix\nSEA,Seattle,America/Los_Angeles\n"
    )
    # when
    second = await import_regions(changed, ImportReport())
    # then
    assert (first.created, first.updated, first.skipped) == (3, 0, [])
    assert (second.created, second.updated, second.skipped) == (1, 2, [])
    regions = {r.code: (r.name, r.time_zone) for r in await Region.all()}
    assert regions == {
        "CIN": ("Cincinnati and Northern Kentucky", "America/New_York"),
        "DEN": ("Denver Metro", "America/Denver"),
        "PHX": ("Phoenix Valley", "America/Phoenix"),
        "SEA": ("Seattle", "America/Los_Angeles"),
    }


async def test_bad_region_rows_are_reported_by_line_and_the_good_ones_land(orm: None) -> None:
    # when
    report = await import_regions(DATA / "regions_bad.csv", ImportReport())
    # then
    assert report.position == "line"
    assert report.skipped == [
        (3, "time_zone 'Mars/Olympus' is not an IANA time zone"),
        (4, "code is missing"),
        (6, "time_zone is missing"),
    ]
    assert report.created == 2
    codes: list[Any] = await Region.all().values_list("code", flat=True)
    assert sorted(codes) == ["CIN", "DEN"]


async def test_members_become_agents_with_key_ids_and_an_import_event(orm: None) -> None:
    # when
    report = await import_members(DATA / "members.json", ImportReport())
    # then
    assert (report.created, report.updated, report.skipped) == (3, 0, [])
    agents = await Account.filter(kind=AccountKind.AGENT).order_by("id")
    alice, bob, alice_denver = agents
    assert (alice.association, alice.mls_id, alice.first_name, alice.last_name) == (
        "Cincinnati MLS",
        "A1001",
        "Alice",
        "Archer",
    )
    assert alice.email == "alice.archer@example.com"  # lower-cased
    assert alice.phone == "+15135550101"
    assert alice.status == AccountStatus.ACTIVE
    assert bob.status == AccountStatus.INACTIVE and bob.phone == "+15135550102"
    # The same MLS id in another association is another agent account.
    assert (alice_denver.association, alice_denver.status) == (
        "Denver MLS",
        AccountStatus.SUSPENDED,
    )
    for agent in agents:
        assert re.fullmatch(r"[1-9]\d{8}", agent.key_id or "")
        assert agent.password_hash is None  # set through "Forgot password"
        kinds: list[Any] = await AccountEvent.filter(account_id=agent.id).values_list(
            "kind", flat=True
        )
        assert kinds == ["IMPORTED"]


async def test_a_phone_that_is_not_one_is_left_empty_with_a_warning(orm: None) -> None:
    # when
    report = await import_members(DATA / "members.json", ImportReport())
    # then
    assert report.warnings == [(2, "MemberMobilePhone '12' is not a phone number: left empty")]
    assert report.ok
    agent = await Account.get(association="Denver MLS", mls_id="A1001")
    assert agent.phone is None


async def test_reimporting_members_updates_them_and_keeps_key_ids(
    orm: None, tmp_path: Path
) -> None:
    # given
    await import_members(DATA / "members.json", ImportReport())
    key_ids = dict(await Account.all().values_list("mls_id", "key_id"))
    roster = json.loads((DATA / "members.json").read_text())["value"]
    roster[1].update(
        MemberEmail="Robert.Baker@Example.com",
        MemberStatus="Active",
        MemberMobilePhone="+1 (303) 555-0199",
        MemberLastName="Baker-Smith",
    )
    changed = write_json(tmp_path / "members.json", roster)
    # when
    report = await import_members(changed, ImportReport())
    # then
    assert (report.created, report.updated, report.skipped) == (0, 3, [])
    assert await Account.all().count() == 3
    bob = await Account.get(association="Cincinnati MLS", mls_id="A1002")
    assert (bob.email, bob.phone, bob.status, bob.last_name) == (
        "robert.baker@example.com",
        "+13035550199",
        AccountStatus.ACTIVE,
        "Baker-Smith",
    )
    assert dict(await Account.all().values_list("mls_id", "key_id")) == key_ids
    details: list[Any] = (
        await AccountEvent.filter(account_id=bob.id).order_by("id").values_list("detail", flat=True)
    )
    assert details[-1] == "roster update: last_name, email, phone, status"


async def test_bad_member_rows_are_reported_by_index(orm: None) -> None:
    # when
    report = await import_members(DATA / "members_bad.json", ImportReport())
    # then
    assert report.position == "index"
    assert report.skipped == [
        (1, "MemberMlsId is missing"),
        (2, "expected an object, found str"),
        (3, "MemberLastName must be text"),
    ]
    assert report.created == 2
    erin = await Account.get(mls_id="B2004")
    assert erin.status == AccountStatus.INACTIVE  # "Retired" is no status keybin has


async def test_a_member_twice_in_one_file_is_one_agent_and_the_later_row_wins(
    orm: None, tmp_path: Path
) -> None:
    # given
    path = write_json(tmp_path / "m.json", [member("D1"), member("D1", MemberLastName="Later")])
    # when
    report = await import_members(path, ImportReport())
    # then
    assert (report.created, report.updated) == (1, 1)
    agent = await Account.get(mls_id="D1")
    assert agent.last_name == "Later"


async def test_a_deleted_agent_is_not_brought_back_by_the_roster(orm: None, tmp_path: Path) -> None:
    # given
    gone = await make_agent(mls_id="G1", association="Cincinnati MLS", email="gone@example.com")
    await Account.filter(id=gone.id).update(
        email=None, first_name="", last_name="", deleted_at=clock.now()
    )
    path = write_json(tmp_path / "m.json", [member("G1")])
    # when
    report = await import_members(path, ImportReport())
    # then
    assert report.warnings == [(0, "agent G1 deleted their account: left alone")]
    await gone.refresh_from_db()
    assert (gone.email, gone.first_name) == (None, "")


async def test_key_ids_are_unique_nine_digit_numbers_across_batches(
    orm: None, tmp_path: Path
) -> None:
    # given: more rows than one batch holds, and a progress bar asked for
    path = write_json(tmp_path / "m.json", [member(f"K{n}") for n in range(1203)])
    progress = io.StringIO()
    # when
    report = await import_members(path, ImportReport(progress_to=progress))
    # then
    assert report.created == 1203
    key_ids: list[Any] = await Account.all().values_list("key_id", flat=True)
    assert len(set(key_ids)) == 1203
    assert all(re.fullmatch(r"[1-9]\d{8}", key_id or "") for key_id in key_ids)
    assert await AccountEvent.filter(kind="IMPORTED").count() == 1203
    assert progress.getvalue().startswith("\rimporting members ")
    assert progress.getvalue().endswith("\rimporting members 100% 1203/1203\n")


async def test_no_progress_bar_for_a_small_file_off_a_terminal(orm: None) -> None:
    progress = io.StringIO()
    await import_regions(DATA / "regions.csv", ImportReport(progress_to=progress))
    assert progress.getvalue() == ""


async def test_listings_land_with_their_list_agents(orm: None) -> None:
    # given
    await import_members(DATA / "members.json", ImportReport())
    before = clock.now()
    # when
    report = await import_listings(DATA / "listings.json", ImportReport())
    # then
    assert (report.created, report.updated, report.skipped) == (4, 0, [])
    imported_row = await Listing.get(mls_number="CIN-100")
    made = await Listing.create(
        mls_number="BY-HAND",
        source=ListingSource.MANUAL,
        line1="1 A St",
        city="C",
        state="OH",
        postal_code="1",
        agent_id=imported_row.agent_id,  # type: ignore[attr-defined]
    )
    stored = await connections.get("default").execute_query_dict(
        "SELECT mls_number, created_at FROM listing WHERE mls_number IN ('CIN-100', 'BY-HAND')"
    )
    # the batch's time is stored as the ORM stores a time, and reads back as one
    imported, by_hand = sorted(stored, key=lambda row: row["mls_number"] != "CIN-100")
    assert type(imported["created_at"]) is type(by_hand["created_at"])

    def shape(value: Any) -> str:
        return re.sub(r"\d", "0", str(value))

    assert shape(imported["created_at"]) == shape(by_hand["created_at"])
    assert before <= imported_row.created_at <= made.created_at
    rows = {
        listing.mls_number: listing for listing in await Listing.all().prefetch_related("agent")
    }
    main = rows["CIN-100"]
    assert (main.line1, main.line2, main.city, main.state, main.postal_code) == (
        "123 Main Street",
        "Unit 4B",
        "Cincinnati",
        "OH",
        "45202",
    )
    assert (main.source, main.status, main.agent.mls_id) == (
        ListingSource.IMPORTED,
        ListingStatus.ACTIVE,
        "A1002",
    )
    assert rows["CIN-101"].line1 == "77 Vine Street"
    assert rows["CIN-101"].status == ListingStatus.PENDING
    # A1001 is in two associations: the listing's hint picks the agent.
    assert rows["CIN-101"].agent.association == "Cincinnati MLS"
    assert rows["DEN-200"].agent.association == "Denver MLS"
    assert rows["DEN-200"].status == ListingStatus.COMING_SOON
    assert rows["CIN-102"].status == ListingStatus.WITHDRAWN


async def test_reimporting_listings_updates_status_address_and_agent(
    orm: None, tmp_path: Path
) -> None:
    # given
    await import_members(DATA / "members.json", ImportReport())
    await import_listings(DATA / "listings.json", ImportReport())
    rows = json.loads((DATA / "listings.json").read_text())["value"]
    # Cincinnati's listing (its agent's association) now listed by a Denver MLS member
    rows[0].update(
        StandardStatus="Closed",
        UnitNumber="5C",
        ListAgentMlsId="A1001",
        ListAgentOriginatingSystemName="Denver MLS",
        OriginatingSystemName="Cincinnati MLS",
    )
    changed = write_json(tmp_path / "listings.json", rows)
    # when
    report = await import_listings(changed, ImportReport())
    # then
    assert (report.created, report.updated, report.skipped) == (0, 4, [])
    assert await Listing.all().count() == 4
    listing = await Listing.get(mls_number="CIN-100").prefetch_related("agent")
    assert (listing.status, listing.line2) == (ListingStatus.CLOSED, "Unit 5C")
    assert (listing.agent.mls_id, listing.agent.association) == ("A1001", "Denver MLS")


async def test_bad_listing_rows_are_reported_by_index(orm: None) -> None:
    # given
    await import_members(DATA / "members.json", ImportReport())
    # when
    report = await import_listings(DATA / "listings_bad.json", ImportReport())
    # then
    assert sorted(report.skipped) == [
        (1, "no agent has ListAgentMlsId 'Z9999': import members first"),
        (2, "UnparsedAddress or StreetName is missing"),
        (3, "StandardStatus 'Sold Maybe' is not one keybin knows"),
        (
            4,
            "ListAgentMlsId 'A1001' is held in several associations: "
            "give ListAgentOriginatingSystemName",
        ),
        (5, "expected an object, found int"),
    ]
    assert report.created == 1
    numbers: list[Any] = await Listing.all().values_list("mls_number", flat=True)
    assert numbers == ["CIN-300"]


async def test_lockboxes_land_then_a_reimport_updates_them(orm: None, tmp_path: Path) -> None:
    # given
    first = await import_lockboxes(DATA / "lockboxes.csv", ImportReport())
    changed = tmp_path / "lockboxes.csv"
    changed.write_text(
        "Serial_Number,Model,BLE,Secret\n"  # header names are not case-sensitive
        "SL00000003,VBox BLE,yes,mfrg gzdf mztw q2lk nnwg 23tp obyx e43u\n"
    )
    # when
    second = await import_lockboxes(changed, ImportReport())
    # then
    assert (first.created, first.updated, first.skipped) == (3, 0, [])
    assert (second.created, second.updated, second.skipped) == (0, 1, [])
    boxes = {b.serial_number: (b.model, b.ble, b.secret) for b in await Lockbox.all()}
    assert boxes == {
        "SL00000001": ("VBox BLE", True, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"),
        "SL00000002": ("VBox BLE", True, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
        "SL00000003": ("VBox BLE", True, "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U"),
    }


async def test_a_reimport_leaves_a_lockboxs_assignment_alone(orm: None) -> None:
    # given
    await import_lockboxes(DATA / "lockboxes.csv", ImportReport())
    agent = await make_agent()
    await Lockbox.filter(serial_number="SL00000001").update(assigned_to_id=agent.id)
    # when
    await import_lockboxes(DATA / "lockboxes.csv", ImportReport())
    # then
    lockbox = await Lockbox.get(serial_number="SL00000001")
    assert lockbox.assigned_to_id == agent.id  # type: ignore[attr-defined]


async def test_bad_lockbox_rows_are_reported_by_line(orm: None) -> None:
    # when
    report = await import_lockboxes(DATA / "lockboxes_bad.csv", ImportReport())
    # then
    assert report.skipped == [
        (3, "secret: lockbox secret is not base32"),
        (4, "ble 'maybe' is not one of true/false/1/0/yes/no"),
        (5, "secret: lockbox secret is shorter than 14 bytes"),
        (6, "serial_number is missing"),
    ]
    assert report.created == 2
    assert await Lockbox.all().count() == 2


@pytest.mark.parametrize(
    "content",
    ['[{"MemberMlsId": "A1"}]', '{"value": {"MemberMlsId": "A1"}}', '{"items": []}', "{oops"],
)
async def test_a_file_that_is_not_reso_json_is_refused_whole(
    orm: None, tmp_path: Path, content: str
) -> None:
    path = tmp_path / "members.json"
    path.write_text(content)
    with pytest.raises(ImportFileError):
        await import_members(path, ImportReport())
    assert await Account.all().count() == 0


async def test_a_csv_without_the_expected_header_is_refused_whole(
    orm: None, tmp_path: Path
) -> None:
    path = tmp_path / "lockboxes.csv"
    path.write_text("serial,model,ble\nSL1,VBox,true\n")
    with pytest.raises(ImportFileError, match="secret"):
        await import_lockboxes(path, ImportReport())


def run_keybin(settings_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KEYBIN), *args], env=settings_env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "SMTP_"))}
    env.update(DATABASE_URL=f"sqlite://{tmp_path / 'cli.sqlite3'}", KEYBIN_ENV="development")
    return env


def test_the_command_line_reports_bad_rows_and_exits_1(cli_env: dict[str, str]) -> None:
    # when
    result = run_keybin(cli_env, "import", "regions", str(DATA / "regions_bad.csv"))
    # then
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        "line 3: skipped: time_zone 'Mars/Olympus' is not an IANA time zone",
        "line 4: skipped: code is missing",
        "line 6: skipped: time_zone is missing",
        "created 2, updated 0, skipped 3 (see above)",
    ]


def test_the_command_line_exits_0_when_every_row_landed(cli_env: dict[str, str]) -> None:
    # given
    run_keybin(cli_env, "import", "regions", str(DATA / "regions.csv"))
    # when: the same file again only updates
    result = run_keybin(cli_env, "import", "regions", str(DATA / "regions.csv"))
    # then
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["created 0, updated 3, skipped 0"]
    members = run_keybin(cli_env, "import", "members", str(DATA / "members.json"))
    assert members.returncode == 0, members.stderr
    assert "created 3, updated 0, skipped 0" in members.stdout


def test_the_command_line_refuses_a_missing_file(cli_env: dict[str, str], tmp_path: Path) -> None:
    result = run_keybin(cli_env, "import", "lockboxes", str(tmp_path / "nowhere.csv"))
    assert result.returncode == 1
    assert "cannot import" in result.stderr and "No such file" in result.stderr
