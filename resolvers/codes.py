"""One Day Codes: an 8-digit code a non-app visitor keys into a lockbox on one local date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from ble.onedaycode import one_day_code, one_day_code_window
from models.accounts import Account
from models.grants import OneDayCodeIssue
from models.listings import Lockbox
from resolvers import clock
from resolvers.account_status import require_active
from resolvers.auth import check_pin
from resolvers.errors import invalid_input
from resolvers.lockboxes import own_lockbox, require_agent, zone_of

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
    agent: Account, lockbox_pk: int, day: date, pin: str, issued_to: str | None
) -> IssuedCode:
    """For a lockbox the agent holds; the lockbox computes the same code offline."""
    require_agent(agent)
    require_active(agent)
    lockbox = await own_lockbox(agent, lockbox_pk, "lockboxId")
    await check_pin(agent, pin, "pin")
    zone = await zone_of(lockbox)
    if day < clock.now().astimezone(ZoneInfo(zone)).date():
        raise invalid_input("This date has passed where the lockbox is.", "date")
    recipient = (issued_to or "").strip() or None
    if recipient is not None and (len(recipient) > MAX_ISSUED_TO or "\x00" in recipient):
        raise invalid_input(f"At most {MAX_ISSUED_TO} characters.", "issuedTo")
    await OneDayCodeIssue.create(
        lockbox_id=lockbox.id,
        agent_id=agent.id,
        listing_id=lockbox.listing_id,  # type: ignore[attr-defined]
        valid_on=day,
        issued_to=recipient,
    )
    valid_from, valid_until = one_day_code_window(day, zone)
    return IssuedCode(
        code=one_day_code(lockbox.secret, day),
        lockbox=lockbox,
        valid_on=day,
        valid_from=valid_from,
        valid_until=valid_until,
        issued_to=recipient,
    )
