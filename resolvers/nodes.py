"""The objects Query.node shows, each by its pk and only when the reader may see it: None
otherwise, so another account's objects read the same as missing ones."""

from __future__ import annotations

from models.accounts import Account, Device
from models.billing import Invoice, Payment
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


async def own_invoice(reader: Account, pk: int) -> Invoice | None:
    """An agent's own bills only: what Agent.billing shows, and no one else."""
    return await Invoice.get_or_none(id=pk, account_id=reader.id)


async def own_payment(reader: Account, pk: int) -> Payment | None:
    return await Payment.get_or_none(id=pk, account_id=reader.id)
