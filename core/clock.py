"""The one place keybin reads the time, so tests can move it, and so an answer can tell
whether it depended on the time (schema/fast/answer_cache.py keeps only answers that did not)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta

_offset = timedelta()


class Reading:
    """Whether the time was read while it was being watched."""

    __slots__ = ("read",)

    def __init__(self) -> None:
        self.read = False


# A context variable: the DataLoader tasks a request starts inherit the request's Reading.
_watching: ContextVar[Reading | None] = ContextVar("keybin_clock_watching", default=None)


def now() -> datetime:
    reading = _watching.get()
    if reading is not None:
        reading.read = True
    return datetime.now(UTC) + _offset


@contextmanager
def watched() -> Iterator[Reading]:
    reading = Reading()
    token = _watching.set(reading)
    try:
        yield reading
    finally:
        _watching.reset(token)


def travel(seconds: float) -> None:
    """Move the clock (tests only): lockouts and expiries are judged against it."""
    global _offset
    _offset += timedelta(seconds=seconds)


def reset() -> None:
    global _offset
    _offset = timedelta()
