"""Timed notifications: ACCESS_STARTING to a grantee shortly before their access begins."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from tortoise.exceptions import OperationalError
from tortoise.transactions import in_transaction

from core import clock
from models.enums import MessageKind
from models.grants import Grant
from models.listings import Listing, Lockbox
from notify import outbox
from notify.tasks import stop_task
from resolvers.grants import local_time
from resolvers.listings import one_line_address
from resolvers.lockboxes import zone_of
from resolvers.notifications import post_message

log = logging.getLogger("keybin.scheduler")

INTERVAL_SECONDS = 30.0
LEAD_TIME = timedelta(minutes=15)
BATCH = 100


async def notify_starting_grants() -> int:
    """Posts ACCESS_STARTING for grants starting within LEAD_TIME; returns how many were sent.

    The claim is a conditional update of starting_notified_at, committed with the
    message: several instances (or a restart) never send one twice.
    """
    now = clock.now()
    due = (
        await Grant.filter(
            revoked_at__isnull=True,
            starting_notified_at__isnull=True,
            grantee_id__isnull=False,
            starts_at__gt=now,
            starts_at__lte=now + LEAD_TIME,
        )
        .order_by("starts_at", "id")
        .limit(BATCH)
    )
    sent = 0
    for grant in due:
        listing = await Listing.get(id=grant.listing_id)  # type: ignore[attr-defined]
        lockbox = await Lockbox.get(id=grant.lockbox_id)  # type: ignore[attr-defined]
        zone = await zone_of(lockbox)
        address = one_line_address(listing)
        async with in_transaction():
            claimed = await Grant.filter(
                id=grant.id, starting_notified_at__isnull=True, revoked_at__isnull=True
            ).update(starting_notified_at=now)
            if not claimed:
                continue
            await post_message(
                grant.grantee_id,  # type: ignore[attr-defined]
                MessageKind.ACCESS_STARTING,
                f"Access starts soon: {address}",
                f"Your access to the lockbox at {address} starts at "
                f"{local_time(grant.starts_at, zone)}. Open the app to refresh your keys.",
                grant.id,
            )
        sent += 1
    if sent:
        outbox.wake()
    return sent


class StartingNotifier:
    """Runs notify_starting_grants every INTERVAL_SECONDS beside the outbox dispatcher."""

    def __init__(self, interval: float = INTERVAL_SECONDS) -> None:
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def run_once(self) -> int:
        return await notify_starting_grants()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="access-starting")

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task, self._stopping)
            self._task = None

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
            # The database busy or gone for a moment: the next round picks the work up.
            except (OSError, OperationalError) as error:
                log.warning("access-starting round failed: %s", error)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._stopping.wait()
