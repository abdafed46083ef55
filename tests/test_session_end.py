"""A session that ends, ends everywhere at once: its open subscriptions close within a second
(4401, or 4403 for an account no longer ACTIVE), its token answers nothing over HTTP, and a
new WebSocket with it is refused; against a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from tortoise.transactions import in_transaction
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from core import clock
from core.security import new_token, token_digest
from models.accounts import Account, Device, PushToken, Session
from models.enums import AccountStatus, MessageKind
from notify import outbox
from notify.connections import OpenConnections
from notify.pg_pubsub import PostgresPubSub, asyncpg_dsn
from notify.sessions import Ended, decode, encode
from resolvers.auth import remove_device
from resolvers.deletion import delete_account
from resolvers.events import Actor
from resolvers.notifications import post_message
from settings import Settings
from tests.conftest import POSTGRES_URL
from tests.factories import PASSWORD, SIGN_IN, make_agent, make_contractor, make_staff
from tests.live import MESSAGE_ADDED, Live, eventually, subscribed
from tests.server import keybin_server
from tests.smtp import SmtpServer, text_body

KEYBIN = str(Path(sys.executable).parent / "keybin")
SESSION_ENDED, NOT_ACTIVE = 4401, 4403
REFUSED = 4403  # at connection_init, whatever the reason
NEW_PASSWORD = "Changed42"

ME = "{ me { id status } }"
SIGN_OUT = "mutation { signOut { ok userErrors { code } } }"
REMOVE_DEVICE = """
mutation($id: ID!) { removeDevice(input: {deviceId: $id}) { ok userErrors { code } } }
"""
MY_DEVICES = "{ me { devices { id current } } }"
CHANGE_PASSWORD = """
mutation($current: String!, $new: String!) {
  changePassword(input: {currentPassword: $current, newPassword: $new}) { ok userErrors { code } }
}
"""
REQUEST_RESET = """
mutation($login: String!) { requestPasswordReset(input: {login: $login}) { ok userErrors { code } } }
"""
RESET = """
mutation($token: String!, $pw: String!) {
  resetPassword(input: {token: $token, newPassword: $pw}) { ok userErrors { code } }
}
"""
REGISTER_PUSH_TOKEN = """
mutation($input: RegisterPushTokenInput!) { registerPushToken(input: $input) { userErrors { code } } }
"""
DELETE_MY_ACCOUNT = """
mutation($pw: String!) { deleteMyAccount(input: {password: $pw}) { ok userErrors { code } } }
"""


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Answers are kept (schema/fast/answer_cache.py, off by default): a kept answer is what a
    session that ended must never be served."""
    return {"answer_cache": True}


async def sign_in_on(live: Live, login: str, device: str, password: str = PASSWORD) -> str:
    variables = {
        "input": {"login": login, "password": password, "deviceId": device, "deviceName": device}
    }
    payload = (await live.post(SIGN_IN, variables))["signIn"]
    assert payload["userErrors"] == [], payload
    token: str = payload["token"]
    return token


async def remembered(live: Live, token: str) -> dict[str, Any]:
    """`me`, asked until the answer is kept (schema/fast/answer_cache.py), so that the check after the
    session ends would see a stale answer if one were served. On PostgreSQL the snapshot
    moves with any commit in the cluster, so a kept answer is not certain there."""
    hits = live.app.state.answers.hits
    answers = [(await live.post(ME, {}, token))["me"] for _ in range(3)]
    if not POSTGRES_URL:
        assert live.app.state.answers.hits > hits, "the third answer was not a kept one"
    assert answers[0] is not None and answers == [answers[0]] * 3
    return answers[0]


async def support_agent() -> Actor:
    """A member of staff acting in the console."""
    staff = (await make_staff()).staff
    return Actor(staff_id=staff.id, staff_name=staff.name)


async def closed_with(ws: ClientConnection) -> int:
    """The close code the server sends (within seconds, while a session's socket would
    otherwise stay open for good); not one frame comes before it."""
    frames = []
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(5):
            while True:
                frames.append(await ws.recv())
    assert frames == []
    assert closed.value.rcvd is not None, "the server did not close the socket"
    return closed.value.rcvd.code


async def refused_with(ws_url: str, token: str) -> int:
    """A new WebSocket signing in with `token`: the close code at connection_init."""
    async with connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        init = {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(5):
                await ws.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


async def post_to(account: Account, title: str) -> int:
    """A Message Center message for `account`, delivered live as any other; its id."""
    async with in_transaction():
        message = await post_message(account.id, MessageKind.ACCOUNT, title, "body")
    outbox.wake()
    return message.id


async def delivered(live: Live, message_id: int) -> None:
    """Until the message's live event has been handed to this server's subscribers."""
    await eventually(lambda: live.app.state.pubsub.heard >= message_id)


async def received(ws: ClientConnection, title: str) -> None:
    async with asyncio.timeout(3):
        frame = json.loads(await ws.recv())
    assert frame["type"] == "next", frame
    assert frame["payload"]["data"]["messageAdded"]["title"] == title


async def nothing_live_for(live: Live, account: Account) -> None:
    """A message posted now reaches no subscription: the server stopped them all."""
    await delivered(live, await post_to(account, "After the end"))
    assert live.app.state.pubsub.subscriber_count() == 0
    assert len(live.app.state.pubsub.connections) == 0


async def signed_out_everywhere(live: Live, token: str) -> None:
    """The token answers nothing over HTTP (kept answers included) and opens no socket."""
    assert (await live.post(ME, {}, token))["me"] is None
    assert await refused_with(live.ws_url, token) == REFUSED


async def test_sign_out_closes_that_sessions_socket_and_no_other(live: Live) -> None:
    # given an agent signed in on two phones, both subscribed
    agent = await make_agent()
    token = await sign_in_on(live, agent.email or "", "phone")
    other = await sign_in_on(live, agent.email or "", "tablet")
    await remembered(live, token)
    async with subscribed(live, token) as ws, subscribed(live, other) as other_ws:
        await live.wait_for_subscribers(2)
        # when the phone signs out
        await live.post(SIGN_OUT, {}, token)
        # then its socket closes; the tablet's stays open and still receives
        assert await closed_with(ws) == SESSION_ENDED
        await post_to(agent, "Still here")
        await received(other_ws, "Still here")
        assert live.app.state.pubsub.subscriber_count() == 1
    await signed_out_everywhere(live, token)


async def test_removing_a_device_closes_its_sockets(live: Live) -> None:
    # given a contractor subscribed from a phone, and signed in on a tablet too
    contractor = await make_contractor()
    token = await sign_in_on(live, contractor.email or "", "phone")
    tablet = await sign_in_on(live, contractor.email or "", "tablet")
    await remembered(live, token)
    devices = (await live.post(MY_DEVICES, {}, tablet))["me"]["devices"]
    [phone_id] = [device["id"] for device in devices if not device["current"]]
    async with subscribed(live, token) as ws, subscribed(live, tablet) as tablet_ws:
        await live.wait_for_subscribers(2)
        # when the tablet removes the phone
        payload = (await live.post(REMOVE_DEVICE, {"id": phone_id}, tablet))["removeDevice"]
        assert payload == {"ok": True, "userErrors": []}
        # then
        assert await closed_with(ws) == SESSION_ENDED
        await post_to(contractor, "Tablet only")
        await received(tablet_ws, "Tablet only")
        assert live.app.state.pubsub.subscriber_count() == 1
    await signed_out_everywhere(live, token)


async def test_support_removing_a_device_closes_its_socket(live: Live) -> None:
    # given an agent subscribed from a phone
    agent = await make_agent()
    token = await sign_in_on(live, agent.email or "", "phone")
    await remembered(live, token)
    device = await Device.get(account_id=agent.id, device_id="phone")
    async with subscribed(live, token) as ws:
        await live.wait_for_subscribers(1)
        # when support clears the device registration in the console
        await remove_device(agent, device.id, await support_agent())
        # then
        assert await closed_with(ws) == SESSION_ENDED
        await nothing_live_for(live, agent)
    await signed_out_everywhere(live, token)


async def test_a_password_reset_closes_every_socket_of_the_account(
    live: Live, smtp: SmtpServer
) -> None:
    # given an agent subscribed from two phones
    agent = await make_agent()
    tokens = [await sign_in_on(live, agent.email or "", d) for d in ("phone", "tablet")]
    await remembered(live, tokens[0])
    async with subscribed(live, tokens[0]) as ws, subscribed(live, tokens[1]) as other_ws:
        await live.wait_for_subscribers(2)
        await live.post(REQUEST_RESET, {"login": agent.email})
        [mail] = await smtp.wait_for(1)
        link = re.search(r"reset-password\?token=([\w-]+)", text_body(mail))
        assert link is not None
        # when the link is used
        payload = await live.post(RESET, {"token": link.group(1), "pw": NEW_PASSWORD})
        assert payload["resetPassword"] == {"ok": True, "userErrors": []}
        # then both close
        assert await closed_with(ws) == SESSION_ENDED
        assert await closed_with(other_ws) == SESSION_ENDED
        await nothing_live_for(live, agent)
    for token in tokens:
        await signed_out_everywhere(live, token)


async def test_changing_the_password_closes_every_other_session_and_keeps_the_asking_one(
    live: Live,
) -> None:
    # given a contractor subscribed from a phone and from a laptop
    contractor = await make_contractor()
    phone = await sign_in_on(live, contractor.email or "", "phone")
    laptop = await sign_in_on(live, contractor.email or "", "laptop")
    await remembered(live, laptop)
    async with subscribed(live, phone) as phone_ws, subscribed(live, laptop) as laptop_ws:
        await live.wait_for_subscribers(2)
        # when the phone changes the password
        variables = {"current": PASSWORD, "new": NEW_PASSWORD}
        payload = (await live.post(CHANGE_PASSWORD, variables, phone))["changePassword"]
        assert payload == {"ok": True, "userErrors": []}
        # then the laptop is signed out; the phone stays open and still receives
        assert await closed_with(laptop_ws) == SESSION_ENDED
        await post_to(contractor, "Still yours")
        await received(phone_ws, "Still yours")
        assert live.app.state.pubsub.subscriber_count() == 1
    await signed_out_everywhere(live, laptop)
    assert (await live.post(ME, {}, phone))["me"]["id"]
    await sign_in_on(live, contractor.email or "", "laptop", password=NEW_PASSWORD)


async def test_changing_the_password_stops_pushes_to_the_devices_it_signs_out(live: Live) -> None:
    # given a contractor with a push token on a phone and on a laptop
    contractor = await make_contractor()
    phone = await sign_in_on(live, contractor.email or "", "phone")
    laptop = await sign_in_on(live, contractor.email or "", "laptop")
    for token, device in ((phone, "phone"), (laptop, "laptop")):
        variables = {"input": {"deviceId": device, "platform": "FCM", "token": f"fcm-{device}"}}
        payload = (await live.post(REGISTER_PUSH_TOKEN, variables, token))["registerPushToken"]
        assert payload["userErrors"] == []
    # when the phone changes the password
    variables = {"current": PASSWORD, "new": NEW_PASSWORD}
    assert (await live.post(CHANGE_PASSWORD, variables, phone))["changePassword"]["ok"] is True
    # then only the phone is still pushed to
    assert await PushToken.all().values_list("token", flat=True) == ["fcm-phone"]


async def test_deleting_my_account_closes_its_sockets(live: Live) -> None:
    # given a contractor subscribed from two devices
    contractor = await make_contractor()
    tokens = [await sign_in_on(live, contractor.email or "", d) for d in ("phone", "tablet")]
    await remembered(live, tokens[1])
    async with subscribed(live, tokens[0]) as ws, subscribed(live, tokens[1]) as other_ws:
        await live.wait_for_subscribers(2)
        # when
        payload = await live.post(DELETE_MY_ACCOUNT, {"pw": PASSWORD}, tokens[0])
        assert payload["deleteMyAccount"] == {"ok": True, "userErrors": []}
        # then
        assert await closed_with(ws) == SESSION_ENDED
        assert await closed_with(other_ws) == SESSION_ENDED
    assert live.app.state.pubsub.subscriber_count() == 0
    for token in tokens:
        await signed_out_everywhere(live, token)


async def test_support_deleting_an_account_closes_its_sockets(live: Live) -> None:
    # given a contractor subscribed
    contractor = await make_contractor()
    token = await sign_in_on(live, contractor.email or "", "phone")
    await remembered(live, token)
    async with subscribed(live, token) as ws:
        await live.wait_for_subscribers(1)
        # when support deletes the account in the console
        await delete_account(contractor.id, await support_agent())
        # then
        assert await closed_with(ws) == SESSION_ENDED
    assert live.app.state.pubsub.subscriber_count() == 0
    await signed_out_everywhere(live, token)


def roster(agent: Account, status: str) -> dict[str, Any]:
    member = {
        "MemberMlsId": agent.mls_id,
        "MemberFirstName": agent.first_name,
        "MemberLastName": agent.last_name,
        "MemberEmail": agent.email,
        "MemberStatus": status,
        "OriginatingSystemName": agent.association,
    }
    return {"value": [member]}


async def test_the_roster_making_an_agent_inactive_closes_its_sockets_with_4403(
    live: Live, settings: Settings, tmp_path: Path
) -> None:
    # given an agent subscribed from a phone
    agent = await make_agent()
    token = await sign_in_on(live, agent.email or "", "phone")
    await remembered(live, token)
    members = tmp_path / "members.json"
    members.write_text(json.dumps(roster(agent, "Inactive")))
    async with subscribed(live, token) as ws:
        await live.wait_for_subscribers(1)
        # when `keybin import members`, another process, makes the agent inactive
        env = {**os.environ, "DATABASE_URL": settings.database_url, "KEYBIN_ENV": "development"}
        process = await asyncio.create_subprocess_exec(
            KEYBIN, "import", "members", str(members), env=env, stdout=asyncio.subprocess.DEVNULL
        )
        assert await process.wait() == 0
        # then (its commit was before its exit)
        assert await closed_with(ws) == NOT_ACTIVE
        await nothing_live_for(live, agent)
    # the session holds (the account may sign in and see why), but nothing live is allowed
    assert (await live.post(ME, {}, token))["me"]["status"] == "INACTIVE"
    assert await refused_with(live.ws_url, token) == REFUSED


async def test_a_session_ending_while_its_socket_signs_in_still_closes_it(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a sign-out heard between a new socket's token check and its registration
    agent = await make_agent()
    token = await sign_in_on(live, agent.email or "", "phone")
    graphql, connections = live.app.state.graphql, live.app.state.pubsub.connections
    check_token = graphql.on_ws_connect

    async def signed_out_meanwhile(context: Any) -> None:
        await check_token(context)  # the token is still valid here
        heard = connections.mark()
        await live.post(SIGN_OUT, {}, token)
        await eventually(lambda: connections.mark() > heard)

    monkeypatch.setattr(graphql, "on_ws_connect", signed_out_meanwhile)
    # when the socket signs in
    async with connect(live.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        init = {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        # then it closes all the same
        assert await closed_with(ws) == SESSION_ENDED
    await eventually(lambda: len(connections) == 0 and not live.app.state.pubsub.subscriber_count())


def test_a_device_with_thousands_of_sessions_is_announced_in_payloads_notify_accepts() -> None:
    # given a device signed in again and again, and two other events
    many = Ended(7, sessions=frozenset(range(1_000_000, 1_003_000)))
    others = [Ended(8, except_session=5), Ended(9, code=NOT_ACTIVE)]
    # when
    payloads = encode([many, *others])
    # then each fits a NOTIFY, and together they say the same
    assert len(payloads) > 1
    assert all(len(payload.encode()) < 8000 for payload in payloads)
    decoded = [ended for payload in payloads for ended in decode(payload)]
    assert frozenset().union(*(e.sessions or () for e in decoded if e.account_id == 7)) == (
        many.sessions
    )
    assert [e for e in decoded if e.account_id != 7] == others


class Watched:
    """A registered connection that records how it was closed."""

    def __init__(self, session: Session) -> None:
        self.account_id: int = session.account_id  # type: ignore[attr-defined]
        self.session_id = session.id
        self.codes: list[int] = []

    def close_for(self, code: int) -> None:
        self.codes.append(code)


async def session_of(account: Account) -> Session:
    device = await Device.create(account=account, device_id="phone", name="Phone")
    expires = clock.now() + timedelta(days=1)
    return await Session.create(
        token_hash=token_digest(new_token()), account=account, device=device, expires_at=expires
    )


async def test_a_recheck_closes_the_connections_no_event_told_of(orm: None) -> None:
    # given three open connections, registered as the server does
    sessions = [await session_of(await make_contractor()) for _ in range(3)]
    gone, inactive, holding = (Watched(session) for session in sessions)
    connections = OpenConnections()
    for connection in (gone, inactive, holding):
        connections.add(connection, connections.mark())
    # when, with no event told, one session is removed and one account made inactive
    await Session.filter(id=gone.session_id).delete()
    await Account.filter(id=inactive.account_id).update(status=AccountStatus.SUSPENDED)
    await connections.recheck()
    # then
    assert (gone.codes, inactive.codes, holding.codes) == ([SESSION_ENDED], [NOT_ACTIVE], [])
    assert len(connections) == 1


@pytest.mark.skipif(not POSTGRES_URL, reason="LISTEN/NOTIFY: PostgreSQL only")
async def test_after_the_listener_reconnects_sessions_ended_meanwhile_close(
    settings: Settings, orm: None
) -> None:
    # given an instance's listener, and an open connection whose session then ends unheard
    pubsub = PostgresPubSub(settings.database_url)
    await pubsub.start()
    try:
        connection = Watched(await session_of(await make_contractor()))
        pubsub.connections.add(connection, pubsub.connections.mark())
        await Session.filter(id=connection.session_id).delete()
        # when the listener's connection is lost and comes back
        admin = await asyncpg.connect(asyncpg_dsn(settings.database_url))
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", pubsub.listener_pid())
        finally:
            await admin.close()
        # then the connection is checked again, and closed
        await eventually(lambda: connection.codes == [SESSION_ENDED], seconds=10)
    finally:
        await pubsub.stop()


@pytest.mark.skipif(not POSTGRES_URL, reason="several instances share PostgreSQL: `postgres` env")
async def test_signing_out_on_one_instance_closes_the_socket_on_another(
    settings: Settings, orm: None
) -> None:
    # given a contractor subscribed on instance B, both instances real processes
    contractor = await make_contractor()
    env = {"DATABASE_URL": settings.database_url, "SECRET_KEY": settings.secret_key}
    with keybin_server(env) as (base_a, _), keybin_server(env) as (base_b, _):
        async with httpx.AsyncClient(timeout=10) as client:
            variables = {
                "input": {
                    "login": contractor.email,
                    "password": PASSWORD,
                    "deviceId": "phone",
                    "deviceName": "phone",
                }
            }
            answer = await client.post(
                f"{base_a}/graphql", json={"query": SIGN_IN, "variables": variables}
            )
            token = answer.json()["data"]["signIn"]["token"]
            ws_b = base_b.replace("http://", "ws://") + "/graphql"
            async with connect(ws_b, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
                init = {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
                await ws.send(json.dumps(init))
                assert json.loads(await ws.recv())["type"] == "connection_ack"
                subscribe = {"query": "subscription { messageAdded { title } }"}
                await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
                await asyncio.sleep(0.5)  # the subscription is registered on B
                # when it signs out through instance A
                answer = await client.post(
                    f"{base_a}/graphql",
                    json={"query": SIGN_OUT},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert answer.json()["data"]["signOut"]["ok"] is True
                # then B closes the socket within a second
                assert await closed_with(ws) == SESSION_ENDED
        assert await refused_with(ws_b, token) == REFUSED


async def test_a_session_whose_lifetime_runs_out_closes_its_socket_with_no_event(
    live: Live,
) -> None:
    # given a contractor whose session has two seconds left, subscribed
    contractor = await make_contractor()
    token = await sign_in_on(live, contractor.email or "", "phone")
    await Session.filter(token_hash=token_digest(token)).update(
        expires_at=clock.now() + timedelta(seconds=2)
    )
    async with subscribed(live, token) as ws:
        await live.wait_for_subscribers(1)
        # when its time runs out, with nothing happening: then the socket closes
        assert await closed_with(ws) == SESSION_ENDED
    await nothing_live_for(live, contractor)
    await signed_out_everywhere(live, token)


async def test_after_its_session_expired_a_socket_gets_no_event_and_no_new_subscription(
    live: Live,
) -> None:
    # given a contractor subscribed, the first message received
    contractor = await make_contractor()
    token = await sign_in_on(live, contractor.email or "", "phone")
    async with subscribed(live, token) as ws:
        await live.wait_for_subscribers(1)
        await post_to(contractor, "Before")
        await received(ws, "Before")
        # when the session's lifetime is over (the clock moves past it) and a message comes
        session = await Session.get(token_hash=token_digest(token))
        clock.travel((session.expires_at - clock.now()).total_seconds() + 1)
        await delivered(live, await post_to(contractor, "After"))
        # then the socket closes instead of sending it
        assert await closed_with(ws) == SESSION_ENDED
    assert await refused_with(live.ws_url, token) == REFUSED


async def test_a_new_subscription_on_an_expired_sessions_socket_closes_it(live: Live) -> None:
    # given an agent's socket, signed in, with no subscription yet
    agent = await make_agent()
    token = await sign_in_on(live, agent.email or "", "phone")
    async with connect(live.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        init = {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        # when the session has expired and the client subscribes
        session = await Session.get(token_hash=token_digest(token))
        clock.travel((session.expires_at - clock.now()).total_seconds() + 1)
        subscribe = {"id": "1", "type": "subscribe", "payload": {"query": MESSAGE_ADDED}}
        await ws.send(json.dumps(subscribe))
        # then nothing is subscribed and the socket closes
        assert await closed_with(ws) == SESSION_ENDED
    assert live.app.state.pubsub.subscriber_count() == 0


async def test_one_connection_runs_at_most_fifty_subscriptions_at_once(live: Live) -> None:
    # given a contractor's socket running 50 subscriptions
    contractor = await make_contractor()
    token = await sign_in_on(live, contractor.email or "", "phone")
    async with connect(live.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        init = {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        for n in range(50):
            subscribe = {"id": str(n), "type": "subscribe", "payload": {"query": MESSAGE_ADDED}}
            await ws.send(json.dumps(subscribe))
        await live.wait_for_subscribers(50)
        # when it asks for one more
        extra = {"id": "extra", "type": "subscribe", "payload": {"query": MESSAGE_ADDED}}
        await ws.send(json.dumps(extra))
        # then that one is refused, and the connection goes on
        async with asyncio.timeout(5):
            refused = json.loads(await ws.recv())
        assert refused["id"] == "extra" and refused["type"] == "error", refused
        assert refused["payload"][0]["extensions"]["code"] == "TOO_MANY_ATTEMPTS"
        # and once one completes, another may start
        await ws.send(json.dumps({"id": "0", "type": "complete"}))
        await eventually(lambda: live.app.state.pubsub.subscriber_count() == 49)
        await ws.send(json.dumps(extra))
        await eventually(lambda: live.app.state.pubsub.subscriber_count() == 50)
        await post_to(contractor, "Each once")
        frames = []
        with __import__("contextlib").suppress(TimeoutError):
            async with asyncio.timeout(5):
                while True:
                    frames.append(json.loads(await ws.recv()))
        print(
            "DEBUG",
            len(frames),
            sorted(set([str(n) for n in range(1, 50)] + ["extra"]) - {f["id"] for f in frames}),
        )
        assert sorted(frame["id"] for frame in frames) == sorted(
            [str(n) for n in range(1, 50)] + ["extra"]
        )
