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
from importers.sources import batched, json_object, optional, required, reso_values
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
    # Which association's agent is meant when MLS ids repeat across associations.
    agent_association: str | None


def parse_listing(index: int, value: Any) -> ListingRow:
    row = json_object(value)
    mls_number = required(row, "ListingId", 64)
    raw_status = required(row, "StandardStatus", 64)
    status = STATUSES.get(" ".join(raw_status.lower().split()))
    if status is None:
        raise RowError(f"StandardStatus {raw_status!r} is not one keybin knows")
    line1, line2 = _address(row)
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
        agent_association=optional(row, "ListAgentOriginatingSystemName", 128)
        or optional(row, "OriginatingSystemName", 128),
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


async def import_listings(path: Path, report: ImportReport) -> ImportReport:
    """Create or update one listing per row, keyed by ListingId; source IMPORTED."""
    report.position = "index"
    values = reso_values(path)
    progress = report.progress("listings", len(values))
    associations = await _associations()
    # The agents found so far, by MLS id: a file names the same few thousand agents again
    # and again; bounded by the agents in the database, not by the file.
    agents: AgentsByMlsId = {}
    done = 0
    for batch in batched(enumerate(values)):
        rows: dict[str, ListingRow] = {}
        repeats = 0
        for index, value in batch:
            try:
                row = parse_listing(index, value)
            except RowError as error:
                report.skip(index, str(error))
                continue
            repeats += row.mls_number in rows
            rows[row.mls_number] = row
        await _write(list(rows.values()), associations, agents, report, repeats)
        done += len(batch)
        progress.update(done)
    progress.finish(len(values))
    return report


async def _write(
    rows: Sequence[ListingRow],
    associations: Sequence[str],
    agents: AgentsByMlsId,
    report: ImportReport,
    repeats: int,
) -> None:
    unknown = {row.agent_mls_id for row in rows} - agents.keys()
    agents.update(await _agents(connections.get("default"), unknown, associations))
    placed: list[tuple[ListingRow, int]] = []
    for row in rows:
        try:
            placed.append((row, _list_agent(row, agents)))
        except RowError as error:
            report.skip(row.index, str(error))
    for attempt in range(1, ATTEMPTS + 1):
        try:
            async with in_transaction() as db:
                created, updated = await _upsert(db, placed)
        except IntegrityError:
            # Another writer added one of these listings meanwhile: plan the batch again.
            if attempt == ATTEMPTS:
                raise
            continue
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


def _list_agent(row: ListingRow, agents: AgentsByMlsId) -> int:
    candidates = agents.get(row.agent_mls_id, [])
    if row.agent_association is not None:
        preferred = [id_ for association, id_ in candidates if association == row.agent_association]
        if preferred:
            return preferred[0]
    if len(candidates) == 1:
        return candidates[0][1]
    if not candidates:
        raise RowError(f"no agent has ListAgentMlsId {row.agent_mls_id!r}: import members first")
    raise RowError(
        f"ListAgentMlsId {row.agent_mls_id!r} is held in several associations: "
        "give ListAgentOriginatingSystemName"
    )


async def _upsert(
    db: BaseDBAsyncClient, placed: Sequence[tuple[ListingRow, int]]
) -> tuple[int, int]:
    if not placed:
        return 0, 0
    columns = ", ".join(f'"{c}"' for c in ("id", "mls_number", *LISTING_FIELDS))
    sql = (
        f'SELECT {columns} FROM "{Listing._meta.db_table}" '  # noqa: S608
        f'WHERE "mls_number" IN ({prepared.placeholders(len(placed))})'
    )
    found = await prepared.fetch(db, sql, [row.mls_number for row, _ in placed])
    existing = {row[1]: row for row in found}
    changes: list[list[Any]] = []
    new: list[list[Any]] = []
    for row, agent_id in placed:
        values = [
            row.status.value,
            row.line1,
            row.line2,
            row.city,
            row.state,
            row.postal_code,
            agent_id,
        ]
        old = existing.get(row.mls_number)
        if old is None:
            new.append([row.mls_number, ListingSource.IMPORTED.value, *values])
        elif list(old[2:]) != values:
            changes.append([*values, old[0]])
    await bulk.update(db, Listing, LISTING_FIELDS, changes)
    await bulk.insert(db, Listing, ("mls_number", "source", *LISTING_FIELDS), new)
    return len(new), len(placed) - len(new)
