"""A grant's status has one definition (resolvers/grant_status.py): the WHERE clause that
filters grants by status and the SQL the page statements read agree with it, row by row,
on the edges of a grant's window too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from tortoise import connections

from models.grants import Grant
from resolvers.grant_status import GrantStatus, not_over, status_filter, status_of, status_sql
from schema.fast.page_dialects import DIALECTS
from tests.factories import make_agent, make_grant, make_listing, make_lockbox

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)

# (starts_at, ends_at, revoked_at) around NOW, and the status each one has.
CASES = [
    (NOW + HOUR, NOW + 2 * HOUR, None, GrantStatus.SCHEDULED),
    (NOW, NOW + HOUR, None, GrantStatus.ACTIVE),  # starting this instant: already open
    (NOW - HOUR, NOW + HOUR, None, GrantStatus.ACTIVE),
    (NOW - HOUR, NOW, None, GrantStatus.EXPIRED),  # ending this instant: closed
    (NOW - 2 * HOUR, NOW - HOUR, None, GrantStatus.EXPIRED),
    (NOW + HOUR, NOW + 2 * HOUR, NOW - HOUR, GrantStatus.REVOKED),  # revoked before it began
    (NOW - HOUR, NOW + HOUR, NOW - HOUR, GrantStatus.REVOKED),  # revoked while open
    (NOW - 2 * HOUR, NOW - HOUR, NOW - 3 * HOUR, GrantStatus.REVOKED),
]


@pytest.fixture
async def grants(orm: None) -> dict[int, GrantStatus]:
    """One grant per case, written straight to the database: its id and expected status."""
    agent = await make_agent()
    listing = await make_listing(agent)
    lockbox = await make_lockbox(agent, listing)
    expected: dict[int, GrantStatus] = {}
    for starts_at, ends_at, revoked_at, status in CASES:
        grant = await make_grant(agent, listing, lockbox)
        grant.starts_at, grant.ends_at, grant.revoked_at = starts_at, ends_at, revoked_at
        await grant.save()
        expected[grant.id] = status
    return expected


def test_the_status_is_the_first_rule_that_holds() -> None:
    # given grants before, inside, after their window and revoked ones
    for starts_at, ends_at, revoked_at, status in CASES:
        row = Grant(starts_at=starts_at, ends_at=ends_at, revoked_at=revoked_at)
        # when its status is worked out at NOW
        # then it is the one the table states
        assert status_of(row, NOW) == status, (starts_at, ends_at, revoked_at)


async def test_filtering_by_status_picks_the_grants_with_that_status(
    grants: dict[int, GrantStatus],
) -> None:
    for status in GrantStatus:
        # when the grants are filtered by one status
        where = status_filter([status.value], NOW)
        assert where is not None
        picked = set(await Grant.filter(where).values_list("id", flat=True))
        # then exactly those whose status_of is that status come back
        rows = await Grant.filter(id__in=list(grants))
        assert picked == {row.id for row in rows if status_of(row, NOW) == status}
        assert picked == {pk for pk, expected in grants.items() if expected == status}
    # and several statuses at once pick their union
    where = status_filter(["SCHEDULED", "REVOKED"], NOW)
    assert where is not None
    both = set(await Grant.filter(where).values_list("id", flat=True))
    assert both == {pk for pk, s in grants.items() if s in {"SCHEDULED", "REVOKED"}}
    # and no status chosen means no filter at all
    assert status_filter([], NOW) is None
    # and the grants not yet over (what lockbox moves, deletions and invitations ask for)
    # are the scheduled and the active ones
    ahead = set(await Grant.filter(not_over(NOW)).values_list("id", flat=True))
    assert ahead == {pk for pk, s in grants.items() if s in {"SCHEDULED", "ACTIVE"}}


async def test_the_sql_status_matches_status_of(grants: dict[int, GrantStatus]) -> None:
    # given the same windows again, stored in other UTC offsets (SQLite keeps the offset a
    # time was given in, so comparing the text as written would be wrong)
    for zone in (timezone(timedelta(hours=9)), timezone(timedelta(hours=-5))):
        for pk in list(grants):
            original = await Grant.get(id=pk)
            grant = await Grant.get(id=(await make_grant(*await _owners(original))).id)
            grant.starts_at = original.starts_at.astimezone(zone)
            grant.ends_at = original.ends_at.astimezone(zone)
            grant.revoked_at = original.revoked_at and original.revoked_at.astimezone(zone)
            await grant.save()
            grants[grant.id] = grants[pk]
    # when the database works out every grant's status with the page statements' expression
    client = connections.get("default")
    dialect = DIALECTS[str(client.capabilities.dialect)]
    await dialect.prepare(client)
    now = dialect.param(1, "timestamptz")  # our own columns; the time is a parameter
    status = status_sql("g", now, dialect.comparable_time)
    sql = f'SELECT g."id", {status} FROM "grant" g ORDER BY g."id"'  # noqa: S608
    _, rows = await client.execute_query(sql, [dialect.bind(NOW, "timestamptz")])
    # then each is the status status_of gives the same row
    by_id = {row.id: row for row in await Grant.filter(id__in=list(grants))}
    answered = {row[0]: row[1] for row in rows}
    assert answered == {pk: status_of(by_id[pk], NOW).value for pk in grants}
    assert answered == {pk: status.value for pk, status in grants.items()}


async def _owners(grant: Grant) -> tuple[Any, Any, Any]:
    await grant.fetch_related("granted_by", "listing", "lockbox")
    return grant.granted_by, grant.listing, grant.lockbox
