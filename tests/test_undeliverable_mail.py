"""A mail that can never be sent fails once, for good, with its reason; one that may yet be
sent is retried; neither holds back the rest. Stored text never breaks a mail's headers."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry

from core import clock
from core.ids import to_global_id
from models.enums import OutboxStatus
from models.outbox import OutboxMessage
from notify import outbox
from notify.dispatcher import Dispatcher
from notify.metrics import DeliveryCounters
from notify.pubsub import PubSub
from settings import Settings
from tests.factories import GraphQLClient, make_agent, make_listing, make_lockbox
from tests.smtp import SmtpServer

RESET = {"name": "x", "key_id": None, "link": "https://keybin.test/reset"}
# Addresses stored before they were checked as strictly: none is one mailbox.
NO_MAILBOX = ["[casey@example.net", "postmaster,attacker@evil.example", "a<b@example.com"]
GRANT_ACCESS = """
mutation($input: GrantAccessInput!) {
  grantAccess(input: $input) { invitationSent userErrors { code } }
}
"""


def counted(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, {"channel": "EMAIL", **labels}) or 0.0


async def deliver_twice(dispatcher: Dispatcher) -> None:
    """A run, then another once every backoff has passed."""
    await dispatcher.run_once()
    clock.travel(3600)
    await dispatcher.run_once()


async def test_a_mail_no_address_can_take_fails_once_for_good_and_the_others_go_out(
    app_settings: Settings, smtp: SmtpServer, orm: None, caplog: pytest.LogCaptureFixture
) -> None:
    # given mails to stored addresses that are no mailbox, and one to a real one
    bad = [await outbox.email(to, "password_reset", RESET) for to in NO_MAILBOX]
    good = await outbox.email("someone@example.com", "password_reset", RESET)
    registry = CollectorRegistry()
    dispatcher = Dispatcher(app_settings, PubSub(), DeliveryCounters(registry))
    # when the dispatcher runs, and again later
    with caplog.at_level(logging.WARNING, logger="keybin.outbox"):
        await deliver_twice(dispatcher)
    # then each fails for good after one attempt, saying why, and is never tried again
    for row in bad:
        stored = await OutboxMessage.get(id=row.id)
        assert (stored.status, stored.attempts) == (OutboxStatus.DEAD, 1)
        assert stored.last_error and "not one mailbox" in stored.last_error
    assert (await OutboxMessage.get(id=good.id)).status == OutboxStatus.SENT
    # and only the real mailbox got mail: no postmaster, no address hidden in another
    assert smtp.recipients == ["someone@example.com"]
    # and each failure is counted and logged once, without a traceback
    assert counted(registry, "keybin_outbox_failures_total", outcome="dead") == 3
    assert counted(registry, "keybin_outbox_failures_total", outcome="retry") == 0
    assert counted(registry, "keybin_outbox_deliveries_total") == 1
    failed = [r for r in caplog.records if "failed for good" in r.getMessage()]
    assert len(failed) == 3
    assert not [r for r in caplog.records if r.exc_info]


async def test_an_address_the_relay_refuses_for_good_fails_once_a_full_mailbox_is_retried(
    app_settings: Settings, smtp: SmtpServer, orm: None
) -> None:
    # given a relay that has no such user for one address and a full mailbox for another
    smtp.refuse["gone@example.com"] = "550 5.1.1 No such user"
    smtp.refuse["full@example.com"] = "452 4.2.2 Mailbox full"
    gone = await outbox.email("gone@example.com", "password_reset", RESET)
    full = await outbox.email("full@example.com", "password_reset", RESET)
    registry = CollectorRegistry()
    dispatcher = Dispatcher(app_settings, PubSub(), DeliveryCounters(registry))
    # when the dispatcher runs twice
    await deliver_twice(dispatcher)
    # then the refused address failed for good after one attempt, with the relay's answer
    stored = await OutboxMessage.get(id=gone.id)
    assert (stored.status, stored.attempts) == (OutboxStatus.DEAD, 1)
    assert stored.last_error and "No such user" in stored.last_error
    # and the full mailbox is still waiting, tried twice
    waiting = await OutboxMessage.get(id=full.id)
    assert (waiting.status, waiting.attempts) == (OutboxStatus.PENDING, 2)
    assert counted(registry, "keybin_outbox_failures_total", outcome="dead") == 1
    assert counted(registry, "keybin_outbox_failures_total", outcome="retry") == 2
    # and once it has room, the mail arrives, once
    del smtp.refuse["full@example.com"]
    await deliver_twice(dispatcher)
    assert (await OutboxMessage.get(id=full.id)).status == OutboxStatus.SENT
    assert smtp.recipients == ["full@example.com"]


async def test_line_breaks_stored_in_a_name_or_an_address_are_mailed_on_one_line(
    gql: GraphQLClient, smtp: SmtpServer
) -> None:
    # given an agent and a listing stored before line breaks were refused
    agent = await make_agent(first_name="Alice\r\nBcc: attacker@evil.example", last_name="Agent")
    listing = await make_listing(agent, line1="7 Elm St\r\nBcc: attacker@evil.example")
    await make_lockbox(agent, listing=listing)
    token = await gql.sign_in(agent.email or "")
    starts = clock.now() + timedelta(hours=1)
    # when the agent grants access to a new email
    data = await gql(
        GRANT_ACCESS,
        {
            "input": {
                "listingId": to_global_id("Listing", listing.id),
                "granteeEmail": "new.person@example.com",
                "startsAt": starts.isoformat(),
                "endsAt": (starts + timedelta(hours=2)).isoformat(),
                "pin": "1234",
            }
        },
        token=token,
    )
    assert data["grantAccess"] == {"invitationSent": True, "userErrors": []}
    # then the invitation arrives, its subject on one line, with no header of its own
    [mail] = await smtp.wait_for(1)
    subject = re.sub(r"\r?\n(?=[ \t])", "", mail["Subject"])  # unfolded, as RFC 5322 reads it
    assert subject.startswith("Alice Bcc: attacker@evil.example Agent granted you access")
    assert "7 Elm St Bcc: attacker@evil.example, Cincinnati" in subject
    assert mail["Bcc"] is None
    assert smtp.recipients == ["new.person@example.com"]
