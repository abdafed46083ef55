"""The outbox: mail survives a stopped SMTP server and a restart, and is delivered once."""

from __future__ import annotations

import asyncio

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
