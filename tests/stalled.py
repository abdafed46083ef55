"""A loopback service that accepts connections and never answers, until it recovers."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


class StalledService:
    """Each connection is accepted, read and never answered: an SMTP relay that never greets,
    an HTTP gateway that never replies, a TLS handshake that never ends.

    `recover(port)` drops the stalled connections and passes every new one to a working
    server on `port`, byte for byte, as if that server had taken over this port.
    """

    def __init__(self) -> None:
        self.port = 0
        self.accepted = 0
        self._working_port: int | None = None
        self._server: asyncio.Server | None = None
        self._stalled: set[asyncio.StreamWriter] = set()
        self._open: set[asyncio.StreamWriter] = set()  # every socket, both sides of a relay
        self._handlers: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def recover(self, working_port: int) -> None:
        self._working_port = working_port
        for writer in self._stalled:
            writer.close()

    async def stop(self) -> None:
        """Closes every socket, and waits for each connection's handler to see it."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for writer in self._open:
            writer.close()
        if self._handlers:
            await asyncio.wait(self._handlers)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        self._open.add(writer)
        try:
            if self._working_port is None:
                await self._stall(reader, writer)
            else:
                await self._relay(reader, writer, self._working_port)
        finally:
            writer.close()
            self._open.discard(writer)
            self._handlers.discard(handler)

    async def _stall(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._stalled.add(writer)
        try:
            with contextlib.suppress(ConnectionError):
                while await reader.read(65536):
                    pass  # take whatever the client sends, answer nothing
        finally:
            self._stalled.discard(writer)

    async def _relay(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, working_port: int
    ) -> None:
        upstream_reader, upstream = await asyncio.open_connection("127.0.0.1", working_port)
        self._open.add(upstream)
        pipes = {
            asyncio.create_task(_pipe(reader, upstream)),
            asyncio.create_task(_pipe(upstream_reader, writer)),
        }
        try:
            # Either side closing ends the connection; neither protocol here half-closes.
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            writer.close()
            upstream.close()
            await asyncio.wait(pipes)  # each ends on its closed socket
            self._open.discard(upstream)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
