"""Which accounts an email address names, and what an account reads of its own on the Account
type: its devices and its other agent accounts. The caller checks first that the reader is
that account (resolvers.visibility)."""

from __future__ import annotations

from tortoise.expressions import Q

from models.accounts import Account, Device
from models.enums import AccountKind


def named_by_email(email: str) -> Q:
    """The accounts an address names: those that proved it (the roster's addresses count as
    proven), and a contractor holding it, proven or not.

    Anyone may put any address on an agent account unproven, so an unproven agent address
    reaches nobody (the agent signs in with its Key ID). A contractor's address is its only
    login, and no other account may hold it while the contractor does.
    """
    return Q(email=email) & (Q(email_verified=True) | Q(kind=AccountKind.CONTRACTOR))


async def devices_of(account_pk: int) -> list[Device]:
    """In the order they were registered, so the app's list does not reshuffle."""
    return await Device.filter(account_id=account_pk).order_by("registered_at", "id")


async def linked_agent_accounts(account_pk: int, email: str | None) -> list[Account]:
    """The person's other agent accounts: signing in to one of them is how the app switches.

    Linked only through an address each of them proved: one that merely typed another agent's
    address into its own account would otherwise read that agent's Key IDs and statuses, and
    be listed to it. An account without an email is linked to none.
    """
    if not email:
        return []
    proven = Q(email=email, email_verified=True, kind=AccountKind.AGENT, deleted_at__isnull=True)
    if not await Account.exists(proven, id=account_pk):
        return []
    return await Account.filter(proven).exclude(id=account_pk).order_by("id")
