"""Writing to the outbox: call these inside the transaction that makes the change."""

from __future__ import annotations

import asyncio
from typing import Any

from models.enums import OutboxChannel
from models.outbox import OutboxMessage
from notify.mail import render_email
from resolvers import clock

# Set by the running dispatcher so a commit is delivered at once, not at the next poll.
_wake: asyncio.Event | None = None


def bind_wakeup(event: asyncio.Event | None) -> None:
    global _wake
    _wake = event


def wake() -> None:
    """Call after the transaction commits: the dispatcher looks at the outbox now."""
    if _wake is not None:
        _wake.set()


async def _add(
    channel: OutboxChannel, recipient: str, payload: dict[str, Any], account_id: int | None
) -> OutboxMessage:
    return await OutboxMessage.create(
        channel=channel,
        recipient=recipient,
        payload=payload,
        account_id=account_id,
        next_attempt_at=clock.now(),
    )


async def email(
    to: str, template: str, context: dict[str, Any], account_id: int | None = None
) -> OutboxMessage:
    """Queue a mail; it is rendered now so every retry sends the same bytes."""
    rendered = render_email(template, context)
    return await _add(OutboxChannel.EMAIL, to, rendered, account_id)


async def sms(to: str, body: str, account_id: int | None = None) -> OutboxMessage:
    return await _add(OutboxChannel.SMS, to, {"body": body}, account_id)


async def live_event(account_id: int, message_id: int) -> OutboxMessage:
    """A Message Center message to push to the account's open subscriptions."""
    payload = {"account_id": account_id, "message_id": message_id}
    return await _add(OutboxChannel.EVENT, str(account_id), payload, account_id)
