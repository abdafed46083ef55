"""Writing to the outbox: call these inside the transaction that makes the change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core import clock
from models.enums import OutboxChannel
from models.outbox import OutboxMessage
from notify.mail import render_email

# Who looks at what a commit wrote, at once rather than at their next poll: the
# dispatcher's lanes, and the live message tail on SQLite.
_on_wake: list[Callable[[], None]] = []


def on_wake(callback: Callable[[], None]) -> None:
    _on_wake.append(callback)


def off_wake(callback: Callable[[], None]) -> None:
    if callback in _on_wake:
        _on_wake.remove(callback)


def wake() -> None:
    """Call after the transaction commits: the dispatcher looks at the outbox now."""
    for callback in list(_on_wake):
        callback()


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
