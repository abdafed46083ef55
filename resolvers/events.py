"""The account event log: one entry per account change, with the staff member when support acted."""

from __future__ import annotations

from dataclasses import dataclass

from models.accounts import Account, AccountEvent
from models.enums import AccountEventKind


@dataclass(frozen=True)
class Actor:
    """Who made a change on someone's behalf (a support agent), and from where."""

    staff_id: int | None = None
    staff_name: str | None = None
    client_address: str | None = None


SELF = Actor()


async def record(
    account: Account | int, kind: AccountEventKind, detail: str = "", actor: Actor = SELF
) -> AccountEvent:
    account_id = account if isinstance(account, int) else account.id
    return await AccountEvent.create(
        account_id=account_id,
        kind=kind.value,
        detail=detail[:500],
        staff_id=actor.staff_id,
        staff_name=actor.staff_name,
        client_address=actor.client_address,
    )
