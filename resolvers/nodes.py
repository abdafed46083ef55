"""The objects Query.node shows, each by its pk and only when the reader may see it: None
otherwise, so another account's objects read the same as missing ones."""

from __future__ import annotations

from models.accounts import Account, Device
from models.listings import Listing, Lockbox
from models.messages import Message


async def own_account(reader: Account, pk: int) -> Account | None:
    if pk != reader.id:
        return None
    return await Account.get_or_none(id=pk, deleted_at__isnull=True)


async def own_device(reader: Account, pk: int) -> Device | None:
    return await Device.get_or_none(id=pk, account_id=reader.id)


async def own_message(reader: Account, pk: int) -> Message | None:
    return await Message.get_or_none(id=pk, account_id=reader.id)


async def own_listing(reader: Account, pk: int) -> Listing | None:
    """An agent's own listings only; a grantee reaches a listing through its grant."""
    return await Listing.get_or_none(id=pk, agent_id=reader.id)


async def assigned_lockbox(reader: Account, pk: int) -> Lockbox | None:
    return await Lockbox.get_or_none(id=pk, assigned_to_id=reader.id)
