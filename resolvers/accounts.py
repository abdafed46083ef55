"""What an account reads of its own on the Account type: its devices and its other agent
accounts. The caller checks first that the reader is that account (resolvers.visibility)."""

from __future__ import annotations

from models.accounts import Account, Device
from models.enums import AccountKind


async def devices_of(account_pk: int) -> list[Device]:
    """In the order they were registered, so the app's list does not reshuffle."""
    return await Device.filter(account_id=account_pk).order_by("registered_at", "id")


async def linked_agent_accounts(account_pk: int, email: str | None) -> list[Account]:
    """The person's other agent accounts, those with the same email: signing in to one of
    them is how the app switches. An account without an email is linked to none."""
    if not email:
        return []
    return await Account.filter(
        email=email, kind=AccountKind.AGENT, deleted_at__isnull=True
    ).exclude(id=account_pk)
