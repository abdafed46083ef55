"""Subscription events sent in one pass per burst, instead of a task per subscriber.

The usual path wakes each subscriber's task for each event and hands it up through four
layers of async generators: the resolver's, graphql-core's per-event execution, Strawberry's
result handling with its extension hooks, and the WebSocket handler. For a burst reaching a
thousand subscribers that bookkeeping, not the work, is most of the time.

So where it can, a subscription registers a `DirectSink` with the pub/sub instead of a
queue: a graphql-transport-ws operation (`LiveTransportHandler` says which) whose events a
compiled plan answers without awaiting anything (`CompiledExecutor.event_runner`). The
`Fanout` of the event loop collects the events of one burst, reads their messages in one
statement, and for each subscriber checks the row is its own, runs its plan and queues the
`next` frame on its connection. What is sent is what the usual path sends for an event
without errors: `{"id", "type": "next", "payload": {"data"}}`.

Such a subscription is then parked: its sink stays registered with the pub/sub and with the
connection, and the operation's task ends (`Parked`), freeing what it held while it waited
(graphql-core's and Strawberry's async generators and their frames, the extension hooks'
contexts, the task): with thousands of subscribers open, that was a third of each
connection's memory. Completing the operation, or closing the connection, takes the sink
out again (`LiveTransportHandler.cleanup_operation`).

Anything unusual (a plan that bails, a failed read) sends that subscriber back to the usual
path for good: the event goes to the queue the resolver reads, and graphql-core answers it
with its own errors, masked as always. Frames already queued are sent first. A parked
subscription's operation is started again for this (`LiveTransportHandler.resume`), and its
resolver reads the queue of the sink it left."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any, NoReturn
from weakref import WeakKeyDictionary

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)

from core import clock
from notify.pubsub import QUEUE_SIZE, EventQueue, PubSub
from resolvers import rows
from resolvers.messages import addressed_to
from schema.fast.plans import subscribing
from schema.messages import Message
from web.metrics import observe_live_delivery

if TYPE_CHECKING:
    from models.messages import Message as MessageModel

log = logging.getLogger("keybin.live")

Target = tuple["LiveTransportHandler", Operation[Any, Any]]

# The graphql-transport-ws operation this task runs (each operation has its own task).
_target: contextvars.ContextVar[Target | None] = contextvars.ContextVar("live_target", default=None)


class Parked(BaseException):
    """Raised by a subscription resolver whose sink now sends all its events: unwinds the
    operation's task, generators and all, up to `LiveTransportHandler.run_operation`.

    A BaseException, as cancellation is: graphql-core and Strawberry turn an Exception
    from a resolver into an error for the client; this one must pass them untouched."""


class LiveTransportHandler(BaseGraphQLTransportWSHandler[Any, Any]):
    """Strawberry's graphql-transport-ws handler, telling resolvers which operation and
    connection they serve so their events can be sent directly, and keeping the sinks of
    the operations parked on it."""

    # Operation id -> the sink its resolver left when it parked (made on the first).
    sinks: dict[str, DirectSink] | None = None

    async def run_operation(self, operation: Operation[Any, Any]) -> None:
        _target.set((self, operation))
        try:
            await super().run_operation(operation)
        except Parked:
            return  # the operation goes on in its sink, and nothing is sent now
        except BaseException:
            self._let_go(operation)
            raise
        # Run again after a bail, it ended (an error, say): its sink goes too.
        self._let_go(operation)

    def _let_go(self, operation: Operation[Any, Any]) -> None:
        """Take the operation's sink out of the pub/sub: the operation has ended."""
        sink = self.parked_sink(operation)
        if sink is not None and self.sinks is not None:
            del self.sinks[operation.id]
            sink.parked = False
            self.context.pubsub.detach(sink.account_id, sink)

    def park(self, sink: DirectSink) -> None:
        if self.sinks is None:
            self.sinks = {}
        self.sinks[sink.operation.id] = sink
        sink.parked = True

    def parked_sink(self, operation: Operation[Any, Any]) -> DirectSink | None:
        """The sink an earlier run of `operation` left (when it is run again to answer
        events the usual way); never that of an earlier operation with the same id."""
        sink = self.sinks.get(operation.id) if self.sinks is not None else None
        return sink if sink is not None and sink.operation is operation else None

    def resume(self, operation: Operation[Any, Any]) -> None:
        """Run a parked operation again: its resolver reads the sink's queue from now on."""
        if operation.completed or self.operations.get(operation.id) is not operation:
            return  # completed, or the connection closed meanwhile
        operation.task = asyncio.get_running_loop().create_task(self.run_operation(operation))
        operation.task.add_done_callback(self._task_done)

    async def cleanup_operation(self, operation_id: str) -> None:
        operation = self.operations.get(operation_id)
        if operation is not None:
            self._let_go(operation)
        await super().cleanup_operation(operation_id)


class DirectSink:
    """One subscription's inbox in the pub/sub. Events are answered by the fan-out's pass
    while `direct`; after that they queue in `resolver_queue` for the subscription's
    resolver to yield, and graphql-core answers them."""

    # Thousands stay open at once: no per-instance dict.
    __slots__ = (
        "account_id",
        "backlog",
        "direct",
        "fanout",
        "handler",
        "operation",
        "outbox",
        "parked",
        "resolver_queue",
        "run",
        "sending",
    )

    def __init__(
        self,
        fanout: Fanout,
        account_id: int,
        target: Target,
        run: Callable[[Any], dict[str, Any]],
    ) -> None:
        self.fanout = fanout
        self.account_id = account_id
        self.handler, self.operation = target
        self.run = run
        self.direct = True
        self.resolver_queue = EventQueue()
        self.backlog = 0  # events accepted and not yet sent or handed on
        # Frames waiting to be sent: only while some are (most of the time none are).
        self.outbox: deque[dict[str, Any]] | None = None
        self.sending: asyncio.Task[None] | None = None
        # Its operation's task ended while it sends the events (LiveTransportHandler.park).
        self.parked = False

    def put_nowait(self, message_id: int) -> None:
        """What the pub/sub calls, as on a queue (and QueueFull the same way)."""
        if not self.direct and self.backlog == 0:
            self.resolver_queue.put_nowait(message_id)
            return
        # While earlier events wait for a pass, later ones wait behind them, even once the
        # sink has gone back to the usual path: they reach the subscriber in order.
        if self.backlog >= QUEUE_SIZE:
            raise asyncio.QueueFull
        self.backlog += 1
        self.fanout.enqueue(self, message_id)

    def deliver(self, row: MessageModel | None, message_id: int) -> None:
        """The fan-out's pass, for this subscriber's event: `row` is its message."""
        self.backlog -= 1
        if not self.direct:
            self.fall_back(message_id)
            return
        # The same check as the usual path: an event carries only an id.
        row = addressed_to(row, self.account_id)
        if row is None:
            return
        try:
            data = self.run(Message.from_model(row))
        except Exception:  # noqa: BLE001 - graphql-core answers it, with its own errors
            self.direct = False
            self.fall_back(message_id)
            return
        if self.outbox is None:
            self.outbox = deque()
        self.outbox.append({"id": self.operation.id, "type": "next", "payload": {"data": data}})
        if self.sending is None:
            self.sending = start_eagerly(self._send())

    def fall_back(self, message_id: int) -> None:
        """Hand this event, and every later one, to the resolver's queue (graphql-core's
        path), for good."""
        self.direct = False
        try:
            self.resolver_queue.put_nowait(message_id)
        except asyncio.QueueFull:
            log.warning("subscriber queue full for account %s, event dropped", self.account_id)
        if self.parked:
            # No resolver reads the queue while parked: run the operation again, once.
            self.parked = False
            self.handler.resume(self.operation)

    async def _send(self) -> None:
        # Its own task once it has to wait: a client that reads slowly holds up its own
        # frames, never the pass or anyone else's.
        outbox = self.outbox
        try:
            while outbox:
                message = outbox.popleft()
                operation = self.operation
                if operation.completed or self.handler.operations.get(operation.id) is not (
                    operation
                ):
                    continue  # the client completed it or left: nothing more for it
                await operation.send_operation_message(message)  # type: ignore[arg-type]
        except Exception as error:  # noqa: BLE001 - a closed connection; the handler ends it
            log.debug("live frame not sent: %r", error)
        finally:
            self.sending = None
            self.outbox = None

    async def flush(self) -> None:
        """Until the frames already queued are on their way, so that what the resolver then
        yields follows them."""
        while self.sending is not None:
            await asyncio.shield(self.sending)


def start_eagerly(coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Run `coroutine` now, up to its first real wait; only then does it become a task.
    None when it finished without waiting.

    Sending a frame rarely waits (only when the client's socket is full), and a task per
    subscriber per event (created, scheduled, stepped) cost more than the frame itself.
    This is Python 3.12's eager task start (`asyncio.eager_task_factory`), by hand."""
    try:
        waiting_on = coroutine.send(None)
    except StopIteration:
        return None
    return asyncio.get_running_loop().create_task(_Started(coroutine, waiting_on))


class _Started(Coroutine[Any, Any, None]):
    """A coroutine already run up to `waiting_on`, in the form a task takes: the task's
    first step is handed what it waits on; every later step goes to the coroutine, and so
    does a cancellation, even one that comes before the task's first step."""

    def __init__(self, coroutine: Coroutine[Any, Any, None], waiting_on: Any) -> None:
        self._coroutine = coroutine
        self._waiting_on = waiting_on
        self._handed = False

    def send(self, value: Any) -> Any:
        if not self._handed:
            self._handed = True
            return self._waiting_on
        return self._coroutine.send(value)

    def throw(self, *error: Any) -> Any:
        self._handed = True
        return self._coroutine.throw(*error)

    def close(self) -> None:
        self._coroutine.close()

    def __await__(self) -> Generator[Any, Any, None]:
        try:
            waiting_on = self.send(None)
            while True:
                try:
                    value = yield waiting_on
                except BaseException as error:  # noqa: BLE001 - passed in, as a task does
                    waiting_on = self.throw(error)
                else:
                    waiting_on = self.send(value)
        except StopIteration:
            return


class Fanout:
    """The events of one event loop, collected and answered a burst at a time."""

    def __init__(self) -> None:
        self.pending: list[tuple[DirectSink, int]] = []
        self.task: asyncio.Task[None] | None = None

    def enqueue(self, sink: DirectSink, message_id: int) -> None:
        self.pending.append((sink, message_id))
        if self.task is None:
            # Runs once the publisher yields: everything it published by then is one pass.
            self.task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending, []
                await self._pass(batch)
        finally:
            self.task = None

    async def _pass(self, batch: list[tuple[DirectSink, int]]) -> None:
        try:
            read = await rows.messages(list({m for _, m in batch}))
        except Exception:
            log.exception("reading %d live events failed; they go the usual way", len(batch))
            for sink, message_id in batch:
                sink.backlog -= 1
                sink.fall_back(message_id)
            return
        found = [row for row in read if row is not None]
        by_id = {row.pk: row for row in found}
        for sink, message_id in batch:
            sink.deliver(by_id.get(message_id), message_id)
        now = clock.now()
        for row in found:
            observe_live_delivery((now - row.created_at).total_seconds())


_fanouts: WeakKeyDictionary[asyncio.AbstractEventLoop, Fanout] = WeakKeyDictionary()


def direct_sink(account_id: int) -> DirectSink | None:
    """Inside a subscription resolver: a sink that sends this operation's events directly,
    or None when they must take the usual path (another transport, no synchronous plan)."""
    target = _target.get()
    if target is None:
        return None
    left = target[0].parked_sink(target[1])
    if left is not None:
        return left  # run again after a bail: the usual path, from the sink's queue
    executor = subscribing()
    if executor is None:
        return None
    run = executor.event_runner()
    if run is None:
        return None
    loop = asyncio.get_running_loop()
    if loop not in _fanouts:
        _fanouts[loop] = Fanout()
    return DirectSink(_fanouts[loop], account_id, target, run)


async def park(sink: DirectSink, pubsub: PubSub) -> NoReturn:
    """Leave the subscription's events to `sink` for good and end the operation's task
    (see the module's docstring). Raises Parked."""
    await pubsub.attach(sink.account_id, sink)
    sink.handler.park(sink)
    executor = subscribing()
    if executor is not None:
        executor.keep_for_events()
    raise Parked
