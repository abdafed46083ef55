"""Posting to the Message Center: the message, its live event and its delivery rows, in the
caller's transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from models.enums import MessageKind
from models.messages import Message
from notify import live_events

# Extra per-message deliveries (e.g. push to devices) registered by other modules;
# each runs inside the same transaction as the message itself.
MessageHook = Callable[[Message], Awaitable[None]]
_hooks: list[MessageHook] = []


def on_message(hook: MessageHook) -> MessageHook:
    _hooks.append(hook)
    return hook


async def post_message(
    account_id: int, kind: MessageKind, title: str, body: str, grant_id: int | None = None
) -> Message:
    """Call inside the transaction of the change; call outbox.wake() after it commits."""
    message = await Message.create(
        account_id=account_id, kind=kind, title=title, body=body, grant_id=grant_id
    )
    await live_events.message_posted(account_id, message.id)
    for hook in _hooks:
        await hook(message)
    return message
