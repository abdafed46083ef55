"""Real processes: two instances sharing PostgreSQL, and a server killed mid-burst."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from tortoise import Tortoise
from websockets.asyncio.client import connect

import db
from core import clock
from core.ids import from_global_id, to_global_id
from models.enums import OutboxChannel
from models.grants import Grant
from models.outbox import OutboxMessage
from settings import Settings
from tests.conftest import POSTGRES_URL
from tests.factories import (
    PASSWORD,
    SIGN_IN,
    make_agent,
    make_contractor,
    make_listing,
    make_lockbox,
)
from tests.server import keybin_server
from tests.smtp import SmtpServer

GRANT_ACCESS = """
mutation($input: GrantAccessInput!) {
  grantAccess(input: $input) { grant { id } invitationSent userErrors { code } }
}
"""
MESSAGE_ADDED = "subscription { messageAdded { kind title } }"


async def _seed(settings: Settings) -> tuple[str, str, str]:
    """An agent with a BLE lockbox on a listing, and a contractor: (agent, contractor, listing)."""
    await Tortoise.init(config=db.tortoise_config(settings), _enable_global_fallback=True)
    try:
        agent = await make_agent()
        listing = await make_listing(agent)
        await make_lockbox(agent, listing=listing)
        contractor = await make_contractor()
        return agent.email or "", contractor.email or "", to_global_id("Listing", listing.id)
    finally:
        await Tortoise.close_connections()


def _env(settings: Settings, smtp: SmtpServer | None = None) -> dict[str, str]:
    env = {
        "DATABASE_URL": settings.database_url,
        "SECRET_KEY": settings.secret_key,
        "RATE_LIMIT_PER_MINUTE": "100000",
        "RATE_LIMIT_PER_ACCOUNT_PER_MINUTE": "100000",
        # a row claimed by a killed process is taken over after this long; a claim
        # outlasts the longest delivery
        "KEYBIN_OUTBOX_CLAIM_SECONDS": "3",
        "KEYBIN_OUTBOX_DEADLINE_SECONDS": "2",
    }
    if smtp is not None:
        env |= {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port)}
    return env


async def _sign_in(client: httpx.AsyncClient, base: str, login: str) -> str:
    variables = {
        "input": {"login": login, "password": PASSWORD, "deviceId": "d", "deviceName": "P"}
    }
    response = await client.post(f"{base}/graphql", json={"query": SIGN_IN, "variables": variables})
    token: str = response.json()["data"]["signIn"]["token"]
    return token


def _grant_input(listing_id: str, email: str) -> dict[str, object]:
    starts = clock.now() + timedelta(hours=2)
    return {
        "input": {
            "listingId": listing_id,
            "granteeEmail": email,
            "startsAt": starts.isoformat(),
            "endsAt": (starts + timedelta(hours=1)).isoformat(),
            "pin": "1234",
        }
    }


@pytest.mark.skipif(not POSTGRES_URL, reason="several instances share PostgreSQL: `postgres` env")
async def test_a_grant_on_instance_a_reaches_a_subscriber_on_instance_b(settings: Settings) -> None:
    agent_login, contractor_login, listing_id = await _seed(settings)
    env = _env(settings)
    with keybin_server(env) as (base_a, _), keybin_server(env) as (base_b, _):
        async with httpx.AsyncClient(timeout=10) as client:
            contractor_token = await _sign_in(client, base_b, contractor_login)
            agent_token = await _sign_in(client, base_a, agent_login)
            ws_url = base_b.replace("http://", "ws://") + "/graphql"
            async with connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
                init = {"authorization": f"Bearer {contractor_token}"}
                await ws.send(json.dumps({"type": "connection_init", "payload": init}))
                assert json.loads(await ws.recv())["type"] == "connection_ack"
                await ws.send(
                    json.dumps(
                        {"id": "1", "type": "subscribe", "payload": {"query": MESSAGE_ADDED}}
                    )
                )
                await asyncio.sleep(0.5)  # the subscription is registered on B
                # when the agent grants access through instance A
                response = await client.post(
                    f"{base_a}/graphql",
                    json={
                        "query": GRANT_ACCESS,
                        "variables": _grant_input(listing_id, contractor_login),
                    },
                    headers={"Authorization": f"Bearer {agent_token}"},
                )
                assert response.json()["data"]["grantAccess"]["userErrors"] == []
                # then the subscriber on instance B hears of it
                async with asyncio.timeout(3):
                    event = json.loads(await ws.recv())
    assert event["type"] == "next"
    assert event["payload"]["data"]["messageAdded"]["kind"] == "ACCESS_GRANTED"


async def test_sigkill_mid_burst_loses_no_acknowledged_grant_and_no_mail(
    settings: Settings, smtp: SmtpServer, tmp_path: Path
) -> None:
    agent_login, _, listing_id = await _seed(settings)
    env = _env(settings, smtp)
    acknowledged: list[str] = []
    with keybin_server(env, log=tmp_path / "a.log") as (base, process):
        async with httpx.AsyncClient(timeout=30) as client:
            token = await _sign_in(client, base, agent_login)
            headers = {"Authorization": f"Bearer {token}"}

            async def grant(i: int) -> None:
                variables = _grant_input(listing_id, f"burst{i}@example.com")
                try:
                    response = await client.post(
                        f"{base}/graphql",
                        json={"query": GRANT_ACCESS, "variables": variables},
                        headers=headers,
                    )
                except httpx.HTTPError:
                    return  # no answer reached the client: the grant may or may not exist
                payload = response.json()["data"]["grantAccess"]
                assert payload["userErrors"] == [], payload
                acknowledged.append(payload["grant"]["id"])

            burst = [asyncio.create_task(grant(i)) for i in range(40)]
            async with asyncio.timeout(60):
                # Polls a count, to kill mid-burst.
                while len(acknowledged) < 10 and not any(t.done() and t.exception() for t in burst):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            process.send_signal(signal.SIGKILL)
            await asyncio.gather(*burst)
            process.wait(timeout=10)
    assert len(acknowledged) >= 10
    # after a restart every acknowledged grant exists, and every grant's invitation arrives
    with keybin_server(env, log=tmp_path / "b.log"):
        await Tortoise.init(config=db.tortoise_config(settings), _enable_global_fallback=True)
        try:
            stored = set(await Grant.all().values_list("id", flat=True))
            for grant_id in acknowledged:
                parsed = from_global_id(grant_id)
                assert parsed is not None and int(parsed[1]) in stored
            emails = await OutboxMessage.filter(channel=OutboxChannel.EMAIL).count()
            assert emails == len(stored)
            await smtp.wait_for(len(stored), within=30)
        finally:
            await Tortoise.close_connections()
    recipients = [m["To"] for m in smtp.inbox]
    assert len(recipients) == len(set(recipients)) == len(stored)
