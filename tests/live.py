"""A real uvicorn server on loopback for the live (WebSocket) tests, and its clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect

from tests.factories import PASSWORD, SIGN_IN
from tests.smtp import free_port

MESSAGE_ADDED = "subscription { messageAdded { kind title grant { id } } }"


async def eventually(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Polls a condition the server sets from its own tasks (no event to wait on)."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


class Live:
    """The app served by uvicorn: HTTP for mutations, ws:// for subscriptions."""

    def __init__(self, app: Starlette, port: int) -> None:
        self.app = app
        self.http_url = f"http://127.0.0.1:{port}/graphql"
        self.ws_url = f"ws://127.0.0.1:{port}/graphql"

    async def post(self, query: str, variables: dict[str, Any], token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient() as client:
            response = await client.post(
                self.http_url, json={"query": query, "variables": variables}, headers=headers
            )
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    async def sign_in(self, login: str) -> str:
        variables = {
            "input": {"login": login, "password": PASSWORD, "deviceId": "d", "deviceName": "P"}
        }
        token: str = (await self.post(SIGN_IN, variables))["signIn"]["token"]
        return token

    async def wait_for_subscribers(self, count: int) -> None:
        await eventually(lambda: self.app.state.pubsub.subscriber_count() >= count)

    async def wait_for_no_subscribers(self) -> None:
        await eventually(lambda: self.app.state.pubsub.subscriber_count() == 0)


@asynccontextmanager
async def serve(app: Starlette) -> AsyncIterator[Live]:
    """uvicorn in this event loop; the app's lifespan must already have run."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started)
    yield Live(app, port)
    server.should_exit = True
    await task


@asynccontextmanager
async def subscribed(
    live: Live,
    token: str,
    query: str = MESSAGE_ADDED,
    variables: dict[str, Any] | None = None,
) -> AsyncIterator[ClientConnection]:
    async with connect(live.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        init = {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        subscribe = {"id": "1", "type": "subscribe", "payload": payload}
        await ws.send(json.dumps(subscribe))
        yield ws
