"""One lane per channel: a mail relay, SMS gateway or push service that hangs holds back only
its own channel; live messages and the other channels go on, and what it owed arrives once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from tortoise.transactions import in_transaction
from websockets.asyncio.client import ClientConnection

from core import clock
from models.accounts import Account
from models.enums import OutboxChannel, OutboxStatus
from models.outbox import OutboxMessage
from notify import outbox
from notify.dispatcher import Dispatcher
from notify.pubsub import PubSub
from settings import ConfigurationError, Settings, from_env
from tests.factories import GraphQLClient, make_agent
from tests.live import Live, subscribed
from tests.push_servers import ApnsServer, FcmServer, push_settings
from tests.sms_gateway import SmsGateway
from tests.smtp import SmtpServer
from tests.stalled import StalledService
from tests.test_outbox import REQUEST_RESET
from tests.test_push import APNS_TOKEN, FCM_TOKEN, contractor_with_two_phones, eventually, post
from tests.test_signup import begin
from tests.test_subscriptions import grant_to

# Short, so the suite stays fast. The deadline is longer than any wait here (APNs requests
# queue for the one HTTP/2 connection being opened), so the providers' own timeouts are what
# end each stalled attempt (the deadline has its own test below).
PROVIDER_TIMEOUTS = {
    "smtp_connect_timeout": 1.0,
    "smtp_timeout": 1.0,
    "sms_connect_timeout": 1.0,
    "sms_read_timeout": 1.0,
    "push_connect_timeout": 1.0,
    "push_read_timeout": 1.0,
    "outbox_deadline_seconds": 8.0,
    "outbox_claim_seconds": 16.0,
}
LIVE_WITHIN = 1.0  # seconds from grantAccess's answer
MAILS = 5  # one more than the mail lane's slots: the lane is full and has a queue
TEXTS = 5  # likewise for SMS
EARLIER = "Earlier message"
# While APNs cannot be reached, one push at a time tries to connect; one waiting for it is
# told at once that the attempt failed (notify/apns.py).
APNS_TIMEOUTS = ("ConnectTimeout", "APNs not reached")
MAIL = {"name": "x", "key_id": None, "link": "l"}


@dataclass
class Providers:
    """The working loopback services, and a stalled stand-in for each that hangs."""

    smtp: SmtpServer
    sms: SmsGateway
    fcm: FcmServer
    apns: ApnsServer
    stalled: dict[str, StalledService]

    def settings(self) -> dict[str, Any]:
        settings = {
            **PROVIDER_TIMEOUTS,
            **push_settings(self.fcm, self.apns),
            "smtp_port": self.smtp.port,
            "sms_backend": "http",
            "sms_http_url": self.sms.url,
        }
        if "smtp" in self.stalled:
            settings["smtp_port"] = self.stalled["smtp"].port
        if "sms" in self.stalled:
            settings["sms_http_url"] = f"http://127.0.0.1:{self.stalled['sms'].port}/sms"
        if "fcm" in self.stalled:
            settings["fcm_base_url"] = f"http://127.0.0.1:{self.stalled['fcm'].port}"
        if "apns" in self.stalled:
            settings["apns_base_url"] = f"https://127.0.0.1:{self.stalled['apns'].port}"
        return settings

    def recover(self) -> None:
        working = {
            "smtp": self.smtp.port,
            "sms": urlsplit(self.sms.url).port,
            "fcm": self.fcm.server.port,
            "apns": self.apns.server.port,
        }
        for name, service in self.stalled.items():
            port = working[name]
            assert port is not None
            service.recover(port)


@pytest.fixture
async def providers(
    hanging: tuple[str, ...],
    smtp: SmtpServer,
    sms: SmsGateway,
    fcm_server: FcmServer,
    apns_server: ApnsServer,
) -> AsyncIterator[Providers]:
    stalled = {name: StalledService() for name in hanging}
    for service in stalled.values():
        await service.start()
    yield Providers(smtp, sms, fcm_server, apns_server, stalled)
    for service in stalled.values():
        await service.stop()


@pytest.fixture
def slower() -> dict[str, Any]:
    """Settings a test changes besides the providers' (by parametrizing `slower`)."""
    return {}


@pytest.fixture
def settings_overrides(providers: Providers, slower: dict[str, Any]) -> dict[str, Any]:
    return {**providers.settings(), **slower}


@dataclass
class Owed:
    """What keybin has queued for the providers so far; each must arrive exactly once."""

    contractor: Account  # signed in on two phones: each message is one FCM and one APNs push
    mail_to: list[str] = field(default_factory=list)
    sms_to: list[str] = field(default_factory=list)
    messages: int = 0

    async def mail(self, gql: GraphQLClient, count: int = 1) -> None:
        for _ in range(count):
            agent = await make_agent()
            await gql(REQUEST_RESET, {"login": agent.email})
            self.mail_to.append(agent.email or "")

    async def sms(self, gql: GraphQLClient, count: int = 1) -> None:
        for _ in range(count):
            n = len(self.sms_to)
            phone = f"+1513555{9000 + n}"
            started = await begin(gql, email=f"lane{n}@example.com", phone=phone)
            assert started["userErrors"] == []
            self.sms_to.append(phone)

    async def earlier_messages(self, count: int) -> None:
        for _ in range(count):
            await post(self.contractor, title=EARLIER)
        self.messages += count

    async def grant(self, live: Live) -> None:
        await grant_to(live, self.contractor.email or "")
        self.messages += 1

    async def burst(self, live: Live, gql: GraphQLClient) -> None:
        """A mail, an SMS, then a grant: a live message and a push to each phone."""
        await self.mail(gql)
        await self.sms(gql)
        await self.grant(live)


async def granted_live(ws: ClientConnection) -> dict[str, Any]:
    """The grant's messageAdded, past any earlier message's."""
    while True:
        frame = json.loads(await ws.recv())
        assert frame["type"] == "next", frame
        message: dict[str, Any] = frame["payload"]["data"]["messageAdded"]
        if message["title"] != EARLIER:
            return message


def waiting_for(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def checked() -> bool:
        return check()

    return checked


PUSHES = (OutboxChannel.FCM, OutboxChannel.APNS)


async def settled(*channels: OutboxChannel) -> bool:
    pending = OutboxMessage.filter(channel__in=channels, status=OutboxStatus.PENDING)
    return not await pending.exists()


async def each_tried(*channels: OutboxChannel) -> bool:
    return not await OutboxMessage.filter(channel__in=channels, attempts=0).exists()


async def rows(*channels: OutboxChannel) -> list[OutboxMessage]:
    return await OutboxMessage.filter(channel__in=channels).order_by("id")


async def mail_arrived(p: Providers, owed: Owed) -> None:
    await eventually(waiting_for(lambda: len(p.smtp.inbox) >= len(owed.mail_to)))


async def sms_arrived(p: Providers, owed: Owed) -> None:
    await eventually(waiting_for(lambda: len(p.sms.received) >= len(owed.sms_to)))


async def pushes_arrived(p: Providers, owed: Owed) -> None:
    def both_phones() -> bool:
        return min(len(p.fcm.delivered), len(p.apns.delivered)) >= owed.messages

    await eventually(waiting_for(both_phones))


async def delivered_once(p: Providers, owed: Owed) -> None:
    """Every channel settled, and each mail, SMS and push received exactly once."""
    for channel in (OutboxChannel.EMAIL, OutboxChannel.SMS, *PUSHES):
        await eventually(lambda channel=channel: settled(channel))
    await asyncio.sleep(0.3)  # room for a duplicate to show up, if one were on its way
    assert sorted(mail["To"] for mail in p.smtp.inbox) == sorted(owed.mail_to)
    assert len({mail["Message-ID"] for mail in p.smtp.inbox}) == len(owed.mail_to)
    assert sorted(sms.to for sms in p.sms.received) == sorted(owed.sms_to)
    assert [message["token"] for message in p.fcm.delivered] == [FCM_TOKEN] * owed.messages
    assert [attempt.token for attempt in p.apns.delivered] == [APNS_TOKEN] * owed.messages
    # A stalled attempt never reached the working service.
    assert len(p.fcm.attempts) == len(p.apns.attempts) == owed.messages
    sent = await OutboxMessage.filter(channel__in=["EMAIL", "SMS", "FCM", "APNS"]).values_list(
        "status", flat=True
    )
    assert set(sent) == {OutboxStatus.SENT}


@pytest.mark.parametrize("hanging", [("smtp",)])
async def test_a_relay_that_never_greets_holds_back_mail_and_nothing_else(
    live: Live, gql: GraphQLClient, providers: Providers
) -> None:
    # given a mail relay that accepts connections and never says a word, owing five mails,
    # and a contractor with two phones subscribed to the Message Center
    owed = Owed(await contractor_with_two_phones(gql))
    await owed.mail(gql, MAILS)
    async with subscribed(live, await live.sign_in(owed.contractor.email or "")) as ws:
        await live.wait_for_subscribers(1)
        # when a mail, an SMS and a grant follow
        await owed.burst(live, gql)
        # then the live message, the SMS and the pushes arrive at once
        async with asyncio.timeout(LIVE_WITHIN):
            message, *_ = await asyncio.gather(
                granted_live(ws), sms_arrived(providers, owed), pushes_arrived(providers, owed)
            )
    assert message["kind"] == "ACCESS_GRANTED"
    assert providers.smtp.inbox == []
    # and each mail waits the relay's timeout, and is kept to be tried again
    await eventually(lambda: each_tried(OutboxChannel.EMAIL))
    for row in await rows(OutboxChannel.EMAIL):
        assert row.status == OutboxStatus.PENDING
        assert row.last_error and row.last_error.startswith("SMTPConnectTimeoutError")
    assert providers.stalled["smtp"].accepted >= 4  # the lane's slots, all waiting at once
    # when a working relay takes over the port
    providers.recover()
    # then every mail it owed arrives, once, and nothing else came twice
    await mail_arrived(providers, owed)
    await delivered_once(providers, owed)


@pytest.mark.parametrize("hanging", [("sms",)])
async def test_an_sms_gateway_that_never_answers_holds_back_sms_and_nothing_else(
    live: Live, gql: GraphQLClient, providers: Providers
) -> None:
    # given an SMS gateway that takes each request and never answers it, owing five SMS
    owed = Owed(await contractor_with_two_phones(gql))
    await owed.sms(gql, TEXTS)
    async with subscribed(live, await live.sign_in(owed.contractor.email or "")) as ws:
        await live.wait_for_subscribers(1)
        # when
        await owed.burst(live, gql)
        # then the live message, the mail and the pushes arrive at once
        async with asyncio.timeout(LIVE_WITHIN):
            message, *_ = await asyncio.gather(
                granted_live(ws), mail_arrived(providers, owed), pushes_arrived(providers, owed)
            )
    assert message["kind"] == "ACCESS_GRANTED"
    assert providers.sms.received == []
    # and each SMS waits the gateway's read timeout, and is kept to be tried again
    await eventually(lambda: each_tried(OutboxChannel.SMS))
    for row in await rows(OutboxChannel.SMS):
        assert row.status == OutboxStatus.PENDING
        assert row.last_error and row.last_error.startswith("ReadTimeout")
    # when the gateway recovers
    providers.recover()
    # then every SMS it owed arrives, once
    await sms_arrived(providers, owed)
    await delivered_once(providers, owed)


@pytest.mark.parametrize("hanging", [("fcm", "apns")])
async def test_fcm_and_apns_that_hang_hold_back_pushes_and_nothing_else(
    live: Live, gql: GraphQLClient, providers: Providers
) -> None:
    # given FCM taking requests and never answering, APNs never finishing its TLS
    # handshake, and two earlier messages' pushes owed to the contractor's two phones
    owed = Owed(await contractor_with_two_phones(gql))
    await owed.earlier_messages(2)
    async with subscribed(live, await live.sign_in(owed.contractor.email or "")) as ws:
        await live.wait_for_subscribers(1)
        # when
        await owed.burst(live, gql)
        # then the live message, the mail and the SMS arrive at once
        async with asyncio.timeout(LIVE_WITHIN):
            message, *_ = await asyncio.gather(
                granted_live(ws), mail_arrived(providers, owed), sms_arrived(providers, owed)
            )
    assert message["kind"] == "ACCESS_GRANTED"
    assert providers.fcm.attempts == providers.apns.attempts == []
    # and each push waits its service's timeout, and is kept to be tried again
    await eventually(lambda: each_tried(*PUSHES))
    for row in await rows(*PUSHES):
        assert row.status == OutboxStatus.PENDING
        timeouts = ("ReadTimeout",) if row.payload["platform"] == "FCM" else APNS_TIMEOUTS
        assert row.last_error and row.last_error.startswith(timeouts)
    # when both services recover
    providers.recover()
    # then each phone gets every push, once
    await pushes_arrived(providers, owed)
    await delivered_once(providers, owed)


# Two push slots, and a hung service's attempts that each hold one for five seconds: with one
# lane for both services, the working one's pushes would wait behind them.
TWO_SLOTS = {"outbox_push_concurrency": 2, "push_connect_timeout": 5.0, "push_read_timeout": 5.0}


@pytest.mark.parametrize(("hanging", "slower"), [(("apns",), TWO_SLOTS), (("fcm",), TWO_SLOTS)])
async def test_a_push_service_that_hangs_holds_back_its_own_phones_only(
    live: Live, gql: GraphQLClient, providers: Providers
) -> None:
    # given one push service hanging (APNs: a TLS handshake that never ends; FCM: requests
    # never answered), and three earlier messages: more of its pushes owed than it has slots
    owed = Owed(await contractor_with_two_phones(gql))
    [hung] = providers.stalled
    working, stuck = (
        (providers.apns, providers.fcm) if hung == "fcm" else (providers.fcm, providers.apns)
    )
    await owed.earlier_messages(3)
    # when a grant follows
    await owed.grant(live)
    # then the other service's phone gets every push at once, the grant's too
    async with asyncio.timeout(LIVE_WITHIN):
        await eventually(waiting_for(lambda: len(working.delivered) >= owed.messages))
    assert stuck.attempts == []
    # when the hung service recovers
    providers.recover()
    # then its phone gets every push it was owed, once
    await pushes_arrived(providers, owed)
    await delivered_once(providers, owed)


async def test_the_deadline_ends_a_delivery_the_providers_timeouts_would_let_wait(
    settings: Settings, smtp: SmtpServer, orm: None
) -> None:
    # given a relay that never greets, a generous SMTP timeout and a short delivery deadline
    relay = StalledService()
    await relay.start()
    patient = settings.with_(
        smtp_host="127.0.0.1",
        smtp_port=relay.port,
        smtp_connect_timeout=30.0,
        smtp_timeout=30.0,
        outbox_deadline_seconds=0.3,
        outbox_claim_seconds=1.0,
    )
    row = await outbox.email("someone@example.com", "password_reset", MAIL)
    dispatcher = Dispatcher(patient, PubSub())
    try:
        # when
        async with asyncio.timeout(2):
            attempted = await dispatcher.run_once()
        # then the attempt ended at the deadline, and the mail is kept for a retry
        stored = await OutboxMessage.get(id=row.id)
        assert (attempted, stored.status, stored.attempts) == (1, OutboxStatus.PENDING, 1)
        assert stored.last_error == "DeadlinePassed: no answer within 0.3 s"
        # when the relay works again, for a dispatcher with time to spare
        relay.recover(smtp.port)
        roomy = Dispatcher(patient.with_(outbox_deadline_seconds=5.0), PubSub())
        await eventually(lambda: dispatcher_delivers(roomy, row.id))
        # then the mail arrives, once
        await asyncio.sleep(0.2)
        assert [mail["To"] for mail in smtp.inbox] == ["someone@example.com"]
    finally:
        await dispatcher.stop()
        await relay.stop()


async def dispatcher_delivers(dispatcher: Dispatcher, row_id: int) -> bool:
    await dispatcher.run_once()
    return (await OutboxMessage.get(id=row_id)).status == OutboxStatus.SENT


async def test_a_woken_dispatcher_delivers_at_once_and_an_idle_one_sleeps(
    settings: Settings, smtp: SmtpServer, sms: SmsGateway, orm: None
) -> None:
    # given a running dispatcher that polls only every minute
    sleepy = settings.with_(
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        sms_backend="http",
        sms_http_url=sms.url,
        outbox_poll_seconds=60.0,
    )
    dispatcher = Dispatcher(sleepy, PubSub())
    dispatcher.start()
    try:
        await asyncio.sleep(0.1)  # every lane has looked once and found nothing
        # when a mail and an SMS are committed without waking the outbox
        async with in_transaction():
            await outbox.email("first@example.com", "password_reset", MAIL)
            await outbox.sms("+15135559100", "Your keybin code is 1234")
        await asyncio.sleep(0.3)
        # then nothing was sent: the lanes sleep, they do not spin
        assert smtp.inbox == [] and sms.received == []
        # when the outbox is woken
        outbox.wake()
        # then both lanes deliver at once (well before the minute's poll)
        async with asyncio.timeout(5):
            await smtp.wait_for(1)
            await sms.wait_for("+15135559100")
    finally:
        await dispatcher.stop()


async def test_two_instances_running_lanes_deliver_each_row_once(
    settings: Settings, smtp: SmtpServer, sms: SmsGateway, orm: None
) -> None:
    # given forty mails and forty SMS queued, and two dispatchers (two instances) running
    both = settings.with_(
        smtp_host="127.0.0.1", smtp_port=smtp.port, sms_backend="http", sms_http_url=sms.url
    )
    for n in range(40):
        await outbox.email(f"user{n}@example.com", "password_reset", MAIL)
        await outbox.sms(f"+1513555{9000 + n}", f"Message {n}")
    instances = [Dispatcher(both, PubSub()), Dispatcher(both, PubSub())]
    # when both run their lanes at once
    for dispatcher in instances:
        dispatcher.start()
    try:
        await eventually(lambda: settled(OutboxChannel.EMAIL))
        await eventually(lambda: settled(OutboxChannel.SMS))
        await asyncio.sleep(0.3)
    finally:
        for dispatcher in instances:
            await dispatcher.stop()
    # then each was delivered once, by one instance or the other
    assert sorted(mail["To"] for mail in smtp.inbox) == sorted(
        f"user{n}@example.com" for n in range(40)
    )
    assert sorted(text.body for text in sms.received) == sorted(f"Message {n}" for n in range(40))
    claimed_by = {
        str(name).split(":")[0]
        for name in await OutboxMessage.all().values_list("claimed_by", flat=True)
    }
    assert claimed_by <= {dispatcher.name for dispatcher in instances}
    assert await OutboxMessage.filter(status=OutboxStatus.SENT).count() == 80


async def test_a_delivery_under_way_is_not_claimed_again_when_its_claim_runs_out(
    settings: Settings, orm: None
) -> None:
    # given a mail whose delivery has begun and is still under way
    row = await outbox.email("someone@example.com", "password_reset", MAIL)
    dispatcher = Dispatcher(settings, PubSub())
    [mail_lane] = [lane for lane in dispatcher.lanes if lane.channel == OutboxChannel.EMAIL]
    sent: list[int] = []
    release = asyncio.Event()

    async def slow_relay(queued: OutboxMessage) -> None:
        sent.append(queued.id)
        if len(sent) == 1:
            await release.wait()  # the first delivery takes its time

    mail_lane.deliver = slow_relay
    first = asyncio.create_task(mail_lane.run_once())
    await eventually(waiting_for(lambda: sent == [row.id]))
    # when its claim runs out meanwhile (the clock jumps past it) and the lane looks again
    clock.travel(settings.outbox_claim_seconds + 1)
    assert await mail_lane.run_once() == 0
    # then it was not handed out a second time, and the first delivery still finishes it
    release.set()
    assert await first == 1
    assert sent == [row.id]
    assert (await OutboxMessage.get(id=row.id)).status == OutboxStatus.SENT


def test_a_claim_must_outlast_the_delivery_deadline(tmp_path: Path) -> None:
    # given
    environ = {
        "DATABASE_URL": f"sqlite://{tmp_path}/keybin.sqlite3",
        "KEYBIN_OUTBOX_CLAIM_SECONDS": "30",
        "KEYBIN_OUTBOX_DEADLINE_SECONDS": "30",
    }
    # when / then
    with pytest.raises(ConfigurationError, match="CLAIM_SECONDS must be longer"):
        from_env(environ)


def test_lane_settings_come_from_the_environment(tmp_path: Path) -> None:
    # given
    environ = {
        "DATABASE_URL": f"sqlite://{tmp_path}/keybin.sqlite3",
        "SMTP_CONNECT_TIMEOUT": "4",
        "SMTP_TIMEOUT": "8",
        "SMS_CONNECT_TIMEOUT": "2",
        "SMS_READ_TIMEOUT": "6",
        "PUSH_CONNECT_TIMEOUT": "3",
        "PUSH_READ_TIMEOUT": "7",
        "KEYBIN_OUTBOX_DEADLINE_SECONDS": "20",
        "KEYBIN_OUTBOX_EMAIL_CONCURRENCY": "2",
        "KEYBIN_OUTBOX_SMS_CONCURRENCY": "3",
        "KEYBIN_OUTBOX_PUSH_CONCURRENCY": "32",
    }
    # when
    settings = from_env(environ)
    # then
    assert (settings.smtp_connect_timeout, settings.smtp_timeout) == (4.0, 8.0)
    assert (settings.sms_connect_timeout, settings.sms_read_timeout) == (2.0, 6.0)
    assert (settings.push_connect_timeout, settings.push_read_timeout) == (3.0, 7.0)
    assert settings.outbox_deadline_seconds == 20.0
    assert (
        settings.outbox_email_concurrency,
        settings.outbox_sms_concurrency,
        settings.outbox_push_concurrency,
    ) == (2, 3, 32)
    # and a lane that could send nothing is refused
    with pytest.raises(ConfigurationError, match="KEYBIN_OUTBOX_SMS_CONCURRENCY"):
        from_env({**environ, "KEYBIN_OUTBOX_SMS_CONCURRENCY": "0"})
