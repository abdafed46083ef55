"""What a request's size and shape cannot do: a body over /graphql's ceiling is refused with
413 before it is read (declared or sent in chunks), and JSON nested deeper than the parser
goes is malformed JSON (400 over HTTP, 4400 on a WebSocket), never a 500; against a real
server."""

from __future__ import annotations

import asyncio
import contextlib
import json

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app import MAX_BODY
from tests.live import Live

ASK = b'{"query":"{ __typename }"}'


async def test_a_body_declared_over_the_ceiling_is_refused_unread(live: Live) -> None:
    # given a request whose declared length is one byte over the ceiling
    body = b'{"query":"{ regions { code } }","variables":{"x":"' + b"a" * MAX_BODY + b'"}}'
    async with httpx.AsyncClient() as client:
        response = await client.post(
            live.http_url, content=body, headers={"content-type": "application/json"}
        )
    # then
    assert response.status_code == 413
    assert str(MAX_BODY) in response.json()["errors"][0]["message"]


async def test_a_body_sent_in_chunks_past_the_ceiling_is_refused(live: Live) -> None:
    # given a chunked body (no declared length) that grows past the ceiling, sent a chunk at a
    # time as long as the server has not answered
    host, port = live.http_url.removeprefix("http://").split("/")[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /graphql HTTP/1.1\r\nHost: keybin\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"a" * 65536
    answer = b""
    for _ in range(MAX_BODY // len(chunk) + 8):
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        await writer.drain()
        with contextlib.suppress(TimeoutError):
            answer = await asyncio.wait_for(reader.read(65536), 0.05)
        if answer:
            break
    writer.close()
    # then it is refused once past the ceiling, before the body ends
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:100]


async def test_a_body_under_the_ceiling_is_answered_as_before(live: Live) -> None:
    padding = b" " * (MAX_BODY - len(ASK) - 1)  # whitespace JSON allows, just under the ceiling
    async with httpx.AsyncClient() as client:
        response = await client.post(
            live.http_url,
            content=ASK[:-1] + padding + b"}",
            headers={"content-type": "application/json"},
        )
        again = await client.post(
            live.http_url, content=ASK, headers={"content-type": "application/json"}
        )
    assert response.status_code == 200, response.text
    assert response.json() == again.json()
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("depth", [5_000, 100_000])
async def test_json_nested_past_the_parser_is_a_bad_request(live: Live, depth: int) -> None:
    body = '{"query":"{ regions { code } }","variables":{"x":' + "[" * depth + "]" * depth + "}}"
    async with httpx.AsyncClient() as client:
        response = await client.post(
            live.http_url, content=body, headers={"content-type": "application/json"}
        )
        still = await client.post(
            live.http_url, content=ASK, headers={"content-type": "application/json"}
        )
    assert response.status_code == 400, response.text
    assert still.status_code == 200


async def test_a_websocket_frame_nested_past_the_parser_closes_with_4400(live: Live) -> None:
    async with connect(live.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        deep = "[" * 100_000 + "]" * 100_000
        await ws.send(
            '{"id":"1","type":"subscribe","payload":{"query":"subscription { messageAdded { title } }","variables":{"x":'
            + deep
            + "}}}"
        )
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(5):
                await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4400


@pytest.mark.parametrize("depth", [40, 600, 900])
async def test_variables_nested_past_any_input_are_refused_with_invalid_input(
    live: Live, depth: int
) -> None:
    # given a document already answered cleanly (so admitted, skipping the pipeline)
    async with httpx.AsyncClient() as client:
        for _ in range(3):
            clean = await client.post(live.http_url, json={"query": "{ __typename }"})
            assert clean.json() == {"data": {"__typename": "Query"}}
        # when its variables nest deeper than any input of the schema
        body = '{"query":"{ __typename }","variables":{"x":' + "[" * depth + "]" * depth + "}}"
        response = await client.post(
            live.http_url, content=body, headers={"content-type": "application/json"}
        )
    # then
    assert response.status_code == 200, response.text
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "INVALID_INPUT"
    assert "nested" in error["message"]


async def test_a_subscription_with_variables_nested_too_deep_is_refused(live: Live) -> None:
    async with connect(live.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        deep = "[" * 600 + "]" * 600
        query = "subscription { messageAdded { title } }"
        await ws.send(
            '{"id":"1","type":"subscribe","payload":{"query":"'
            + query
            + '","variables":{"x":'
            + deep
            + "}}}"
        )
        async with asyncio.timeout(5):
            frame = json.loads(await ws.recv())
    assert frame["type"] == "error", frame
    assert frame["payload"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert "nested" in frame["payload"][0]["message"]
