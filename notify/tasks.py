"""Stopping a background loop for certain, even when a driver swallowed the cancellation."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("keybin")

GRACE_SECONDS = 10.0


async def stop_task(task: asyncio.Task[None], stopping: asyncio.Event) -> None:
    """Ask the loop to end (it checks `stopping` each round); cancel it if it does not.

    A bare cancel is not enough: a cancellation that lands inside a database driver's
    await can be swallowed, and the loop would then run on while the pool waits for it.
    """
    stopping.set()
    done, _ = await asyncio.wait({task}, timeout=GRACE_SECONDS)
    while not done:
        log.warning("background task %s did not stop in time: cancelling", task.get_name())
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=GRACE_SECONDS)
