"""The WebSocket's connection_init takes `Authorization` in any letter case, as HTTP does."""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.factories import make_contractor
from tests.live import Live

ME = "query { me { email } }"


async def ask_me(live: Live, payload: dict[str, Any]) -> Any:
    """connection_init with `payload`, then `me` over the socket: what the server answers."""
    async with connect(live.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": ME}}))
        return json.loads(await ws.recv())


@pytest.mark.parametrize(
    "key", ["authorization", "Authorization", "AUTHORIZATION", "AuThOrIzAtIoN"]
)
async def test_the_token_is_read_whatever_the_keys_case(live: Live, key: str) -> None:
    # given a signed-in contractor
    contractor = await make_contractor()
    token = await live.sign_in(contractor.email or "")
    # when the app sends its token under that spelling
    answer = await ask_me(live, {key: f"Bearer {token}"})
    # then the socket is the contractor's
    assert answer["type"] == "next"
    assert answer["payload"] == {"data": {"me": {"email": contractor.email}}}


async def test_without_a_token_the_socket_is_anonymous(live: Live) -> None:
    answer = await ask_me(live, {"Accept-Language": "en"})
    assert answer["payload"] == {"data": {"me": None}}


async def test_two_spellings_that_disagree_are_refused(live: Live) -> None:
    # given a token, and another value under a second spelling of the key
    contractor = await make_contractor()
    token = await live.sign_in(contractor.email or "")
    payload = {"Authorization": f"Bearer {token}", "authorization": "Bearer someone-else"}
    # when / then: closed with 4403, neither token taken
    async with connect(live.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
