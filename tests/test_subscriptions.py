"""Live Message Center over graphql-transport-ws, against a real uvicorn server on loopback."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from core import clock
from core.ids import to_global_id
from tests.factories import (
    make_agent,
    make_contractor,
    make_listing,
    make_lockbox,
)
from tests.live import MESSAGE_ADDED, Live, subscribed

JS_CLIENT = Path(__file__).parent / "js"
PLAIN_MESSAGE_ADDED = "subscription { messageAdded { id kind title body readAt } }"
GRANT_ACCESS = """
mutation($input: GrantAccessInput!) {
  grantAccess(input: $input) { grant { id } userErrors { code } }
}
"""


async def grant_to(live: Live, email: str) -> tuple[str, str]:
    """An agent with a listing and lockbox grants `email`; returns (agent token, grant id)."""
    agent = await make_agent()
    listing = await make_listing(agent)
    await make_lockbox(agent, listing=listing)
    token = await live.sign_in(agent.email or "")
    starts = clock.now() + timedelta(hours=1)
    variables = {
        "input": {
            "listingId": to_global_id("Listing", listing.id),
            "granteeEmail": email,
            "startsAt": starts.isoformat(),
            "endsAt": (starts + timedelta(hours=2)).isoformat(),
            "pin": "1234",
        }
    }
    payload = (await live.post(GRANT_ACCESS, variables, token))["grantAccess"]
    assert payload["userErrors"] == []
    return token, payload["grant"]["id"]


# With `grant` (loaded) the event takes the resolver's path; without, the fan-out's pass.
@pytest.mark.parametrize("query", [MESSAGE_ADDED, PLAIN_MESSAGE_ADDED])
async def test_grantee_receives_access_granted_live_and_no_one_else_does(
    live: Live, query: str
) -> None:
    # given two contractors subscribed
    grantee = await make_contractor()
    bystander = await make_contractor()
    grantee_token = await live.sign_in(grantee.email or "")
    bystander_token = await live.sign_in(bystander.email or "")
    async with (
        subscribed(live, grantee_token, query) as grantee_ws,
        subscribed(live, bystander_token, query) as bystander_ws,
    ):
        await live.wait_for_subscribers(2)
        # when
        _, grant_id = await grant_to(live, grantee.email or "")
        # then
        async with asyncio.timeout(5):
            event = json.loads(await grantee_ws.recv())
        assert event["type"] == "next" and event["id"] == "1"
        message = event["payload"]["data"]["messageAdded"]
        assert message["kind"] == "ACCESS_GRANTED"
        assert message["title"].startswith("Access")
        if query == MESSAGE_ADDED:
            assert message["grant"] == {"id": grant_id}
        else:
            assert message["body"] and message["readAt"] is None
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await bystander_ws.recv()


async def test_a_bad_token_is_refused_at_connection_init(live: Live) -> None:
    async with connect(live.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": "Bearer x"}})
        )
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


@pytest.fixture(scope="session")
def js_client() -> Path:
    """The npm client's dependencies, installed on first use (CI has npm and the registry)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "node and npm are needed for the reference client test"
    if not (JS_CLIENT / "node_modules" / "graphql-ws").exists():
        subprocess.run(
            [npm, "install", "--prefix", str(JS_CLIENT), "--no-audit", "--no-fund"],
            check=True,
            timeout=300,
        )
    return JS_CLIENT / "subscribe.mjs"


@pytest.mark.parametrize("query", [MESSAGE_ADDED, PLAIN_MESSAGE_ADDED])
async def test_the_reference_npm_graphql_ws_client_receives_the_message(
    live: Live, js_client: Path, query: str
) -> None:
    # given the npm graphql-ws client subscribed as a contractor
    contractor = await make_contractor()
    token = await live.sign_in(contractor.email or "")
    node = shutil.which("node") or "node"
    process = await asyncio.create_subprocess_exec(
        node, str(js_client), live.ws_url, token, query, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(10):
            first = json.loads(await process.stdout.readline())
        assert first == {"event": "connected"}
        await live.wait_for_subscribers(1)
        # when
        _, grant_id = await grant_to(live, contractor.email or "")
        # then
        async with asyncio.timeout(5):
            line = json.loads(await process.stdout.readline())
            assert await process.wait() == 0
        assert line["event"] == "next", line
        message = line["result"]["data"]["messageAdded"]
        assert message["kind"] == "ACCESS_GRANTED" and message["title"].startswith("Access")
        if query == MESSAGE_ADDED:
            assert message == {
                "kind": "ACCESS_GRANTED",
                "title": message["title"],
                "grant": {"id": grant_id},
            }
        else:
            assert set(message) == {"id", "kind", "title", "body", "readAt"}
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
