"""The Message Center: a keyset-paged feed per account, read marks, deletion."""

from __future__ import annotations

from collections.abc import Collection

from tortoise.queryset import QuerySet

from core import clock
from models import prepared
from models.enums import MessageKind
from models.messages import Message


def _chosen(kinds: Collection[MessageKind] | None) -> list[str]:
    """The kinds asked for, once each (none or empty: every kind, as for grant statuses)."""
    return sorted({MessageKind(kind).value for kind in kinds or ()})


def _feed(
    account_id: int, unread_only: bool, kinds: Collection[MessageKind] | None = None
) -> QuerySet[Message]:
    query = Message.filter(account_id=account_id)
    if chosen := _chosen(kinds):
        query = query.filter(kind__in=chosen)
    return query.filter(read_at__isnull=True) if unread_only else query


async def page(
    account_id: int,
    limit: int,
    before_id: int | None,
    unread_only: bool,
    kinds: Collection[MessageKind] | None = None,
) -> list[Message]:
    """Newest first; `before_id` is the keyset cursor, so new messages never shift a page.
    The statement is prepared once (models/prepared.py): this is every app's first screen.
    Unfiltered, the (account_id, id) index leads straight to the page: a short read. A
    filter may walk past many of the account's messages first."""
    where = '"account_id" = ?'
    params: list[object] = [account_id]
    chosen = _chosen(kinds)
    short = not unread_only and not chosen
    if unread_only:
        where += ' AND "read_at" IS NULL'
    if chosen:
        where += f' AND "kind" IN ({prepared.placeholders(len(chosen))})'
        params += chosen
    if before_id is not None:
        where, params = where + ' AND "id" < ?', [*params, before_id]
    return await prepared.select(Message, where, params, '"id" DESC', limit, short=short)


async def since(account_id: int, after_id: int, limit: int) -> list[Message]:
    """The account's messages created after `after_id`, oldest first: what a subscriber that
    reconnects has missed."""
    return await Message.filter(account_id=account_id, id__gt=after_id).order_by("id").limit(limit)


def addressed_to(message: Message | None, account_id: int) -> Message | None:
    """The message if it is still there and the account's: a live event carries only an id,
    so what it names is checked before a subscriber is shown it."""
    if message is None or message.account_id != account_id:  # type: ignore[attr-defined]
        return None
    return message


async def count(
    account_id: int, unread_only: bool = False, kinds: Collection[MessageKind] | None = None
) -> int:
    return await _feed(account_id, unread_only, kinds).count()


async def mark_read(account_id: int, message_ids: list[int]) -> int:
    """Only the account's own unread messages change; other ids are ignored, not reported."""
    if not message_ids:
        return 0
    return await Message.filter(
        account_id=account_id, id__in=message_ids, read_at__isnull=True
    ).update(read_at=clock.now())


async def delete(account_id: int, message_ids: list[int]) -> int:
    if not message_ids:
        return 0
    return await Message.filter(account_id=account_id, id__in=message_ids).delete()
