"""Push to closed apps: registering tokens, and delivery to FCM- and APNs-like servers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from tortoise.transactions import in_transaction

from core import clock
from core.ids import to_global_id
from models.accounts import Account, Device, PushToken
from models.enums import MessageKind, OutboxChannel, OutboxStatus, PushPlatform
from models.grants import Grant
from models.messages import Message
from models.outbox import OutboxMessage
from notify import outbox
from notify.dispatcher import Dispatcher
from notify.pubsub import PubSub
from resolvers import push
from resolvers.notifications import post_message
from settings import ConfigurationError, Settings, from_env
from tests.factories import (
    GraphQLClient,
    make_agent,
    make_contractor,
    make_grant,
    make_listing,
    make_lockbox,
)
from tests.push_servers import Answer, ApnsServer, FcmServer, push_settings

REGISTER = """
mutation($input: RegisterPushTokenInput!) {
  registerPushToken(input: $input) { ok userErrors { code field message } }
}
"""
SIGN_OUT = "mutation { signOut { ok } }"
GRANT_ACCESS = """
mutation($input: GrantAccessInput!) {
  grantAccess(input: $input) { grant { id } userErrors { code field message } }
}
"""
MY_DEVICES = "{ me { ... on Agent { devices { id current } } } }"
REMOVE_DEVICE = """
mutation($id: ID!) { removeDevice(input: {deviceId: $id}) { ok userErrors { code } } }
"""

FCM_TOKEN = "fcm-token:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx"
APNS_TOKEN = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"


@pytest.fixture
def settings_overrides(fcm_server: FcmServer, apns_server: ApnsServer) -> dict[str, Any]:
    return push_settings(fcm_server, apns_server)


async def register(
    gql: GraphQLClient, token: str, device_id: str, platform: str, push_token: str
) -> dict[str, Any]:
    variables = {"input": {"deviceId": device_id, "platform": platform, "token": push_token}}
    payload: dict[str, Any] = (await gql(REGISTER, variables, token=token))["registerPushToken"]
    return payload


async def contractor_with_two_phones(gql: GraphQLClient) -> Account:
    """A contractor signed in on an Android phone (FCM) and an iPhone (APNs)."""
    contractor = await make_contractor()
    android = await gql.sign_in(contractor.email or "", device_id="android")
    iphone = await gql.sign_in(contractor.email or "", device_id="iphone")
    assert (await register(gql, android, "android", "FCM", FCM_TOKEN))["ok"]
    assert (await register(gql, iphone, "iphone", "APNS", APNS_TOKEN))["ok"]
    return contractor


async def post(
    account: Account, grant: Grant | None = None, title: str = "Access granted"
) -> Message:
    async with in_transaction():
        message = await post_message(
            account.id,
            MessageKind.ACCESS_GRANTED,
            title,
            "You may enter 12 Main Street tomorrow from 9:00 to 17:00.",
            grant.id if grant else None,
        )
    outbox.wake()
    return message


def contact_details(*people: Account) -> list[str]:
    found = [value for person in people for value in (person.email, person.phone) if value]
    assert len(found) == 2 * len(people)
    return found


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 10) -> None:
    for _ in range(int(seconds / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"still not so after {seconds} s")


PUSH_CHANNELS = (OutboxChannel.FCM, OutboxChannel.APNS)


async def push_rows(**filters: Any) -> list[OutboxMessage]:
    return await OutboxMessage.filter(channel__in=PUSH_CHANNELS, **filters).order_by("id")


async def all_settled() -> bool:
    return not await OutboxMessage.filter(
        channel__in=PUSH_CHANNELS, status=OutboxStatus.PENDING
    ).exists()


# -- registerPushToken ---------------------------------------------------------------------


async def test_a_device_keeps_one_token_per_platform_updated_in_place(gql: GraphQLClient) -> None:
    # given
    contractor = await make_contractor()
    token = await gql.sign_in(contractor.email or "", device_id="phone")
    # when
    first = await register(gql, token, "phone", "FCM", "old-token")
    second = await register(gql, token, "phone", "FCM", "new-token")
    other_platform = await register(gql, token, "phone", "APNS", APNS_TOKEN)
    # then
    assert first == second == other_platform == {"ok": True, "userErrors": []}
    rows = await PushToken.filter(device__account_id=contractor.id).order_by("platform")
    assert [(r.platform, r.token) for r in rows] == [
        (PushPlatform.APNS, APNS_TOKEN),
        (PushPlatform.FCM, "new-token"),
    ]


@pytest.mark.parametrize("bad", ["", "has space", "tab\tin", "line\nbreak", "x" * 513, "bell\x07"])
async def test_a_malformed_token_is_invalid_input_and_nothing_is_stored(
    gql: GraphQLClient, bad: str
) -> None:
    # given
    contractor = await make_contractor()
    token = await gql.sign_in(contractor.email or "", device_id="phone")
    # when
    payload = await register(gql, token, "phone", "FCM", bad)
    # then
    assert payload["ok"] is False
    assert payload["userErrors"][0]["code"] == "INVALID_INPUT"
    assert payload["userErrors"][0]["field"] == ["input", "token"]
    assert not await PushToken.exists()


async def test_a_512_character_token_is_accepted(gql: GraphQLClient) -> None:
    contractor = await make_contractor()
    token = await gql.sign_in(contractor.email or "", device_id="phone")
    assert (await register(gql, token, "phone", "APNS", "f" * 512))["ok"]


async def test_only_the_callers_registered_devices_take_a_token(gql: GraphQLClient) -> None:
    # given: someone else's device id, and one never signed in with
    contractor = await make_contractor()
    other = await make_contractor()
    token = await gql.sign_in(contractor.email or "", device_id="mine")
    await gql.sign_in(other.email or "", device_id="theirs")
    # when
    theirs = await register(gql, token, "theirs", "FCM", FCM_TOKEN)
    unknown = await register(gql, token, "never-seen", "FCM", FCM_TOKEN)
    # then
    for payload in (theirs, unknown):
        assert payload["ok"] is False
        assert payload["userErrors"][0]["code"] == "DEVICE_NOT_REGISTERED"
        assert payload["userErrors"][0]["field"] == ["input", "deviceId"]
    assert not await PushToken.exists()


async def test_registering_needs_sign_in(gql: GraphQLClient) -> None:
    variables = {"input": {"deviceId": "phone", "platform": "FCM", "token": FCM_TOKEN}}
    body = await gql.raw(REGISTER, variables)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_token_follows_the_account_that_registered_it_last(gql: GraphQLClient) -> None:
    # given: one phone, signed in to one account and then to another
    first = await make_contractor()
    second = await make_contractor()
    first_token = await gql.sign_in(first.email or "", device_id="shared-phone")
    await register(gql, first_token, "shared-phone", "FCM", FCM_TOKEN)
    second_token = await gql.sign_in(second.email or "", device_id="shared-phone")
    # when
    await register(gql, second_token, "shared-phone", "FCM", FCM_TOKEN)
    # then: the first account's messages no longer reach a phone now used by someone else
    holders = await PushToken.filter(token=FCM_TOKEN).values_list("device__account_id", flat=True)
    assert holders == [second.id]


async def test_signing_out_drops_that_devices_token_only(gql: GraphQLClient) -> None:
    # given
    contractor = await make_contractor()
    android = await gql.sign_in(contractor.email or "", device_id="android")
    iphone = await gql.sign_in(contractor.email or "", device_id="iphone")
    await register(gql, android, "android", "FCM", FCM_TOKEN)
    await register(gql, iphone, "iphone", "APNS", APNS_TOKEN)
    # when
    assert (await gql(SIGN_OUT, token=android))["signOut"]["ok"]
    # then
    assert await PushToken.all().values_list("token", flat=True) == [APNS_TOKEN]


async def test_removing_a_device_drops_its_token(gql: GraphQLClient) -> None:
    # given
    agent = await make_agent()
    old_phone = await gql.sign_in(agent.email or "", device_id="old-phone")
    new_phone = await gql.sign_in(agent.email or "", device_id="new-phone")
    await register(gql, old_phone, "old-phone", "APNS", APNS_TOKEN)
    devices = (await gql(MY_DEVICES, token=new_phone))["me"]["devices"]
    old = next(d for d in devices if not d["current"])
    # when
    removed = await gql(REMOVE_DEVICE, {"id": old["id"]}, token=new_phone)
    # then
    assert removed["removeDevice"]["ok"]
    assert not await PushToken.exists()
    assert await Device.filter(account_id=agent.id).count() == 1


# -- delivery ------------------------------------------------------------------------------


async def test_a_message_reaches_both_phones_through_fcm_and_apns(
    gql: GraphQLClient, fcm_server: FcmServer, apns_server: ApnsServer
) -> None:
    # given
    contractor = await contractor_with_two_phones(gql)
    agent = await make_agent()
    listing = await make_listing(agent)
    grant = await make_grant(agent, listing, await make_lockbox(agent, listing), contractor)
    # when
    message = await post(contractor, grant)
    await eventually(lambda: _delivered(fcm_server, apns_server, 1))
    # then: one row per device, queued with the message in its service's channel, and sent
    rows = await push_rows(account_id=contractor.id)
    assert [(r.channel, r.payload["platform"], r.status) for r in rows] == [
        (OutboxChannel.FCM, "FCM", OutboxStatus.SENT),
        (OutboxChannel.APNS, "APNS", OutboxStatus.SENT),
    ]
    data = {
        "messageId": to_global_id("Message", message.id),
        "grantId": to_global_id("Grant", grant.id),
        "kind": "ACCESS_GRANTED",
    }
    # FCM HTTP v1: notification plus string-only data, authorized by the OAuth grant
    [sent] = fcm_server.delivered
    assert sent == {
        "token": FCM_TOKEN,
        "notification": {"title": "Access granted", "body": message.body},
        "data": data,
    }
    assert fcm_server.token_grants == 1
    # APNs: HTTP/2, the app's topic, an alert with the same ids beside it
    [received] = apns_server.delivered
    assert received.http_version == "2"
    assert received.token == APNS_TOKEN
    assert received.headers["apns-topic"] == apns_server.topic
    assert received.headers["apns-push-type"] == "alert"
    assert received.body == {
        "aps": {"alert": {"title": "Access granted", "body": message.body}, "sound": "default"},
        **data,
    }
    # and nothing that identifies the person beyond the app's own ids
    for text in (
        json.dumps([r.payload for r in rows]),
        json.dumps(sent),
        json.dumps(received.body),
    ):
        for identifier in contact_details(contractor):
            assert identifier not in text


async def test_grant_access_pushes_to_the_grantees_phones_and_the_agents(
    gql: GraphQLClient, fcm_server: FcmServer, apns_server: ApnsServer
) -> None:
    # given: a contractor with two phones, an agent whose phone takes pushes too
    contractor = await contractor_with_two_phones(gql)
    agent = await make_agent(phone="+15135550123")
    listing = await make_listing(agent)
    await make_lockbox(agent, listing)
    agent_token = await gql.sign_in(agent.email or "", device_id="agent-phone")
    assert (await register(gql, agent_token, "agent-phone", "FCM", "agent-fcm-token"))["ok"]
    starts = clock.now() + timedelta(hours=1)
    variables = {
        "input": {
            "listingId": to_global_id("Listing", listing.id),
            "granteeEmail": contractor.email,
            "startsAt": starts.isoformat(),
            "endsAt": (starts + timedelta(hours=2)).isoformat(),
            "pin": "1234",
        }
    }
    # when
    payload = (await gql(GRANT_ACCESS, variables, token=agent_token))["grantAccess"]
    await eventually(lambda: _delivered(fcm_server, apns_server, 1))
    # then: each phone is told of the grant; no one's email or phone rides along
    assert payload["userErrors"] == []
    grant_id = payload["grant"]["id"]
    fcm_by_token = {m["token"]: m for m in fcm_server.delivered}
    assert set(fcm_by_token) == {FCM_TOKEN, "agent-fcm-token"}
    for sent in fcm_by_token.values():
        assert sent["data"]["grantId"] == grant_id
        assert sent["data"]["kind"] == "ACCESS_GRANTED"
    assert apns_server.delivered[0].body["grantId"] == grant_id
    pushed = json.dumps([m for m in fcm_server.delivered]) + json.dumps(
        [a.body for a in apns_server.delivered]
    )
    for identifier in contact_details(contractor, agent):
        assert identifier not in pushed


async def test_a_message_without_a_grant_leaves_grant_id_out_of_fcm_data(
    gql: GraphQLClient, fcm_server: FcmServer, apns_server: ApnsServer
) -> None:
    contractor = await contractor_with_two_phones(gql)
    await post(contractor)
    await eventually(lambda: _delivered(fcm_server, apns_server, 1))
    assert "grantId" not in fcm_server.delivered[0]["data"]
    assert apns_server.delivered[0].body["grantId"] is None


async def test_credentials_are_reused_then_renewed_before_they_expire(
    gql: GraphQLClient, fcm_server: FcmServer, apns_server: ApnsServer
) -> None:
    # given
    contractor = await contractor_with_two_phones(gql)
    # when: two messages now, a third 55 minutes later
    await post(contractor, title="First")
    await post(contractor, title="Second")
    await eventually(lambda: _delivered(fcm_server, apns_server, 2))
    clock.travel(55 * 60)
    await post(contractor, title="Third")
    await eventually(lambda: _delivered(fcm_server, apns_server, 3))
    # then: one OAuth grant per hour-long access token (renewed 5 minutes early) ...
    assert fcm_server.token_grants == 2
    # ... and one APNs provider token per 50 minutes, never older than Apple allows
    authorizations = [a.headers["authorization"] for a in apns_server.delivered]
    assert authorizations[0] == authorizations[1] != authorizations[2]


@pytest.mark.parametrize(
    ("platform", "answer"),
    [
        ("FCM", Answer(404, "UNREGISTERED")),
        ("APNS", Answer(410, "Unregistered")),
        ("APNS", Answer(400, "BadDeviceToken")),
    ],
)
async def test_a_token_the_service_calls_unregistered_is_removed(
    gql: GraphQLClient,
    fcm_server: FcmServer,
    apns_server: ApnsServer,
    platform: str,
    answer: Answer,
) -> None:
    # given
    contractor = await contractor_with_two_phones(gql)
    gone = FCM_TOKEN if platform == "FCM" else APNS_TOKEN
    (fcm_server if platform == "FCM" else apns_server).answer(gone, answer)
    # when
    await post(contractor)
    await eventually(all_settled)
    # then: that token is forgotten, its row dropped; the other phone still got its push
    assert await PushToken.all().values_list("platform", flat=True) == [
        "APNS" if platform == "FCM" else "FCM"
    ]
    statuses = {r.payload["platform"]: r.status for r in await push_rows()}
    assert statuses[platform] == OutboxStatus.DEAD
    assert list(statuses.values()).count(OutboxStatus.SENT) == 1
    # and the next message goes to the remaining phone only
    await post(contractor)
    await eventually(all_settled)
    assert len(await push_rows()) == 3


@pytest.mark.parametrize(
    ("platform", "status"), [("APNS", 503), ("FCM", 503), ("FCM", 429), ("APNS", 429)]
)
async def test_unavailable_then_ok_delivers_exactly_once_after_retry_after(
    gql: GraphQLClient,
    fcm_server: FcmServer,
    apns_server: ApnsServer,
    platform: str,
    status: int,
) -> None:
    # given: the service asks for a one-second pause, then accepts
    contractor = await contractor_with_two_phones(gql)
    server: FcmServer | ApnsServer = fcm_server if platform == "FCM" else apns_server
    token = FCM_TOKEN if platform == "FCM" else APNS_TOKEN
    server.answer(token, Answer(status, "Unavailable", {"Retry-After": "1"}))
    # when
    await post(contractor)
    await eventually(all_settled)
    # then: two requests, one delivery, a second apart (the backoff alone is 0.05 s)
    attempts = [a for a in server.attempts if a.token == token]
    assert [a.status for a in attempts] == [status, 200]
    assert attempts[1].at - attempts[0].at >= 0.95
    [row] = await push_rows(recipient=str((await PushToken.get(token=token)).id))
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 2)


async def test_another_client_error_drops_the_row_without_blocking_the_queue(
    gql: GraphQLClient, fcm_server: FcmServer, apns_server: ApnsServer
) -> None:
    # given: FCM refuses the first message outright
    contractor = await contractor_with_two_phones(gql)
    fcm_server.answer(FCM_TOKEN, Answer(400, "INVALID_ARGUMENT"))
    # when
    await post(contractor, title="Refused")
    await post(contractor, title="Fine")
    await eventually(all_settled)
    # then: the refused one is dropped once, the token kept, the next one delivered
    assert [a.status for a in fcm_server.attempts] == [400, 200]
    assert [m["notification"]["title"] for m in fcm_server.delivered] == ["Fine"]
    fcm_rows = [r for r in await push_rows() if r.payload["platform"] == "FCM"]
    assert [r.status for r in fcm_rows] == [OutboxStatus.DEAD, OutboxStatus.SENT]
    assert await PushToken.filter(token=FCM_TOKEN).exists()


@pytest.mark.parametrize("settings_overrides", [{}])
async def test_with_no_push_service_configured_no_push_rows_are_queued(
    gql: GraphQLClient,
) -> None:
    # given: tokens registered, but neither FCM nor APNs set up
    contractor = await contractor_with_two_phones(gql)
    # when
    await post(contractor)
    # then: the message exists, no push row does (its live event leaves at commit, no row)
    assert await Message.filter(account_id=contractor.id).count() == 1
    assert await OutboxMessage.filter(channel=OutboxChannel.EVENT).count() == 0
    assert await push_rows() == []


async def test_a_push_queued_before_sign_out_is_not_sent(
    settings: Settings, orm: None, fcm_server: FcmServer, apns_server: ApnsServer
) -> None:
    # given: a push waiting in the outbox for a phone that then signs out
    configured = settings.with_(**push_settings(fcm_server, apns_server))
    push.configure(configured)
    contractor = await make_contractor()
    device = await Device.create(account=contractor, device_id="android", name="Android")
    await PushToken.create(device=device, platform=PushPlatform.FCM, token=FCM_TOKEN)
    await post(contractor)
    await PushToken.filter(device=device).delete()
    dispatcher = Dispatcher(configured, PubSub())
    # when
    await dispatcher.run_once()
    await dispatcher.stop()
    # then
    [row] = await push_rows()
    assert row.status == OutboxStatus.DEAD
    assert fcm_server.attempts == []


async def test_pushes_queued_in_the_one_channel_of_before_go_to_their_service(
    settings: Settings, orm: None, fcm_server: FcmServer, apns_server: ApnsServer
) -> None:
    # given a push for each phone queued as the release before queued them (one PUSH channel),
    # as an instance not yet upgraded does while the others are
    configured = settings.with_(**push_settings(fcm_server, apns_server))
    push.configure(configured)
    contractor = await make_contractor()
    for device_id, platform, token in (
        ("android", PushPlatform.FCM, FCM_TOKEN),
        ("iphone", PushPlatform.APNS, APNS_TOKEN),
    ):
        device = await Device.create(account=contractor, device_id=device_id, name=device_id)
        await PushToken.create(device=device, platform=platform, token=token)
    await post(contractor)
    queued = await push_rows()
    assert {r.channel for r in queued} == set(PUSH_CHANNELS)
    await OutboxMessage.filter(id__in=[r.id for r in queued]).update(channel=OutboxChannel.PUSH)
    # when this release's dispatcher runs
    dispatcher = Dispatcher(configured, PubSub())
    await dispatcher.run_once()
    await dispatcher.stop()
    # then each reached its own service, once
    assert [m["token"] for m in fcm_server.delivered] == [FCM_TOKEN]
    assert [a.token for a in apns_server.delivered] == [APNS_TOKEN]
    statuses = await OutboxMessage.filter(channel=OutboxChannel.PUSH).values_list(
        "status", flat=True
    )
    assert statuses == [OutboxStatus.SENT, OutboxStatus.SENT]


async def _delivered(fcm: FcmServer, apns: ApnsServer, count: int) -> bool:
    reached = len(fcm.delivered) >= count and len(apns.delivered) >= count
    return reached and await all_settled()


def test_push_settings_come_from_the_environment(tmp_path: Path) -> None:
    # given
    environ = {
        "DATABASE_URL": f"sqlite://{tmp_path}/keybin.sqlite3",
        "FCM_PROJECT_ID": "keybin-prod",
        "FCM_SERVICE_ACCOUNT_FILE": "/etc/keybin/fcm.json",
        "APNS_KEY_FILE": "/etc/keybin/AuthKey.p8",
        "APNS_KEY_ID": "KEY1234567",
        "APNS_TEAM_ID": "TEAM123456",
        "APNS_TOPIC": "org.keybin.app",
        "APNS_BASE_URL": "https://api.sandbox.push.apple.com/",
    }
    # when
    settings = from_env(environ)
    # then
    assert settings.push_configured and settings.fcm_configured and settings.apns_configured
    assert settings.fcm_base_url == "https://fcm.googleapis.com"
    assert settings.apns_base_url == "https://api.sandbox.push.apple.com"
    assert not from_env({"DATABASE_URL": environ["DATABASE_URL"]}).push_configured


@pytest.mark.parametrize(
    "partial", [{"FCM_PROJECT_ID": "keybin-prod"}, {"APNS_KEY_FILE": "k.p8", "APNS_TOPIC": "t"}]
)
def test_half_a_push_configuration_refuses_to_start(
    tmp_path: Path, partial: dict[str, str]
) -> None:
    environ = {"DATABASE_URL": f"sqlite://{tmp_path}/keybin.sqlite3", **partial}
    with pytest.raises(ConfigurationError, match="push is half configured"):
        from_env(environ)
