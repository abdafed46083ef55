"""The outbox dispatcher: claims due rows, delivers them, retries with exponential backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta

import aiosmtplib
import httpx
from tortoise.expressions import Q

from models.enums import OutboxChannel, OutboxStatus
from models.outbox import OutboxMessage
from notify import mail, outbox, sms
from notify.pubsub import PubSub
from notify.push import PushRejected, PushUnavailable
from notify.push_sender import PushSender
from notify.tasks import stop_task
from resolvers import clock
from settings import Settings
from web.metrics import Metrics

log = logging.getLogger("keybin.outbox")

BATCH = 50
MAX_ATTEMPTS = 40  # with a 5-minute cap on the backoff: about three days of trying
RETRY_AFTER_MAX = 3600.0  # a service asking for more than an hour's pause is not believed

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
    """Delivery can never succeed (e.g. a push token the service rejected): drop the row."""


class RetryLater(Exception):
    """Retryable, and the receiver said when (Retry-After): not sooner than `delay` seconds."""

    def __init__(self, message: str, delay: float | None) -> None:
        super().__init__(message)
        self.delay = delay


class Dispatcher:
    def __init__(self, settings: Settings, pubsub: PubSub, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.pubsub = pubsub
        self.metrics = metrics if metrics is not None else Metrics(pubsub)
        self.name = secrets.token_hex(6)
        self.wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.push = PushSender(settings)
        self.deliverers: dict[OutboxChannel, Deliverer] = {
            OutboxChannel.EMAIL: self._email,
            OutboxChannel.SMS: self._sms,
            OutboxChannel.EVENT: self._event,
            OutboxChannel.PUSH: self._push,
        }

    def start(self) -> None:
        outbox.bind_wakeup(self.wakeup)
        self._task = asyncio.create_task(self._run(), name="outbox-dispatcher")

    async def stop(self) -> None:
        outbox.bind_wakeup(None)
        if self._task is not None:
            self.wakeup.set()  # end the wait for work at once
            await stop_task(self._task, self._stopping)
            self._task = None
        await self.push.aclose()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self.wakeup.clear()
            delivered = await self.run_once()
            if delivered:
                continue  # there may be more waiting
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.outbox_poll_seconds):
                    await self.wakeup.wait()

    async def run_once(self) -> int:
        """Deliver what is due now; returns how many rows were attempted."""
        now = clock.now()
        due = (
            await OutboxMessage.filter(status=OutboxStatus.PENDING, next_attempt_at__lte=now)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .order_by("id")
            .limit(BATCH)
            .values_list("id", flat=True)
        )
        attempted = 0
        for row_id in due:
            row = await self._claim(int(str(row_id)))
            if row is not None:
                attempted += 1
                await self._deliver(row)
        return attempted

    async def _claim(self, row_id: int) -> OutboxMessage | None:
        """A conditional update: of several dispatchers, exactly one wins the row."""
        now = clock.now()
        won = (
            await OutboxMessage.filter(id=row_id, status=OutboxStatus.PENDING)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .update(
                claimed_until=now + timedelta(seconds=self.settings.outbox_claim_seconds),
                claimed_by=self.name,
            )
        )
        if not won:
            return None
        return await OutboxMessage.get_or_none(id=row_id, claimed_by=self.name)

    async def _deliver(self, row: OutboxMessage) -> None:
        try:
            await self.deliverers[row.channel](row)
        except PermanentFailure as error:
            log.warning("outbox %s %s dropped: %s", row.channel, row.id, error)
            await self._finish(row, OutboxStatus.DEAD, str(error))
        except RetryLater as error:
            await self._retry(row, str(error), error.delay)
        except RETRYABLE as error:
            await self._retry(row, f"{type(error).__name__}: {error}")
        else:
            await self._finish(row, OutboxStatus.SENT, None)

    async def _finish(self, row: OutboxMessage, status: OutboxStatus, error: str | None) -> None:
        await OutboxMessage.filter(id=row.id).update(
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
        await OutboxMessage.filter(id=row.id).update(
            attempts=attempts,
            last_error=error[:500],
            next_attempt_at=clock.now() + timedelta(seconds=delay),
            claimed_until=None,
        )

    async def _email(self, row: OutboxMessage) -> None:
        await mail.send(self.settings, row.recipient, row.payload)

    async def _sms(self, row: OutboxMessage) -> None:
        await sms.send(self.settings, row.recipient, row.payload["body"])

    async def _event(self, row: OutboxMessage) -> None:
        await self.pubsub.publish(int(row.payload["account_id"]), int(row.payload["message_id"]))

    async def _push(self, row: OutboxMessage) -> None:
        try:
            await self.push.deliver(row.payload)
        except PushRejected as error:
            raise PermanentFailure(str(error)) from error
        except PushUnavailable as error:
            raise RetryLater(str(error), error.retry_after) from error
