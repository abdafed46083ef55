"""Live Message Center events leave when the message's transaction commits: never on
rollback, never through the outbox, and a subscriber that reconnects can resume."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.applications import Starlette
from tortoise.transactions import in_transaction
from websockets.asyncio.client import ClientConnection

from core.ids import to_global_id
from models.accounts import Account
from models.enums import MessageKind, OutboxChannel
from models.outbox import OutboxMessage
from notify import outbox
from notify.live_events import TAIL_POLL_SECONDS
from resolvers.notifications import post_message
from tests.conftest import POSTGRES_URL
from tests.factories import make_contractor
from tests.live import Live, eventually, subscribed

PLAIN = "subscription { messageAdded { id title } }"
RESUMING = "subscription($after: ID) { messageAdded(after: $after) { id title } }"


class Refused(Exception):
    """The transaction the test rolls back."""


async def post(account: Account, title: str) -> int:
    async with in_transaction():
        message = await post_message(account.id, MessageKind.ACCOUNT, title, "body")
    outbox.wake()
    return message.id


def observations(metrics: Any) -> float:
    """How many live deliveries the app's latency histogram has counted."""
    [family] = metrics.live_delivery.collect()
    return sum(s.value for s in family.samples if s.name.endswith("_count"))


# How long a frame that must come may take: generous, because the server shares this event
# loop and the machine may be busy; the tests that say "nothing comes" wait far less.
ARRIVES = 5.0


async def next_title(ws: ClientConnection, within: float = ARRIVES) -> str:
    async with asyncio.timeout(within):
        frame = json.loads(await ws.recv())
    assert frame["type"] == "next", frame
    title: str = frame["payload"]["data"]["messageAdded"]["title"]
    return title


async def nothing_within(ws: ClientConnection, seconds: float) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(seconds):
            await ws.recv()


async def test_a_rolled_back_message_is_never_announced(live: Live) -> None:
    # given a subscriber
    contractor = await make_contractor()
    token = await live.sign_in(contractor.email or "")
    async with subscribed(live, token, PLAIN) as ws:
        await live.wait_for_subscribers(1)
        # when a transaction posts a message and then fails
        with pytest.raises(Refused):
            async with in_transaction():
                await post_message(contractor.id, MessageKind.ACCOUNT, "Never was", "body")
                raise Refused
        outbox.wake()
        # and a later one commits
        await post(contractor, "Committed")
        # then only the committed one arrives
        assert await next_title(ws) == "Committed"
        await nothing_within(ws, 0.3)


async def test_live_events_need_no_outbox_row(live: Live) -> None:
    # given a subscriber, and no dispatcher at all (it is stopped)
    contractor = await make_contractor()
    token = await live.sign_in(contractor.email or "")
    await live.app.state.dispatcher.stop()
    async with subscribed(live, token, PLAIN) as ws:
        await live.wait_for_subscribers(1)
        # when
        await post(contractor, "Straight from the commit")
        # then it arrives, and nothing was queued for it
        assert await next_title(ws) == "Straight from the commit"
    assert await OutboxMessage.filter(channel=OutboxChannel.EVENT).count() == 0


async def test_a_message_committed_without_a_wake_still_arrives(live: Live) -> None:
    # given a subscriber
    contractor = await make_contractor()
    token = await live.sign_in(contractor.email or "")
    async with subscribed(live, token, PLAIN) as ws:
        await live.wait_for_subscribers(1)
        # when a writer forgets to wake anyone (another process, a new code path)
        async with in_transaction():
            await post_message(contractor.id, MessageKind.ACCOUNT, "Unannounced", "body")
        # then it arrives all the same, within a few of the tail's looks
        assert await next_title(ws, within=6 * TAIL_POLL_SECONDS) == "Unannounced"


async def test_resuming_sends_the_missed_messages_first_then_live_ones_once(
    live: Live,
) -> None:
    # given a contractor who saw message 1, then missed 2 and 3, and someone else's message
    contractor = await make_contractor()
    other = await make_contractor()
    token = await live.sign_in(contractor.email or "")
    seen = await post(contractor, "one")
    await post(contractor, "two")
    await post(other, "not yours")
    await post(contractor, "three")
    # when the app resubscribes after the last message it has
    after = to_global_id("Message", seen)
    async with subscribed(live, token, RESUMING, {"after": after}) as ws:
        missed = [await next_title(ws), await next_title(ws)]
        await live.wait_for_subscribers(1)
        await post(contractor, "four")
        live_one = await next_title(ws)
        # then the missed ones come first, oldest first, each once, then the live one
        assert missed == ["two", "three"]
        assert live_one == "four"
        await nothing_within(ws, 0.3)


async def test_resuming_after_someone_elses_message_shows_only_ones_own(live: Live) -> None:
    # given another account's message id, and one message of one's own after it
    contractor = await make_contractor()
    other = await make_contractor()
    token = await live.sign_in(contractor.email or "")
    theirs = await post(other, "their secret")
    await post(other, "their second secret")
    await post(contractor, "mine")
    # when
    after = to_global_id("Message", theirs)
    async with subscribed(live, token, RESUMING, {"after": after}) as ws:
        # then
        assert await next_title(ws) == "mine"
        await nothing_within(ws, 0.3)


async def test_resuming_after_a_malformed_id_is_an_error(live: Live) -> None:
    contractor = await make_contractor()
    token = await live.sign_in(contractor.email or "")
    async with subscribed(live, token, RESUMING, {"after": "not-an-id"}) as ws:
        async with asyncio.timeout(2):
            frame = json.loads(await ws.recv())
    # graphql-core answers an error raised by the subscription's resolver as a result
    assert frame["type"] == "next", frame
    [error] = frame["payload"]["errors"]
    assert error["extensions"]["code"] == "INVALID_INPUT", error


async def test_delivery_latency_is_measured(live: Live) -> None:
    # given a subscriber whose events take the fan-out's pass
    contractor = await make_contractor()
    token = await live.sign_in(contractor.email or "")
    metrics = live.app.state.metrics
    before = observations(metrics)
    async with subscribed(live, token, PLAIN) as ws:
        await live.wait_for_subscribers(1)
        await post(contractor, "timed")
        assert await next_title(ws) == "timed"
    # then one observation was made
    await eventually(lambda: observations(metrics) == before + 1)


@pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite's message tail; PostgreSQL uses NOTIFY")
async def test_subscribers_arriving_at_once_share_one_read_of_the_tail(app: Starlette) -> None:
    # given the app's message tail (its own polling stopped), counting its reads, and a
    # message just committed
    tail = app.state.pubsub._tail
    await tail.stop()
    reads: list[int] = []
    original = tail._read_new

    async def counted() -> int:
        reads.append(tail.last_id)
        await asyncio.sleep(0.01)  # a read takes a while: callers pile up meanwhile
        return await original()

    tail._read_new = counted
    contractor = await make_contractor()
    delivered: list[int] = []
    tail.deliver = lambda account_id, message_id: delivered.append(message_id)
    message_id = await post(contractor, "Before them")
    # when fifty subscribers catch up at once
    await asyncio.gather(*(tail.catch_up() for _ in range(50)))
    # then each returned after the message was handed on, and they cost one read
    assert message_id in delivered
    assert len(reads) == 1
    # and a caller who comes during a read gets a read that starts after its call
    first = asyncio.ensure_future(tail.catch_up())
    await asyncio.sleep(0.005)  # that read is under way
    later_id = await post(contractor, "During the read")
    await tail.catch_up()
    assert later_id in delivered
    await first
