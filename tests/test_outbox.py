"""The outbox: mail survives a stopped SMTP server and a restart, and is delivered once."""

from __future__ import annotations

import asyncio

import pytest
from starlette.applications import Starlette

from app import create_app
from models.enums import OutboxStatus
from models.outbox import OutboxMessage
from notify import outbox
from notify.dispatcher import Dispatcher
from notify.pubsub import PubSub
from settings import Settings
from tests.factories import GraphQLClient, make_agent
from tests.smtp import SmtpServer

REQUEST_RESET = """
mutation($login: String!) { requestPasswordReset(input: {login: $login}) { ok } }
"""


async def test_mail_waits_for_a_stopped_smtp_server(gql: GraphQLClient, smtp: SmtpServer) -> None:
    # given the SMTP server is down
    smtp.stop()
    agent = await make_agent()
    # when a reset is requested
    await gql(REQUEST_RESET, {"login": agent.email})
    await asyncio.sleep(0.5)
    row = await OutboxMessage.get(recipient=agent.email)
    # then it is kept and retried, not dropped
    assert row.status == OutboxStatus.PENDING
    assert row.attempts >= 1
    assert row.last_error
    # and once the server is back it arrives, once
    smtp.start()
    await smtp.wait_for(1)
    await asyncio.sleep(0.5)
    assert len(smtp.inbox) == 1
    assert (await OutboxMessage.get(id=row.id)).status == OutboxStatus.SENT


async def test_undelivered_mail_is_resumed_after_a_restart(
    app_settings: Settings, smtp: SmtpServer
) -> None:
    # given a mail queued while SMTP is down, and the server stopped
    smtp.stop()
    first: Starlette = create_app(app_settings)
    async with first.router.lifespan_context(first):
        agent = await make_agent()
        from resolvers.auth import request_password_reset

        await request_password_reset(app_settings, agent.email or "")
        await asyncio.sleep(0.3)
    assert smtp.inbox == []
    # when the SMTP server and then keybin start again
    smtp.start()
    second = create_app(app_settings)
    async with second.router.lifespan_context(second):
        # then the mail is delivered
        [mail] = await smtp.wait_for(1)
        assert mail["To"] == agent.email


async def test_two_dispatchers_deliver_each_row_once(
    app_settings: Settings, smtp: SmtpServer, orm: None
) -> None:
    # given fifty queued mails and two dispatchers (two instances) racing for them
    for i in range(50):
        await outbox.email(
            f"user{i}@example.com", "password_reset", {"name": "x", "key_id": None, "link": "l"}
        )
    one, two = Dispatcher(app_settings, PubSub()), Dispatcher(app_settings, PubSub())
    # when
    await asyncio.gather(*(d.run_once() for d in (one, two, one, two)))
    await asyncio.gather(one.run_once(), two.run_once())
    # then
    await smtp.wait_for(50)
    await asyncio.sleep(0.3)
    recipients = sorted(m["To"] for m in smtp.inbox)
    assert recipients == sorted(f"user{i}@example.com" for i in range(50))
    assert await OutboxMessage.filter(status=OutboxStatus.SENT).count() == 50


async def test_an_sms_gateway_answering_500_is_retried_and_delivers_once(
    settings: Settings, orm: None
) -> None:
    from tests.sms_gateway import SmsGateway

    with SmsGateway() as gateway:
        # given a gateway failing twice
        gateway.fail_next = 2
        sms_settings = settings.with_(sms_backend="http", sms_http_url=gateway.url)
        row = await outbox.sms("+15135550100", "Your keybin code is 1234")
        dispatcher = Dispatcher(sms_settings, PubSub())
        # when the dispatcher keeps trying
        for _ in range(40):
            await dispatcher.run_once()
            if (await OutboxMessage.get(id=row.id)).status == OutboxStatus.SENT:
                break
            await asyncio.sleep(0.05)
        # then it was retried with backoff and delivered exactly once
        stored = await OutboxMessage.get(id=row.id)
        assert stored.status == OutboxStatus.SENT
        assert stored.attempts == 3
        assert gateway.attempts == 3
        assert [sms.to for sms in gateway.received] == ["+15135550100"]


@pytest.mark.parametrize(("status", "sent"), [(400, False), (422, False), (429, True), (503, True)])
async def test_an_sms_gateway_refusal_for_good_ends_at_once_and_a_later_is_retried(
    settings: Settings, orm: None, status: int, sent: bool
) -> None:
    from tests.sms_gateway import SmsGateway

    with SmsGateway() as gateway:
        # given a gateway answering `status` to the first attempt
        gateway.fail_next, gateway.fail_status = 1, status
        sms_settings = settings.with_(sms_backend="http", sms_http_url=gateway.url)
        row = await outbox.sms("+15135550100", "Your keybin code is 1234")
        dispatcher = Dispatcher(sms_settings, PubSub())
        for _ in range(40):
            await dispatcher.run_once()
            if (await OutboxMessage.get(id=row.id)).status != OutboxStatus.PENDING:
                break
            await asyncio.sleep(0.05)
        stored = await OutboxMessage.get(id=row.id)
        if sent:  # then a "later" is tried again, and delivered once
            assert stored.status == OutboxStatus.SENT and gateway.attempts == 2
            assert len(gateway.received) == 1
        else:  # then a refusal for good ends after the one attempt, never sent again
            assert stored.status == OutboxStatus.DEAD and gateway.attempts == 1
            assert stored.attempts == 1 and str(status) in (stored.last_error or "")


async def test_minutes_of_smtp_outage_back_off_then_deliver_once(
    settings: Settings, smtp: SmtpServer, orm: None
) -> None:
    # given production pacing (backoff from 2 s, doubling, capped at 5 minutes) and SMTP down
    from core import clock

    smtp.stop()
    real = settings.with_(
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        outbox_backoff_base=2.0,
        outbox_backoff_max=300.0,
    )
    dispatcher = Dispatcher(real, PubSub())
    row = await outbox.email(
        "someone@example.com", "password_reset", {"name": "x", "key_id": None, "link": "l"}
    )
    # when the outage lasts twenty minutes of the dispatcher's clock
    delays = []
    for _ in range(12):
        await dispatcher.run_once()
        stored = await OutboxMessage.get(id=row.id)
        delays.append(round((stored.next_attempt_at - clock.now()).total_seconds()))
        clock.travel(max(delays[-1], 0) + 1)
    # then each retry waited twice as long, up to the cap, and nothing was dropped
    assert delays[:5] == [2, 4, 8, 16, 32]
    assert max(delays) == 300
    assert (await OutboxMessage.get(id=row.id)).status == OutboxStatus.PENDING
    # and once SMTP is back the mail goes out, once
    smtp.start()
    for _ in range(3):
        clock.travel(301)
        await dispatcher.run_once()
    await smtp.wait_for(1)
    assert len(smtp.inbox) == 1
    assert (await OutboxMessage.get(id=row.id)).status == OutboxStatus.SENT
