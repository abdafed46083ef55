"""keybin's graphql-transport-ws handler: a signed-in connection lives as long as its session."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from graphql import GraphQLError
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    Message,
    SubscribeMessage,
)

from core import clock
from notify.sessions import NOT_ACTIVE, SESSION_ENDED
from schema.fast.fanout import LiveTransportHandler
from schema.persisted import ws as persisted

log = logging.getLogger("keybin.live")

REASONS = {SESSION_ENDED: "Session ended", NOT_ACTIVE: "Account not active"}
# Operations one connection may have running at once. An app has a handful; more is a client
# multiplying every event it is sent (each one a frame per operation).
MAX_OPERATIONS = 50
TOO_MANY = {
    "message": f"No more than {MAX_OPERATIONS} subscriptions at once on one connection.",
    "extensions": {"code": "TOO_MANY_ATTEMPTS"},
}


class SessionTransportHandler(LiveTransportHandler):
    """Once connection_init has signed it in, the connection is registered under its
    session (notify/connections.py); when the session ends, `close_for` stops every
    subscription on it and closes the socket, and from that moment nothing more is sent.
    A session also ends when its lifetime runs out, with no event to tell it: the connection
    closes then, and nothing is sent or subscribed after that time."""

    account_id = 0
    session_id = 0
    expires_at: datetime | None = None
    _closing: asyncio.Task[None] | None = None
    _expiry: asyncio.TimerHandle | None = None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        connections = self.context.pubsub.connections
        since = connections.mark()  # before the token is checked: see OpenConnections.add
        await super().handle_connection_init(message)
        auth = self.context.auth
        if self.connection_acknowledged and auth is not None and self._closing is None:
            self.account_id, self.session_id = auth.account.id, auth.session.id
            self.expires_at = auth.session.expires_at
            connections.add(self, since)
            self._expire_later()

    def _expired(self) -> bool:
        return self.expires_at is not None and clock.now() >= self.expires_at

    def _expire_later(self) -> None:
        """Close the connection when its session's lifetime runs out (looked at again then:
        keybin's clock, which tests move, decides)."""
        if self.expires_at is None or self._closing is not None:
            return
        if self._expired():
            self.close_for(SESSION_ENDED)
            return
        seconds = (self.expires_at - clock.now()).total_seconds()
        self._expiry = asyncio.get_running_loop().call_later(seconds, self._expire_later)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self._expired():
            self.close_for(SESSION_ENDED)
            return
        if len(self.operations) >= MAX_OPERATIONS and message.get("id") not in self.operations:
            refused = {"id": message["id"], "type": "error", "payload": [TOO_MANY]}
            await self.send_message(refused)  # type: ignore[arg-type]
            return
        documents = getattr(self.view, "persisted", None)
        # Unacknowledged, or an id already running: Strawberry closes the connection.
        acknowledged = self.connection_acknowledged and message.get("id") not in self.operations
        if documents is not None and acknowledged:
            found = persisted.with_document(documents, message)
            if isinstance(found, GraphQLError):
                error = {"id": message["id"], "type": "error", "payload": [found.formatted]}
                await self.send_message(error)  # type: ignore[arg-type]
                return
            message = found
        await super().handle_subscribe(message)

    def close_for(self, code: int) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close(code))
            self._closing.add_done_callback(_closed)

    async def _close(self, code: int) -> None:
        # Anything the client still asks on this connection is asked anonymously.
        self.context.auth = None
        for operation_id in list(self.operations):
            await self.cleanup_operation(operation_id)
        # Already gone (the client closed first): nothing to close.
        with contextlib.suppress(RuntimeError, OSError):
            await self.websocket.close(code=code, reason=REASONS.get(code, ""))

    async def send_message(self, message: Message) -> None:
        if self._expired():
            self.close_for(SESSION_ENDED)
        if self._closing is None:  # not one frame after the session ended
            await super().send_message(message)

    async def shutdown(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        self.context.pubsub.connections.discard(self)
        await super().shutdown()


def _closed(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("closing a connection failed", exc_info=task.exception())
