"""Subscription events sent by the fan-out's pass (schema/fast/fanout.py), against a real server:
the same frames as the usual path, one read per burst, the same account checks, and the
usual path taking over when a plan bails."""

from __future__ import annotations

import asyncio
import gc
import json
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection

import schema.subscription
from core.ids import to_global_id
from models import prepared
from models.accounts import Account
from models.enums import MessageKind
from models.messages import Message
from models.messages import Message as MessageModel
from notify.pubsub import QUEUE_SIZE, EventQueue
from schema.fast.fanout import DirectSink, Fanout, start_eagerly
from schema.fast.plans import Bail, CompiledExecutor
from schema.messages import Message as SchemaMessage
from tests.factories import make_contractor
from tests.live import Live, eventually, subscribed

PLAIN = "subscription { messageAdded { id kind title body createdAt readAt } }"
WITH_GRANT = "subscription { messageAdded { title grant { id } } }"


class Passes:
    """Records each pass of the fan-out: how many events it answered."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sizes: list[int] = []
        original = Fanout._pass

        async def recording(fanout: Fanout, batch: list[tuple[DirectSink, int]]) -> None:
            self.sizes.append(len(batch))
            await original(fanout, batch)

        monkeypatch.setattr(Fanout, "_pass", recording)


class Sinks:
    """Records what each subscription resolver got: a sink, or None for the usual path."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.made: list[DirectSink | None] = []
        original = schema.subscription.direct_sink

        def recording(account_id: int) -> DirectSink | None:
            sink = original(account_id)
            self.made.append(sink)
            return sink

        monkeypatch.setattr(schema.subscription, "direct_sink", recording)


async def new_message(account: Account, title: str) -> Message:
    return await Message.create(
        account=account,
        kind=MessageKind.ACCESS_GRANTED,
        title=title,
        body='Line one\nline "two" \\ ünïcode',
    )


async def next_frame(ws: ClientConnection, seconds: float = 2) -> Any:
    async with asyncio.timeout(seconds):
        return json.loads(await ws.recv())


async def nothing_within(ws: ClientConnection, seconds: float = 0.3) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(seconds):
            await ws.recv()


async def test_the_pass_sends_what_the_usual_path_sends(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given one account subscribed twice: directly, and (plans off) the usual way
    passes, sinks = Passes(monkeypatch), Sinks(monkeypatch)
    contractor = await make_contractor()
    token = await live.sign_in(contractor.email or "")
    # (written before subscribing: only the publishing below hands them on)
    messages = [await new_message(contractor, f"Access {n}") for n in range(3)]
    messages[1].read_at = messages[1].created_at
    await messages[1].save()
    async with subscribed(live, token, PLAIN) as direct_ws:
        await live.wait_for_subscribers(1)
        monkeypatch.setattr(CompiledExecutor, "enabled", False)
        async with subscribed(live, token, PLAIN) as usual_ws:
            await live.wait_for_subscribers(2)
            assert sinks.made[0] is not None and sinks.made[1] is None
            # when three messages are published, one of them read already
            for message in messages:
                await live.app.state.pubsub.publish(contractor.id, message.id)
            # then both connections get the same frames, in order
            direct = [await next_frame(direct_ws) for _ in messages]
            usual = [await next_frame(usual_ws) for _ in messages]
    assert direct == usual
    assert [f["payload"]["data"]["messageAdded"]["id"] for f in direct] == [
        to_global_id("Message", m.id) for m in messages
    ]
    assert direct[1]["payload"]["data"]["messageAdded"]["readAt"] is not None
    assert sum(passes.sizes) == 3  # the direct subscription's events, not the usual one's


async def test_a_burst_for_many_subscribers_is_one_pass(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given four contractors subscribed
    passes = Passes(monkeypatch)
    contractors = [await make_contractor() for _ in range(4)]
    tokens = [await live.sign_in(c.email or "") for c in contractors]
    # Written before subscribing: on SQLite the message tail would otherwise hand some on
    # as they commit, in passes of their own; here only the burst below delivers them.
    messages = [await new_message(c, f"For {c.id}") for c in contractors]
    async with (
        subscribed(live, tokens[0], PLAIN) as ws0,
        subscribed(live, tokens[1], PLAIN) as ws1,
        subscribed(live, tokens[2], PLAIN) as ws2,
        subscribed(live, tokens[3], PLAIN) as ws3,
    ):
        await live.wait_for_subscribers(4)
        # when one message each arrives at once (as from one outbox batch)
        for contractor, message in zip(contractors, messages, strict=True):
            live.app.state.pubsub.deliver_local(contractor.id, message.id)
        # then each gets its own, read and answered in one pass
        frames = [await next_frame(ws) for ws in (ws0, ws1, ws2, ws3)]
    assert [f["payload"]["data"]["messageAdded"]["title"] for f in frames] == [
        f"For {c.id}" for c in contractors
    ]
    assert passes.sizes == [4]


def only_sink(live: Live) -> DirectSink:
    """The one inbox registered with the server's pub/sub, which must be a sink."""
    [inboxes] = live.app.state.pubsub._queues.values()
    [sink] = inboxes
    assert isinstance(sink, DirectSink)
    return sink


@asynccontextmanager
async def parked(
    live: Live, contractor: Account
) -> AsyncIterator[tuple[ClientConnection, DirectSink]]:
    """The contractor subscribed, once the subscription's sink has parked."""
    token = await live.sign_in(contractor.email or "")
    async with subscribed(live, token, PLAIN) as ws:
        await live.wait_for_subscribers(1)
        sink = only_sink(live)
        await eventually(lambda: sink.parked)
        yield ws, sink


async def test_a_subscription_its_sink_answers_keeps_no_task_running(live: Live) -> None:
    # given a subscription whose events its sink answers
    contractor = await make_contractor()
    token = await live.sign_in(contractor.email or "")
    first, second = [await new_message(contractor, t) for t in ("First", "Second")]
    async with subscribed(live, token, PLAIN) as ws:
        await live.wait_for_subscribers(1)
        sink = only_sink(live)
        # then its operation's task has ended (parked), its sink stays registered
        await eventually(lambda: sink.operation.task is not None and sink.operation.task.done())
        assert sink.parked and sink.handler.sinks == {"1": sink}
        assert sink.handler.operations == {"1": sink.operation}
        # and its events still arrive
        live.app.state.pubsub.deliver_local(contractor.id, first.id)
        frame = await next_frame(ws)
        assert frame["id"] == "1" and frame["payload"]["data"]["messageAdded"]["title"] == "First"
        assert sink.direct and sink.parked  # answered by the sink, not run again
        # and the id stays taken while it lives (graphql-transport-ws: 4409)
        again = {"id": "1", "type": "subscribe", "payload": {"query": PLAIN}}
        await ws.send(json.dumps(again))
        async with asyncio.timeout(2):
            await ws.wait_closed()
        assert ws.close_code == 4409
    # when the connection closed, the sink left the pub/sub
    await live.wait_for_no_subscribers()
    assert sink.handler.sinks == {} and not sink.parked
    live.app.state.pubsub.deliver_local(contractor.id, second.id)  # nobody to hand it to


async def test_between_events_a_subscriber_holds_nothing_of_the_last_one(live: Live) -> None:
    # given a subscription its sink answers
    contractor = await make_contractor()
    token = await live.sign_in(contractor.email or "")
    title = f"Once, for {contractor.email}"  # no other test's message has it
    message_id = (await new_message(contractor, title)).id
    async with subscribed(live, token, PLAIN) as ws:
        await live.wait_for_subscribers(1)
        # when an event has been answered
        live.app.state.pubsub.deliver_local(contractor.id, message_id)
        assert (await next_frame(ws))["type"] == "next"
        # then neither the message it was about nor its resolve infos stay in memory
        gc.collect()
        kept = [
            o
            for o in gc.get_objects()
            if isinstance(o, SchemaMessage | MessageModel) and o.title == title
        ]
        assert kept == []


async def test_completing_a_parked_subscription_takes_its_sink_out(live: Live) -> None:
    contractor = await make_contractor()
    message = await new_message(contractor, "After complete")
    async with parked(live, contractor) as (ws, sink):
        # when the client completes it
        await ws.send(json.dumps({"id": "1", "type": "complete"}))
        await live.wait_for_no_subscribers()
        # then nothing more comes, and the id may be used again
        live.app.state.pubsub.deliver_local(contractor.id, message.id)
        await nothing_within(ws)
        assert sink.handler.sinks == {} and sink.handler.operations == {}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": PLAIN}}))
        await live.wait_for_subscribers(1)
        live.app.state.pubsub.deliver_local(contractor.id, message.id)
        frame = await next_frame(ws)
    assert frame["payload"]["data"]["messageAdded"]["title"] == "After complete"


async def test_another_accounts_message_is_never_sent(live: Live) -> None:
    # given a subscribed contractor and someone else's message
    contractor, other = await make_contractor(), await make_contractor()
    token = await live.sign_in(contractor.email or "")
    theirs = await new_message(other, "Not yours")
    mine = await new_message(contractor, "Yours")
    async with subscribed(live, token, PLAIN) as ws:
        await live.wait_for_subscribers(1)
        # when the other message's id is published on this account's channel
        live.app.state.pubsub.deliver_local(contractor.id, theirs.id)
        # then nothing is sent, and the next own message still comes
        await nothing_within(ws)
        live.app.state.pubsub.deliver_local(contractor.id, mine.id)
        frame = await next_frame(ws)
    assert frame["payload"]["data"]["messageAdded"]["title"] == "Yours"


async def test_a_field_that_awaits_keeps_the_usual_path(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    sinks = Sinks(monkeypatch)
    contractor = await make_contractor()
    token = await live.sign_in(contractor.email or "")
    message = await new_message(contractor, "No grant")
    async with subscribed(live, token, WITH_GRANT) as ws:
        await live.wait_for_subscribers(1)
        await live.app.state.pubsub.publish(contractor.id, message.id)
        frame = await next_frame(ws)
    assert sinks.made == [None]  # `grant` is loaded: its plan is not synchronous
    assert frame["payload"]["data"] == {"messageAdded": {"title": "No grant", "grant": None}}


async def test_after_a_bail_the_usual_path_answers_in_order(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a subscription whose plan bails on its second event
    sinks = Sinks(monkeypatch)
    original = CompiledExecutor.event_runner

    def bails_second(self: CompiledExecutor) -> Callable[[Any], dict[str, Any]] | None:
        run = original(self)
        assert run is not None
        seen: list[Any] = []

        def flaky(event: Any) -> dict[str, Any]:
            seen.append(event)
            if len(seen) == 2:
                raise Bail
            return run(event)

        return flaky

    monkeypatch.setattr(CompiledExecutor, "event_runner", bails_second)
    contractor = await make_contractor()
    token = await live.sign_in(contractor.email or "")
    messages = [await new_message(contractor, f"Event {n}") for n in range(4)]
    async with subscribed(live, token, PLAIN) as ws:
        await live.wait_for_subscribers(1)
        # when four events come in one burst
        for message in messages:
            live.app.state.pubsub.deliver_local(contractor.id, message.id)
        # then all four arrive, in order, the last three from the usual path
        frames = [await next_frame(ws) for _ in messages]
    titles = [f["payload"]["data"]["messageAdded"]["title"] for f in frames]
    assert titles == [f"Event {n}" for n in range(4)]
    assert all(f["type"] == "next" and f["id"] == "1" and "errors" not in f for f in frames)
    sink = sinks.made[0]
    assert sink is not None and not sink.direct


async def test_a_resumed_operation_that_ends_in_an_error_lets_its_sink_go(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a parked subscription whose plan bails, and whose resolver fails when run again
    monkeypatch.setattr(CompiledExecutor, "event_runner", lambda self: _always_bails)
    calls: list[object] = []
    original = schema.subscription._resume_point

    def fails_the_second_time(after: Any) -> Any:
        calls.append(after)
        if len(calls) > 1:
            raise schema.subscription.bad_argument("gone")
        return original(after)

    monkeypatch.setattr(schema.subscription, "_resume_point", fails_the_second_time)
    contractor = await make_contractor()
    message = await new_message(contractor, "Bails")
    async with parked(live, contractor) as (ws, sink):
        # when an event makes it run the operation again, and that run fails
        live.app.state.pubsub.deliver_local(contractor.id, message.id)
        frames = [await next_frame(ws), await next_frame(ws)]
        # then the client hears the error and the end, and the sink is out of the pub/sub
        assert frames[0]["payload"]["errors"][0]["message"] == "gone", frames
        assert frames[1] == {"id": "1", "type": "complete"}
        await live.wait_for_no_subscribers()
        assert sink.handler.sinks == {} and sink.handler.operations == {}


def _always_bails(event: Any) -> dict[str, Any]:
    raise Bail


async def test_completing_stops_the_events(live: Live) -> None:
    contractor = await make_contractor()
    token = await live.sign_in(contractor.email or "")
    first = await new_message(contractor, "First")
    second = await new_message(contractor, "Second")
    async with subscribed(live, token, PLAIN) as ws:
        await live.wait_for_subscribers(1)
        live.app.state.pubsub.deliver_local(contractor.id, first.id)
        assert (await next_frame(ws))["type"] == "next"
        # when the client completes the subscription
        await ws.send(json.dumps({"id": "1", "type": "complete"}))
        await live.wait_for_no_subscribers()
        live.app.state.pubsub.deliver_local(contractor.id, second.id)
        # then nothing more comes
        await nothing_within(ws)


class Recorder:
    """The parts of Strawberry's handler a sink sends through: its open operations."""

    def __init__(self) -> None:
        self.operations: dict[str, Any] = {}
        self.sent: list[dict[str, Any]] = []


class Op:
    def __init__(self, handler: Recorder, id: str) -> None:
        self.id = id
        self.completed = False
        self.handler = handler
        handler.operations[id] = self

    async def send_operation_message(self, message: dict[str, Any]) -> None:
        self.handler.sent.append(message)


async def test_frames_for_an_operation_that_ended_are_dropped() -> None:
    # given a sink with two frames waiting
    handler = Recorder()
    operation = Op(handler, "7")
    sink = DirectSink(Fanout(), 1, (handler, operation), lambda event: {})  # type: ignore[arg-type]
    sink.outbox = deque([{"n": 1}, {"n": 2}])
    # when the operation ends before they are sent
    del handler.operations["7"]
    assert start_eagerly(sink._send()) is None
    # then none goes out; a live operation's do
    assert handler.sent == []
    handler.operations["7"] = operation
    sink.outbox = deque([{"n": 3}])
    assert start_eagerly(sink._send()) is None
    assert handler.sent == [{"n": 3}]
    assert sink.outbox is None  # nothing held between frames


async def test_events_keep_their_order_when_the_sink_goes_back_to_the_usual_path(
    app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a sink whose plan bails, and passes that wait for a go
    contractor = await make_contractor()
    messages = [await new_message(contractor, f"Event {n}") for n in range(3)]
    gates = [asyncio.Event(), asyncio.Event()]
    original = Fanout._pass

    async def gated(fanout: Fanout, batch: list[tuple[DirectSink, int]]) -> None:
        if gates:  # the first two passes wait; any later one goes at once
            await gates.pop(0).wait()
        await original(fanout, batch)

    monkeypatch.setattr(Fanout, "_pass", gated)

    def bails(event: Any) -> dict[str, Any]:
        raise Bail

    handler = Recorder()
    sink = DirectSink(Fanout(), contractor.id, (handler, Op(handler, "1")), bails)  # type: ignore[arg-type]
    first_gate, second_gate = gates
    # when the first event's pass is under way, a second event waits for the next pass
    sink.put_nowait(messages[0].id)
    await asyncio.sleep(0)
    sink.put_nowait(messages[1].id)
    first_gate.set()
    await eventually(lambda: not sink.direct)
    # and a third comes once the sink has gone back to the usual path
    sink.put_nowait(messages[2].id)
    second_gate.set()
    # then the usual path gets all three, in order
    async with asyncio.timeout(2):
        received = [await sink.resolver_queue.get() for _ in messages]
    assert received == [m.id for m in messages]


async def test_a_failed_read_hands_the_events_to_the_usual_path(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a subscription answered by the pass, and a read that fails once
    sinks = Sinks(monkeypatch)
    original = prepared.by_ids
    failures = [OSError("database gone")]

    async def flaky(model: Any, ids: Any) -> Any:
        if failures:
            raise failures.pop()
        return await original(model, ids)

    monkeypatch.setattr(prepared, "by_ids", flaky)
    contractor = await make_contractor()
    token = await live.sign_in(contractor.email or "")
    message = await new_message(contractor, "After a failed read")
    async with subscribed(live, token, PLAIN) as ws:
        await live.wait_for_subscribers(1)
        # when the pass cannot read the burst
        live.app.state.pubsub.deliver_local(contractor.id, message.id)
        # then the usual path reads it again and answers
        frame = await next_frame(ws)
    assert frame["payload"]["data"]["messageAdded"]["title"] == "After a failed read"
    sink = sinks.made[0]
    assert sink is not None and not sink.direct


async def test_a_subscriber_too_far_behind_loses_events_not_the_others(
    app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a sink whose pass has not run yet
    gate = asyncio.Event()
    original = Fanout._pass

    async def held(fanout: Fanout, batch: list[tuple[DirectSink, int]]) -> None:
        await gate.wait()
        await original(fanout, batch)

    monkeypatch.setattr(Fanout, "_pass", held)
    handler = Recorder()
    sink = DirectSink(Fanout(), 1, (handler, Op(handler, "1")), lambda event: {})  # type: ignore[arg-type]
    pubsub = app.state.pubsub
    async with pubsub.subscribe(1, sink):
        # when more events come than it may hold
        for message_id in range(QUEUE_SIZE + 5):
            pubsub.deliver_local(1, message_id)
        # then it holds its limit and the rest are dropped, with a warning, not raised
        assert sink.backlog == QUEUE_SIZE
        gate.set()
        await eventually(lambda: sink.backlog == 0)


async def test_start_eagerly_runs_now_and_becomes_a_task_only_to_wait() -> None:
    log: list[Any] = []

    async def at_once() -> None:
        log.append("ran")

    assert start_eagerly(at_once()) is None
    assert log == ["ran"]  # before any other task had a turn

    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def waits() -> None:
        log.append("before")
        try:
            log.append(await future)
        except ValueError as error:
            log.append(f"raised {error}")

    task = start_eagerly(waits())
    assert task is not None and log[-1] == "before"
    future.set_result("after")
    await task
    assert log[-1] == "after"

    failing: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    future = failing
    task = start_eagerly(waits())
    assert task is not None
    failing.set_exception(ValueError("boom"))
    await task
    assert log[-1] == "raised boom"


async def test_start_eagerly_passes_cancellation_in() -> None:
    cleaned: list[bool] = []
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def waits_forever() -> None:
        try:
            await never
        finally:
            cleaned.append(True)

    task = start_eagerly(waits_forever())
    assert task is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == [True]


async def test_a_subscription_queue_keeps_order_bound_and_what_a_cancelled_reader_left() -> None:
    # given a subscription's queue, as the pub/sub fills it
    queue = EventQueue(maxsize=3)
    for message_id in (1, 2, 3):
        queue.put_nowait(message_id)
    # when one more comes than it holds
    with pytest.raises(asyncio.QueueFull):
        queue.put_nowait(4)
    # then the reader gets them in order, and waits for the next
    assert [await queue.get() for _ in range(3)] == [1, 2, 3]
    reader = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not reader.done()
    queue.put_nowait(5)
    assert await reader == 5
    # and a reader cancelled just after an id came leaves that id for the next read
    reader = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait(6)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert queue.qsize() == 1 and await queue.get() == 6 and queue.empty()
