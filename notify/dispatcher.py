"""The outbox dispatcher: a lane per channel claims its due rows, delivers, retries with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import aiosmtplib
import httpx
from prometheus_client import CollectorRegistry
from tortoise.exceptions import OperationalError
from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from core import clock
from models.enums import OutboxChannel, OutboxStatus
from models.outbox import OutboxMessage
from notify import mail, outbox, sms
from notify.metrics import DeliveryCounters
from notify.pubsub import PubSub
from notify.push import PushRejected, PushUnavailable, TokenUnregistered
from notify.push_sender import PushSender
from notify.tasks import stop_task
from settings import Settings

log = logging.getLogger("keybin.outbox")

BATCH = 50  # the most rows one lane attempts in a run_once
MAX_ATTEMPTS = 40  # with a 5-minute cap on the backoff: about three days of trying
RETRY_AFTER_MAX = 3600.0  # a service asking for more than an hour's pause is not believed
STOP_GRACE_SECONDS = 5.0  # on shutdown, deliveries under way get this long to finish

# Errors that mean "try again later"; anything else is a bug and is left to surface.
RETRYABLE: tuple[type[BaseException], ...] = (
    aiosmtplib.SMTPException,
    OSError,
    TimeoutError,
    httpx.HTTPError,
    sms.SmsGatewayError,
)

Deliverer = Callable[[OutboxMessage], Awaitable[None]]


class PermanentFailure(Exception):
    """Delivery can never succeed (a push token the service rejected, a mail address the
    relay refuses or that no mail can be written to): the row fails for good."""


class RetryLater(Exception):
    """Retryable, and the receiver said when (Retry-After): not sooner than `delay` seconds."""

    def __init__(self, message: str, delay: float | None) -> None:
        super().__init__(message)
        self.delay = delay


class DeadlinePassed(TimeoutError):
    """The provider took longer than the delivery deadline: retried like any timeout."""


class Lane:
    """One channel's deliveries, a few at once: a provider that hangs holds only its own rows."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        channel: OutboxChannel,
        deliver: Deliverer,
        slots: int,
        also: tuple[OutboxChannel, ...] = (),
    ) -> None:
        self.dispatcher = dispatcher
        self.channel = channel
        # The rows it claims: its channel's, and those of any channel it stands in for.
        self.channels = (channel, *also)
        self.deliver = deliver
        self.slots = slots
        self.wakeup = asyncio.Event()
        self._sending: set[asyncio.Task[None]] = set()

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            self.wakeup.clear()
            free = self.slots - len(self._sending)
            try:
                if free and await self._fill(free) == free:
                    continue  # every free slot found a row: more may be due
            # The database busy or gone for a moment: the next round picks the work up.
            except (OSError, OperationalError) as error:
                log.warning("outbox %s lane: %s", self.channel, error)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.dispatcher.settings.outbox_poll_seconds):
                    await self.wakeup.wait()  # new rows, a free slot, or stopping
        await self._finish_sending()

    async def run_once(self) -> int:
        """Deliver what is due now, `slots` at a time; returns how many rows were attempted."""
        attempted = 0
        while attempted < BATCH:
            rows = await self.dispatcher.claim(self.channels, self.slots)
            await asyncio.gather(*(self.dispatcher.deliver(self, row) for row in rows))
            attempted += len(rows)
            if len(rows) < self.slots:
                break
        return attempted

    async def _fill(self, free: int) -> int:
        rows = await self.dispatcher.claim(self.channels, free)
        for row in rows:
            task = asyncio.create_task(
                self.dispatcher.deliver(self, row), name=f"outbox-{self.channel}-{row.id}"
            )
            self._sending.add(task)
            task.add_done_callback(self._sent)
        return len(rows)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        self.wakeup.set()  # a slot is free
        if not task.cancelled() and (error := task.exception()) is not None:
            # A bug, not a provider failing: the row stays claimed and is tried again
            # once its claim runs out.
            log.error("outbox %s delivery failed", self.channel, exc_info=error)

    async def _finish_sending(self) -> None:
        if not self._sending:
            return
        _, late = await asyncio.wait(self._sending, timeout=STOP_GRACE_SECONDS)
        for task in late:
            task.cancel()  # its row stays claimed; another instance takes it when the claim ends
        if late:
            await asyncio.wait(late)


class _EveryLane(asyncio.Event):
    """What outbox.wake() sets: every lane looks for work (each clears only its own event)."""

    def __init__(self, lanes: list[Lane]) -> None:
        super().__init__()
        self._lanes = lanes

    def set(self) -> None:
        for lane in self._lanes:
            lane.wakeup.set()


class Dispatcher:
    def __init__(
        self, settings: Settings, pubsub: PubSub, metrics: DeliveryCounters | None = None
    ) -> None:
        self.settings = settings
        self.pubsub = pubsub
        # Without the app's metrics (tests, tools), it counts into a registry of its own.
        self.metrics = metrics if metrics is not None else DeliveryCounters(CollectorRegistry())
        self.name = secrets.token_hex(6)
        self._claims = itertools.count(1)
        # The rows this instance is delivering now: never claimed again meanwhile, even if
        # their claim ran out (the clock jumped, the loop stalled), so never sent twice here.
        self._in_flight: set[int] = set()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.push = PushSender(settings)
        self.lanes = [
            Lane(self, OutboxChannel.EMAIL, self._email, settings.outbox_email_concurrency),
            Lane(self, OutboxChannel.SMS, self._sms, settings.outbox_sms_concurrency),
            # A lane per push service, each with the push slots: a hung APNs holds back
            # iPhones only, never Android phones (and the other way round).
            Lane(
                self,
                OutboxChannel.FCM,
                self._push,
                settings.outbox_push_concurrency,
                also=(OutboxChannel.PUSH,),
            ),
            Lane(self, OutboxChannel.APNS, self._push, settings.outbox_push_concurrency),
            # One at a time: a subscriber sees its messages in the order they were written.
            Lane(self, OutboxChannel.EVENT, self._event, 1),
        ]
        self.wakeup = _EveryLane(self.lanes)

    def start(self) -> None:
        outbox.on_wake(self.wakeup.set)
        self._task = asyncio.create_task(self._run(), name="outbox-dispatcher")

    async def stop(self) -> None:
        outbox.off_wake(self.wakeup.set)
        if self._task is not None:
            self._stopping.set()
            self.wakeup.set()  # end every lane's wait for work at once
            await stop_task(self._task, self._stopping)
            self._task = None
        await self.push.aclose()

    async def _run(self) -> None:
        await asyncio.gather(*(lane.run(self._stopping) for lane in self.lanes))

    async def run_once(self) -> int:
        """Deliver what is due now in every lane; returns how many rows were attempted."""
        return sum(await asyncio.gather(*(lane.run_once() for lane in self.lanes)))

    async def claim(self, channels: tuple[OutboxChannel, ...], limit: int) -> list[OutboxMessage]:
        """Up to `limit` due rows of one lane's channels, claimed by a conditional update: of
        several dispatchers, exactly one wins each row, and the claim's own name finds the
        winnings."""
        now = clock.now()
        busy = list(self._in_flight)
        due = await (
            _due(channels, now, busy).order_by("id").limit(limit).values_list("id", flat=True)
        )
        if not due:
            return []
        claim = f"{self.name}:{next(self._claims)}"
        await (
            _due(channels, now, busy)
            .filter(id__in=due)
            .update(
                claimed_until=now + timedelta(seconds=self.settings.outbox_claim_seconds),
                claimed_by=claim,
            )
        )
        return await OutboxMessage.filter(id__in=due, claimed_by=claim).order_by("id")

    async def deliver(self, lane: Lane, row: OutboxMessage) -> None:
        self._in_flight.add(row.id)
        try:
            await self._deliver(lane, row)
        finally:
            self._in_flight.discard(row.id)

    async def _deliver(self, lane: Lane, row: OutboxMessage) -> None:
        try:
            await lane.deliver(row)
        except PermanentFailure as error:
            log.warning("outbox %s %s failed for good: %s", row.channel, row.id, error)
            await self._finish(row, OutboxStatus.DEAD, str(error))
        except RetryLater as error:
            await self._retry(row, str(error), error.delay)
        except RETRYABLE as error:
            await self._retry(row, f"{type(error).__name__}: {error}")
        else:
            await self._finish(row, OutboxStatus.SENT, None)

    async def _within_deadline(self, sending: Awaitable[None]) -> None:
        """Whatever the provider's own timeouts do, one delivery ends by the deadline (and the
        deadline is shorter than a claim, so no other dispatcher sends the row meanwhile)."""
        seconds = self.settings.outbox_deadline_seconds
        deadline = asyncio.timeout(seconds)
        try:
            async with deadline:
                await sending
        except TimeoutError as error:
            if deadline.expired():
                raise DeadlinePassed(f"no answer within {seconds:g} s") from error
            raise

    async def _finish(self, row: OutboxMessage, status: OutboxStatus, error: str | None) -> None:
        await self._while_claimed(row).update(
            status=status,
            sent_at=clock.now() if status == OutboxStatus.SENT else None,
            attempts=row.attempts + 1,
            last_error=error[:500] if error else None,
            claimed_until=None,
        )
        if status == OutboxStatus.SENT:
            self.metrics.delivered(row.channel)
        else:
            self.metrics.failed(row.channel, dead=True)

    async def _retry(self, row: OutboxMessage, error: str, delay: float | None = None) -> None:
        attempts = row.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            log.error(
                "outbox %s %s gave up after %d attempts: %s", row.channel, row.id, attempts, error
            )
            await self._finish(row, OutboxStatus.DEAD, error)
            return
        base = self.settings.outbox_backoff_base * 2 ** (attempts - 1)
        backoff = min(base, self.settings.outbox_backoff_max)
        # A receiver's Retry-After is honoured (up to an hour); it never shortens the backoff.
        delay = backoff if delay is None else min(max(delay, backoff), RETRY_AFTER_MAX)
        log.warning("outbox %s %s failed (%s), retry in %.1fs", row.channel, row.id, error, delay)
        self.metrics.failed(row.channel, dead=False)
        await self._while_claimed(row).update(
            attempts=attempts,
            last_error=error[:500],
            next_attempt_at=clock.now() + timedelta(seconds=delay),
            claimed_until=None,
        )

    def _while_claimed(self, row: OutboxMessage) -> QuerySet[OutboxMessage]:
        """The row, unless another dispatcher has claimed it since (ours ran out)."""
        return OutboxMessage.filter(id=row.id, claimed_by=row.claimed_by)

    async def _email(self, row: OutboxMessage) -> None:
        try:
            await self._within_deadline(mail.send(self.settings, row.recipient, row.payload))
        except mail.Undeliverable as error:
            # Retrying would fail the same way every time, for days: it ends here, once.
            raise PermanentFailure(str(error)) from error

    async def _sms(self, row: OutboxMessage) -> None:
        try:
            await self._within_deadline(sms.send(self.settings, row.recipient, row.payload["body"]))
        except sms.SmsRefused as error:
            raise PermanentFailure(str(error)) from error

    async def _event(self, row: OutboxMessage) -> None:
        account_id, message_id = int(row.payload["account_id"]), int(row.payload["message_id"])
        await self._within_deadline(self.pubsub.publish(account_id, message_id))

    async def _push(self, row: OutboxMessage) -> None:
        try:
            notification = await self.push.registered(row.payload)
            try:
                await self._within_deadline(self.push.send(notification))
            except TokenUnregistered:
                await self.push.forget(notification)
                raise
        except PushRejected as error:
            raise PermanentFailure(str(error)) from error
        except PushUnavailable as error:
            raise RetryLater(str(error), error.retry_after) from error


def _due(
    channels: tuple[OutboxChannel, ...], now: datetime, busy: list[int]
) -> QuerySet[OutboxMessage]:
    """A lane's rows waiting to be sent, whose time has come and that no one holds (and that
    are not among `busy`, this instance's deliveries under way)."""
    channel = {"channel": channels[0]} if len(channels) == 1 else {"channel__in": channels}
    due = OutboxMessage.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        **channel,
        status=OutboxStatus.PENDING,
        next_attempt_at__lte=now,
    )
    return due.exclude(id__in=busy) if busy else due
