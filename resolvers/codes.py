"""One Day Codes: an 8-digit code a non-app visitor keys into a lockbox on one local date."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from tortoise.expressions import Subquery
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from ble.onedaycode import one_day_code, one_day_code_window
from core import clock
from core.errors import invalid_input
from core.text import is_one_line
from models import prepared
from models.accounts import Account
from models.grants import OneDayCodeIssue
from models.listings import Listing, Lockbox
from resolvers import step_up
from resolvers.account_status import require_active
from resolvers.lockboxes import own_lockbox, require_agent, zone_of
from resolvers.step_up import Confirmation
from settings import Settings

MAX_ISSUED_TO = 200


@dataclass(frozen=True)
class IssuedCode:
    code: str
    lockbox: Lockbox
    valid_on: date
    valid_from: datetime
    valid_until: datetime
    issued_to: str | None


async def generate_one_day_code(
    settings: Settings,
    agent: Account,
    lockbox_pk: int,
    day: date,
    confirmation: Confirmation,
    issued_to: str | None,
) -> IssuedCode:
    """For a lockbox the agent holds; the lockbox computes the same code offline."""
    require_agent(agent)
    require_active(agent)
    await own_lockbox(agent, lockbox_pk, "lockboxId")
    await step_up.confirm(agent, confirmation, step_up.Operation.GENERATE_ONE_DAY_CODE)
    async with in_transaction():
        # Locked until the issue is written: an unassign or a move at the same moment waits,
        # then finds this code and keeps the lockbox where it is (resolvers/lockboxes.py).
        lockbox = await own_lockbox(agent, lockbox_pk, "lockboxId", lock=True)
        zone = await zone_of(lockbox)
        _check_day(day, zone, settings.max_grant_days)
        recipient = _recipient(issued_to)
        # Everything computed before the row is written: a refusal leaves nothing behind.
        valid_from, valid_until = one_day_code_window(day, zone)
        code = one_day_code(lockbox.secret, day)
        await OneDayCodeIssue.create(
            lockbox_id=lockbox.id,
            agent_id=agent.id,
            listing_id=lockbox.listing_id,  # type: ignore[attr-defined]
            valid_on=day,
            issued_to=recipient,
        )
    return IssuedCode(
        code=code,
        lockbox=lockbox,
        valid_on=day,
        valid_from=valid_from,
        valid_until=valid_until,
        issued_to=recipient,
    )


def _check_day(day: date, zone: str, max_days: int) -> None:
    """From today to `max_days` ahead, where the lockbox is. A code cannot be taken back: the
    lockbox computes it offline from a secret that never changes, and keeps the lockbox with
    this agent until its day is over. An agent gives one for a showing they are planning, as
    they grant access for at most MAX_GRANT_DAYS: a code for a far day would only outlive
    their hold on the lockbox and open it at someone else's house."""
    today = clock.now().astimezone(ZoneInfo(zone)).date()
    if day < today:
        raise invalid_input("This date has passed where the lockbox is.", "date")
    if day > today + timedelta(days=max_days):
        raise invalid_input(f"A code is for a day at most {max_days} days ahead.", "date")


def _recipient(issued_to: str | None) -> str | None:
    recipient = (issued_to or "").strip() or None
    if recipient is not None and (len(recipient) > MAX_ISSUED_TO or not is_one_line(recipient)):
        raise invalid_input(f"At most {MAX_ISSUED_TO} characters, on one line.", "issuedTo")
    return recipient


_RANKED = (
    '"id" IN (SELECT "id" FROM (SELECT "id", ROW_NUMBER() OVER (PARTITION BY "listing_id" '
    'ORDER BY "id" DESC) AS rn FROM "one_day_code" WHERE {chosen}) ranked WHERE rn <= ?)'
)


async def codes_of_listings(
    listing_ids: Collection[int], per_listing: int, before_id: int | None
) -> list[OneDayCodeIssue]:
    """Each listing's newest `per_listing` codes issued (below the keyset cursor) in one
    statement, newest first: the window function keeps a long history from being read."""
    ids = sorted(set(listing_ids))
    if not ids or per_listing <= 0:
        return []
    # Only placeholders are formatted in: the values travel as parameters.
    chosen = f'"listing_id" IN ({prepared.placeholders(len(ids))})'
    params: list[object] = [*ids]
    if before_id is not None:
        chosen += ' AND "id" < ?'
        params.append(before_id)
    where = _RANKED.format(chosen=chosen)
    params.append(per_listing)
    return await prepared.select(
        OneDayCodeIssue, where, params, '"id" DESC', len(ids) * per_listing
    )


async def count_codes_of_listings(listing_ids: Collection[int]) -> dict[int, int]:
    rows = (
        await OneDayCodeIssue.filter(listing_id__in=list(listing_ids))
        .annotate(n=Count("id"))
        .group_by("listing_id")
        .values_list("listing_id", "n")
    )
    return {int(listing_id): int(n) for listing_id, n in rows}


async def visible_code_issue(account: Account, issue_pk: int) -> OneDayCodeIssue | None:
    """A code issued for one of the account's listings (the listing's history); None else."""
    own_listings = Listing.filter(agent_id=account.id).values("id")
    return await OneDayCodeIssue.filter(id=issue_pk, listing_id__in=Subquery(own_listings)).first()
