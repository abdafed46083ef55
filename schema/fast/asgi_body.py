"""A request's body read ahead by middleware, then replayed to the app behind it.

The answer cache and the HTTP lane each look at a GraphQL request's body before deciding
whether to answer it themselves; whatever they leave to the app behind them must reach it
as the client sent it, every message in order."""

from __future__ import annotations

from starlette.types import Message, Receive


async def read_body(receive: Receive, limit: int) -> tuple[list[Message], bytes | None]:
    """The messages read, and the whole body when it is at most `limit` bytes; None when
    it is larger (reading stops there) or the client went away."""
    received: list[Message] = []
    size = 0
    while True:
        message = await receive()
        received.append(message)
        if message["type"] != "http.request":
            return received, None  # the client went away
        size += len(message.get("body", b""))
        if size > limit:
            return received, None
        if not message.get("more_body", False):
            return received, b"".join(m.get("body", b"") for m in received)


def replaying(received: list[Message], receive: Receive) -> Receive:
    """The messages already read, then the client's own."""
    queue = list(received)

    async def replay() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay
