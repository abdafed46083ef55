"""Rows by primary key, a batch at a time: the batch functions of the request's DataLoaders.

A field that follows a foreign key (a grant's listing, an event's actor) asks for one row;
its loader gathers the tick's asks into one statement per table. Each answer lists the rows
in the order of the ids, None where a row is gone, as a DataLoader needs them. Whether the
reader may see a row reached this way is the caller's check (resolvers/visibility.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from tortoise.models import Model

from models import prepared
from models.accounts import Account
from models.grants import Grant
from models.listings import Listing, Lockbox, Region
from models.messages import Message

M = TypeVar("M", bound=Model)


async def _in_order(model: type[M], ids: Sequence[Any]) -> list[M | None]:
    found = {row.pk: row for row in await prepared.by_ids(model, ids)}
    return [found.get(i) for i in ids]


async def accounts(ids: Sequence[int]) -> list[Account | None]:
    """Deleted accounts too: some fields still name them (visibility.still_exists)."""
    return await _in_order(Account, ids)


async def grants(ids: Sequence[int]) -> list[Grant | None]:
    return await _in_order(Grant, ids)


async def listings(ids: Sequence[int]) -> list[Listing | None]:
    return await _in_order(Listing, ids)


async def lockboxes(ids: Sequence[int]) -> list[Lockbox | None]:
    return await _in_order(Lockbox, ids)


async def messages(ids: Sequence[int]) -> list[Message | None]:
    return await _in_order(Message, ids)


async def regions(codes: Sequence[str]) -> list[Region | None]:
    return await _in_order(Region, codes)
