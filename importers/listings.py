"""`keybin import listings`: RESO Property JSON as listings of the agents already imported."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from importers import bulk
from importers.report import ImportReport, RowError
from importers.sources import (
    ASSOCIATION_LENGTH,
    batched,
    json_object,
    optional,
    originating_system,
    required,
    reso_values,
)
from models import prepared
from models.accounts import Account
from models.enums import AccountKind, ListingSource, ListingStatus
from models.listings import Listing

STATUSES = {
    "active": ListingStatus.ACTIVE,
    "coming soon": ListingStatus.COMING_SOON,
    "pending": ListingStatus.PENDING,
    "active under contract": ListingStatus.PENDING,
    "closed": ListingStatus.CLOSED,
    "withdrawn": ListingStatus.WITHDRAWN,
    "canceled": ListingStatus.WITHDRAWN,
    "cancelled": ListingStatus.WITHDRAWN,
    "expired": ListingStatus.WITHDRAWN,
}
STREET_PARTS = ("StreetNumber", "StreetDirPrefix", "StreetName", "StreetSuffix", "StreetDirSuffix")
# What a re-import may change on a listing.
LISTING_FIELDS = ("status", "line1", "line2", "city", "state", "postal_code", "agent_id")
ATTEMPTS = 3


@dataclass
class ListingRow:
    index: int
    mls_number: str
    status: ListingStatus
    line1: str
    line2: str | None
    city: str
    state: str
    postal_code: str
    agent_mls_id: str
    # Whose MLS numbered the listing, when the row or the command line says; else the list
    # agent's association (a listing is in its agent's MLS unless told otherwise).
    association: str | None
    # Which association's agent is meant when MLS ids repeat across associations.
    agent_association: str | None


# A listing is known by its number within its association: associations number their
# listings independently, and one's feed must never rewrite another's listing.
Key = tuple[str, str]  # (ListingId, association)


def parse_listing(index: int, value: Any, association: str | None = None) -> ListingRow:
    """The row as a listing; `association` is the one the command line names, if any."""
    row = json_object(value)
    mls_number = required(row, "ListingId", 64)
    raw_status = required(row, "StandardStatus", 64)
    status = STATUSES.get(" ".join(raw_status.lower().split()))
    if status is None:
        raise RowError(f"StandardStatus {raw_status!r} is not one keybin knows")
    line1, line2 = _address(row)
    listing_association = originating_system(row, association)
    return ListingRow(
        index=index,
        mls_number=mls_number,
        status=status,
        line1=line1,
        line2=line2,
        city=required(row, "City", 100),
        state=required(row, "StateOrProvince", 50),
        postal_code=required(row, "PostalCode", 20),
        agent_mls_id=required(row, "ListAgentMlsId", 64),
        association=listing_association,
        agent_association=optional(row, "ListAgentOriginatingSystemName", ASSOCIATION_LENGTH)
        or listing_association,
    )


def _address(row: Mapping[str, Any]) -> tuple[str, str | None]:
    """(line1, line2) from the street parts when given, else from UnparsedAddress."""
    street = optional(row, "StreetName", 200)
    unit = optional(row, "UnitNumber", 50)
    line2 = f"Unit {unit}" if unit else None
    if street:
        # Absent parts are skipped before the checks: most rows lack the directions.
        parts = [optional(row, name, 50) for name in STREET_PARTS if name in row]
        line1 = " ".join(part for part in parts if part)
        if len(line1) > 200:
            raise RowError("the street address is longer than 200 characters")
        return line1, line2
    unparsed = optional(row, "UnparsedAddress", 200)
    if unparsed is None:
        raise RowError("UnparsedAddress or StreetName is missing")
    return unparsed, line2


async def import_listings(
    path: Path, report: ImportReport, association: str | None = None
) -> ImportReport:
    """Create or update one listing per row, keyed by ListingId within its association;
    source IMPORTED. `association`: the file is that association's (rows naming another
    are refused)."""
    report.position = "index"
    values = reso_values(path)
    progress = report.progress("listings", len(values))
    associations = await _associations()
    # The agents found so far, by MLS id: a file names the same few thousand agents again
    # and again; bounded by the agents in the database, not by the file.
    agents: AgentsByMlsId = {}
    done = 0
    for batch in batched(enumerate(values)):
        rows: list[ListingRow] = []
        for index, value in batch:
            try:
                rows.append(parse_listing(index, value, association))
            except RowError as error:
                report.skip(index, str(error))
        await _write(rows, associations, agents, report)
        done += len(batch)
        progress.update(done)
    progress.finish(len(values))
    return report


async def _write(
    rows: Sequence[ListingRow],
    associations: Sequence[str],
    agents: AgentsByMlsId,
    report: ImportReport,
) -> None:
    unknown = {row.agent_mls_id for row in rows} - agents.keys()
    agents.update(await _agents(connections.get("default"), unknown, associations))
    placed: dict[Key, tuple[ListingRow, int]] = {}
    repeats = 0
    for row in rows:
        try:
            agent_id, agent_association = _list_agent(row, agents)
        except RowError as error:
            report.skip(row.index, str(error))
            continue
        key = (row.mls_number, agent_association if row.association is None else row.association)
        # The same listing twice in one batch: the later row wins, as a re-import would.
        repeats += key in placed
        placed[key] = (row, agent_id)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            async with in_transaction() as db:
                created, updated, by_hand = await _upsert(db, placed)
        except IntegrityError:
            # Another writer added one of these listings meanwhile: plan the batch again.
            if attempt == ATTEMPTS:
                raise
            continue
        for row in by_hand:
            report.skip(
                row.index,
                f"ListingId {row.mls_number!r} is a listing its agent added by hand: left alone",
            )
        report.created += created
        report.updated += updated + repeats
        return


AgentsByMlsId = dict[str, list[tuple[str, int]]]


async def _associations() -> list[str]:
    rows: list[Any] = (
        await Account.filter(kind=AccountKind.AGENT)
        .distinct()
        .values_list("association", flat=True)
    )
    return [str(row) for row in rows]


async def _agents(
    db: BaseDBAsyncClient, mls_ids: set[str], associations: Sequence[str]
) -> AgentsByMlsId:
    """(association, account id) of the live agents holding each MLS id."""
    found: AgentsByMlsId = defaultdict(list)
    # The only index on mls_id is (association, mls_id): naming every association lets
    # the database use it instead of scanning all accounts once per batch.
    if not mls_ids or not associations:
        return found
    sql = (
        f'SELECT "mls_id", "association", "id" FROM "{Account._meta.db_table}" '  # noqa: S608
        f'WHERE "kind" = ? AND "deleted_at" IS NULL '
        f'AND "association" IN ({prepared.placeholders(len(associations))}) '
        f'AND "mls_id" IN ({prepared.placeholders(len(mls_ids))})'
    )
    params = [AccountKind.AGENT.value, *associations, *mls_ids]
    for mls_id, association, account_id in await prepared.fetch(db, sql, params):
        found[mls_id].append((association, account_id))
    return found


def _list_agent(row: ListingRow, agents: AgentsByMlsId) -> tuple[int, str]:
    """(account id, association) of the row's list agent. Where the row names an association,
    the agent is that association's: a listing never goes to another's agent by chance."""
    candidates = agents.get(row.agent_mls_id, [])
    if row.agent_association is not None:
        candidates = [found for found in candidates if found[0] == row.agent_association]
        if not candidates:
            raise RowError(
                f"no agent of {row.agent_association!r} has ListAgentMlsId "
                f"{row.agent_mls_id!r}: import members first"
            )
    if len(candidates) == 1:
        association, account_id = candidates[0]
        return account_id, association
    if not candidates:
        raise RowError(f"no agent has ListAgentMlsId {row.agent_mls_id!r}: import members first")
    raise RowError(
        f"ListAgentMlsId {row.agent_mls_id!r} is held in several associations: "
        "give ListAgentOriginatingSystemName"
    )


async def _upsert(
    db: BaseDBAsyncClient, placed: Mapping[Key, tuple[ListingRow, int]]
) -> tuple[int, int, list[ListingRow]]:
    """Write one batch; returns (created, updated, rows left alone for a listing added by
    hand: an agent's own listing is not the feed's to change)."""
    if not placed:
        return 0, 0, []
    numbers = {number for number, _ in placed}
    associations = {association for _, association in placed}
    columns = ", ".join(f'"{c}"' for c in ("id", "mls_number", "association", "source"))
    fields = ", ".join(f'"{c}"' for c in LISTING_FIELDS)
    # Both lists name the (mls_number, association) key's index; the pairs are matched below.
    sql = (
        f'SELECT {columns}, {fields} FROM "{Listing._meta.db_table}" '  # noqa: S608
        f'WHERE "mls_number" IN ({prepared.placeholders(len(numbers))}) '
        f'AND "association" IN ({prepared.placeholders(len(associations))})'
    )
    found = await prepared.fetch(db, sql, [*numbers, *associations])
    existing = {(row[1], row[2]): row for row in found}
    changes: list[list[Any]] = []
    new: list[list[Any]] = []
    by_hand: list[ListingRow] = []
    for key, (row, agent_id) in placed.items():
        values = [
            row.status.value,
            row.line1,
            row.line2,
            row.city,
            row.state,
            row.postal_code,
            agent_id,
        ]
        old = existing.get(key)
        if old is None:
            new.append([*key, ListingSource.IMPORTED.value, *values])
        elif old[3] == ListingSource.MANUAL.value:
            by_hand.append(row)
        elif list(old[4:]) != values:
            changes.append([*values, old[0]])
    await bulk.update(db, Listing, LISTING_FIELDS, changes)
    await bulk.insert(db, Listing, ("mls_number", "association", "source", *LISTING_FIELDS), new)
    return len(new), len(placed) - len(new) - len(by_hand), by_hand
